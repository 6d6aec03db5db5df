"""A real Home Assistant Core for the tests (make test-ha): its own config folder, onboarded
through its REST API (an owner, then a token), its MQTT integration set up through the
config flow a user clicks through, against the test's broker. $EPX_HA_PYTHON is the
interpreter of a venv that holds the pinned Home Assistant (ci/ha.sh makes it)."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from epx.sim.net import free_port

CONFIG = """\
homeassistant:
  name: epx test
  unit_system: metric
  time_zone: UTC
  latitude: 0
  longitude: 0
  elevation: 0
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
recorder:
  commit_interval: 1
logger:
  default: warning
"""


class HomeAssistant:
    def __init__(self, python, folder, broker):
        self.python, self.folder, self.broker = python, Path(folder), broker
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = None
        self.proc = None
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "configuration.yaml").write_text(CONFIG.format(port=self.port))

    # --- the process -----------------------------------------------------------------

    def start(self, timeout=240):
        log = open(self.folder / "hass.out", "ab")
        self.proc = subprocess.Popen([self.python, "-m", "homeassistant", "-c", str(self.folder)],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:  # until its HTTP API answers (it is a separate process starting up)
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, "Home Assistant did not come up:\n" + self.log()[-3000:]
            try:
                status, _ = self.call("GET", "/api/onboarding", auth=False)
                if status in (200, 401):
                    break
            except OSError:
                pass
            self._watch_process(0.5)
        if self.token is None:
            self._onboard()
        self.wait(lambda: self.call("GET", "/api/config")[1].get("state") == "RUNNING", 120,
                  "Home Assistant running", pace=0.05)
        self.running_at = time.monotonic()  # when it was first seen to report RUNNING
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        return (self.folder / "hass.out").read_text(errors="replace")

    def mqtt_problems(self):
        """Warnings and errors Home Assistant logged about MQTT (discovery, payloads)."""
        return [line for line in self.log().splitlines()
                if ("WARNING" in line or "ERROR" in line) and "mqtt" in line.lower()]

    # --- the API ---------------------------------------------------------------------

    def call(self, method, path, body=None, auth=True, form=False):
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _onboard(self):
        client = self.base + "/"
        status, r = self.call("POST", "/api/onboarding/users", {
            "client_id": client, "name": "epx", "username": "epx", "password": "epx-test-password",
            "language": "en"}, auth=False)
        assert status == 200, r
        status, tok = self.call("POST", "/auth/token", {
            "grant_type": "authorization_code", "code": r["auth_code"], "client_id": client},
            auth=False, form=True)
        assert status == 200, tok
        self.token = tok["access_token"]
        status, flow = self.call("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        assert status == 200 and flow["step_id"] == "broker", flow
        status, r = self.call("POST", "/api/config/config_entries/flow/" + flow["flow_id"],
                              {"broker": self.broker.host, "port": self.broker.port})
        assert status == 200 and r["type"] == "create_entry", r

    def states(self):
        status, r = self.call("GET", "/api/states")
        assert status == 200, r
        return {s["entity_id"]: s for s in r}

    def wait(self, predicate, timeout, what, pace=0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
            self._watch_process(pace)

    def _watch_process(self, seconds):
        """Between two looks at the API: wait (bounded) on the one event that ends all
        hope, Home Assistant exiting."""
        try:
            code = self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return
        raise AssertionError(f"Home Assistant exited ({code}):\n" + self.log()[-3000:])

    def press(self, entity_id):
        self.service("button", "press", entity_id=entity_id)

    def service(self, domain, name, **data):
        status, r = self.call("POST", f"/api/services/{domain}/{name}", data)
        assert status == 200, r
        return r

    def state_changes(self, entity_id):
        """A StateChanges: every new state of entity_id from now on, as the websocket API's
        state_changed events bring them (the recorder leaves some attributes out)."""
        return StateChanges(self, entity_id)

    def _ws_connect(self):
        from websockets.sync.client import connect

        # entered here, closed by the caller (a subscription outlives this call)
        c = connect(f"ws://127.0.0.1:{self.port}/api/websocket", open_timeout=30).__enter__()
        assert json.loads(c.recv(30))["type"] == "auth_required"
        c.send(json.dumps({"type": "auth", "access_token": self.token}))
        assert json.loads(c.recv(30))["type"] == "auth_ok"
        return c

    def ws(self, command):
        """One command over the websocket API (where the recorder's statistics are): its
        result, AssertionError when Home Assistant answers with an error."""
        with self._ws_connect() as c:
            c.send(json.dumps(dict(command, id=1)))
            r = json.loads(c.recv(60))
        assert r["success"], r
        return r["result"]


class StateChanges:
    """A websocket subscription to state_changed events of one entity, read by a thread;
    .states holds each new state (dicts as /api/states gives them). close() ends it."""

    def __init__(self, ha, entity_id):
        import threading

        self.states = []
        self._c = ha._ws_connect()
        self._c.send(json.dumps({"id": 1, "type": "subscribe_events", "event_type": "state_changed"}))
        r = json.loads(self._c.recv(30))
        assert r.get("success"), r

        def read():
            try:
                for text in self._c:
                    data = json.loads(text).get("event", {}).get("data", {})
                    if data.get("entity_id") == entity_id and data.get("new_state"):
                        self.states.append(data["new_state"])
            except Exception:  # closed
                pass

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def close(self):
        self._c.close()
        self._thread.join(10)


def python():
    """The Home Assistant venv's interpreter, or None (the tests are then skipped)."""
    path = os.environ.get("EPX_HA_PYTHON")
    return path if path and os.path.exists(path) else None
