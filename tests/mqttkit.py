"""Test-side pieces for the MQTT tests: a mosquitto broker on a free loopback port, a
fault-injecting TCP proxy, a scripted fake broker, a paho subscriber, and a runner for a
host firmware executing a script. Everything is bounded in time and cleans up."""

import getpass
import json
import os
import queue
import selectors
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from epx import build

ROOT = Path(__file__).resolve().parents[1]
_built = {}


def firmware(name="mqttcheck"):
    if name not in _built:
        _built[name] = build.build_unix(name)[0]
    return _built[name]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10, up=True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.02)  # polling a port, not synchronising with the device
    raise TimeoutError(f"port {port} not {'up' if up else 'down'}")


class Broker:
    """mosquitto on 127.0.0.1:port; stop() and start() keep the port."""

    def __init__(self, tmp, users=None, tls=None):
        self.dir = Path(tmp)
        self.port = free_port()
        self.users = users
        self.tls = tls  # (cafile, certfile, keyfile)
        self.proc = None

    def config(self):
        # Stay the user running the tests: mosquitto started as root would switch to the
        # "mosquitto" user and could not read the files below.
        lines = [f"listener {self.port} 127.0.0.1", "persistence false",
                 f"user {getpass.getuser()}"]
        if self.users:
            pw = self.dir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        path = self.dir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self):
        self.log = open(self.dir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.config())],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
            self.log.close()


class Proxy:
    """TCP forwarder from a free port to target, served by one thread; modes: pass,
    blackhole (keeps the sockets open and forwards nothing: a half-open link), and
    reset() (RST to both sides of every open connection)."""

    def __init__(self, target_port):
        self.target = target_port
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.mode = "pass"
        self.peer = {}
        self.accepted = 0
        self.wake_r, self.wake_w = socket.socketpair()
        self.calls = queue.Queue()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.srv, selectors.EVENT_READ)
        self.sel.register(self.wake_r, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _call(self, fn):
        done = threading.Event()
        self.calls.put((fn, done))
        self.wake_w.send(b"x")
        assert done.wait(10)

    def _run(self):
        while True:
            for key, _ in self.sel.select():
                s = key.fileobj
                if s is self.wake_r:
                    s.recv(64)
                    while not self.calls.empty():
                        fn, done = self.calls.get()
                        if fn is None:
                            return done.set()
                        fn()
                        done.set()
                elif s is self.srv:
                    self._accept()
                elif s in self.peer:
                    self._forward(s)

    def _accept(self):
        a, _ = self.srv.accept()
        try:
            b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            return a.close()
        self.accepted += 1
        self.peer[a], self.peer[b] = b, a
        for s in (a, b):
            self.sel.register(s, selectors.EVENT_READ)

    def _drop(self, s, rst=False):
        for x in (s, self.peer.get(s)):
            if x is not None and x in self.peer:
                del self.peer[x]
                self.sel.unregister(x)
                if rst:
                    x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                x.close()

    def _forward(self, s):
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            return self._drop(s)
        if self.mode == "pass":
            try:
                self.peer[s].sendall(data)
            except OSError:
                self._drop(s)

    def blackhole(self):
        self.mode = "blackhole"

    def reset(self):
        """RST every open connection; new ones pass again."""
        def fn():
            for s in list(self.peer):
                self._drop(s, rst=True)
            self.mode = "pass"
        self._call(fn)

    def close(self):
        self.reset()
        self._call(None)
        self.thread.join(10)
        self.srv.close()


class Subscriber:
    """paho client collecting messages: wait(topic, pred) returns the payload."""

    def __init__(self, port, topics=("#",), **tls):
        self.q = queue.Queue()
        self.seen = []
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, m.payload.decode(errors="replace"), m.retain))
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe([(t, 1) for t in topics])
        assert ready.wait(10)

    def wait(self, topic, pred=None, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {topic} in {timeout}s; saw {self.seen[-20:]}")
            try:
                t, p, r = self.q.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append((t, p, r))
            if t == topic and (pred is None or pred(p)):
                return p

    def publish(self, topic, payload, retain=False, qos=1):
        self.c.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Script:
    """A host firmware running `code` (frozen modules on the path); its stdout lines,
    JSON where they parse, come through next()."""

    def __init__(self, code, cwd, name="mqttcheck", env=None, heapsize=None):
        argv = [str(firmware(name))]
        if heapsize:
            argv += ["-X", f"heapsize={heapsize}"]
        argv += ["-c", "import sys;sys.path[:]=['.frozen','']\n" + code]
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(env or {})})
        self.lines = queue.Queue()
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout=20):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("firmware silent; output:\n" + "".join(self.out))
        if line is None:
            raise EOFError("firmware exited; output:\n" + "".join(self.out))
        if line.startswith("Traceback"):
            self.proc.wait(10)
            raise AssertionError("firmware raised:\n" + "".join(self.out))
        try:
            return json.loads(line)
        except ValueError:
            return line

    def expect(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if pred(m):
                return m

    def poke(self):
        """Wake a script blocked in sys.stdin.readline()."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def read_packet(conn):
    """One MQTT packet from a blocking socket: (first byte, body), or None at EOF."""
    def exact(n):
        b = b""
        while len(b) < n:
            c = conn.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b
    try:
        h = exact(1)[0]
        n = shift = 0
        while True:
            b = exact(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return h, exact(n)
    except (EOFError, OSError):
        return None


def encode_length(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + encode_length(len(body)) + body


CONNACK_OK = b"\x20\x02\x00\x00"


class FakeBroker:
    """A scripted broker: handler(conn, index) runs per connection (in a thread) after
    the client's CONNECT was read; the connection closes when it returns."""

    def __init__(self, handler):
        self.handler = handler
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.count = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            conn.settimeout(10)
            i = self.count
            self.count += 1
            try:
                if read_packet(conn) is not None:
                    if self.handler(conn, i) is False:
                        conn.close()
                        self.srv.close()
                        return
            except OSError:
                pass
            except Exception as e:  # a bug in the test's handler
                self.errors.append(e)
            finally:
                conn.close()

    def close(self):
        self.srv.close()
