# Weighing: the median of several HX711 conversions, then calibration_a * raw + b.
# The HX711 converts at 10 Hz and settles in 4 conversions after power-up: waiting for
# DOUT is asynchronous (asyncio), reading one conversion takes microseconds.
import asyncio
import time
from micropython import const

NOT_READY = const(1)  # no conversion in time: HX711 absent, unpowered or a broken wire
SATURATED = const(2)  # a conversion at the ADC's limit: load cell overloaded or open

_LIMIT = const(0x7FFFFF)
_POLL_MS = const(5)


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


async def weigh(hx, samples, a, b, timeout_ms=None):
    """(weight, malfunction): the calibrated median of `samples` conversions, or None and
    what went wrong."""
    if timeout_ms is None:
        timeout_ms = 600 + 150 * samples
    values = []
    start = time.ticks_ms()
    while len(values) < samples:
        if hx.ready():
            values.append(hx.read())
        elif time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
            return None, NOT_READY
        else:
            await asyncio.sleep_ms(_POLL_MS)
    for v in values:
        if v >= _LIMIT or v <= -_LIMIT - 1:
            return None, SATURATED
    return a * median(values) + b, 0
