# Avia HX711 load-cell ADC on two GPIOs, clocked by the firmware's SCK pulses. A conversion
# is ready (DOUT low) every 1/rate s; the 24 rising edges that follow shift it out MSB first,
# the 25th pulls DOUT high again, and 25/26/27 pulses in all choose gain 128/32/64 for the
# next one. SCK high for longer than powerdown_us powers the chip down; taking SCK low again
# powers it up with gain 128 and a settling time of 4 conversions. Through the ESP32's deep
# sleep it draws its operating current unless SCK stays high (a held pad): a floating SCK
# does not power it down (datasheet: operating < 1.5 mA, power-down < 1 uA).
import _thread
import time
import _simclock
import sim
from sim import models
from sim.models import PinModel

GAINS = {25: 128, 26: 32, 27: 64}
ACTIVE_UA = const(1500)
POWERDOWN_UA = const(1)


class HX711(PinModel):
    def __init__(self, dout, sck, value=0, rate=10, powerdown_us=60, **args):
        super().__init__(**args)
        self.dout = dout
        self.sck = sck
        self.values = {128: value, 64: value, 32: value}  # what each gain converts to
        self.period_ms = 1000 // rate
        self.powerdown_us = powerdown_us
        self.gain = 128
        self.next_gain = 128
        self.reads = 0  # complete reads
        self.bad_reads = 0  # transfers with a pulse count other than 25, 26 or 27
        self.stuck = False  # never becomes ready (a broken chip or wire)
        self._running = True
        self._pulses = 0
        self._word = 0
        self._high_at = 0
        self._ready_at = None
        self._lock = _thread.allocate_lock()
        self.watch(sck)
        self.drive(dout, 1)
        self._convert(4)
        _thread.start_new_thread(self._run, ())

    # --- host side --------------------------------------------------------------------

    def set(self, value, gain=None):
        """The raw code a conversion yields (signed 24-bit), for one gain or all."""
        for g in (gain,) if gain else (128, 64, 32):
            self.values[g] = value
        self._keep()

    def set_stuck(self, flag=True):
        self.stuck = flag
        if flag:
            self.drive(self.dout, 1)
        self._keep()

    def _keep(self):
        # The load on the cell outlives the ESP32's resets (the host keeps the state).
        if getattr(self, "name", None):
            self.save({"values": [self.values[128], self.values[64], self.values[32]],
                       "stuck": self.stuck})

    def restore(self, state):
        v = state.get("values")
        if v:
            self.values = {128: v[0], 64: v[1], 32: v[2]}
        self.stuck = bool(state.get("stuck"))
        if self.stuck:
            self.drive(self.dout, 1)

    def detach(self):
        """Off the board: stop watching SCK and driving DOUT."""
        self._running = False
        w = models.watchers(self.sck)
        if w and self in w:
            w.remove(self)
        self.drive(self.dout, None)

    def sleep_ua(self, pads):
        return POWERDOWN_UA if pads.get(self.sck) == 1 else ACTIVE_UA

    def stats(self):
        return {"reads": self.reads, "bad_reads": self.bad_reads,
                "gain": self.gain}

    # --- conversions --------------------------------------------------------------------

    def _convert(self, periods=1):
        with self._lock:
            self._ready_at = time.ticks_add(time.ticks_ms(), periods * self.period_ms)

    def _run(self):
        # The conversion clock: DOUT falls when a conversion is done (device time).
        while self._running:
            with self._lock:
                at = self._ready_at
                due = at is not None and time.ticks_diff(time.ticks_ms(), at) >= 0
                if due:
                    self._ready_at = None
            if due and not self.stuck and self._running:
                self._pulses = 0
                self.drive(self.dout, 0)
            # On the device clock (a walk stops here): the conversion asked for, else the
            # next of the chip's own, one a period.
            left = time.ticks_diff(at, time.ticks_ms()) if at is not None and not due else self.period_ms
            _simclock.sleep_us(max(1, left) * 1000)

    def on_pin(self, pin, value):
        now = _simclock.now_us()
        if value:
            self._high_at = now
            n = self._pulses
            if n == 0:  # the chip keeps converting while unread: the latest value
                v = max(-0x800000, min(0x7FFFFF, self.values[self.gain]))
                self._word = v & 0xFFFFFF
            if n < 24:
                self.drive(self.dout, self._word >> (23 - n) & 1)
            elif n == 24:
                self.drive(self.dout, 1)
            self._pulses = n + 1
            if self._pulses in GAINS:
                self.next_gain = GAINS[self._pulses]
            if self._pulses == 25:
                self.reads += 1
                self.gain = self.next_gain
                self._convert()
            elif self._pulses in (26, 27):
                self.gain = self.next_gain
            elif self._pulses > 27:
                self.bad_reads += 1
        elif now - self._high_at > self.powerdown_us:
            # It powered down while SCK was high; SCK low powers it up: gain 128, settling.
            self.drive(self.dout, 1)
            self.gain = self.next_gain = 128
            self._pulses = 0
            self._convert(4)
