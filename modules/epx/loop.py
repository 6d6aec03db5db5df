# Timers and state machines on MicroPython's asyncio: each armed Timer is one task sleeping
# in asyncio's task queue (a pairing heap in C), so start and cancel cost O(log n).
import asyncio
from asyncio import core
from random import randint
from time import ticks_add, ticks_diff, ticks_ms

# ticks_diff() is exact below half the ticks period (2**30 ms).
_MAX_MS = const(0x1FFFFFFF)

_counted = ticks_ms()  # uptime before this moment is in _uptime
_uptime = 0


def uptime_ms():
    """Milliseconds since epx started, past the ticks wrap-around (someone calls this at
    least every 6 days: app's housekeeping timer does)."""
    global _counted, _uptime
    now = ticks_ms()
    _uptime += ticks_diff(now, _counted)
    _counted = now
    return _uptime


_on_fault = None  # the crash path (epx.crash hands it up when it is imported)


def on_fault(handler):
    """handler(exception) for what a timer or task raises and nothing caught."""
    global _on_fault
    _on_fault = handler


def _fault(e):
    if _on_fault is None:
        raise e
    _on_fault(e)


def _check_ms(what, ms):
    if not 0 <= ms <= _MAX_MS:
        raise ValueError("%s %r ms out of range 0..%d" % (what, ms, _MAX_MS))


async def _guarded(coro):
    try:
        return await coro
    except Exception as e:
        _fault(e)


def task(coro):
    """asyncio.create_task(coro), an exception ending it takes the crash path."""
    return asyncio.create_task(_guarded(coro))


class Timer:
    """Calls callback() once, or every period_ms without drift, each time up to jitter_ms late.

    A recurring timer keeps its phase: the next deadline is the previous one plus the period;
    when the loop falls a whole period behind, the missed calls collapse into one.
    """

    # The timer is its own task's coroutine: the loop calls send() at the deadline the task
    # is queued at, and send() queues the task again; no generator frame per timer. Values
    # set only when not the default stay out of the instance's dict.
    _jitter = 0
    _last = None  # the delay restart() uses; None: the period
    _task = None  # the task serving this timer
    _sleep = None  # when that task wakes; None while it runs or when there is none
    active = False

    def __init__(self, callback, period_ms=None, jitter_ms=0):
        _check_ms("jitter", jitter_ms)
        if period_ms is not None:
            _check_ms("period", period_ms + jitter_ms)
            if period_ms <= 0:
                raise ValueError("period %d ms not above 0" % period_ms)
            if jitter_ms >= period_ms:
                raise ValueError("jitter %d ms not below the period %d ms" % (jitter_ms, period_ms))
        if callback is not None:  # else a subclass overrides _fire()
            self._callback = callback
        self._period = period_ms
        if jitter_ms:
            self._jitter = jitter_ms
        self._due = 0  # deadline before jitter
        self._wake = 0  # deadline after jitter

    def start(self, delay_ms=None):
        """Arm the timer delay_ms from now (default: one period); re-arms an armed timer."""
        if delay_ms is None:
            delay_ms = self._period
            if delay_ms is None:
                raise ValueError("one-shot timer needs a delay")
        _check_ms("delay", delay_ms + self._jitter)
        if delay_ms != self._period or self._last is not None:
            self._last = delay_ms
        self._due = ticks_add(ticks_ms(), delay_ms)
        self._arm()
        return self

    def restart(self):
        """Arm again with the last delay or period, from now."""
        return self.start(self._last)

    def cancel(self):
        self.active = False
        t = self._task
        if t is not None and self._sleep is not None:
            # Out of the queue, the task is never stepped again: nothing else holds it.
            core._task_queue.remove(t)
            self._task = None
            self._sleep = None

    def _arm(self):
        wake = self._due
        if self._jitter:
            wake = ticks_add(wake, randint(0, self._jitter))
        self._wake = wake
        self.active = True
        t = self._task
        if t is None:
            t = self._task = asyncio.create_task(self)
            core._task_queue.remove(t)
            self._queue(t, wake)
        elif self._sleep is not None and ticks_diff(wake, self._sleep) < 0:
            # Sleeping past the new deadline: queue it earlier. A later deadline needs
            # nothing: the task sleeps again when it wakes.
            core._task_queue.remove(t)
            self._queue(t, wake)

    def _queue(self, t, wake):
        # Queued at its deadline even when that has passed (asyncio.sleep_ms() would take
        # now), so overdue timers run in deadline order.
        self._sleep = wake
        core._task_queue.push(t, wake)

    def send(self, _):
        self._sleep = None
        if self.active and ticks_diff(self._wake, ticks_ms()) <= 0:
            period = self._period
            if period is None:
                self.active = False
            else:
                # The next period after now: missed ones are skipped, the phase is kept.
                late = ticks_diff(ticks_ms(), self._due)
                self._due = ticks_add(self._due, late - late % period + period)
                self._arm()
            try:
                self._fire()
            except Exception as e:
                _fault(e)
        if self.active:  # postponed, recurring, or armed again by the callback
            if self._sleep is None:
                self._queue(self._task, self._wake)
            return None
        self._task = None
        raise StopIteration

    def _fire(self):
        self._callback()

    def throw(self, exc):
        # Only if someone cancelled the task itself: the timer stops.
        self.active = False
        self._task = self._sleep = None
        raise exc


def every(ms, callback, jitter_ms=0):
    """A started recurring timer."""
    return Timer(callback, ms, jitter_ms).start()


def later(ms, callback, jitter_ms=0):
    """A started one-shot timer."""
    return Timer(callback, None, jitter_ms).start(ms)


def irq_flag(callback=None):
    """An asyncio.ThreadSafeFlag an IRQ handler may set(); callback() runs in the loop after."""
    flag = asyncio.ThreadSafeFlag()
    if callback is not None:
        task(_serve(flag, callback))
    return flag


async def _serve(flag, callback):
    while True:
        await flag.wait()
        callback()


class TransitionError(ValueError):
    pass


class StateMachine:
    """Named states and the transitions allowed out of each: {state: (next, ...)}.

    Timers made with timer()/every() belong to the current state and are cancelled when the
    machine leaves it. Observers are called with (old, new) after every transition.
    """

    def __init__(self, name, transitions, initial):
        for state, targets in transitions.items():
            for t in targets:
                if t not in transitions:
                    raise TransitionError("%s: %s -> %s: no state %s" % (name, state, t, t))
        if initial not in transitions:
            raise TransitionError("%s: no initial state %s" % (name, initial))
        self.name = name
        self.state = initial
        self._transitions = transitions
        self._timers = []
        self._observers = []
        self._entered = ticks_ms()

    def go(self, new):
        old = self.state
        if new not in self._transitions[old]:
            raise TransitionError("%s: %s -> %s is not a declared transition" % (self.name, old, new))
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        self.state = new
        self._entered = ticks_ms()
        for observer in self._observers:
            observer(old, new)

    def elapsed_ms(self):
        """Time spent in the current state."""
        return ticks_diff(ticks_ms(), self._entered)

    def timer(self, ms, callback, jitter_ms=0):
        """A one-shot timer, cancelled when the current state is left."""
        return self._own(later(ms, callback, jitter_ms))

    def _own(self, t):
        timers = self._timers
        for i in range(len(timers) - 1, -1, -1):
            if not timers[i].active:
                timers.pop(i)
        timers.append(t)
        return t

    def every(self, ms, callback, jitter_ms=0):
        """A recurring timer, cancelled when the current state is left."""
        return self._own(every(ms, callback, jitter_ms))

    def observe(self, callback):
        self._observers.append(callback)
