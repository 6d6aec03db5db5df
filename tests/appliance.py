"""A simulated appliance as a test sees it: its stat/<name>/... topics on an MQTT watch,
and its device clock."""

import time


def sync(w, dev, name):
    """Wait until the device `name` has handled every command sent before on the watch `w`
    (they arrive in order): its answer to a Refresh sent after them."""
    m = w.mark()
    w.publish(f"cmnd/{name}/Refresh", "")
    w.wait_for(f"stat/{name}/Uptime", since=m, device=dev)


def settled(w, dev, name, timeout=30):
    """Wait until the device `name` has sent every value once after connecting: its update
    entity's state, the last publication declared (mqtt.py sends them in order after the
    discovery configs). A test's own publications count from here."""
    w.wait_for(f"stat/{name}/Update", timeout=timeout, device=dev)


class Appliance:
    wait_s = 30  # default bound of wait()

    def __init__(self, dev, watch, name):
        self.dev, self.watch, self.name = dev, watch, name

    def mark(self):
        return self.watch.mark()

    def wait(self, topic, predicate=None, since=0, timeout=None):
        """The payload of the next stat/<name>/<topic> since `since` that matches
        `predicate` (a function, or the exact text)."""
        if isinstance(predicate, str):
            want = predicate
            predicate = lambda p: p == want  # noqa: E731
        return self.watch.wait_for(f"stat/{self.name}/{topic}", predicate,
                                   timeout=self.wait_s if timeout is None else timeout,
                                   since=since, device=self.dev)[1]

    def seen(self, topic, since=0):
        """Every stat/<name>/<topic> payload since `since`, as text."""
        full = f"stat/{self.name}/{topic}"
        return [p.decode() for t, p, _ in self.watch.messages[since:] if t == full]

    def until(self, seconds, timeout=60):
        """Wait until the device clock has moved `seconds` on."""
        end = self.dev.call("clock.now") + seconds * 1_000_000
        deadline = time.monotonic() + timeout
        while self.dev.call("clock.now") < end:
            assert time.monotonic() < deadline, f"device clock stuck short of {seconds} s"
            time.sleep(0.05)
