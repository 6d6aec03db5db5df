# Fails as the config key `fault` says: `setup` on every boot; `raise` (in a timer), `task`
# (in an asyncio task), `hang` (the loop stops turning), `setuphang` (setup() never
# returns) once (a file remembers); `mayblock` blocks the loop 40 s inside
# watchdog.may_block(60000), `overblock` 60 s inside may_block(20000), `recurse` recurses
# 100 deep (in a timer, once). A file import.fault fails the import itself, on every boot.
import asyncio
from time import ticks_diff, ticks_ms

from epx import config, log, loop, watchdog

FAULTS = ("none", "setup", "raise", "task", "hang", "setuphang", "mayblock", "overblock",
          "recurse")
FAULT = config.key("fault", config.one_of(*FAULTS), "none")


def _once():
    try:
        open("fault.done").close()
        return False
    except OSError:
        with open("fault.done", "w") as f:
            f.write("x")
        return True


def _raise():
    raise RuntimeError("fault injected")


async def _task():
    await asyncio.sleep_ms(1000)
    _raise()


def _recurse(n):
    return 0 if n == 0 else _recurse(n - 1) + 1


def _hang():
    log.info("cfault: hanging")
    while True:
        pass


def _busy(ms):
    t = ticks_ms()
    while ticks_diff(ticks_ms(), t) < ms:
        pass


def _block(ms, allowed):
    log.info("cfault: blocking")
    with watchdog.may_block(allowed):
        _busy(ms)
    log.info("cfault: blocked %d s" % (ms // 1000))


def setup():
    f = FAULT.value
    log.info("cfault setup: %s" % f)
    if f == "setup":
        raise RuntimeError("setup failed")
    if f in ("raise", "task", "hang", "setuphang", "recurse") and not _once():
        return
    if f == "setuphang":
        _hang()
    if f == "raise":
        loop.later(1000, _raise)
    elif f == "task":
        asyncio.create_task(_task())
    elif f == "hang":
        loop.later(1000, _hang)
    elif f == "recurse":
        loop.later(1000, lambda: _recurse(100))
    elif f == "mayblock":
        loop.later(1000, lambda: _block(40000, 60000))
    elif f == "overblock":
        loop.later(1000, lambda: _block(60000, 20000))


# Before config.txt is read: a file says so. Fails on every boot.
try:
    open("import.fault").close()
    raise ImportError("cfault cannot import")
except OSError:
    pass
