# The way out: an unhandled exception or a deliberate reboot leaves its reason (and trace)
# on the filesystem, flagged in NVS as not yet reported, then the chip resets.
import gc
import machine
import sys

from epx import log, loop
from epx.nvram import NVRAM

REBOOT_FILE = "reboot.txt"
EXCEPTION_FILE = "exception.txt"
# Bits of NVS epx/unreported: what the next boot reports on stat/<n>/Log.
REBOOT_UNREPORTED = const(1)
EXCEPTION_UNREPORTED = const(2)


def flags():
    return NVRAM("epx").get_int("unreported", 0)


def set_flags(value):
    NVRAM("epx").set_int("unreported", value)


def reboot(reason, unreported=REBOOT_UNREPORTED):
    """Write reason to reboot.txt and reset the chip."""
    try:
        up = loop.uptime_ms() // 1000
        now = log.utc()
        with open(REBOOT_FILE, "w") as f:
            f.write("%s (after %d s%s)\n" % (reason, up, ", at " + now if now else ""))
        set_flags(flags() | unreported)
        print("epx: reboot:", reason)
    except BaseException as e:  # the reset must happen whatever failed
        sys.print_exception(e)
    machine.reset()


def fatal(exc):
    """The crash path: trace to exception.txt, reason to reboot.txt, reset."""
    unreported = REBOOT_UNREPORTED
    reason = "unreadable exception"
    try:
        gc.collect()  # a MemoryError may have left little to write the trace with
        sys.print_exception(exc)
        reason = "%s: %s" % (type(exc).__name__, exc)
        now = log.utc()
        with open(EXCEPTION_FILE, "w") as f:
            if now:
                f.write("at %s\n" % now)
            sys.print_exception(exc, f)
        unreported |= EXCEPTION_UNREPORTED  # not an older trace, should this one not be written
    except BaseException as e:
        sys.print_exception(e)
    reboot("exception " + reason, unreported)


loop.on_fault(fatal)
