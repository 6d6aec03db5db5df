"""The firmware side of the simulated ESP32 (ports/unix/modules), run as the bootloader
would run it, against a small control-channel server written here from docs/simulator.md.
The probe application is tests/firmware/simcheck (scenario picked with SIMCHECK)."""

import base64
import binascii
import errno
import hashlib
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from epx import build, partitions

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 10
EXIT_REPL, EXIT_RESET, EXIT_WDT, EXIT_DEEPSLEEP, EXIT_SOFT = 3, 10, 11, 12, 14
OTA_NEW, OTA_PENDING_VERIFY, OTA_VALID = 0, 1, 2


@pytest.fixture(scope="module")
def firmware():
    build.build_unix("simcheck")
    return build.unix_build_dir("simcheck") / "micropython"


def partition_table(csv):
    """The binary partition table ESP-IDF's gen_esp32part writes (entries, MD5 entry)."""
    table = b""
    for p in partitions.load(csv):
        table += struct.pack("<2sBBII16sI", b"\xaa\x50", partitions.TYPES[p.type],
                             partitions.SUBTYPES[p.type][p.subtype], p.offset, p.size,
                             p.name.encode(), 0)
    table += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table).digest()
    return table + b"\xff" * (partitions.TABLE_SIZE - len(table))


def otadata_entry(seq, state):
    crc = binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF
    return struct.pack("<I20sII", seq, b"\xff" * 20, state, crc)


class Device:
    """A device folder, its control socket and one run of the firmware."""

    def __init__(self, firmware, scenario, boot=None, world=None, env=None, acks=None):
        self.firmware = firmware
        # ESP-NOW: which frames the air acknowledges (the host's medium answers each send)
        self.acks = acks or (lambda frame: frame["peer"] == "ffffffffffff")
        self.dir = Path(tempfile.mkdtemp(prefix="epx-simfw-"))
        (self.dir / "run").mkdir()
        self.parts = {p.name: p for p in partitions.load(ROOT / "boards/EPX_ESP32/partitions.csv")}
        flash = bytearray(b"\xff" * partitions.FLASH_SIZE)
        flash[partitions.TABLE_OFFSET:partitions.TABLE_OFFSET + partitions.TABLE_SIZE] = \
            partition_table(ROOT / "boards/EPX_ESP32/partitions.csv")
        (self.dir / "flash.bin").write_bytes(flash)
        self.scenario = scenario
        self.boot = {"reset_cause": 1, "wake_reason": 0, "slot": "ota_0",
                     "running_state": "valid", "boot": 0, "mac": "240ac4000001", **(boot or {})}
        self.world = {"op": "world", "pins": {}, "models": [], "wifi": {}, "clock_scale": 1.0,
                      **(world or {})}
        self.env = env or {}
        self.proc = None

    def part(self, name):
        return self.parts[name]

    def flash(self, offset, n):
        with open(self.dir / "flash.bin", "rb") as f:
            f.seek(offset)
            return f.read(n)

    def write_flash(self, offset, data):
        with open(self.dir / "flash.bin", "r+b") as f:
            f.seek(offset)
            f.write(data)

    def start(self):
        self.events = queue.Queue()
        self.lines = queue.Queue()
        self.replies = {}
        self.reply_ready = threading.Condition()
        self.next_id = 0
        self.console = []
        self.ctl_path = str(self.dir / "ctl")
        if os.path.exists(self.ctl_path):
            os.unlink(self.ctl_path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.ctl_path)
        self.server.listen(1)
        self.server.settimeout(TIMEOUT)
        env = dict(os.environ, EPX_SIM_DIR=str(self.dir), EPX_SIM_CTL=self.ctl_path,
                   EPX_SIM_BOOT=json.dumps(self.boot), SIMCHECK=self.scenario, **self.env)
        cmd = [str(self.firmware), "-X", "heapsize=2097152", "-c",
               "import sys;sys.path[:]=['.frozen'];import _sim_start"]
        self.proc = subprocess.Popen(cmd, cwd=self.dir / "run", env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._console, daemon=True).start()
        self.conn, _ = self.server.accept()
        self.conn.settimeout(None)
        self.reader = self.conn.makefile("rb")
        hello = json.loads(self.reader.readline())
        assert hello["event"] == "hello" and hello["boot"]["slot"] == self.boot["slot"]
        self._send(dict(self.world, id=-1))
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._reply(-1)["ok"]
        return self

    def _console(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.console.append(line)
            if line.startswith("simcheck: "):
                self.lines.put(json.loads(line[len("simcheck: "):]))

    def _serve(self):
        for raw in self.reader:
            msg = json.loads(raw)
            if "id" in msg:
                with self.reply_ready:
                    self.replies[msg["id"]] = msg
                    self.reply_ready.notify_all()
            else:
                if msg.get("event") == "espnow.send":
                    self._send({"op": "espnow.sent", "ok": self.acks(msg), "id": 0})
                self.events.put(msg)

    def _send(self, msg):
        self.conn.sendall(json.dumps(msg).encode() + b"\n")

    def _reply(self, id):
        with self.reply_ready:
            assert self.reply_ready.wait_for(lambda: id in self.replies, TIMEOUT), self.why()
            return self.replies.pop(id)

    def request(self, op, **args):
        self.next_id += 1
        self._send(dict(args, op=op, id=self.next_id))
        reply = self._reply(self.next_id)
        assert reply["ok"], reply
        return reply["result"]

    def said(self, key):
        """The next simcheck line carrying `key`."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                fields = self.lines.get(timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no simcheck line with {key!r}; {self.why()}")
            if key in fields:
                return fields

    def event(self, kind, **match):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                e = self.events.get(timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind} event {match}; {self.why()}")
            if e["event"] == kind and all(e.get(k) == v for k, v in match.items()):
                return e

    def wait(self):
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the firmware did not exit; {self.why()}")

    def why(self):
        return "console:\n" + "\n".join(self.console[-20:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.conn.close()
            self.server.close()
            self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def device(firmware):
    made = []

    def make(scenario, **kw):
        d = Device(firmware, scenario, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.remove()


def boot_again(d, scenario=None, **boot):
    d.stop()
    d.scenario = scenario or d.scenario
    d.boot.update(boot)
    return d.start()


# --- storage ---------------------------------------------------------------------------

def test_nvs_missing_key_and_persistence(device):
    d = device("nvs").start()
    assert d.said("missing")["missing"] == [-0x1102, "ESP_ERR_NVS_NOT_FOUND"]
    assert d.said("short")["short"] == [-0x110C, "ESP_ERR_NVS_INVALID_LENGTH"]
    assert d.said("wrong_type")["wrong_type"] == [-0x1102, "ESP_ERR_NVS_NOT_FOUND"]
    assert d.said("boots") == {"boots": 0, "blob": [0, 1, 97, 98, 99]}
    assert d.wait() == EXIT_REPL
    stored = json.loads((d.dir / "nvs.json").read_text())["simcheck"]
    assert stored["boots"] == ["i32", 1]
    assert base64.b64decode(stored["blob"][1]) == b"\x00\x01abc"
    boot_again(d, reset_cause=2)
    assert d.said("boots")["boots"] == 1


def test_nvs_raises_as_the_port(device):
    d = device("nvs_strict").start()
    got = d.said("errors")
    e = got["errors"]
    # mp_obj_get_int into int32_t; mp_obj_str_get_str; mp_get_buffer_raise (py/obj.c)
    assert e["i32_max"] is None
    assert e["i32_over"] == e["i32_under"] == ["OverflowError", "overflow converting long int to machine word"]
    assert e["i32_float"] == ["TypeError", "can't convert float to int"]
    assert e["i32_str"] == ["TypeError", "can't convert str to int"]
    assert e["key_int"] == ["TypeError", "can't convert 'int' object to str implicitly"]
    assert e["blob_int"] == e["into_bytes"] == ["TypeError", "object with buffer protocol required"]
    # ESP-IDF's NVS (esp_err.h codes): keys and namespaces of 15 characters at most, a blob
    # of min(pages - 1, 127) * 4000 bytes (the board's nvs partition has 6 pages)
    assert e["key_15"] is None
    assert e["key_16"] == e["ns_16"] == ["OSError", -0x1109, "ESP_ERR_NVS_KEY_TOO_LONG"]
    assert e["blob_max"] is None
    assert e["blob_over"] == ["OSError", -0x110E, "ESP_ERR_NVS_VALUE_TOO_LONG"]
    assert e["into_short"] == ["OSError", -0x110C, "ESP_ERR_NVS_INVALID_LENGTH"]
    # the value kept is the last that fit; a read compares the first 15 characters
    assert got["big"] == 0x7FFFFFFF and got["k15"] == 15


def test_machine_freq_as_strict_as_the_port(device):
    """machine.freq: the whole MHz of an int that fits a machine word (C division), one of
    20, 40, 80, 160, 240 (ports/esp32/modmachine.c:mp_machine_set_freq), at most one
    positional argument (extmod/modmachine.c); a refused value leaves the clock as it was."""
    got = device("freq_strict").start().said("freq")["freq"]
    refused = ["ValueError", "frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz"]
    assert got["hz_80"] == [None, 80000000]
    assert got["hz_240_and_change"] == [None, 240000000]
    assert got["hz_100"] == refused + [240000000]
    assert got["hz_just_under_80"] == refused + [240000000]
    assert got["mhz_not_hz"] == refused + [240000000]
    assert got["negative"] == refused + [240000000]
    # mp_obj_get_int (py/obj.c): no float, nothing wider than the ESP32's 32-bit word
    assert got["float"] == ["TypeError", "can't convert float to int", 240000000]
    assert got["over_a_word"] == ["OverflowError", "overflow converting long int to machine word",
                                  240000000]
    # MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(machine_freq_obj, 0, 1, ...) (py/argcheck.c): the
    # port says "function doesn't take keyword arguments", a Python function names the key
    assert got["keyword"][0] == "TypeError" and got["keyword"][-1] == 240000000
    assert got["two"] == ["TypeError", "function expected at most 1 arguments, got 2", 240000000]


def test_blank_otadata_refuses_mark_valid(device):
    d = device("blank_otadata").start()
    assert d.said("blank")["blank"] == [1, "ESP_FAIL"]
    assert d.flash(d.part("otadata").offset, 8192) == b"\xff" * 8192


def test_partitions_and_littlefs(device):
    d = device("partition").start()
    got = d.said("vfs")
    vfs = d.part("vfs")
    assert got["vfs"] == [1, 0x81, vfs.offset, vfs.size, "vfs", False]
    assert (got["running"], got["next"], got["ok"]) == ("ota_0", "ota_1", True)
    assert got["nor"] == [0x5A & 0x0F, 0x5A & 0xF0]
    assert got["blocks"] == vfs.size // 4096 and got["apps"] == ["ota_0", "ota_1"]
    assert got["hello"] == "x" and got["files"] == ["boot.py", "hello.txt"]
    assert d.wait() == EXIT_REPL
    ota1 = d.part("ota_1").offset
    assert d.flash(ota1 + 4096, 12) == b"\x5a" * 10 + bytes([0x5A & 0x0F, 0x5A & 0xF0])
    assert d.flash(vfs.offset + 8, 8) == b"littlefs"
    boot_again(d)
    assert d.said("hello")["hello"] == "xx"


def test_set_boot_and_mark_valid_write_otadata(device):
    d = device("set_boot").start()
    assert d.said("invalid")["invalid"] == [-0x1503, "ESP_ERR_OTA_VALIDATE_FAILED"]
    d.stop()
    # A valid image in ota_1 (checked as esptool would); the firmware selects it.
    from esptool.bin_image import ESP32FirmwareImage, ImageSegment

    image = ESP32FirmwareImage()
    image.segments = [ImageSegment(0x3F400020, b"\x32\x54\xcd\xab" + bytes(252))]
    image.append_digest = True
    image_path = d.dir / "app.bin"
    image.save(str(image_path))
    d.write_flash(d.part("ota_1").offset, image_path.read_bytes())
    otadata = d.part("otadata").offset
    d.write_flash(otadata, otadata_entry(1, OTA_VALID))
    boot_again(d, "set_boot")
    assert d.said("ready")
    d.stop()
    assert d.flash(otadata, 32) == otadata_entry(1, OTA_VALID)
    assert d.flash(otadata + 4096, 32) == otadata_entry(2, OTA_NEW)
    # The bootloader then boots ota_1 pending verification; the app marks itself valid.
    d.write_flash(otadata + 4096, otadata_entry(2, OTA_PENDING_VERIFY))
    boot_again(d, "mark_valid", slot="ota_1", running_state="pending_verify")
    assert d.said("boot")["boot"] == "ota_1"
    assert d.wait() == EXIT_REPL
    assert d.flash(otadata + 4096, 32) == otadata_entry(2, OTA_VALID)


# --- resets ----------------------------------------------------------------------------

def test_watchdog_expiry_exits_with_wdt_code(device):
    d = device("wdt").start()
    d.said("fed")
    d.request("clock.advance", ms=5000)
    assert d.wait() == EXIT_WDT
    assert d.event("reset")["cause"] == "wdt"


def test_the_watchdog_counts_device_time_only(device):
    d = device("wdtloop").start()
    d.said("armed")
    # The host stops the firmware for longer than the watchdog's 2 s of real time (as a busy
    # host may): no device time passed for it, the device is not reset.
    os.kill(d.proc.pid, signal.SIGSTOP)
    threading.Event().wait(3)  # real time passing is what is tested, not a synchronisation
    os.kill(d.proc.pid, signal.SIGCONT)
    d.request("clock.advance", ms=10000)  # and 10 s of device time, fed all along
    assert d.proc.poll() is None, d.why()
    # A loop that stops feeding is reset 2 s of device time after its last feed, not a
    # moment sooner, however long that takes in real time (device time nearly stands still).
    d.request("clock.scale", factor=1e-6)
    d.request("pin.set", pin=4, value=1)
    d.request("clock.advance", ms=600)
    fed = d.said("stopped")["stopped"]
    now = d.request("clock.now") // 1000
    d.request("clock.advance", ms=fed + 2000 - now - 2)
    assert d.proc.poll() is None, d.why()
    d.request("clock.advance", ms=3)
    assert d.wait() == EXIT_WDT
    assert fed + 1999 <= d.event("reset", cause="wdt")["t_us"] // 1000 <= fed + 2000


def test_deepsleep_exit_code_and_duration(device):
    d = device("deepsleep", boot={"reset_cause": 4, "wake_reason": 4}).start()
    assert d.said("cause") == {"cause": 4, "wake": 4}
    assert d.wait() == EXIT_DEEPSLEEP
    assert json.loads((d.dir / "run" / "deepsleep.json").read_text()) == {"ms": 60000}
    assert d.event("reset")["cause"] == "deepsleep"


def test_reset_exit_code_and_rtc_memory(device):
    d = device("reset").start()
    assert d.said("rtc")["rtc"] == []
    assert d.said("too_long")["too_long"] == "buffer too long"
    assert d.wait() == EXIT_RESET
    assert d.event("reset")["cause"] == "reset"
    assert (d.dir / "rtc.bin").read_bytes() == b"r"
    boot_again(d, reset_cause=2)
    assert d.said("rtc")["rtc"] == [ord("r")]
    assert d.wait() == EXIT_RESET
    assert (d.dir / "rtc.bin").read_bytes() == b"rr"


# --- peripherals and clock -------------------------------------------------------------

def test_a_held_pad_keeps_its_level(device):
    d = device("hold").start()
    assert d.said("held") == {"held": 1, "released": 0}
    assert d.wait() == EXIT_RESET
    # gpio_hold_en lives in the RTC domain: the reset keeps it
    boot_again(d, reset_cause=2)
    assert d.said("after_reset")["after_reset"] == [1, 1, 1]
    assert d.wait() == EXIT_DEEPSLEEP
    # deep sleep keeps the RTC pad (GPIO 25) held; digital pads (5, 18) only with
    # esp32.gpio_deep_sleep_hold(True)
    boot_again(d, reset_cause=4, wake_reason=4)
    assert d.said("after_sleep")["after_sleep"] == [0, 0, 1]
    # kept with rtc.bin, which a power cycle clears (epx.sim.Device removes both)
    assert json.loads((d.dir / "hold.json").read_text())["pins"].keys() == {"25"}


def test_a_write_to_a_held_pad_is_no_edge(device):
    d = device("hold").start()
    d.said("held")
    edges = []
    while True:
        e = d.event("pin", pin=5)
        edges.append(e["value"])
        if len(edges) == 3:
            break
    # value=1 (held), the write of 0 is no edge; release applies 0; hold again at 1
    assert edges == [1, 0, 1]


def test_pin_irq_on_pin_set_and_output_events(device):
    d = device("pins").start()
    assert d.said("ready")["ready"] == 1
    d.request("pin.set", pin=4, value=0)
    assert d.said("irq") == {"irq": 1, "value": 0}
    d.request("pin.set", pin=4, value=1)  # rising: not a trigger
    d.request("pin.set", pin=4, value=0)
    assert d.said("irq") == {"irq": 2, "value": 0}
    assert d.said("done")
    assert d.event("pin", pin=2, value=1)["t_us"] <= d.event("pin", pin=2, value=0)["t_us"]
    assert d.request("pin.get", pin=2) == 0 and d.request("pin.get", pin=4) == 0


def test_i2c_model_read_and_write(device):
    model = {"bus": "i2c0", "model": "I2CRegisters", "addr": 0x40,
             "args": {"regs": {"16": [0x12, 0x34]}}}
    d = device("i2c", world={"models": [model]}).start()
    assert d.said("scan")["scan"] == [0x40]
    assert d.said("absent")["absent"] == [19]  # ENODEV
    assert d.said("regs")["regs"] == [0x12, 0x34]
    d.said("written")
    assert d.request("model.call", name="I2CRegisters@i2c0:64", method="get", args=[0x20, 2]) == [7, 8]
    d.request("model.call", name="I2CRegisters@i2c0:64", method="fail")
    assert d.said("stuck")["stuck"] == errno.ETIMEDOUT


def test_clock_advance_shows_in_ticks_ms(device):
    d = device("clock").start()
    t0 = d.said("t")["t"]
    d.request("clock.advance", ms=3_600_000)
    while d.said("t")["t"] - t0 < 3_600_000:  # said() fails after TIMEOUT
        pass
    assert d.request("clock.now") >= 3_600_000_000


# A peer in a process of its own that answers one line "ask" after `delay` seconds: asleep
# (time.sleep), on an event loop's timer (asyncio), or computing.
SLOW_PEER = r"""
import asyncio, socket, sys, time
kind, delay = sys.argv[1], float(sys.argv[2])
if kind == "timer":
    async def serve(reader, writer):
        await reader.readline()
        asyncio.get_running_loop().call_later(delay, writer.write, b"answer\n")
        await reader.read()
    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()
    asyncio.run(main())
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
f = conn.makefile("rb")
f.readline()
if kind == "sleep":
    time.sleep(delay)
else:
    end = time.monotonic() + delay
    while time.monotonic() < end:
        pass
conn.sendall(b"answer\n")
f.read()
"""


def ask_in_a_walk(device, kind, delay):
    """What the device heard, in how many device ms, from a slow peer it asks in a walk."""
    peer = subprocess.Popen([sys.executable, "-c", SLOW_PEER, kind, str(delay)],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(peer.stdout.readline())
        d = device("answer", world={"wifi": {"ssid": "epx", "password": "secret"}},
                   env={"SIMCHECK_PORT": str(port)}).start()
        d.said("connected")
        d.request("clock.advance", ms=3_600_000 + 10_000)
        return d.said("answered")
    finally:
        peer.kill()
        peer.wait()


@pytest.mark.parametrize("kind", ["sleep", "timer", "busy"])
def test_a_walk_waits_for_a_peer_that_answers_in_its_grace(device, kind):
    # Each peer has read the question and is not quiet (asleep with a near timer, or
    # runnable): the walk holds device time until its answer, 50 ms of real time later.
    said = ask_in_a_walk(device, kind, 0.05)
    assert said["answered"] == "answer\n" and said["ms"] < 5000, said


def test_a_walk_moves_on_from_an_answer_later_than_its_grace(device):
    # The same check on an answer 2 s late, past the 200 ms grace: the wait runs out.
    said = ask_in_a_walk(device, "sleep", 2.0)
    assert said["answered"] is None and said["ms"] >= 5000, said


def test_control_answers_while_main_is_busy(device):
    d = device("busy").start()
    d.said("busy")
    state = d.request("state")
    assert state["mem_free"] > 0
    assert d.request("pin.get", pin=5) == 0


# --- radio -----------------------------------------------------------------------------

def test_wlan_status_and_sockets_follow_the_wifi_world(device):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    d = device("net", world={"wifi": {"ssid": "epx", "password": "other"}},
               env={"SIMCHECK_PORT": str(port)}).start()
    assert d.said("dns_down")["dns_down"] == [-202]
    got = d.said("status")
    assert got == {"status": 202, "mac": "240ac4000001"}  # STAT_WRONG_PASSWORD
    d.request("wifi.set", password="secret")
    conn, _ = listener.accept()
    assert conn.makefile("rb").readline() == b"hello\n"
    assert d.said("connected")["connected"] == ["127.0.0.1", port]
    d.request("wifi.set", ap=False, drop=True)
    assert d.said("write")["write"] == 103  # ECONNABORTED
    assert d.said("lost")["lost"] == 1001  # STAT_CONNECTING: reason 200 is not mapped
    assert d.said("status")["status"] == 201  # STAT_NO_AP_FOUND
    conn.close()
    listener.close()


def test_espnow_send_and_deliver(device):
    # The air acknowledges frames to ...02 (in range) and broadcasts, not those to ...03.
    d = device("espnow", acks=lambda f: f["peer"] in ("240ac4000002", "ffffffffffff")).start()
    assert d.said("unknown")["unknown"] == [-0x3069, "ESP_ERR_ESPNOW_NOT_FOUND"]
    sent = d.event("espnow.send")
    assert (sent["peer"], base64.b64decode(sent["msg"])) == ("240ac4000002", b"ping")
    # send() returns the MAC-layer ack of a sync send; sync=False returns True at once
    got = d.said("sent")
    assert got["sent"] == [True, False, True, True]
    assert got["stats"] == [4, 4, 2]  # tx packets, responses, failures
    assert d.request("espnow.deliver", peer="240ac4000002",
                     msg=base64.b64encode(b"pong").decode(), rssi=-40) is True
    assert d.said("got") == {"got": "pong", "host": "240ac4000002"}


def test_soft_reset_on_system_exit(device):
    d = device("soft", boot={"reset_cause": 5}).start()
    assert d.said("cause")["cause"] == 5  # machine.SOFT_RESET
    assert d.wait() == EXIT_SOFT


def test_pulse_train_into_an_irq_pin(device):
    d = device("pulses").start()
    d.said("ready")
    d.request("clock.scale", factor=10)
    d.request("pin.pulses", pin=27, hz=50, count=100, jitter=0.1, width_us=2000)
    # 100 pulses at 50 Hz: 2 s of device time, 0.2 s of real time at scale 10.
    while d.said("pulses")["pulses"] < 100:
        pass


def test_uart_models(device):
    models = [{"bus": "uart2", "model": "UARTScript", "args": {"script": {"0104": "aabbcc"}}},
              {"bus": "uart1", "model": "UARTScript", "args": {"script": {"00": "00"}}}]
    d = device("uart", world={"models": models}).start()
    assert d.said("reply")["reply"] == [0xAA, 0xBB, 0xCC]
    assert d.said("empty")["empty"] is None
    d.request("model.call", name="UARTScript@uart1", method="feed", args=[b"hi\n".hex()])
    assert d.said("line")["line"] == "hi\n"
    d.said("sent")
    assert d.request("model.call", name="UARTScript@uart1", method="sent") == b"ok\n".hex()


def test_pulses_overdue_after_a_clock_jump_are_not_lost(device):
    d = device("pulses").start()
    d.said("ready")
    # 30 s of device time; each pulse still lasts its width (1 ms) after the jump.
    d.request("pin.pulses", pin=27, hz=10, count=300, width_us=1000)
    d.request("clock.advance", ms=40_000)
    while d.said("pulses")["pulses"] < 300:
        pass


def test_adc_reads_a_voltage_model(device):
    model = {"bus": "pins", "model": "Voltage", "args": {"pin": 35, "uv": 1_850_000}}
    d = device("adc", world={"models": [model]}).start()
    assert abs(d.said("uv")["uv"] - 1_850_000) < 1000
    d.request("model.call", name="Voltage@pins", method="set", args=[3_200_000])
    assert d.said("raw") == {"uv": 3_100_000, "raw": 4095}  # clipped at full scale
