# Safe mode (a broken config.txt, a boot loop): the relay service does not run, so no timer
# would ever switch a held relay off. Every relay the service drove goes off, and its kept
# state with it: the next good boot does not switch it on again.
from machine import Pin

from epx import log
from epx.nvram import NVRAM
from switch import keep


def setup():
    nv = NVRAM("relay")
    pins = nv.get_bytes("pins")
    if not pins:
        return  # the service never drove a relay
    for n in pins:
        Pin(n, Pin.OUT, value=1, hold=False)  # active low: off, and the pad let go
    state = keep.Kept(nv, "relay", len(pins))
    left = keep.Kept(nv, "relayt", len(pins), "t")
    for i in range(len(pins)):
        state.set(i, 0)
        left.set(i, 0)
    log.warn("safe mode: relays on GPIO %s off" % ", ".join(str(n) for n in pins))
