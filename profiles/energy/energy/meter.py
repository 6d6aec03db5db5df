# The mains meter: one PZEM exchange per tick (the tick is the reply window), readings,
# and the energy of each hour window. The meter's own counter holds the energy. A window
# closes on a good read of the counter (a failed read postpones the close); the counter is
# reset only in the same breath as a good read, and what it held then is carried over, so
# a failed reset is simply retried later and no Wh is lost. `base` (the counter value at
# the window's start) is all a reboot needs to resume the window: the owner keeps it (NVS).
import time
from micropython import const
from pzem import PZEMError

START_FAILED = const(1)
RESET_FAILED = const(2)
READ_FAILED = const(4)

_ADDRESS = const(1)
_RESET = const(2)
_READ = const(3)


class Meter:
    def __init__(self, pzem, base=None, window_ms=3600000, restart_ms=600000,
                 reset_retry_ms=10000):
        self._pzem = pzem
        self._window_ms = window_ms
        self._restart_ms = restart_ms
        self._reset_retry_ms = reset_retry_ms
        self._job = 0  # what the request on the wire is
        self._started = False
        self._start_at = time.ticks_ms()
        # Without a kept base, the counter is zeroed at start (as the original did).
        self._reset_due = base is None
        self._reset_at = self._start_at
        self._base = base  # counter value at the window's start; None: the next reading's
        self._at_reset = 0  # the counter read just before the reset request
        self._window_end = None
        self.malfunction = 0
        self.fresh = False  # the readings below come from the last tick's reply
        self.window_wh = None  # energy of the last closed window
        self.windows = 0  # windows closed since boot
        self.error = None  # text of the last failure

    @property
    def pzem(self):
        return self._pzem

    @property
    def base(self):
        return self._base

    def tick(self):
        """Call once per reply window (1 s): collect the last reply, send the next request."""
        now = time.ticks_ms()
        job = self._job
        read = job != 0 and self._collect(now) and job == _READ
        if not self._started:
            if time.ticks_diff(now, self._start_at) >= 0:
                self._send(_ADDRESS)
        elif read and self._reset_due and time.ticks_diff(now, self._reset_at) >= 0:
            self._at_reset = self._pzem.energy
            self._send(_RESET)
        else:
            self._send(_READ)

    def _send(self, job):
        self._job = job
        p = self._pzem
        if job == _ADDRESS:
            p.request_address()
        elif job == _RESET:
            p.request_reset()
        else:
            p.request_readings()

    def _collect(self, now):
        job = self._job
        self._job = 0
        p = self._pzem
        try:
            if not p.poll():
                p.expire()
        except PZEMError as e:
            self.error = "%s: %s" % (("address", "reset", "read")[job - 1], e)
            self._failed(job, now)
            return False
        self.error = None
        if job == _ADDRESS:
            self._started = True
            self._reset_at = now
            self._window_end = time.ticks_add(now, self._window_ms)
            self.malfunction &= ~START_FAILED
        elif job == _RESET:
            self._reset_due = False
            self._base -= self._at_reset
            self.malfunction &= ~RESET_FAILED
        else:
            self.fresh = True
            self.malfunction &= ~READ_FAILED
            self._account(p.energy, now)
        return True

    def _failed(self, job, now):
        if job == _ADDRESS:
            self.malfunction |= START_FAILED
            self._start_at = time.ticks_add(now, self._restart_ms)
        elif job == _RESET:
            self.malfunction |= RESET_FAILED
            self._reset_at = time.ticks_add(now, self._reset_retry_ms)
        else:
            self.fresh = False
            self.malfunction |= READ_FAILED

    def _account(self, counter, now):
        if self._base is None:
            self._base = counter
        elif counter < self._base:
            self._base = 0  # the meter was zeroed behind our back
        if time.ticks_diff(now, self._window_end) >= 0:
            self.window_wh = counter - self._base
            self.windows += 1
            self._base = counter
            self._window_end = time.ticks_add(self._window_end, self._window_ms)
            if time.ticks_diff(now, self._window_end) >= 0:
                self._window_end = time.ticks_add(now, self._window_ms)
            self._reset_due = True
            self._reset_at = now

    def window_left_ms(self):
        """Device ms until the open window closes, None before the start."""
        if self._window_end is None:
            return None
        return time.ticks_diff(self._window_end, time.ticks_ms())

    def end_window_in(self, ms):
        """Close the open window ms from now (the owner's clock hour), and each later one
        a window's length after."""
        if self._window_end is not None:
            self._window_end = time.ticks_add(time.ticks_ms(), ms)

    def reading(self, name):
        """A reading of the last tick, or None when it failed or the meter is in Malfunction
        (nothing stale or doubtful is published)."""
        return getattr(self._pzem, name) if self.fresh and not self.malfunction else None
