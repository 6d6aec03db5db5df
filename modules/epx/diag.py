# Diagnostics on cmnd/<n>/OTA, answered on stat/<n>/Log. Commands that change the device
# (reboot, msg_rm, resetstats, and any registered with auth=True) must be signed:
#     <command> [args] <counter> <hmac>
# hmac = hex HMAC-SHA256(ota_key, "<mqttname> <command> [args] <counter>"), counter a
# decimal integer above the last one accepted (kept in NVS: a captured message cannot be
# replayed). Without ota_key in config.txt they are refused.
import os

from epx import config, crash, hmac, log, loop, ota
from epx.nvram import NVRAM

OTA_KEY = config.key("ota_key", str, None)

_commands = {}


def command(name, fn, auth=False):
    """fn(args) -> reply text (or None) for `name [args]` on cmnd/<n>/OTA."""
    _commands[name] = (fn, auth)


def install():
    from epx import mqtt

    mqtt.sub("OTA", _on_command)
    ota.start()


def _on_command(text):
    from epx import mqtt

    if text[:1] == "{":
        return ota.request(text)
    words = text.split()
    if not words:
        raise ValueError("empty")
    entry = _commands.get(words[0])
    if entry is None:
        raise ValueError("unknown command (%s)" % " ".join(sorted(_commands)))
    fn, auth = entry
    if auth:
        words = _authenticate(text)
    reply = fn(" ".join(words[1:]))
    if reply is not None:
        mqtt.report(reply)


def sign(key, name, text, counter):
    """The signed form of text (also what the host tools compute)."""
    body = "%s %d" % (text, counter)
    mac = hmac.HMAC(key.encode(), ("%s %s" % (name, body)).encode()).hexdigest()
    return "%s %s" % (body, mac)


def _authenticate(text):
    # -> the words of the command without counter and MAC; ValueError when not genuine.
    from epx import mqtt

    if not OTA_KEY.value:
        raise ValueError("refused: no ota_key configured")
    body, _, mac = text.rpartition(" ")
    words = body.split()
    if len(words) < 2:
        raise ValueError("refused: not signed")
    try:
        counter = int(words[-1])
    except ValueError:
        raise ValueError("refused: not signed")
    expect = hmac.HMAC(OTA_KEY.value.encode(),
                       ("%s %s" % (mqtt.NAME.value, body)).encode()).hexdigest()
    if not hmac.compare_digest(expect.encode(), mac.encode()):
        raise ValueError("refused: bad signature")
    nv = NVRAM("epx")
    if counter <= nv.get_int("otactr", -1):
        raise ValueError("refused: replayed (counter %d)" % counter)
    nv.set_int("otactr", counter)
    return words[:-1]


def _read(name):
    try:
        with open(name) as f:
            return f.read().strip()
    except OSError:
        return None


def _reboot(args):
    from epx import mqtt

    mqtt.publish("Log", "rebooting", done=lambda: loop.later(
        500, lambda: crash.reboot("command reboot")))
    loop.later(5000, lambda: crash.reboot("command reboot"))


def _msg_rm(args):
    for name in (crash.REBOOT_FILE, crash.EXCEPTION_FILE):
        try:
            os.remove(name)
        except OSError:
            pass
    return "removed %s and %s" % (crash.REBOOT_FILE, crash.EXCEPTION_FILE)


def _stats(args):
    from epx import mqtt, net

    return "connlost events net %d mqtt %d" % (net.lost(), mqtt.lost())


def _resetstats(args):
    nv = NVRAM("epx")
    nv.set_int("netlost", 0)
    nv.set_int("mqttlost", 0)
    return "stats reset"


def _getversion(args):
    from epx.version import VERSION

    return VERSION


def _partitions(args):
    from esp32 import Partition

    run = Partition(Partition.RUNNING)
    nxt = run.get_next_update()
    return "running %s, next %s" % (run.info()[4], nxt.info()[4])


def _keepversion(args):
    from esp32 import Partition

    Partition.mark_app_valid_cancel_rollback()
    return "kept"


command("reboot", _reboot, auth=True)
command("msg_reboot", lambda a: _read(crash.REBOOT_FILE) or "no reboot reason")
command("msg_exception", lambda a: _read(crash.EXCEPTION_FILE) or "no exception")
command("msg_rm", _msg_rm, auth=True)
command("stats", _stats)
command("resetstats", _resetstats, auth=True)
command("getversion", _getversion)
command("partitions", _partitions)
command("keepversion", _keepversion)
command("log", lambda a: "\n".join(log.lines()))
