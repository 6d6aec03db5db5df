# PZEM-004T v3.0: a Modbus-RTU slave on a UART. Its energy counter integrates the power
# over device time, as the meter does. Faults: "silent" (no answer), "badcrc" (answers with
# a corrupt CRC), "short" (answers half a frame), "noreset" (ignores energy resets), None.
import time
from sim.models import UARTModel

GENERAL = 0xF8


def crc16(buf):
    crc = 0xFFFF
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body):
    crc = crc16(body)
    return bytes(body) + bytes((crc & 0xFF, crc >> 8))


class PZEM(UARTModel):
    def __init__(self, address=1, voltage=230.0, current=0.0, power=0.0, energy=0,
                 frequency=50.0, pf=1.0, alarm=0, **args):
        super().__init__(**args)
        self.address = address
        self.voltage = voltage
        self.current = current
        self.power = power
        self._wh = float(energy)
        self.frequency = frequency
        self.pf = pf
        self.alarm = alarm
        self.fault = None
        self.requests = 0  # frames addressed to this meter with a good CRC
        self.resets = 0
        self._t = time.ticks_ms()
        self._saved = self._t

    def restore(self, state):
        self._wh = float(state.get("energy", 0))
        for k in ("voltage", "current", "power", "frequency", "pf", "alarm"):
            if k in state:
                setattr(self, k, state[k])

    def _keep(self):
        # The meter's counter and load outlive the ESP32's resets: the host keeps them.
        self._saved = self._t
        if getattr(self, "name", None):
            self.save({"energy": self._wh, "voltage": self.voltage, "current": self.current,
                       "power": self.power, "frequency": self.frequency, "pf": self.pf,
                       "alarm": self.alarm})

    def _integrate(self):
        now = time.ticks_ms()
        self._wh += self.power * time.ticks_diff(now, self._t) / 3600000
        self._t = now
        if time.ticks_diff(now, self._saved) >= 10000:
            self._keep()

    # --- host side (model.call) ---------------------------------------------------------

    def set(self, **values):
        """Readings: voltage, current, power, energy, frequency, pf, alarm."""
        self._integrate()
        for k, v in values.items():
            if k == "energy":
                self._wh = float(v)
            elif k in ("voltage", "current", "power", "frequency", "pf", "alarm", "address"):
                setattr(self, k, v)
            else:
                raise ValueError("PZEM has no %r" % k)
        self._keep()

    def set_fault(self, fault=None):
        if fault not in (None, "silent", "badcrc", "short", "noreset"):
            raise ValueError("fault: None, silent, badcrc, short or noreset")
        self.fault = fault

    def energy(self):
        self._integrate()
        return int(self._wh)

    def stats(self):
        return {"requests": self.requests, "resets": self.resets}

    # --- the wire -----------------------------------------------------------------------

    def write(self, buf):
        buf = bytes(buf)
        if len(buf) < 4 or crc16(buf[:-2]) != buf[-2] | buf[-1] << 8:
            return  # a slave ignores a frame it cannot trust
        if buf[0] not in (self.address, GENERAL):
            return
        self.requests += 1
        if buf[1] == 0x42 and self.fault == "noreset":
            return
        answer = self._answer(buf[1], buf[2:-2])
        if self.fault == "silent":
            return
        frame = with_crc(bytes((self.address,)) + answer)
        if self.fault == "badcrc":
            frame = frame[:-1] + bytes((frame[-1] ^ 0x55,))
        elif self.fault == "short":
            frame = frame[:len(frame) // 2]
        self.reply(frame)

    def _answer(self, func, data):
        if func == 0x42:
            self._integrate()
            self._wh = 0.0
            self.resets += 1
            self._keep()
            return b"\x42"
        if func not in (0x03, 0x04) or len(data) != 4:
            return bytes((func | 0x80, 0x01))  # illegal function
        reg = data[0] << 8 | data[1]
        count = data[2] << 8 | data[3]
        regs = self._input_registers() if func == 0x04 else self._holding_registers()
        if count < 1 or reg + count > len(regs):
            return bytes((func | 0x80, 0x02))  # illegal address
        out = bytearray((func, 2 * count))
        for r in regs[reg:reg + count]:
            out.append(r >> 8)
            out.append(r & 0xFF)
        return out

    def _input_registers(self):
        self._integrate()
        amps = round(self.current * 1000)
        deciwatts = round(self.power * 10)
        wh = int(self._wh)
        return [round(self.voltage * 10), amps & 0xFFFF, amps >> 16, deciwatts & 0xFFFF,
                deciwatts >> 16, wh & 0xFFFF, wh >> 16, round(self.frequency * 10),
                round(self.pf * 100), self.alarm]

    def _holding_registers(self):
        return [0, 23000, self.address, 0]  # -, power alarm threshold (0.1 W), address, -
