"""epx.loop inside the host firmware (tests/firmware/coreunit.py), without the bootloader:
timer order, drift-free periods, cancel and restart, jitter bounds, 10,000 timers, the
ticks wrap-around, state machines, IRQ flags and the crash path of a failing callback.
The device clock is advanced by the test code itself (_simclock), so nothing waits."""

import json
import os

import pytest

from epx import build
from fwcode import last_json, run_code

ENTRY = "import sys;sys.path[:]=['.frozen']\n"
EXIT_RESET = 10

PRELUDE = """
import asyncio, _simclock, json, time
from time import ticks_add, ticks_diff, ticks_ms
from epx import loop

# Device time stands (almost) still on its own: only the steps below move it, so a busy
# host cannot make a timer look late.
_simclock.scale(0.001)

def run_for(ms, step=5):
    # Device time moves in steps; between steps every due timer runs.
    async def drive():
        end = ticks_add(ticks_ms(), ms)
        while ticks_diff(end, ticks_ms()) > 0:
            _simclock.advance(step)
            await asyncio.sleep_ms(0)
    asyncio.run(drive())

def since(t0):
    return ticks_diff(ticks_ms(), t0)
"""


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def start(fw, tmp_path, code, env=None, heap=None):
    return run_code(fw, ENTRY + PRELUDE + code, tmp_path, timeout=120,
                    env={**os.environ, **(env or {})}, heap=heap)


def run(fw, tmp_path, code, **kw):
    """Run code in the firmware; it prints one JSON value last, returned."""
    return last_json(start(fw, tmp_path, code, **kw))


def test_timers_fire_in_deadline_order_never_early(fw, tmp_path):
    out = run(fw, tmp_path, """
fired = []
def at(name):
    return lambda: fired.append([name, ticks_ms()])
t0 = ticks_ms()
timers = {n: loop.later(d, at(n)) for n, d in (("c", 30), ("a", 10), ("b", 20), ("z", 0))}
# Created overdue: all four are due before their tasks first run; order still holds.
_simclock.advance(50)
run_for(100)
print(json.dumps([[n, ticks_diff(t, timers[n]._due)] for n, t in fired]))
""")
    assert [n for n, _ in out] == ["z", "a", "b", "c"]
    assert all(late >= 0 for _, late in out)


def test_recurring_timer_does_not_drift(fw, tmp_path):
    out = run(fw, tmp_path, """
t0 = ticks_ms()
times = []
def tick():
    times.append(since(t0))
    if len(times) % 3 == 0:
        _simclock.advance(300)   # a slow callback
p = loop.every(1000, tick)
run_for(50000, step=7)
p.cancel()
print(json.dumps(times))
""")
    assert len(out) == 50
    # The k-th call is due at k seconds whatever the callbacks cost: late by at most one
    # step of the test's clock, never accumulating.
    for k, t in enumerate(out, 1):
        assert 0 <= t - 1000 * k <= 8, (k, t)


def test_missed_periods_collapse_into_one_call_and_keep_the_phase(fw, tmp_path):
    out = run(fw, tmp_path, """
t0 = ticks_ms()
times = []
def tick():
    times.append(since(t0))
    if len(times) == 2:
        _simclock.advance(3500)   # blocks the loop for three and a half periods
p = loop.every(1000, tick)
run_for(8000, step=5)
p.cancel()
print(json.dumps(times))
""")
    # Due 1000, 2000 (runs until 5500), then 3000..5000 missed: one call at once, then
    # back on the 1000 ms grid.
    assert [round(t, -2) for t in out[:2]] == [1000, 2000]
    assert 5500 <= out[2] <= 5510
    assert [(t - 6000) // 1000 for t in out[3:]] == [0, 1, 2]
    assert all(t % 1000 <= 6 for t in out[3:])


def test_cancel_restart_and_changes_from_inside_callbacks(fw, tmp_path):
    out = run(fw, tmp_path, """
t0 = ticks_ms()
log = []
def note(name):
    return lambda: log.append([name, since(t0)])
cancelled = loop.later(100, note("cancelled")); cancelled.cancel()
never_ran = loop.later(0, note("never_ran")); never_ran.cancel()   # before its task ran
later_ = loop.later(100, note("postponed")); started = [since(t0)]; later_.start(300)
sooner = loop.later(500, note("sooner")); started.append(since(t0)); sooner.start(200)
again = loop.later(50, note("restarted"))
count = [0]
def self_stop():
    count[0] += 1
    log.append(["periodic", since(t0)])
    if count[0] == 3:
        periodic.cancel()
periodic = loop.every(100, self_stop)
def rearm():
    log.append(["rearm", since(t0)])
    if len(log) < 12:
        oneshot.start(250)
oneshot = loop.later(250, rearm)
run_for(40)
restarted_at = since(t0)
again.restart()            # from about 40 ms: due 50 ms later
run_for(1000)
print(json.dumps([log, [t.active for t in (cancelled, later_, periodic, oneshot)], restarted_at, started]))
""")
    log, active, restarted_at, started = out
    when = {}
    for name, t in log:
        when.setdefault(name, []).append(t)
    assert "cancelled" not in when and "never_ran" not in when
    # Each due from when it was (re)started; the chip's own work there costs device time.
    assert 300 <= when["postponed"][0] - started[0] <= 306 and len(when["postponed"]) == 1
    assert 200 <= when["sooner"][0] - started[1] <= 206 and len(when["sooner"]) == 1
    assert 40 <= restarted_at <= 46 and 50 <= when["restarted"][0] - restarted_at <= 56
    assert len(when["periodic"]) == 3
    assert [t // 250 for t in when["rearm"]] == [1, 2, 3, 4]
    assert active == [False, False, False, True]


def test_jitter_stays_in_bounds_and_spreads(fw, tmp_path):
    out = run(fw, tmp_path, """
t0 = ticks_ms()
times = []
p = loop.every(100, lambda: times.append(since(t0)), jitter_ms=40)
once = []
for _ in range(50):
    loop.later(10, (lambda made: lambda: once.append(since(t0) - made))(since(t0)), jitter_ms=30)
run_for(10050, step=1)
p.cancel()
print(json.dumps([times, once]))
""")
    times, once = out
    assert len(times) == 100
    # Jitter delays each call within [due, due + 40] on the undisturbed 100 ms grid.
    lates = [t - 100 * k for k, t in enumerate(times, 1)]
    assert all(0 <= late <= 41 for late in lates), lates
    assert len(set(lates)) > 10
    # The one-shots: within [10, 40] of being made, plus the chip's time running the others
    # that fell due at the same instant (a callback costs it a fraction of a ms).
    assert all(10 <= t <= 46 for t in once) and len(set(once)) > 5, once


def test_ten_thousand_timers(fw, tmp_path):
    out = run(fw, tmp_path, """
import random, gc
fired = []
timers = []
t0 = ticks_ms()
for i in range(10000):
    t = loop.Timer(None)
    t._callback = (lambda t: lambda: fired.append([t._due, ticks_ms()]))(t)
    timers.append(t.start(random.randint(20000, 25000)))
for t in timers[::2]:
    t.cancel()
start = ticks_ms()  # making them took the chip seconds: many are overdue from here
run_for(25200, step=10)
gc.collect()
print(json.dumps([len(fired),
                  sum(1 for i in range(len(fired) - 1) if ticks_diff(fired[i + 1][0], fired[i][0]) < 0),
                  min(ticks_diff(f, d) for d, f in fired), max(ticks_diff(f, d) for d, f in fired),
                  sum(1 for t in timers if t.active), ticks_diff(start, t0)]))
""", heap="4M")
    count, misordered, earliest, latest, still_active, making = out
    assert count == 5000 and misordered == 0 and still_active == 0
    # None early, none late by more than 500 ms, though making them took the chip seconds
    # (all are due after that).
    assert earliest >= 0 and latest < 500, (latest, making)


def test_ticks_wrap_around(fw, tmp_path):
    # The device clock starts 3 s before ticks_ms wraps (2**30 ms).
    out = run(fw, tmp_path, """
t0 = ticks_ms()
start_ticks = t0
times = []
p = loop.every(700, lambda: times.append(since(t0)))
order = []
for name, d in (("after", 5000), ("across", 3500), ("before", 2000)):
    loop.later(d, (lambda n: lambda: order.append([n, since(t0)]))(name))
up0 = loop.uptime_ms()
run_for(8000, step=3)
p.cancel()
print(json.dumps([start_ticks, ticks_ms(), times, order, loop.uptime_ms() - up0]))
""", env={"EPX_SIM_TICKS_START": str(2**30 - 3000)})
    start_ticks, end_ticks, times, order, uptime = out
    assert start_ticks > 2**30 - 3100 and end_ticks < 6000  # it did wrap
    assert [n for n, _ in order] == ["before", "across", "after"]
    for (_, t), d in zip(order, (2000, 3500, 5000)):
        assert d <= t <= d + 4
    assert len(times) == 11
    assert all(0 <= t - 700 * k <= 4 for k, t in enumerate(times, 1)), times
    assert 8000 <= uptime <= 8010


def test_delays_beyond_the_ticks_range_are_refused(fw, tmp_path):
    out = run(fw, tmp_path, """
errors = []
for make in (lambda: loop.later(2**29, print), lambda: loop.every(2**29 - 10, print, jitter_ms=20),
             lambda: loop.later(-1, print), lambda: loop.Timer(print).start(),
             lambda: loop.every(100, print, jitter_ms=100), lambda: loop.every(0, print),
             lambda: loop.later(10, print, jitter_ms=-5)):
    try:
        make()
        errors.append(None)
    except ValueError as e:
        errors.append(str(e))
print(json.dumps(errors))
""")
    assert all(out) and "out of range" in out[0] and "needs a delay" in out[3]
    assert out[4] == "jitter 100 ms not below the period 100 ms"
    assert out[5] == "period 0 ms not above 0" and "jitter -5 ms out of range" in out[6]


MACHINE = """
mqtt = loop.StateMachine("mqtt", {
    "idle": ("connecting",),
    "connecting": ("up", "idle"),
    "up": ("idle",),
}, "idle")
seen = []
mqtt.observe(lambda old, new: seen.append([old, new, mqtt.state]))
"""


def test_state_machine_transitions_and_observers(fw, tmp_path):
    out = run(fw, tmp_path, MACHINE + """
errors = []
for target in ("up", "nowhere", "idle"):
    try:
        mqtt.go(target)
    except loop.TransitionError as e:
        errors.append(str(e))
mqtt.go("connecting"); mqtt.go("up"); mqtt.go("idle")
print(json.dumps([mqtt.state, seen, errors]))
""")
    state, seen, errors = out
    assert state == "idle"
    assert seen == [["idle", "connecting", "connecting"], ["connecting", "up", "up"], ["up", "idle", "idle"]]
    assert errors == ["mqtt: idle -> up is not a declared transition",
                      "mqtt: idle -> nowhere is not a declared transition",
                      "mqtt: idle -> idle is not a declared transition"]


def test_state_machine_declaration_is_checked(fw, tmp_path):
    out = run(fw, tmp_path, """
errors = []
for table, initial in (({"a": ("b",)}, "a"), ({"a": ()}, "b")):
    try:
        loop.StateMachine("m", table, initial)
    except loop.TransitionError as e:
        errors.append(str(e))
print(json.dumps(errors))
""")
    assert out == ["m: a -> b: no state b", "m: no initial state b"]


def test_state_timers_end_with_their_state(fw, tmp_path):
    out = run(fw, tmp_path, MACHINE + """
t0 = ticks_ms()
fired = []
def note(name):
    return lambda: fired.append([name, since(t0)])
mqtt.go("connecting")
mqtt.timer(100, note("connect timeout"))          # cancelled: the state is left at 50
retry = mqtt.every(20, note("retry"))
run_for(50)
mqtt.go("up")
ping = mqtt.every(200, note("ping"))
mqtt.timer(1100, lambda: mqtt.go("idle"))          # leaves "up" from its own timer
run_for(1500)
print(json.dumps([fired, retry.active, ping.active, mqtt.state, mqtt.elapsed_ms()]))
""")
    fired, retry_active, ping_active, state, elapsed = out
    names = [n for n, _ in fired]
    assert "connect timeout" not in names
    assert names.count("retry") == 2
    assert names.count("ping") == 5   # at 250..1050, then cancelled by the move to idle at 1150
    assert not retry_active and not ping_active and state == "idle"
    assert 390 <= elapsed <= 410


def test_irq_flag_wakes_the_loop(fw, tmp_path):
    out = run(fw, tmp_path, """
import micropython, _thread
_simclock.scale(1)   # polling the flag waits 1 ms of device time per loop turn
got = []
flag = loop.irq_flag(lambda: got.append(since(t0)))
t0 = ticks_ms()
sets = []
def irq(_):
    sets.append(since(t0))
    flag.set()
def from_thread():
    sets.append(since(t0))
    flag.set()
# A soft IRQ while the loop waits (micropython.schedule, as Pin.irq does), then one
# from another thread.
loop.later(100, lambda: micropython.schedule(irq, None))
loop.later(300, lambda: _thread.start_new_thread(from_thread, ()))
run_for(600)
print(json.dumps([sets, got]))
""")
    sets, got = out
    # Real time runs into device time here (scale 1): the bound is loose for a busy host.
    assert len(sets) == 2 and len(got) == 2
    assert all(0 <= g - s <= 100 for s, g in zip(sets, got)), out


@pytest.mark.parametrize("where", ["timer", "task", "asyncio"])
def test_an_exception_in_a_callback_takes_the_crash_path(fw, tmp_path, where):
    r = start(fw, tmp_path, """
from epx import crash  # hands its crash path to the loop, as it does in every app
def boom():
    raise ValueError("sensor on fire")
async def coro():
    await asyncio.sleep_ms(10)
    boom()
if %r == "timer":
    loop.later(10, boom)
elif %r == "task":
    loop.task(coro())
else:
    from epx import app
    asyncio.get_event_loop().set_exception_handler(app._task_failed)
    asyncio.create_task(coro())
run_for(100)
print("survived")
""" % (where, where))
    assert r.returncode == EXIT_RESET, r.stdout + r.stderr
    assert "survived" not in r.stdout
    trace = (tmp_path / "exception.txt").read_text()
    assert "ValueError: sensor on fire" in trace and "boom" in trace
    assert (tmp_path / "reboot.txt").read_text().startswith("exception ValueError: sensor on fire")
    assert json.loads((tmp_path / "nvs.json").read_text())["epx"]["unreported"] == ["i32", 3]


def test_restarting_and_cancelling_keeps_the_heap_flat(fw, tmp_path):
    out = run(fw, tmp_path, MACHINE + """
import gc
keepalive = loop.Timer(lambda: None)
tick = loop.every(10, lambda: None)
def churn(n):
    for i in range(n):
        keepalive.start(1000 + i % 7)      # restarted on every packet: later, sooner, ...
        t = loop.later(5, lambda: None)
        if i % 2:
            t.cancel()
        mqtt.go("connecting"); mqtt.timer(50, lambda: None); mqtt.every(20, lambda: None)
        mqtt.go("idle")
        run_for(3, step=1)
used = []
for _ in range(4):
    churn(500)
    run_for(100)
    seen.clear()   # the observer's record
    gc.collect()
    used.append(gc.mem_alloc())
print(json.dumps(used))
""")
    # After the first round every structure has its size: no growth after that.
    assert max(out[1:]) - min(out[1:]) < 2048, out


def test_thirty_days_in_hour_steps(fw, tmp_path):
    # Past the ticks wrap-around (12.4 days) twice: uptime keeps counting, recurring timers
    # keep their phase and do not pile up catch-up calls, long one-shots land, heap is flat.
    out = run(fw, tmp_path, """
import gc
HOUR = 3600000
calls = {"second": 0, "minute": 0}
def count(name):
    def f():
        calls[name] += 1
    return f
loop.every(1000, count("second"))
minute = loop.every(60000, count("minute"))
landed = []
up0 = loop.uptime_ms()
loop.later(5 * 24 * HOUR, lambda: landed.append(loop.uptime_ms() - up0))
heap = []
for day in range(30):
    for hour in range(24):
        run_for(HOUR, step=HOUR)
    loop.uptime_ms()
    gc.collect()
    heap.append(gc.mem_alloc())
print(json.dumps([loop.uptime_ms() - up0, calls, landed, ticks_diff(minute._due, ticks_ms()), heap]))
""", env={"EPX_SIM_TICKS_START": str(2**30 - 60000)})
    uptime, calls, landed, next_minute, heap = out
    # Walked 30 days, plus what the chip computed on the way (720 turns of the loop, a
    # collection a day: a few ms each).
    assert 30 * 86400000 <= uptime <= 30 * 86400000 + 720 * 10
    assert 720 <= calls["second"] <= 722 and 720 <= calls["minute"] <= 722
    assert len(landed) == 1 and 5 * 86400000 <= landed[0] <= 5 * 86400000 + 3600000
    assert 0 < next_minute <= 60000
    assert max(heap[1:]) - min(heap[1:]) < 1024, heap


def test_a_callback_computing_200_ms_shows_as_loop_latency(fw, tmp_path):
    # 200 ms of the chip's computation in one callback: a 10 ms timer beside it runs that
    # much late once, then on its grid again; the same on any host (device time moves by
    # the test's steps and the computation only).
    out = run(fw, tmp_path, """
t0 = ticks_ms()
ticks = []
p = loop.every(10, lambda: ticks.append(since(t0)))
def compute():
    t = time.ticks_us()
    while ticks_diff(time.ticks_us(), t) < 200000:
        pass
loop.later(500, compute)
run_for(1000, step=1)
p.cancel()
print(json.dumps(ticks))
""")
    gaps = [b - a for a, b in zip(out, out[1:])]
    assert 200 <= max(gaps) <= 215, gaps
    assert sorted(gaps)[-2] <= 15, gaps  # one late call only: the others on the grid
