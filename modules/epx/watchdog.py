# The hardware watchdog, fed by a loop timer: only a turning loop keeps the chip alive.
# Code that must block (DNS look-up, flash erase) says so with may_block: a thread feeds
# meanwhile, for a bounded time, so a frozen chip still resets.
import _thread
import machine
import select
from time import ticks_add, ticks_diff, ticks_ms

from epx import config, loop

ENABLED = config.key("watchdog", bool, True, "Watchdog||1|The 15 s hardware watchdog; 0: off")

_TIMEOUT_MS = const(15000)
GRACE_MS = const(10000)  # start-up: the loop must turn within GRACE_MS + _TIMEOUT_MS
_MAY_BLOCK_MS = const(120000)
_FEED_MS = const(1000)

_wdt = None
_depth = 0  # nested may_block windows open
_window = 0  # counts windows: a feeder thread stops when its window is over
_until = 0  # the open window's end


def start(grace_ms=GRACE_MS):
    """Arm the watchdog (unless config says `watchdog 0`) and feed it from the loop."""
    global _wdt
    if not ENABLED.value or _wdt is not None:
        return
    _wdt = machine.WDT(timeout=grace_ms + _TIMEOUT_MS)
    loop.every(_FEED_MS, _wdt.feed)
    loop.later(grace_ms, _tighten)


def _tighten():
    machine.WDT(timeout=_TIMEOUT_MS).feed()


class may_block:
    """with may_block(ms): a call that blocks the loop for up to ms. OSError ("can't create
    thread") when the RAM has no room for the feeder's stack: the call is not made."""

    def __init__(self, ms=_MAY_BLOCK_MS):
        self._ms = ms
        self._open = False

    def __enter__(self):
        global _depth, _window, _until
        if _wdt is None:
            return self
        self._open = True
        until = ticks_add(ticks_ms(), self._ms)
        if not _depth or ticks_diff(until, _until) > 0:
            _until = until
        _depth += 1
        _wdt.feed()
        if _depth == 1:
            _window += 1
            try:
                _thread.start_new_thread(_feed_until, (_window,))
            except OSError:  # no RAM for its stack: the window never opened
                _depth -= 1
                self._open = False
                raise
        return self

    def __exit__(self, *exc):
        global _depth, _window
        if not self._open:
            return
        self._open = False
        _depth -= 1
        if not _depth:
            _window += 1
        _wdt.feed()


def _feed_until(window):
    idle = select.poll()  # nothing registered: poll() just waits, releasing the GIL
    while window == _window and ticks_diff(_until, ticks_ms()) > 0:
        _wdt.feed()
        idle.poll(_FEED_MS)
