# Diagnostics on cmnd/<n>/OTA, answered on stat/<n>/Log. Commands that change the device
# (reboot, msg_rm, resetstats, and any registered with auth=True) must be signed:
#     <command> [args] <counter> <hmac>
# hmac = hex HMAC-SHA256(ota_key, "<mqttname> <command> [args] <counter>"), counter in
# decimal digits, below 2**64 and above the last one accepted (epx.replay: a captured message
# cannot be replayed). Without ota_key in config.txt they are refused.
from epx import config, crash, log, loop, ota, replay
from epx.nvram import NVRAM

OTA_KEY = ota.OTA_KEY

# Built in, answered by _builtin(); the signed ones change the device.
_BUILTIN = ("reboot", "msg_reboot", "msg_exception", "msg_rm", "stats", "resetstats",
            "getversion", "partitions", "keepversion", "log", "config")
_SIGNED = ("reboot", "msg_rm", "resetstats", "config")
_commands = {}  # registered by the profile: name -> (fn, auth)


def command(name, fn, auth=False):
    """fn(args) -> reply text (or None) for `name [args]` on cmnd/<n>/OTA."""
    _commands[name] = (fn, auth)


def install(safe_mode):
    """Answer on cmnd/<n>/OTA; safe_mode() tells the update check the device is not healthy."""
    from epx import mqtt

    replay.commands().adopt()
    mqtt.sub("OTA", _on_command)
    ota.start(safe_mode)


def _on_command(text):
    from epx import mqtt

    if text[:1] == "{":
        return ota.request(text)
    words = text.split()
    if not words:
        raise ValueError("empty")
    name = words[0]
    entry = _commands.get(name)
    if entry is not None:
        fn, auth = entry
    elif name in _BUILTIN:
        fn, auth = None, name in _SIGNED
    else:
        raise ValueError("unknown command (%s)" % " ".join(sorted(set(_BUILTIN) | set(_commands))))
    if auth:
        try:
            args = _authenticate(text)[len(name):].strip()
        except ValueError as e:  # a refusal, not a mistake in the command: said so
            return mqtt.report("%s: %s" % (name, e))
    else:
        args = " ".join(words[1:])
    try:
        reply = _builtin(name, args) if fn is None else fn(args)
    except ValueError as e:
        if not auth:
            raise
        # named, not echoed: the arguments of a signed command may hold secrets
        reply = "OTA: bad command %r: %s" % (name, e)
    if reply is not None:
        mqtt.report(reply)


def sign(key, name, text, counter):
    """The signed form of text (also what the host tools compute)."""
    from epx import hmac

    body = "%s %d" % (text, counter)
    mac = hmac.HMAC(key.encode(), ("%s %s" % (name, body)).encode()).hexdigest()
    return "%s %s" % (body, mac)


def _authenticate(text):
    # -> the command as sent, without counter and MAC; ValueError when not genuine.
    from epx import hmac, mqtt

    if not OTA_KEY.value:
        raise ValueError("refused: no ota_key configured")
    body, _, mac = text.rpartition(" ")
    words = body.split()
    if len(words) < 2:
        raise ValueError("refused: not signed")
    expect = hmac.HMAC(OTA_KEY.value.encode(),
                       ("%s %s" % (mqtt.NAME.value, body)).encode()).hexdigest()
    if not hmac.compare_digest(expect.encode(), mac.encode()):
        raise ValueError("refused: bad signature")
    try:
        replay.commands().take(replay.parse(words[-1]))
    except replay.Refused as e:
        raise ValueError("refused: %s" % e)
    return body.rstrip()[: -len(words[-1])].strip()


def _read(name):
    try:
        with open(name) as f:
            return f.read().strip()
    except OSError:
        return None


def _reboot_after(reply, why):
    # The reply first (the reboot follows once it is sent, or 5 s at most).
    from epx import mqtt

    mqtt.publish("Log", reply, done=lambda: loop.later(500, lambda: crash.reboot(why)))
    loop.later(5000, lambda: crash.reboot(why))


def _builtin(name, args):
    # One function rather than a table of them: nothing of it stays in the heap.
    if name == "reboot":
        _reboot_after("rebooting", "command reboot")
    elif name == "config":
        from epx import confcmd, confstore

        if args == "get":
            return confcmd.get(confcmd.current())
        text, what = confcmd.change(args)
        errs = confstore.store(text)
        if errs:
            return "config: refused: " + "; ".join(errs)
        _reboot_after("config: trying %s; back to the previous config unless MQTT is up on it "
                      "within %d min" % (what, confstore.TRIAL_MIN.value), "config: a candidate to try")
    elif name == "msg_reboot":
        return _read(crash.REBOOT_FILE) or "no reboot reason"
    elif name == "msg_exception":
        return _read(crash.EXCEPTION_FILE) or "no exception"
    elif name == "msg_rm":
        import os

        for f in (crash.REBOOT_FILE, crash.EXCEPTION_FILE):
            try:
                os.remove(f)
            except OSError:
                pass
        return "removed %s and %s" % (crash.REBOOT_FILE, crash.EXCEPTION_FILE)
    elif name == "stats":
        from epx import mqtt, net

        return "connlost events net %d mqtt %d" % (net.lost(), mqtt.lost())
    elif name == "resetstats":
        nv = NVRAM("epx")
        nv.set_int("netlost", 0)
        nv.set_int("mqttlost", 0)
        return "stats reset"
    elif name == "getversion":
        from epx.version import VERSION

        return VERSION
    elif name == "partitions":
        from esp32 import Partition

        run = Partition(Partition.RUNNING)
        nxt = run.get_next_update()
        return "running %s, next %s" % (run.info()[4], nxt.info()[4])
    elif name == "keepversion":
        ota.mark_valid()
        return "kept"
    elif name == "log":
        return "\n".join(log.lines())
