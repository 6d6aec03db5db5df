"""Diagnostics on cmnd/<n>/OTA from the host (`epx cmd`), signed as epx.diag expects:

    <command> [args] <counter> <hmac>
    hmac = hex HMAC-SHA256(ota_key, "<mqttname> <command> [args] <counter>")

The counter is an unsigned 64-bit number above the last one the device accepted (it
refuses anything outside 0..2**64-1 rather than wrap it); the default is the Unix time in
seconds, which firmware before the 64-bit counters also takes (an i32 there)."""

import hashlib
import hmac
import threading
import time

from .errors import EpxError

COUNTER_MAX = 2**64 - 1  # epx.replay on the device
# A device reads MQTT packets of 1024 bytes at most (epx.mqtt): the topic of a 32-character
# name, the packet id, a 20-digit counter and the MAC leave this much for a command.
CONFIG_TEXT_MAX = 1024 - 2 - len("cmnd//OTA") - 32 - 2 - 1 - 20 - 1 - 64


# The device's built-in commands (epx.diag._BUILTIN); a profile may add its own.
COMMANDS = ("stats", "getversion", "partitions", "log", "msg_reboot", "msg_exception",
            "keepversion", "reboot", "msg_rm", "resetstats", "config")


# What a device reports on stat/<n>/Log by itself as it boots (epx.app): never a reply.
BOOT_REPORTS = ("boot ", "safe mode: ", "reboot: ", "exception: ", "config: candidate")


def refused(reply):
    """Whether a reply on stat/<n>/Log is the device refusing the command: a bad signature or
    counter (`reboot: refused: bad signature`), a config it will not take (`config: refused:
    ...`) or a command it does not know (`OTA: bad command ...`)."""
    import re

    return re.match(r"\S+: (refused|bad command)\b", reply) is not None


def counter_now():
    return int(time.time())


def sign(key, name, text, counter):
    """The signed payload of text for device name (epx.diag.sign on the device)."""
    if not 0 <= counter <= COUNTER_MAX:
        raise EpxError(f"counter {counter}: must be 0..2**64-1")
    body = f"{text} {counter}"
    mac = hmac.new(key.encode(), f"{name} {body}".encode(), hashlib.sha256).hexdigest()
    return f"{body} {mac}"


def broker_address(text, default_port=1883):
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    try:
        return host, int(port)
    except ValueError:
        raise EpxError(f"--broker {text}: expected HOST[:PORT]")


def broker_client(role, user=None, password=None, cafile=None):
    """A paho-mqtt client of this tool (client id epx-<role>-<ns>) with the broker's
    credentials and CA, not yet connected."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"epx-{role}-{time.time_ns()}")
    if user:
        client.username_pw_set(user, password)
    if cafile:
        client.tls_set(ca_certs=cafile)
    return client


def send(host, port, name, text, key=None, counter=None, timeout=10.0, user=None,
         password=None, cafile=None, follow=None):
    """Publish text (signed when key is given) on cmnd/<name>/OTA and return the device's
    reply: the first message on stat/<name>/Log after it. EpxError on timeout.
    follow(reply) -> (seconds, outcome(message) -> bool) or None: then wait as long for a
    later Log message that `outcome` accepts, and return (reply, that message or None)."""
    if key is not None and not key:
        raise EpxError("--key is empty (is $OTA_KEY set?)")
    payload = sign(key, name, text, counter_now() if counter is None else counter) if key else text
    log_topic, lwt_topic = f"stat/{name}/Log", f"stat/{name}/LWT"
    replies, state = [], []
    ready, got, got_more = threading.Event(), threading.Event(), threading.Condition()
    client = broker_client("cmd", user, password, cafile)

    def on_connect(c, userdata, flags, reason, properties=None):
        if reason.is_failure:
            replies.append(None)
            ready.set()
        else:
            c.subscribe([(log_topic, 1), (lwt_topic, 1)])

    def on_message(c, userdata, msg):
        if msg.topic == lwt_topic:
            state.append(msg.payload.decode("utf-8", "replace"))
        elif not msg.retain and ready.is_set():
            text = msg.payload.decode("utf-8", "replace")
            with got_more:
                if replies or not text.startswith(BOOT_REPORTS) or refused(text):
                    replies.append(text)
                got_more.notify_all()
            got.set() if replies else None

    client.on_connect = on_connect
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise EpxError(f"broker {host}:{port}: {e.strerror or e}")
    client.loop_start()
    try:
        if not ready.wait(timeout) or replies:
            raise EpxError(f"broker {host}:{port}: no subscription within {timeout:g} s")
        client.publish(f"cmnd/{name}/OTA", payload, qos=1).wait_for_publish(timeout)
        if not got.wait(timeout):
            if not state:  # a device that ever connected left its retained LWT
                raise EpxError(f"{name}: no such device on {host}:{port} (no {lwt_topic}; "
                               f"`epx devices --broker {host}:{port}` lists them)")
            raise EpxError(f"{name}: no reply on {log_topic} within {timeout:g} s "
                           f"(the device is {state[-1]})")
        if follow is None:
            return replies[0]
        then = follow(replies[0])
        if then is None:
            return replies[0], None
        seconds, outcome = then
        with got_more:
            got_more.wait_for(lambda: any(outcome(r) for r in replies[1:]), seconds)
            return replies[0], next((r for r in replies[1:] if outcome(r)), None)
    finally:
        client.loop_stop()
        client.disconnect()


# epx.confcmd.SEAL_LABEL: the sealing key is HMAC-SHA256(ota_key, this).
SEAL_LABEL = b"\x00epx config seal"


def seal(key, text):
    """text sealed for a device with ota_key `key` (epx.confcmd.unseal): base64 of a fresh
    16-byte IV and the AES-256-CBC ciphertext of the PKCS#7-padded text."""
    import base64
    import os

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    aes = Cipher(algorithms.AES(hmac.digest(key.encode(), SEAL_LABEL, "sha256")), modes.CBC(iv))
    enc = aes.encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode()


def config_command(verb, args, key=None):
    """The text of a remote config request (epx.confcmd on the device): get; set with
    key value pairs (one JSON object, values may hold spaces, sealed under the device's
    ota_key `key`: they may be secrets); unset with keys."""
    import json

    if verb == "get" and not args:
        text = "config get"
    elif verb == "set" and args and len(args) % 2 == 0:
        if not key:
            raise EpxError("config set: the values are sealed under the device's ota_key: give --key")
        text = "config set " + seal(key, json.dumps(dict(zip(args[::2], args[1::2])),
                                                    separators=(",", ":")))
    elif verb == "unset" and args:
        text = "config unset " + " ".join(args)
    else:
        raise EpxError("config: expected get, set KEY VALUE [KEY VALUE ...] or unset KEY [KEY ...]")
    if len(text.encode()) > CONFIG_TEXT_MAX:
        raise EpxError(f"config: the request is {len(text.encode())} bytes, a device takes "
                       f"{CONFIG_TEXT_MAX}: change fewer keys at a time")
    return text
