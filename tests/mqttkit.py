"""Test-side pieces for the MQTT client tests (brokers, proxy and watcher come from
conftest): a scripted fake broker, and a runner for a host firmware executing a script.
Everything is bounded in time and cleans up."""

import atexit
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from epx import build

ROOT = Path(__file__).resolve().parents[1]
_built = {}


def firmware(name="mqttcheck"):
    """The host firmware, copied while no build writes it: another xdist worker may
    rebuild it (the version moves with every commit) while this one runs its copy."""
    if name not in _built:
        exe = build.build_unix(name)[0]
        copy = Path(tempfile.mkdtemp(prefix=f"epx-{name}-")) / "micropython"
        with build.locked(build.BUILD / f".unix-{build.profile_name(name)}.lock"):
            shutil.copy2(exe, copy)
        atexit.register(shutil.rmtree, copy.parent, True)
        _built[name] = copy
    return _built[name]


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


def relay(conn, first, port, host="127.0.0.1"):
    """Hand a client's connection (its CONNECT already read: `first`) to a real broker and
    pump both ways until either side closes."""
    upstream = socket.create_connection((host, port))
    upstream.sendall(first)

    def pump(src, dst):
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    conn.settimeout(None)
    back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
    back.start()
    pump(conn, upstream)
    back.join(10)
    upstream.close()


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
        self.connects = []  # each connection's CONNECT packet, as received
        self.errors = []
        self.counted = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            conn.settimeout(10)
            with self.counted:
                i = self.count
                self.count += 1
                self.counted.notify_all()
            try:
                first = read_packet(conn)
                if first is not None:
                    self.connects.append(packet(*first))
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

    def wait_count(self, n, timeout=30):
        """True once n connections were accepted."""
        with self.counted:
            return self.counted.wait_for(lambda: self.count >= n, timeout)
