# The simulated ESP32 `machine` module (MicroPython v1.25.0, ports/esp32): same names,
# constants and errors; pins, buses and resets act on the simulated world (sim).
import io as _io
import json as _json
import micropython as _micropython
import time as _time
import _simclock
import _simcost
import _simirq
import _simrtc
import _simstack
import _thread
import umachine as _umachine
from errno import ENODEV as _ENODEV, ETIMEDOUT as _ETIMEDOUT
from umachine import mem8, mem16, mem32

import sim as _sim
from sim import models as _models, pads as _pads

PWRON_RESET = const(1)
HARD_RESET = const(2)
WDT_RESET = const(3)
DEEPSLEEP_RESET = const(4)
SOFT_RESET = const(5)

SLEEP = const(2)
DEEPSLEEP = const(4)

PIN_WAKE = const(2)
EXT0_WAKE = const(2)
EXT1_WAKE = const(3)
TIMER_WAKE = const(4)
TOUCHPAD_WAKE = const(5)
ULP_WAKE = const(6)

_MISSING_GPIOS = (24, 28, 29, 30, 31)
_RTC_GPIOS = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)
_FIRST_INPUT_ONLY = const(34)
_POLL_RD = const(1)
_POLL_WR = const(4)

# --- interrupts -------------------------------------------------------------------------
# The ISRs of ports/esp32 (machine_pin.c:machine_pin_isr_handler, machine_timer.c) only call
# mp_sched_schedule; _simirq queues them in MicroPython's own 8-deep queue (a drop when it
# is full) with the device's latency, and holds them through the VM's pauses (simirq.c).

_masked = 0
_cache_off = False
_deferred = {}  # source -> handler: edges latched while interrupts are masked or cache off


def disable_irq():
    global _masked
    _masked += 1
    return _masked - 1


def enable_irq(state):
    global _masked
    _masked = state
    if not _masked:
        _run_deferred()


def _run_deferred():
    # One ISR per latched source, however many edges it saw: the GPIO status register
    # holds one bit per pin, cleared by the ISR.
    while _deferred:
        arg, handler = _deferred.popitem()
        _simirq.isr(handler, arg)


def _raise_irq(handler, arg, wait=False, ago_us=0):
    """The ISR of an edge ago_us ago (device time): schedule the handler, or latch it while
    the CPU takes no interrupt (disable_irq, the flash cache off: the GPIO ISR service is
    installed without ESP_INTR_FLAG_IRAM)."""
    if _masked or _cache_off:
        _deferred[arg] = handler
        return
    while not _simirq.isr(handler, arg, ago_us) and wait:
        _time.sleep_ms(1)


def _flash_busy(us):
    """A flash erase or write on the VM's task: `us` of device time with the cache off. No
    handler runs, GPIO interrupts wait in the status register."""
    global _cache_off
    _cache_off = True
    try:
        _simirq.pause(us)
    finally:
        _cache_off = False
    if not _masked:
        _run_deferred()


# --- Pin --------------------------------------------------------------------------------


class _GPIO:
    # One per GPIO number, shared by every Pin object naming it.
    def __init__(self, n):
        self.n = n
        self.mode = None
        self.pull = 0
        self.out = 0
        self.ext = None  # level driven from outside, None when nobody drives it
        self.handler = None
        self.trigger = 0
        self.pin = None
        self.level = 0
        self.held = None  # (mode, pull, out) the pad keeps while gpio_hold_en holds it

    def read(self):
        _sim.stack_mark()
        mode, pull, out = self.held or (self.mode, self.pull, self.out)
        if mode == Pin.OUT or (mode == Pin.OPEN_DRAIN and not out):
            return out
        if self.ext is not None:
            return self.ext
        return 1 if pull & Pin.PULL_UP else 0

    def sleeping(self):
        # The pad's level through deep sleep: what a hold latched (a held input: its pull),
        # else None: the digital domain is off and the pad floats.
        if not self.held:
            return None
        mode, pull, out = self.held
        if mode == Pin.OUT or (mode == Pin.OPEN_DRAIN and not out):
            return out
        return 1 if pull & Pin.PULL_UP else 0 if pull & Pin.PULL_DOWN else None

    def update(self, wait=False, ago_us=0):
        old = self.level
        new = self.level = self.read()
        if new == old:
            return
        if (self.held or (self.mode,))[0] in (Pin.OUT, Pin.OPEN_DRAIN):
            # Every edge, formatted by hand: bit-banged lines make many.
            _sim.send_raw(b'{"event": "pin", "pin": %d, "value": %d, "t_us": %d}\n'
                         % (self.n, new, _simclock.now_us()))
            watching = _models.watchers(self.n)
            if watching:
                for m in watching:
                    m.on_pin(self.n, new)
        if self.handler is not None and self.trigger & (Pin.IRQ_RISING if new else Pin.IRQ_FALLING):
            _raise_irq(self.handler, self.pin, wait, ago_us)


_gpios = {}


def _gpio(n):
    g = _gpios.get(n)
    if g is None:
        g = _gpios[n] = _GPIO(n)
        g.level = g.read()
    return g


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __new__(cls, id, *args, **kw):
        # One object per GPIO, as the port's static pin table.
        if isinstance(id, Pin):
            id = id._g.n
        if not isinstance(id, int) or not 0 <= id < 40 or id in _MISSING_GPIOS:
            raise ValueError("invalid pin")
        g = _gpio(id)
        if g.pin is None or type(g.pin) is not cls:
            g.pin = object.__new__(cls)
            g.pin._g = g
        return g.pin

    def __init__(self, id, mode=None, pull=-1, *, value=None, drive=None, hold=None):
        if mode is not None or pull != -1 or (value, drive, hold) != (None, None, None):
            self.init(mode, pull, value=value, drive=drive, hold=hold)

    def init(self, mode=None, pull=-1, *, value=None, drive=None, hold=None):
        g = self._g
        _pads.take(g.n)  # a pad the EMAC held is the GPIO's now (Ethernet stops)
        if value is not None:
            g.out = 1 if value else 0
        if mode is not None:
            if g.n >= _FIRST_INPUT_ONLY and mode & 2:
                raise ValueError("pin can only be input")
            g.mode = mode
        if pull != -1:
            g.pull = pull or 0
        if hold is not None and g.n < _FIRST_INPUT_ONLY:
            # gpio_hold_dis applies what was set meanwhile; gpio_hold_en latches the pad
            g.held = (g.mode, g.pull, g.out) if hold else None
            _save_holds()
        g.update()

    def __repr__(self):
        return "Pin(%u)" % self._g.n

    def __call__(self, x=None):
        return self.value(x)

    def value(self, x=None):
        _sim.stack_mark()
        g = self._g
        if x is None:
            return g.read()
        g.out = 1 if x else 0
        g.update()

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._g.out)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, wake=None):
        g = self._g
        if handler is None:
            trigger = 0
        g.handler = handler
        g.trigger = trigger
        g.pin = self
        if handler is not None and g.n in _ERRATA_GPIOS:
            _beacon_glitches()
        return _PinIRQ(g)

    @staticmethod
    def _drive(n, value, wait=False, ago_us=0):
        # An outside level on a GPIO (host or model) since ago_us (device time); an edge
        # fires the IRQ.
        g = _gpio(n)
        g.ext = None if value is None else (1 if value else 0)
        g.update(wait, ago_us)

    @staticmethod
    def _level(n):
        return _gpio(n).read()


class _PinIRQ:
    def __init__(self, g):
        self._g = g

    def __call__(self):
        if self._g.handler is not None:
            _raise_irq(self._g.handler, self._g.pin)

    def trigger(self, trigger=None):
        old = self._g.trigger
        if trigger is not None:
            self._g.trigger = trigger
        return old


def time_pulse_us(pin, pulse_level, timeout_us=1000000):
    start = _time.ticks_us()
    while pin.value() == pulse_level:
        if _time.ticks_diff(_time.ticks_us(), start) >= timeout_us:
            return -2
    while pin.value() != pulse_level:
        if _time.ticks_diff(_time.ticks_us(), start) >= timeout_us:
            return -2
    start = _time.ticks_us()
    while pin.value() == pulse_level:
        if _time.ticks_diff(_time.ticks_us(), start) >= timeout_us:
            return -1
    return _time.ticks_diff(_time.ticks_us(), start)


class Signal:
    def __init__(self, pin, *args, invert=False, **kw):
        self._pin = pin if isinstance(pin, Pin) and not (args or kw) else Pin(pin, *args, **kw)
        self._invert = 1 if invert else 0

    def value(self, x=None):
        _sim.stack_mark()
        if x is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if x else 0) ^ self._invert)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


# --- ADC --------------------------------------------------------------------------------

_ADC_PINS = (32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27)
_ADC_FULL_MV = (950, 1250, 1750, 3100)  # by attenuation, as the calibration reaches


class ADC:
    # The voltage on the pin comes from a model on "pins" (_sim.models.PinModel.voltage).
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12

    _attens = {}

    def __init__(self, pin, *, atten=-1):
        n = _pin_id(pin)
        if n not in _ADC_PINS:
            raise ValueError("invalid pin")
        self._n = n
        self._width = 12
        self.init(atten=atten)

    def init(self, *, atten=-1):
        if atten != -1:
            self.atten(atten)
        elif self._n not in ADC._attens:
            ADC._attens[self._n] = 0

    def __repr__(self):
        return "ADC(Pin(%u), atten=%u)" % (self._n, ADC._attens[self._n])

    def atten(self, atten):
        if not 0 <= atten <= 3:
            raise ValueError("invalid atten")
        ADC._attens[self._n] = atten

    def width(self, bits):
        if not 9 <= bits <= 12:
            raise ValueError("invalid bits")
        self._width = bits

    def block(self):
        return None

    def _raw12(self):
        _sim.stack_mark()
        _errata_glitch()  # the SAR ADC powering up (every conversion)
        full = _ADC_FULL_MV[ADC._attens[self._n]] * 1000
        uv = _models.voltage_at(self._n)
        return max(0, min(4095, uv * 4095 // full))

    def read(self):
        _sim.stack_mark()
        return self._raw12() >> (12 - self._width)

    def read_u16(self):
        raw = self._raw12()
        return raw << 4 | raw >> 8

    def read_uv(self):
        return self._raw12() * _ADC_FULL_MV[ADC._attens[self._n]] * 1000 // 4095


# --- Timer ------------------------------------------------------------------------------


class Timer:
    # ESP32 hardware timers 0..3; callbacks are soft (scheduled), on the device clock.
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        if not 0 <= id < 4:
            raise ValueError("invalid Timer number")
        self._id = id
        self._run = None
        if kw:
            self.init(**kw)

    def __repr__(self):
        return "Timer(%d)" % self._id

    def init(self, *, mode=PERIODIC, callback=None, period=-1, tick_hz=1000, freq=None):
        self.deinit()
        if freq is not None:
            period_ms = 1000 / freq
        else:
            period_ms = period * 1000 / tick_hz
        run = self._run = [True]
        self._start = _time.ticks_ms()
        _thread.start_new_thread(self._tick, (run, mode, callback, max(period_ms, 1)))

    def _tick(self, run, mode, callback, period_ms):
        due = _time.ticks_add(_time.ticks_us(), int(period_ms * 1000))
        while run[0]:
            left = _time.ticks_diff(due, _time.ticks_us())
            if left > 0:
                _simclock.sleep_us(left)  # a walk stops on the tick
                continue
            if callback is not None and run[0]:
                _raise_irq(callback, self, True)
            if mode == Timer.ONE_SHOT:
                return
            due = _time.ticks_add(due, int(period_ms * 1000))

    def deinit(self):
        if self._run:
            self._run[0] = False
            self._run = None

    def value(self):
        _sim.stack_mark()
        return _time.ticks_diff(_time.ticks_ms(), self._start) if self._run else 0


# --- I2C --------------------------------------------------------------------------------


def _pin_id(p):
    return p._g.n if isinstance(p, Pin) else Pin(p)._g.n


class SoftI2C:
    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        self._names = ("i2c@%d,%d" % (_pin_id(scl), _pin_id(sda)),)
        self._freq = freq
        self._timeout = timeout

    def init(self, *, scl, sda, freq=400000, timeout=50000):
        self.__init__(scl, sda, freq=freq, timeout=timeout)

    def _target(self, addr):
        for name in self._names:
            bus = _models.buses.get(name)
            if bus:
                m = bus.get(addr)
                if m is not None and m.stuck:
                    raise OSError(_ETIMEDOUT)
                if m is not None and m.present:
                    return m
        raise OSError(_ENODEV)

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            try:
                self._target(addr)
                found.append(addr)
            except OSError:
                pass
        return found

    def readfrom_into(self, addr, buf, stop=True):
        _sim.stack_mark()
        data = self._target(addr).read(len(buf))
        buf[:] = data

    def readfrom(self, addr, nbytes, stop=True):
        _sim.stack_mark()
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def writeto(self, addr, buf, stop=True):
        _sim.stack_mark()
        self._target(addr).write(bytes(buf))
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        _sim.stack_mark()
        return self.writeto(addr, b"".join(bytes(b) for b in vector), stop)

    @staticmethod
    def _memaddr(memaddr, addrsize):
        if addrsize < 8 or addrsize > 32 or addrsize % 8:
            raise ValueError("invalid addrsize")
        n = addrsize // 8
        return bytes((memaddr >> (8 * (n - 1 - i))) & 0xFF for i in range(n))

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        _sim.stack_mark()
        m = self._target(addr)
        m.write(self._memaddr(memaddr, addrsize))
        buf[:] = m.read(len(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        _sim.stack_mark()
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        _sim.stack_mark()
        self._target(addr).write(self._memaddr(memaddr, addrsize) + bytes(buf))


_I2C_PINS = ((18, 19), (25, 26))  # ESP32 defaults (scl, sda) of I2C(0) and I2C(1)


class I2C(SoftI2C):
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        if not 0 <= id < 2:
            raise ValueError("I2C(%d) doesn't exist" % id)
        pins = _I2C_PINS[id]
        scl = pins[0] if scl is None else _pin_id(scl)
        sda = pins[1] if sda is None else _pin_id(sda)
        self._id = id
        self._scl = scl
        self._sda = sda
        self._names = ("i2c%d" % id, "i2c@%d,%d" % (scl, sda))
        self._freq = freq
        self._timeout = timeout
        if _pads.take(scl) + _pads.take(sda):
            self._names = ()  # the pads lead to the PHY: no device of ours answers

    def __repr__(self):
        return "I2C(%d, scl=%d, sda=%d, freq=%d, timeout=%d)" % (
            self._id, self._scl, self._sda, self._freq, self._timeout)

    def init(self, *args):
        # The hardware I2C's protocol has no init (extmod/machine_i2c.c:machine_i2c_init).
        raise OSError("I2C operation not supported")


# --- UART -------------------------------------------------------------------------------


class UART(_io.IOBase):
    INV_TX = 1
    INV_RX = 4
    INV_RTS = 2
    INV_CTS = 8
    RTS = 1
    CTS = 2

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, **kw):
        if not 0 <= id < 3:
            raise ValueError("UART(%d) does not exist" % id)
        self._id = id
        self._timeout = 0
        self._timeout_char = 0
        self.init(baudrate, bits, parity, stop, **kw)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None,
             rts=None, cts=None, txbuf=None, rxbuf=None, timeout=None, timeout_char=None,
             invert=None, flow=None):
        self._baudrate = baudrate
        for n in (tx, rx, rts, cts):
            if n is not None and _pads.take(_pin_id(n)):
                self._cut = True  # the pads lead to the PHY: nothing of ours on the line
        if timeout is not None:
            self._timeout = timeout
        if timeout_char is not None:
            self._timeout_char = timeout_char

    def deinit(self):
        pass

    def __repr__(self):
        return "UART(%d, baudrate=%d, timeout=%d)" % (self._id, self._baudrate, self._timeout)

    _cut = False

    def _peer(self):
        return None if self._cut else _models.buses.get("uart%d" % self._id)

    def _rx(self):
        m = self._peer()
        return m.rx if m is not None else None

    def any(self):
        rx = self._rx()
        return len(rx) if rx else 0

    def _wait(self, n):
        # uart_read_bytes: wait up to `timeout` ms (device time) for n bytes.
        if self._timeout:
            start = _time.ticks_ms()
            while self.any() < n and _time.ticks_diff(_time.ticks_ms(), start) < self._timeout:
                _time.sleep_ms(1)
        return self.any()

    def readinto(self, buf, nbytes=None):
        _sim.stack_mark()
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if n == 0:
            return 0
        have = min(self._wait(n), n)
        if not have:
            return None
        rx = self._rx()
        buf[:have] = rx[:have]
        rx[:have] = b""
        return have

    def read(self, nbytes=None):
        _sim.stack_mark()
        if nbytes is None:
            if not self._wait(1):
                return None
            rx = self._rx()
            data = bytes(rx)
            rx[:] = b""
            return data
        buf = bytearray(nbytes)
        n = self.readinto(buf)
        return None if n is None else bytes(buf[:n])

    def readline(self):
        _sim.stack_mark()
        line = bytearray()
        while True:
            c = self.read(1)
            if c is None:
                return bytes(line) if line else None
            line.extend(c)
            if c == b"\n":
                return bytes(line)

    def write(self, buf):
        _sim.stack_mark()
        data = bytes(buf)
        m = self._peer()
        if m is not None:
            m.write(data)
        return len(data)

    def flush(self):
        pass

    def txdone(self):
        return True

    def sendbreak(self):
        pass

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            ready = arg & _POLL_WR
            if arg & _POLL_RD and self.any():
                ready |= _POLL_RD
            return ready
        return 0


# --- resets, sleep, clocks --------------------------------------------------------------

_freq = 160000000


def freq(*hz):
    # extmod/modmachine.c:machine_freq (at most one positional argument, no keywords), then
    # ports/esp32/modmachine.c:mp_machine_set_freq: the whole MHz, as C divides
    global _freq
    if len(hz) > 1:
        raise TypeError("function expected at most 1 arguments, got %d" % len(hz))
    if not hz:
        return _freq
    n = _sim.get_int(hz[0])
    mhz = n // 1000000 if n >= 0 else -(-n // 1000000)
    if mhz not in (20, 40, 80, 160, 240):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq = mhz * 1000000
    _simcost.freq(_freq)  # the VM's work costs what it does at this clock (simcost.c)


def unique_id():
    return _sim.mac()


def reset():
    _sim.exit(_sim.EXIT_RESET, "reset")


def soft_reset():
    _sim.exit(_sim.EXIT_SOFT, "soft_reset")


def reset_cause():
    return _sim.BOOT["reset_cause"]


def wake_reason():
    return _sim.BOOT["wake_reason"]


def idle():
    _umachine.idle()


def lightsleep(time_ms=None):
    if time_ms is None:
        while True:
            _time.sleep_ms(1000)
    _simclock.advance(time_ms)


sleep = lightsleep


def deepsleep(time_ms=None):
    if not _hold_state["sleep"]:
        # Non-RTC pads are disconnected in deep sleep unless esp32.gpio_deep_sleep_hold(True)
        for n, g in _gpios.items():
            if g.held and n not in _RTC_GPIOS:
                g.held = None
        _save_holds()
    _sim.write_file("run/deepsleep.json", ('{"ms": %s}' % ("null" if time_ms is None else int(time_ms))).encode())
    _report_sleep(time_ms)
    _sim.exit(_sim.EXIT_DEEPSLEEP, "deepsleep")


def _report_sleep(time_ms):
    # What the board draws while asleep: each chip's current (its model's sleep_ua) with
    # the pads it watches as deep sleep leaves them; and how long this wake lasted, the
    # radio on for radio_ms of it (for a battery's budget).
    import sys

    pads = {}
    for n in _models.watched():
        pads[n] = _gpio(n).sleeping()
    ua = {}
    for m in _models.by_name.values():
        if hasattr(m, "sleep_ua"):
            ua[m.name] = m.sleep_ua(pads)
    nw = sys.modules.get("network")
    _sim.emit("sleep", ms=time_ms, pads={str(n): v for n, v in pads.items()}, ua=ua,
              stack_high=_sim.stack_high, stack_base=_sim.stack_base,
              stack_own=_simstack.high(),
              awake_ms=_time.ticks_diff(_time.ticks_ms(), _BOOT_MS),
              radio_ms=nw._radio_ms() if nw else 0)


_BOOT_MS = _time.ticks_ms()  # imported at boot (sim/_sim_start)


class WDT:
    # ESP32: the task watchdog; once started it cannot be stopped. It counts device time
    # (simclock.c decides when it bites: only where the firmware had its turn to feed); a
    # thread waits for the bite and resets the device (EXIT_WDT).
    _started = False

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _simclock.wdt(timeout)
        if not WDT._started:
            WDT._started = True
            _thread.start_new_thread(WDT._watch, ())

    def feed(self):
        _simclock.feed()

    @staticmethod
    def _watch():
        WDT._reset(_simclock.wdt_wait())

    @staticmethod
    def _reset(t_ms):
        print("E (%d) task_wdt: Task watchdog got triggered." % t_ms)
        _sim.exit(_sim.EXIT_WDT, "wdt")


class RTC:
    # ports/esp32/machine_rtc.c: the date and time are the device's wall clock (_simrtc:
    # 2000-01-01 at power-on, kept through every reset but a power cycle); the memory is
    # rtc.bin in the device folder.
    def __init__(self):
        pass

    def init(self, datetime):
        _simrtc.datetime(3, datetime)

    def datetime(self, *datetime):
        return _simrtc.datetime(4, *datetime)

    def memory(self, data=None):
        if data is None:
            return _sim.read_file("rtc.bin", b"")
        if len(data) > 2048:
            raise ValueError("buffer too long")
        _sim.write_file("rtc.bin", bytes(data))


# --- ESP32 errata 3.11 --------------------------------------------------------------------
# "When certain RTC peripherals are powered on, the inputs of GPIO36 and GPIO39 will be
# pulled down for approximately 80 ns" (ESP32 Series SoC Errata; ESP-IDF's gpio.h: no
# interrupts on them with the ADC or Wi-Fi with sleep on): each SAR ADC conversion, and
# with WiFi modem sleep (the default `pm`) each beacon the radio wakes for (102.4 ms). A
# high input on them falls and rises again: an interrupt on either edge.
_ERRATA_GPIOS = (36, 39)
_BEACON_US = const(102400)
_glitching = False


def _errata_glitch(edge=None, t_us=0):
    # edge: sim.ctl._edge for a world thread (it waits for the VM as the world does)
    for n in _ERRATA_GPIOS:
        g = _gpios.get(n)
        if g is not None and g.handler is not None and g.read() == 1:
            ext = g.ext
            if edge is None:
                Pin._drive(n, 0)
                Pin._drive(n, ext)
            else:
                edge(Pin._drive, n, 0, t_us)
                edge(Pin._drive, n, ext, t_us)


def _beacon_glitches():
    # A thread while an IRQ watches GPIO 36 or 39: glitches at each beacon while the
    # station is active with modem sleep.
    global _glitching
    if not _glitching:
        _glitching = True
        _thread.start_new_thread(_beacons, ())


def _beacons():
    import sys
    from sim import ctl

    t = _time.ticks_us()
    while True:
        t = _time.ticks_add(t, _BEACON_US)
        ctl._wait_until(t)
        network = sys.modules.get("network")
        sta = network and network.WLAN._interfaces.get(network.STA_IF)
        if sta and sta._active and sta._config.get("pm") != network.WLAN.PM_NONE:
            _errata_glitch(ctl._edge, t)


# --- pad hold ---------------------------------------------------------------------------
# gpio_hold_en latches a pad in the RTC domain: it outlives every reset but a power cycle
# (the host removes hold.json then), and deep sleep for RTC GPIOs, or for all with
# esp32.gpio_deep_sleep_hold(True).


def _load_holds():
    data = _sim.read_file("hold.json")
    return _json.loads(data) if data else {"pins": {}, "sleep": False}


def _save_holds():
    _hold_state["pins"] = {str(n): list(g.held) for n, g in _gpios.items() if g.held}
    _sim.write_file("hold.json", _json.dumps(_hold_state).encode())


def _deep_sleep_hold(enable):
    _hold_state["sleep"] = bool(enable)
    _save_holds()


_hold_state = _load_holds()
for _n, _pad in _hold_state["pins"].items():
    _g = _gpio(int(_n))
    _g.held = tuple(_pad)
    _g.level = _g.read()


# GPIO registers for register-level bit-banging (modules/third/shiftreg.py), on the pins above.
from sim.gpioreg import mem32
