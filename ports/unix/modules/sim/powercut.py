# Power cuts at exact points, for tests of what survives one (host firmware only).
# EPX_SIM_CUT="<partition>:<n>" stops this boot in the middle of its n-th flash erase or
# write inside that partition: the first half of the operation reaches the flash, the
# console says "sim: power cut", and device time stands still until the host cuts the power
# (Device.power_cycle()).
import _simclock
import uos
import utime

_spec = uos.getenv("EPX_SIM_CUT")
_ops = 0


def at(addr):
    """Is this erase or write (at flash address addr) the one to cut?"""
    global _ops
    if not _spec:
        return False
    import esp32

    label, _, n = _spec.partition(":")
    p = esp32._find_first(0, 0xFF, label) or esp32._find_first(1, 0xFF, label)
    if p is None or not p[2] <= addr < p[2] + p[3]:
        return False
    _ops += 1
    return _ops == int(n)


def stop():
    print("sim: power cut in %s" % _spec)
    _simclock.scale(1e-9)  # no watchdog or timer fires before the host pulls the plug
    while True:
        utime.sleep(1)
