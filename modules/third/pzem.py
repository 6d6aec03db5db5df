# PZEM-004T v3.0 mains meter: Modbus-RTU over a UART at 9600 8N1.
# Never blocks: request_*() sends a frame, poll() later picks up the reply, so the caller's
# timer decides how long the reply window is (the original waited 1 s).
from micropython import const

GENERAL = const(0xF8)  # the address every PZEM answers to (one meter per bus)

_READ_HOLDING = const(0x03)
_READ_INPUT = const(0x04)
_RESET_ENERGY = const(0x42)
_ERROR = const(0x80)
_REG_ADDRESS = const(0x0002)
_INPUT_REGS = const(10)
_MAX_FRAME = const(25)  # 10 input registers: address, function, count, 20 bytes, CRC


class PZEMError(Exception):
    pass


def crc16(buf, n):
    """Modbus CRC-16 (polynomial 0xA001 reflected, start 0xFFFF) of buf[:n]."""
    crc = 0xFFFF
    for i in range(n):
        crc ^= buf[i]
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(buf, n):
    """Append the CRC (low byte first) to buf[:n]; the frame length."""
    crc = crc16(buf, n)
    buf[n] = crc & 0xFF
    buf[n + 1] = crc >> 8
    return n + 2


class PZEM:
    """Readings after a successful poll() of request_readings(): voltage (V), current (A),
    power (W), energy (Wh, the meter's counter), frequency (Hz), pf, alarm."""

    def __init__(self, uart, addr=GENERAL):
        self._uart = uart
        self._addr = addr
        self._tx = bytearray(8)
        self._rx = bytearray(_MAX_FRAME)
        self._mv = memoryview(self._rx)
        self._func = 0  # the function of the request awaiting its reply; 0: none
        self._want = 0
        self._got = 0
        self.address = None
        self.voltage = self.current = self.power = self.energy = None
        self.frequency = self.pf = self.alarm = None

    @property
    def pending(self):
        return self._func != 0

    def request_readings(self):
        self._request(_READ_INPUT, 0, _INPUT_REGS)

    def request_address(self):
        self._request(_READ_HOLDING, _REG_ADDRESS, 1)

    def request_reset(self):
        """Zero the energy counter."""
        tx = self._tx
        tx[0] = self._addr
        tx[1] = _RESET_ENERGY
        self._send(frame(tx, 2), _RESET_ENERGY, 4)

    def _request(self, func, reg, count):
        tx = self._tx
        tx[0] = self._addr
        tx[1] = func
        tx[2] = reg >> 8
        tx[3] = reg & 0xFF
        tx[4] = count >> 8
        tx[5] = count & 0xFF
        self._send(frame(tx, 6), func, 5 + 2 * count)

    def _send(self, n, func, want):
        # Bytes still in the buffer belong to an earlier, late reply: they would shift this one.
        uart = self._uart
        while uart.any():
            uart.readinto(self._rx)
        self._func = func
        self._want = want
        self._got = 0
        uart.write(self._tx[:n])

    def poll(self):
        """True once the reply is in and parsed, False while it is still coming.
        Raises PZEMError for a reply that is wrong (and forgets the request)."""
        if not self._func:
            raise PZEMError("no request")
        got = self._got
        if self._uart.any():
            n = self._uart.readinto(self._mv[got:self._want])
            if n:
                got += n
                self._got = got
        rx = self._rx
        if got >= 2 and rx[1] & _ERROR and self._want != 5:
            self._want = 5  # an exception reply: address, function | 0x80, code, CRC
        if got < self._want:
            return False
        func = self._func
        self._func = 0
        n = self._want
        if crc16(rx, n - 2) != rx[n - 2] | rx[n - 1] << 8:
            raise PZEMError("bad CRC")
        if self._addr != GENERAL and rx[0] != self._addr:
            raise PZEMError("reply from address %d" % rx[0])
        if rx[1] == func | _ERROR:
            raise PZEMError("exception %d" % rx[2])
        if rx[1] != func:
            raise PZEMError("reply to function %d" % rx[1])
        if func == _READ_INPUT:
            self._parse_readings(rx)
        elif func == _READ_HOLDING:
            self.address = rx[4]
        return True

    def expire(self):
        """The reply window is over: raise PZEMError if the reply has not come."""
        if self._func:
            got = self._got
            self._func = 0
            raise PZEMError("short reply" if got else "no reply")

    def _parse_readings(self, rx):
        if rx[2] != 2 * _INPUT_REGS:
            raise PZEMError("reply of %d bytes" % rx[2])

        def reg(i):
            return rx[3 + 2 * i] << 8 | rx[4 + 2 * i]

        self.voltage = reg(0) / 10
        self.current = (reg(1) | reg(2) << 16) / 1000
        self.power = (reg(3) | reg(4) << 16) / 10
        self.energy = reg(5) | reg(6) << 16
        self.frequency = reg(7) / 10
        self.pf = reg(8) / 100
        self.alarm = reg(9)
