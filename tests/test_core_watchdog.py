"""epx.watchdog inside the host firmware (tests/firmware/coreunit.py), without the
bootloader: the loop feeds the simulated machine.WDT while it turns, a loop that stops
turning ends the process with EXIT_WDT, `watchdog 0` arms nothing, may_block feeds."""

import subprocess

import pytest

from epx import build

EXIT_WDT = 11

CODE = """
import sys;sys.path[:]=['.frozen']
import asyncio, _simclock
from time import ticks_add, ticks_diff, ticks_ms, ticks_us
from epx import config, loop, watchdog
config.load()
watchdog.start(grace_ms=2000)

def run_for(ms, step):
    async def drive():
        end = ticks_add(ticks_ms(), ms)
        while ticks_diff(end, ticks_ms()) > 0:
            _simclock.advance(step)
            await asyncio.sleep_ms(1)
    asyncio.run(drive())

def stall(ms, spin_ms=600):
    # The loop stops turning: device time jumps, then spin_ms pass (the simulated watchdog
    # bites a few real ms after it is overdue).
    _simclock.advance(ms)
    t = ticks_us()
    while ticks_diff(ticks_us(), t) < spin_ms * 1000:
        pass

run_for(120000, 900)   # two minutes of device time, fed all along
print("fed")
%s
print("alive")
"""


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def run(fw, tmp_path, config, code):
    (tmp_path / "config.txt").write_text(config)
    return subprocess.run([str(fw), "-c", CODE % code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


def test_a_turning_loop_feeds_a_stalled_one_resets(fw, tmp_path):
    r = run(fw, tmp_path, "watchdog 1\n", "stall(16000)")
    assert r.returncode == EXIT_WDT, r.stdout + r.stderr
    assert "fed" in r.stdout and "alive" not in r.stdout
    assert "Task watchdog got triggered" in r.stdout


def test_a_short_stall_is_survived(fw, tmp_path):
    # Fed at most 1.9 s before (1 s feeds, 0.9 s steps): 11 + 0.3 + 1.9 s < 15 s, with room
    # for a busy host (real time runs into device time here).
    r = run(fw, tmp_path, "watchdog on\n", "stall(11000, 300)")
    assert r.returncode == 0 and "alive" in r.stdout, r.stdout + r.stderr


def test_watchdog_off_arms_nothing(fw, tmp_path):
    r = run(fw, tmp_path, "watchdog 0\n", "stall(60000)")
    assert r.returncode == 0 and "alive" in r.stdout, r.stdout + r.stderr


def test_may_block_feeds_while_the_loop_stalls(fw, tmp_path):
    r = run(fw, tmp_path, "watchdog 1\n", """
with watchdog.may_block(60000):
    for _ in range(3):
        stall(10000, 1200)   # the feeder thread wakes once a second (of real time here)
print("unblocked")
stall(16000)""")
    assert r.returncode == EXIT_WDT, r.stdout + r.stderr
    assert "unblocked" in r.stdout and "alive" not in r.stdout


def test_may_block_without_ram_for_its_thread_leaves_the_next_window_fed(fw, tmp_path):
    """On the ESP32's RAM (simram.c) a feeder thread's stack may not fit (the port:
    "can't create thread", mpthreadport.c): that window fails as an OSError its caller
    already handles, and the next one, once the RAM is back, is fed again."""
    (tmp_path / "config.txt").write_text("watchdog 1\n")
    code = CODE % """
from sim import ctl
ctl.ram_hold({"bytes": 1 << 20, "block": 1024})
try:
    with watchdog.may_block(60000):
        print("blocked without a feeder")
except OSError as e:
    print("refused:", e)
ctl.ram_release({})
with watchdog.may_block(60000):
    for _ in range(3):
        stall(10000, 1200)
print("unblocked")"""
    env = {"EPX_SIM_RAM": str(56 * 1024), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(fw), "-X", f"heapsize={84 * 1024}", "-c", code], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env=env)
    assert "refused: can't create thread" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0 and "alive" in r.stdout, r.stdout + r.stderr


def compute(ms):
    """Firmware code: compute (no wait) until `ms` of device time passed: the chip's work."""
    return """
t = ticks_us()
while ticks_diff(ticks_us(), t) < %d:
    pass
""" % (ms * 1000)


LOOP_STALLS = """
def stall():%s
loop.later(0, stall)
run_for(20000, 900)
""" % compute(16000).replace("\n", "\n    ")

# A feeder that is wrong: a thread that feeds whatever the loop does.
THREAD_FEEDS = """
import _thread, machine, time
def feed():
    while True:
        machine.WDT(timeout=15000).feed()
        time.sleep_ms(1000)
_thread.start_new_thread(feed, ())
"""


def test_a_callback_computing_past_the_timeout_resets_on_any_host(fw, tmp_path):
    # 16 s of the chip's computation in one loop callback, past the 15 s timeout: the
    # device resets while the callback runs, however fast or busy the host.
    r = run(fw, tmp_path, "watchdog 1\n", LOOP_STALLS)
    assert r.returncode == EXIT_WDT, r.stdout + r.stderr
    assert "fed" in r.stdout and "alive" not in r.stdout


def test_a_thread_feeding_instead_of_the_loop_survives_the_same_stall(fw, tmp_path):
    # What the test above tells apart: fed by a free-running thread, the stalled loop is
    # never noticed (every run: the computation moves the clock, the thread wakes on it).
    r = run(fw, tmp_path, "watchdog 1\n", THREAD_FEEDS + LOOP_STALLS)
    assert r.returncode == 0 and "alive" in r.stdout, r.stdout + r.stderr
