# The sensor's message numbers: they must grow for ever, or the manager refuses them as
# replays. The count lives in RTC memory (it survives deep sleep, which is every cycle);
# a power cycle clears RTC memory, so the number's high part is an epoch in NVS, bumped
# then (rarely: NVS is written on power-up only, not at each wake). RTC memory's first
# 4 bytes are epx.app's; the record follows them.
import struct
from machine import PWRON_RESET, RTC, reset_cause
from micropython import const

_APP = const(4)
_MAGIC = b"SEQ1"
_COUNT_BITS = const(16)
_COUNT_MAX = const(0xFFFF)
_EPOCH_MAX = const(0x7FFF)  # numbers stay below 2**31 (NVS i32 at the manager)


class Sequence:
    def __init__(self, nv):
        self._nv = nv
        self._rtc = RTC()
        data = self._rtc.memory()
        if reset_cause() != PWRON_RESET and len(data) >= _APP + 12 and \
                data[_APP:_APP + 4] == _MAGIC:
            self.epoch, self.count = struct.unpack_from("<II", data, _APP + 4)
        else:
            self._new_epoch()

    def _new_epoch(self):
        epoch = (self._nv.get_int("epoch", -1) + 1) & _EPOCH_MAX
        self._nv.set_int("epoch", epoch)
        self.epoch, self.count = epoch, 0

    def next(self):
        """The number of the next message, already remembered (a crash never reuses it)."""
        if self.count >= _COUNT_MAX:
            self._new_epoch()
        self.count += 1
        app = self._rtc.memory()[:_APP]
        app += bytes(_APP - len(app))
        self._rtc.memory(app + _MAGIC + struct.pack("<II", self.epoch, self.count))
        return self.epoch << _COUNT_BITS | self.count
