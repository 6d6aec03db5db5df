"""A simulated ESP32 on disk and in a process: boots, resets, console and control channel.

    dev = Device.create(folder, app_image, files={"config.txt": "..."})
    dev.start()
    dev.wait_boot(1); dev.wait_console(r"ready"); dev.call("pin.set", pin=4, value=1)
    dev.power_cycle(); dev.wait_boot(2)
    dev.stop()

A supervisor thread is the bootloader: it picks the slot (epx.sim.bootloader), runs the
app's executable in its own process group, maps its exit code to the next reset cause and
boots again. The control socket outlives every boot and keeps the world (input pins,
attached models, WiFi) that each new boot receives. Every wait has a timeout and fails
with the last console lines; stop() kills whatever still runs.
"""

import collections
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from . import bootloader, provision
from .flash import Flash
from .medium import BROADCAST
from .net import shut
from ..errors import EpxError

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
TIMER_WAKE = 4
EXIT_REPL, EXIT_RESET, EXIT_WDT, EXIT_DEEPSLEEP, EXIT_PANIC, EXIT_SOFT = 3, 10, 11, 12, 13, 14
RESET_OF_EXIT = {EXIT_RESET: HARD_RESET, EXIT_WDT: WDT_RESET, EXIT_DEEPSLEEP: DEEPSLEEP_RESET,
                 EXIT_PANIC: HARD_RESET, EXIT_SOFT: SOFT_RESET}
CONSOLE_BYTES = 1 << 20
START = "import sys;sys.path[:]=['.frozen'];import _sim_start"
DEFAULT_HEAP = 1024 * 1024
# The ESP32's RAM (ports/unix/variant/simram.c): the port's initial GC heap
# (ports/esp32/mpconfigport.h: MICROPY_GC_INITIAL_HEAP_SIZE) grown into the modelled RAM it
# shares with mbedTLS, WiFi, lwIP and thread stacks; the -X heapsize heap adds room for the
# simulator's own Python modules (C on the chip; bench/RESULTS.md: 25-27 KB), not charged.
ESP32_GC_INITIAL_HEAP = 56 * 1024
SIM_MODULES_HEAP = 28 * 1024


def esp32_ram(env=None):
    """Device() keywords for a device with the ESP32's RAM (and `env`)."""
    return {"heapsize": ESP32_GC_INITIAL_HEAP + SIM_MODULES_HEAP,
            "env": dict(env or {}, EPX_SIM_RAM=str(ESP32_GC_INITIAL_HEAP))}
TIMEOUT = 10.0
# Held while an executable is open for writing and while a firmware is forked and exec'd: a
# child forked meanwhile by another device's thread would inherit the writer's descriptor,
# and exec of that file fails with ETXTBSY (Text file busy).
_EXEC_LOCK = threading.Lock()


def die_with_parent():
    """In the child before exec: SIGKILL when the host process dies (no orphans even if the
    harness is killed); Linux only, harmless elsewhere."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SimTimeout(AssertionError):
    """A wait on a simulated device ran out; the message ends with its last console lines."""


LOST = {"ok": False, "error": "connection lost (device reset?)", "lost": True}


class DeviceReset(EpxError):
    """The firmware reset (or lost power) before it answered a request."""


class Device:
    def __init__(self, folder, name=None, medium=None, heapsize=DEFAULT_HEAP, on_console=None,
                 max_boots=30, console_lines=5000, env=None, mac=None):
        self.folder = os.path.abspath(folder)
        self.name = name or os.path.basename(self.folder)
        self.flash = Flash(os.path.join(self.folder, "flash.bin"))
        self.mac = (mac or "24a160" + hashlib.sha256(self.folder.encode()).hexdigest()[:6]).replace(":", "").lower()
        self.heapsize, self.on_console, self.max_boots = heapsize, on_console, max_boots
        self.extra_env = env if callable(env) else dict(env or {})  # or env(boot number)
        self.medium = medium
        self.console = collections.deque(maxlen=console_lines)  # (line number, boot, text)
        self.console_bytes = bytearray()  # the console as the UART sent it (the latest MB)
        self.console_bytes_seen = 0  # bytes before console_bytes[0]
        self.lines_seen = 0
        self.boots = []  # dicts, one per boot, as in boot.log
        self.events = []  # every event from the firmware, with "_boot" (its boot number)
        self.pins = {}  # output pin -> level, from pin events
        self.world = {"pins": {}, "models": [], "wifi": {}, "clock_scale": 1.0}
        self.ended = None  # why the run ended (None while it runs)
        self._serving = 0  # control connections being read
        self.t_us = 0  # last device clock seen
        self._cv = threading.Condition()
        self._wlock = threading.Lock()
        self._pending = {}  # request id -> answer (None while awaited)
        self._pending_conn = {}  # request id -> the connection it went out on
        self._next_id = 0
        self._conn = None
        self._proc = None
        self._power_cut = False
        self._stopping = False
        self._threads = []
        self._sockdir = None
        self._server = None
        if medium is not None:
            medium.join(self)

    # --- making devices ------------------------------------------------------------------

    @classmethod
    def create(cls, folder, app, files=None, nvs_csv=None, board=None, **kw):
        """A new device folder: erased flash, `app` (image bytes or file) in ota_0, the
        filesystem holding `files` ({path: text or bytes}) and optional NVS from a CSV."""
        os.makedirs(os.path.join(folder, "run"), exist_ok=True)
        flash = Flash.create(os.path.join(folder, "flash.bin"), **({"board": board} if board else {}))
        flash.write("ota_0", provision.read_bytes(app))
        provision.into_device(folder, files or {}, nvs_csv)
        if not os.path.exists(os.path.join(folder, "nvs.json")):
            with open(os.path.join(folder, "nvs.json"), "w") as f:
                f.write("{}\n")
        return cls(folder, **kw)

    @property
    def pid(self):
        """The firmware's process id while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def install(self, slot, app, boot=True):
        """Write an app image into `slot` and, like esp_ota_set_boot_partition, boot it next."""
        self.flash.write(slot, provision.read_bytes(app), erase=True)
        if boot:
            bootloader.set_boot(self.flash, slot)

    # --- running -----------------------------------------------------------------------

    def start(self):
        self._sockdir = tempfile.mkdtemp(prefix="epxsim")  # AF_UNIX paths are short
        self.ctl_path = os.path.join(self._sockdir, "ctl")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.ctl_path)
        self._server.listen(4)
        os.makedirs(os.path.join(self.folder, "run"), exist_ok=True)
        self._spawn(self._accept)
        self._spawn(self._supervise)
        return self

    def stop(self):
        """Kill the firmware and every helper; idempotent."""
        with self._cv:
            self._stopping = True
            if self.ended is None:
                self.ended = "stopped"
            self._cv.notify_all()
        self._kill()
        if self._server is not None:
            shut(self._server)
            self._server.close()
        conn = self._conn
        if conn is not None:
            shut(conn)
        for t in self._threads:
            t.join(5)
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
        if self.medium is not None:
            self.medium.leave(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def power_cycle(self):
        """Cut the power: the process dies, RTC memory is lost, the next boot is PWRON_RESET.
        A device whose run ended (at the REPL, asleep for good) boots again."""
        with self._cv:
            self._power_cut = True
            restart = self.ended is not None and not self._stopping
            if restart:
                self.ended = None
        self._kill()
        if restart:
            self._clear_rtc()
            self._spawn(self._supervise)

    def _clear_rtc(self):
        # RTC memory and the pad holds (gpio_hold_en) live in the RTC domain
        for name in ("rtc.bin", "hold.json"):
            path = os.path.join(self.folder, name)
            if os.path.exists(path):
                os.remove(path)

    def _start_rtc_clock(self, ticks_ms):
        """Power on: the RTC's wall clock starts at 2000-01-01 00:00:00 now (rtc_time.txt:
        wall clock minus device clock in us; machine.RTC().datetime() rewrites it)."""
        with open(os.path.join(self.folder, "rtc_time.txt"), "w") as f:
            f.write(f"{-ticks_ms * 1000}\n")

    def _spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True, name=f"{self.name}-{target.__name__}")
        self._threads.append(t)
        t.start()
        return t

    def _kill(self):
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _supervise(self):
        cause, wake, ticks_ms = PWRON_RESET, 0, self.t_us // 1000
        n = first = len(self.boots)
        while not self._stopping:
            n += 1
            if n - first > self.max_boots:
                self._end(f"boot loop: more than {self.max_boots} boots")
                return
            try:
                boot = bootloader.boot(self.flash)
            except EpxError as e:
                self._end(f"bootloader: {e}")
                return
            record = {"boot": n, "slot": boot.slot, "state": boot.state,
                      "version": boot.desc["version"], "reset_cause": cause,
                      "wake_reason": wake, "ticks_start_ms": ticks_ms, "actions": boot.actions}
            exe = self._extract(boot)
            info = {"reset_cause": cause, "wake_reason": wake, "slot": boot.slot,
                    "running_state": boot.state, "boot": n, "mac": self.mac}
            extra = self.extra_env(n) if callable(self.extra_env) else self.extra_env
            if cause == PWRON_RESET:
                self._start_rtc_clock(ticks_ms)
            env = dict(os.environ, EPX_SIM_DIR=self.folder, EPX_SIM_CTL=self.ctl_path,
                       EPX_SIM_BOOT=json.dumps(info), EPX_SIM_TICKS_START=str(ticks_ms), **extra)
            argv = [exe, "-X", f"heapsize={self.heapsize}", "-c", START]
            with self._cv:
                if self._stopping:
                    return
                self.t_us = ticks_ms * 1000
                self.boots.append(record)
                self._power_cut = False
                try:
                    with _EXEC_LOCK:
                        self._proc = subprocess.Popen(
                            argv, cwd=os.path.join(self.folder, "run"), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=die_with_parent)
                except OSError as e:
                    self._end(f"cannot run {exe}: {e}")
                    return
                self._cv.notify_all()
            self._read_console(self._proc, n)
            code = self._proc.wait()
            self._proc.stdin.close()
            if code in (0, EXIT_REPL):
                self._drain_control()  # what the boot said before it ended (its hello) counts
            sleep_ms = self._take_deepsleep()
            # The exit, a power cut and the end of the run are decided together: a test that
            # saw the exit and cuts the power either restarts an ended run or is the next boot.
            with self._cv:
                record["exit"] = code
                self._conn = None  # a request after the exit is seen goes to the next boot
                power_cut = self._power_cut
                if self._stopping or power_cut:
                    why = None
                elif code in (0, EXIT_REPL):
                    why = (f"firmware exited with {code} (main.py returned or an uncaught "
                           "exception: the device sits at the REPL)")
                elif code == EXIT_DEEPSLEEP and sleep_ms is None:
                    why = "deep sleep without a wake-up source (power_cycle() wakes it)"
                else:
                    why = None
                if why:
                    self._end(why)
                self._log_boot(record)
                self._cv.notify_all()
            if self._stopping or why:
                return
            ticks_ms = self.t_us // 1000
            if power_cut:
                cause, wake = PWRON_RESET, 0
                self._clear_rtc()
                continue
            cause = RESET_OF_EXIT.get(code, HARD_RESET)  # anything else is a panic
            wake = TIMER_WAKE if code == EXIT_DEEPSLEEP else 0
            if code == EXIT_DEEPSLEEP:
                ticks_ms += sleep_ms

    def _extract(self, boot):
        """The booted slot's executable at <device>/app-<slot>, rewritten only if it changed."""
        path = os.path.join(self.folder, f"app-{boot.slot}")
        digest = boot.desc["app_elf_sha256"]
        stamp = path + ".sha256"
        if not (os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == digest):
            tmp = path + ".tmp"
            with _EXEC_LOCK, open(tmp, "wb") as f:
                f.write(boot.exe)
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
            with open(stamp, "w") as f:
                f.write(digest)
        return path

    def _take_deepsleep(self):
        path = os.path.join(self.folder, "run", "deepsleep.json")
        try:
            with open(path) as f:
                data = json.load(f)
            os.remove(path)
        except (OSError, ValueError):
            return 0
        ms = data.get("ms") if isinstance(data, dict) else data
        return None if ms is None else int(ms)

    def _log_boot(self, record):
        with open(os.path.join(self.folder, "boot.log"), "a") as f:
            f.write(json.dumps(record) + "\n")

    def _drain_control(self, timeout=10):
        """Wait (bounded) until every control connection has been accepted and read to its
        end: an ended firmware's last lines come before the run is declared over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pending, _, _ = select.select([self._server], [], [], 0)
            except (OSError, ValueError):  # stopped meanwhile
                return
            with self._cv:
                if not pending and not self._serving:
                    return
                self._cv.wait(0.01)

    def _end(self, why):
        with self._cv:
            if self.ended is None:
                self.ended = why
            self._cv.notify_all()

    def _read_console(self, proc, boot):
        with open(os.path.join(self.folder, "console.log"), "ab") as log:
            for raw in iter(proc.stdout.readline, b""):
                log.write(raw)
                log.flush()
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._cv:
                    self.console_bytes += raw
                    if len(self.console_bytes) > CONSOLE_BYTES:
                        drop = len(self.console_bytes) - CONSOLE_BYTES
                        del self.console_bytes[:drop]
                        self.console_bytes_seen += drop
                    self.lines_seen += 1
                    self.console.append((self.lines_seen, boot, text))
                    self._cv.notify_all()
                if self.on_console:
                    self.on_console(self, text)
        proc.stdout.close()

    # --- control channel -----------------------------------------------------------------

    def _accept(self):
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._cv:
                old, self._conn = self._conn, conn
                self._serving += 1
            if old is not None:
                old.close()
            self._spawn(self._serve, conn)

    def _serve(self, conn):
        f = conn.makefile("rb")
        try:
            for line in f:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "id" in msg and "event" not in msg:
                    with self._cv:
                        if msg["id"] in self._pending:
                            self._pending[msg["id"]] = msg
                            self._cv.notify_all()
                else:
                    self._event(conn, msg)
        except OSError:
            pass
        finally:
            with self._cv:
                if self._conn is conn:
                    self._conn = None
                for k, v in self._pending.items():
                    if v is None and self._pending_conn.get(k) is conn:
                        self._pending[k] = LOST
                self._serving -= 1
                self._cv.notify_all()
            conn.close()

    def _event(self, conn, msg):
        kind = msg.get("event")
        if kind == "hello":  # the world goes out before anyone may send this boot a request
            with self._cv:
                world = json.loads(json.dumps(self.world))
            self._send(conn, dict(world, op="world"))
        with self._cv:
            msg["_boot"] = len(self.boots)
            self.events.append(msg)
            if isinstance(msg.get("t_us"), int):
                self.t_us = msg["t_us"]
            if kind == "hello":
                self.boots[-1]["hello"] = msg.get("boot")
            elif kind == "pin":
                self.pins[int(msg["pin"])] = msg["value"]
            elif kind == "model":
                for m in self.world["models"]:
                    if m.get("name") == msg.get("name"):
                        m["state"] = msg.get("state")
            self._cv.notify_all()
        if kind == "espnow.send":
            # the frame's fate, and the answer the sender's send callback waits for
            busy_ms = cb_ms = 0
            if self.medium is not None:
                acked, busy_ms, cb_ms = self.medium.sending(
                    self, msg["peer"], msg["msg"], msg.get("channel"), msg.get("key"))
            else:
                acked = msg["peer"] == BROADCAST
            self.post("espnow.sent", ok=acked, busy_ms=busy_ms, cb_ms=cb_ms)

    def _send(self, conn, msg):
        with self._cv:
            self._next_id += 1
            msg["id"] = self._next_id
        try:
            self._write(conn, msg)
        except OSError:
            return None
        return msg["id"]

    def _write(self, conn, msg):
        with self._wlock:  # whole lines: the medium, the hello handler and tests all write
            conn.sendall(json.dumps(msg).encode() + b"\n")

    def post(self, op, **args):
        """Send a request without waiting for its answer (False if no firmware is connected)."""
        conn = self._conn
        return conn is not None and self._send(conn, dict(args, op=op)) is not None

    def call(self, op, timeout=TIMEOUT, **args):
        """A control-channel request; its result, or EpxError with the firmware's error."""
        self.wait_connected(timeout)
        with self._cv:
            conn = self._conn
            self._next_id += 1
            ident = self._next_id
            # A firmware gone since (a reset) answers nothing: its reader marks the request lost.
            self._pending[ident] = None if conn is not None else LOST
            self._pending_conn[ident] = conn
        try:
            try:
                if conn is not None:
                    self._write(conn, dict(args, op=op, id=ident))
            except OSError:
                pass  # gone while it was written to: the reader marks it lost
            with self._cv:
                if not self._cv.wait_for(lambda: self._pending[ident] is not None, timeout):
                    raise self._timeout(f"{op}: no answer within {timeout} s")
                answer = self._pending[ident]
        finally:
            with self._cv:
                self._pending.pop(ident, None)
                self._pending_conn.pop(ident, None)
        if not answer.get("ok"):
            raise (DeviceReset if answer.get("lost") else EpxError)(f"{op}: {answer.get('error')}")
        self._remember(op, args, answer.get("result"))
        return answer.get("result")

    def _remember(self, op, args, result):
        """The world a reboot must find again."""
        with self._cv:
            if op == "pin.set":
                self.world["pins"][str(args["pin"])] = args["value"]
            elif op == "wifi.set":
                self.world["wifi"].update({k: v for k, v in args.items() if k != "drop"})
            elif op == "clock.scale":
                self.world["clock_scale"] = args["factor"]
            elif op == "model.attach":
                self.world["models"].append(dict(args, name=result))
            elif op == "pin.irq_timing":
                self.world.setdefault("irq", {}).update(args)
            elif op == "clock.now" and isinstance(result, int):
                self.t_us = result

    def advance(self, ms, timeout=None):
        """Walk the device clock `ms` forward in lockstep with the firmware: from deadline to
        deadline, each time until the firmware waits again (docs/simulator.md, "Device
        time"). A reset on the way ends the walk there: the next boot goes on from it. The
        walk's real duration grows with `ms` (20 ms of real time allowed per device second,
        and half a minute for a stuck firmware to be found so on a busy host)."""
        if timeout is None:
            timeout = 3 * TIMEOUT + ms / 50000
        try:
            self.call("clock.advance", ms=ms, timeout=timeout)
        except DeviceReset:
            pass

    def irq_timing(self, **us):
        """Scheduled IRQs as slow as a device's, in device microseconds (kept across
        reboots): latency_us (edge to handler), the VM's pauses gc_us (gc.collect()), tls_us
        (a TLS handshake), erase_us (per flash sector), write_us (per 256-byte page). The
        queue's state: {..., "queued": n, "dropped": ISRs that found it full}."""
        return self.call("pin.irq_timing", **us)

    # --- the soft AP: the host as a station that joins it --------------------------------

    def join_ap(self, password, station="host"):
        """Associate with the firmware's soft AP (WPA2: its password) as `station`; the
        station's address on the AP's network. EpxError when the AP is off, the password
        wrong or the AP full."""
        return self.call("ap.join", password=password, mac=station)

    def leave_ap(self, station="host"):
        self.call("ap.leave", mac=station)

    def ports(self):
        """{"tcp:80": host port, "udp:53": ...}: where the host reaches the firmware's bound
        sockets (each is bound on the host's loopback at a free port)."""
        return self.call("net.ports")

    def server_address(self, port, kind="tcp"):
        """(host, port) on the host of the firmware's server on its `port`; None if none."""
        found = self.ports().get(f"{kind}:{port}")
        return None if found is None else ("127.0.0.1", found)

    def portal_address(self):
        """The captive portal's HTTP server (the firmware's port 80), as the host reaches it."""
        return self.server_address(80)

    def dns_address(self):
        """The soft AP's DNS responder (the firmware's UDP port 53), as the host reaches it."""
        return self.server_address(53, "udp")

    # --- waiting -------------------------------------------------------------------------

    def _timeout(self, what):
        lines = [f"  [{b}] {t}" for _, b, t in list(self.console)[-25:]]
        state = f"; run ended: {self.ended}" if self.ended else ""
        return SimTimeout(f"{self.name}: {what}{state}\nlast console lines:\n" + "\n".join(lines))

    def _wait(self, ready, timeout, what):
        """Wait until ready() returns something true (under the lock); fail fast if the run
        ended and the condition cannot come true any more."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                value = ready()
                if value:
                    return value
                if self.ended is not None:
                    raise self._timeout(f"{what}: not reached")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._timeout(f"{what}: not within {timeout} s")
                self._cv.wait(left)

    def wait_connected(self, timeout=TIMEOUT):
        self._wait(lambda: self._conn is not None and self.boots and "hello" in self.boots[-1],
                   timeout, "control channel")

    def wait_boot(self, n, timeout=TIMEOUT):
        """The record of boot `n` (1-based) once its firmware has said hello."""
        return self._wait(lambda: len(self.boots) >= n and "hello" in self.boots[n - 1] and self.boots[n - 1],
                          timeout, f"boot {n}")

    def wait_exit(self, n, timeout=TIMEOUT):
        """The record of boot `n` once its process has ended (it carries the exit code)."""
        return self._wait(lambda: len(self.boots) >= n and "exit" in self.boots[n - 1] and self.boots[n - 1],
                          timeout, f"end of boot {n}")

    def wait_ended(self, timeout=TIMEOUT):
        """Why the run ended (at the REPL, asleep for good, stopped), once it has."""
        return self._wait(lambda: self.ended, timeout, "end of the run")

    def console_write(self, data):
        """Bytes to the device's console (UART0's RX: the firmware's sys.stdin), as a USB
        serial adapter sends them; False when no boot is running to take them (a reset
        loses them, as the UART's FIFO does)."""
        with self._cv:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # the boot ended meanwhile
            return False
        return True

    def console_bytes_mark(self):
        with self._cv:
            return self.console_bytes_seen + len(self.console_bytes)

    def wait_console_bytes(self, found, timeout=TIMEOUT, since=0, what="console bytes"):
        """found(bytes of the console from offset `since` on) -> a result, or None to wait."""
        def ready():
            start = max(0, since - self.console_bytes_seen)
            return found(bytes(self.console_bytes[start:]))
        return self._wait(ready, timeout, what)

    def console_mark(self):
        return self.lines_seen

    def wait_console(self, pattern, timeout=TIMEOUT, since=0, boot=None):
        """The first console line (numbered after `since`) matching `pattern`: a re.Match."""
        rx = re.compile(pattern)

        def ready():
            for number, b, text in self.console:
                if number > since and (boot is None or b == boot):
                    m = rx.search(text)
                    if m:
                        return m
            return None

        return self._wait(ready, timeout, f"console line /{pattern}/")

    def wait_event(self, predicate, timeout=TIMEOUT, since=0, what="event"):
        """The first event (index >= since) for which predicate(event) is true."""
        def ready():
            for e in self.events[since:]:
                if predicate(e):
                    return e
            return None

        return self._wait(ready, timeout, what)

    def pin_history(self, pin):
        """Every edge the firmware drove on output `pin`: [(value, t_us, boot)], resets included."""
        with self._cv:
            return [(e["value"], e.get("t_us"), e["_boot"]) for e in self.events
                    if e.get("event") == "pin" and int(e["pin"]) == pin]

    def wait_pin(self, pin, value, timeout=TIMEOUT, since=0):
        """The first `pin` event (index >= since) that drives `pin` to `value`."""
        return self.wait_event(lambda e: e.get("event") == "pin" and int(e["pin"]) == pin
                               and e["value"] == value, timeout, since, f"pin {pin} = {value}")

    def output(self, boot=None):
        """Console text (of one boot, or all that the ring still holds)."""
        return "\n".join(t for _, b, t in list(self.console) if boot is None or b == boot)

    def nvs(self):
        with open(os.path.join(self.folder, "nvs.json")) as f:
            return json.load(f)

    def files(self):
        """{path: bytes} of the device's littlefs (read while the firmware is not writing)."""
        return provision.lfs_files(self.flash.read("vfs"))
