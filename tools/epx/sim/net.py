"""A real mosquitto for simulated devices (`epx sim`, tests, benches) on a free loopback port."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from ..errors import EpxError

LOOPBACK = "127.0.0.1"
_CONNECTED = re.compile(r"New client connected from \S+ as (\S+)")


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --- broker --------------------------------------------------------------------------

class Broker:
    """mosquitto on a free loopback port with its own config in a temp folder.

    users: {name: password} turns anonymous access off; tls: a CA from make_ca() makes the
    listener TLS-only (clients verify against ca.cert_path); bridge: another Broker this one
    bridges every topic with, both ways at QoS 1 (mosquitto's `connection` bridge), as the
    nodes of a cluster share their messages. `connected` holds (time.monotonic(), client id)
    of each client connection it logged (its stderr, read as it comes)."""

    def __init__(self, users=None, tls=None, port=None, folder=None, verbose=False, bridge=None):
        self.users, self.tls, self.verbose, self.bridge = users, tls, verbose, bridge
        self.connected = []
        self.port = port
        self.host = LOOPBACK
        self.folder = folder
        self.proc = None
        self.log = []

    def start(self, timeout=10):
        if shutil.which("mosquitto") is None:
            raise EpxError("mosquitto: not installed (apt install mosquitto)")
        self._own_folder = self.folder is None
        self.folder = self.folder or tempfile.mkdtemp(prefix="epxmq")
        for attempt in range(5):
            port = self.port or free_port()
            if self._try_start(port, timeout):
                self.port = port
                return self
            if self.port:
                break
        raise EpxError("mosquitto did not start: " + " | ".join(self.log[-5:]))

    def _config(self, port):
        # mosquitto started as root drops to user "mosquitto", who cannot read our files.
        lines = [f"user {pwd.getpwuid(os.getuid()).pw_name}",
                 f"listener {port} {LOOPBACK}", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if self.users:
            pw = os.path.join(self.folder, "passwd")
            open(pw, "w").close()
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", pw, user, password], check=True,
                               capture_output=True)
            os.chmod(pw, 0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [f"cafile {self.tls.ca_path}", f"certfile {self.tls.cert_path}",
                      f"keyfile {self.tls.key_path}", "tls_version tlsv1.2"]
        if self.bridge:
            lines += ["connection epx-bridge", f"address {self.bridge.host}:{self.bridge.port}",
                      "topic # both 1", "cleansession true", "restart_timeout 1",
                      "bridge_protocol_version mqttv311", "try_private true"]
        path = os.path.join(self.folder, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(l for l in lines if l) + "\n")
        return path

    def _try_start(self, port, timeout):
        conf = self._config(port)
        from .device import die_with_parent

        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     preexec_fn=die_with_parent)
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                line = line.rstrip()
                self.log.append(line)
                client = _CONNECTED.search(line)
                if client:
                    self.connected.append((time.monotonic(), client.group(1)))
                if self.verbose:
                    print("mosquitto:", line)
                if " running" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(timeout)
        if self.proc.poll() is None and any(" running" in l for l in self.log):
            return True
        self._kill()
        return False

    def stop(self):
        self._kill()
        if getattr(self, "_own_folder", False):
            shutil.rmtree(self.folder, ignore_errors=True)

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self.proc = None

    def down(self):
        """Kill mosquitto (its clients see it go away); up() starts it again."""
        self._kill()

    def up(self):
        """Start again on the same port."""
        if not self._try_start(self.port, 10):
            raise EpxError("mosquitto did not restart: " + " | ".join(self.log[-5:]))
        return self

    def restart(self):
        """Stop and start again on the same port (clients see the broker go away)."""
        self.down()
        return self.up()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def read_until_closed(s):
    """Every byte a peer sends on socket s until it closes the connection."""
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def shut(s):
    """Shut both ways: wakes a thread blocked on `s`; a connection already gone is fine."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
