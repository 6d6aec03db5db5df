"""epx.loop: the cost of arming and cancelling a timer while 10,000 other timers are armed,
against the same with 100 (ratio; goal <= 2: each timer is a task in asyncio's pairing heap,
O(log n)). Runs inside the bare host firmware; prints one line."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build  # noqa: E402

# Runs in the firmware. A round: K timers armed (their tasks queued at their deadlines),
# then all cancelled (their tasks gone from the queue), among `n` armed background timers.
PROBE = r"""
import sys;sys.path[:]=['.frozen']
import asyncio, gc, random, time
from epx import loop

K = 2000
REPEAT = 3
ROUNDS = 9

def cb():
    pass

async def settle(timers, armed):
    # Let the loop run until every timer's task is queued at its deadline (or gone).
    while any((t._sleep is not None) != armed for t in timers):
        await asyncio.sleep_ms(0)

async def cost(n):
    background = [loop.later(random.randint(1000000, 2000000), cb) for _ in range(n)]
    await settle(background, True)
    best = None
    for _ in range(REPEAT):
        timers = [loop.Timer(cb) for _ in range(K)]
        delays = [random.randint(100000, 3000000) for _ in range(K)]
        gc.collect()
        t = time.ticks_us()
        for i in range(K):
            timers[i].start(delays[i])
        await settle(timers, True)
        for timer in timers:
            timer.cancel()
        await settle(timers, False)
        spent = time.ticks_diff(time.ticks_us(), t) / K
        best = spent if best is None else min(best, spent)
    for timer in background:
        timer.cancel()
    await settle(background, False)
    return best

# Interleaved, best of each: a busy host slows both sizes alike.
small = large = 1e9
for _ in range(ROUNDS):
    small = min(small, asyncio.run(cost(100)))
    large = min(large, asyncio.run(cost(10000)))
print("RESULT %.3f %.3f" % (small, large))
"""


def main():
    exe, _ = build.build_unix("bare")
    with tempfile.TemporaryDirectory() as cwd:
        r = subprocess.run([str(exe), "-X", "heapsize=64M", "-c", PROBE], cwd=cwd,
                           capture_output=True, text=True, timeout=600)
    m = re.search(r"RESULT ([\d.]+) ([\d.]+)", r.stdout)
    if r.returncode or not m:
        sys.exit(f"bench_loop: firmware failed:\n{r.stdout}{r.stderr}")
    small, large = float(m.group(1)), float(m.group(2))
    print(f"timer insert+cancel at 10,000 timers vs 100: ratio {large / small:.2f} "
          f"({large:.1f} us vs {small:.1f} us; goal <= 2)")


if __name__ == "__main__":
    main()
