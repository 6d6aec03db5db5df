"""The `epx` command."""

import argparse
import json
import sys

from . import build, diag, partitions, source
from . import __version__
from .errors import EpxError
from .paths import rel


def cmd_fetch(args):
    print(rel(source.fetch(force=args.force)))


def cmd_unix(args):
    exe, files = build.build_unix(args.profile, args.board)
    print(f"{rel(exe)}: {args.profile} host firmware, {len(files)} frozen modules")


def cmd_esp32_check(args):
    for profile in args.profile or build.profiles():
        report = build.esp32_check(profile, args.board)
        print(f"{profile} {args.board}: {report['modules']} modules, frozen payload "
              f"{report['frozen_bytes']} bytes (budget {report['budget']}), app slot {report['app_slot']:#x}")


def cmd_esp32(args):
    out = build.build_esp32(args.profile, args.board)
    print(rel(out))


def cmd_image(args):
    from .sim import run

    out, data = run.app_image(args.profile)
    print(f"{rel(out)}: {len(data)} bytes, host app image of {build.firmware_version(args.profile)}")


def provision_files(args):
    from .sim import provision

    files = {}
    for item in args.file or ():
        name, sep, path = item.partition("=")
        if not sep:
            raise EpxError(f"--file {item}: expected NAME=PATH")
        files[name] = read(path)
    if args.config:
        if not args.profile:
            raise EpxError("--config: name the profile whose firmware reads it "
                           "(epx provision h2o --config my-config.txt --out provision/)")
        from . import confcheck

        files["config.txt"] = read(args.config)
        confcheck.check(args.profile, args.board, files["config.txt"], args.config)
    files["config.txt"] = with_ap_password(files.get("config.txt", b""))
    return files


def with_ap_password(config):
    """config.txt (bytes) with an appassword: the fallback access point's, generated and
    printed when it has none (without --config: all the device has, it opens the setup
    portal at its first boot)."""
    import re
    import secrets

    if re.search(rb"(?m)^[ \t]*appassword[ \t]+\S", config):
        return config
    password = secrets.token_urlsafe(12)  # 16 characters, 96 bits
    print(f"access point password (appassword): {password}")
    sep = b"" if not config or config.endswith(b"\n") else b"\n"
    return config + sep + b"appassword " + password.encode() + b"\n"


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise EpxError(f"{path}: {e.strerror}")


def cmd_provision(args):
    import os

    from .sim import flash, provision, run

    files = provision_files(args)
    parts = flash.table(args.board)
    if args.device:
        if not os.path.exists(os.path.join(args.device, "flash.bin")):
            if not args.profile:
                raise EpxError(f"{args.device}: no flash.bin yet; name the profile to install")
            from .sim.device import Device

            _, app = run.app_image(args.profile)
            Device.create(args.device, app, files, nvs_csv=args.nvs, board=args.board)
        else:
            provision.into_device(args.device, files, args.nvs, board=args.board)
        print(f"{args.device}: provisioned")
        return
    os.makedirs(args.out, exist_ok=True)
    if args.merged:
        dist = build.DIST / f"{args.profile}-{args.board}" if args.profile else None
        app = args.app or (dist and str(dist / "micropython.bin"))
        boot = args.bootloader
        if not boot and dist and (dist / "firmware.bin").exists():
            # firmware.bin starts with the bootloader at 0x1000 and holds the table at 0x8000.
            boot = read(dist / "firmware.bin")[:partitions.TABLE_OFFSET - provision.BOOTLOADER_OFFSET]
        if not app or not boot:
            raise EpxError("provision --merged: give --app and --bootloader (or a profile built with `epx esp32`)")
        out = os.path.join(args.out, "merged.bin")
        provision.merged(out, parts, read(app), files, read(boot) if isinstance(boot, str) else boot,
                         nvs_csv=args.nvs)
        print(out)
        print("flash with: esptool --chip esp32 --port PORT write-flash 0x0 " + out)
        return
    flash_args = provision.real_files(args.out, parts, files, args.nvs)
    print("flash with: " + " ".join(provision.esptool_command(flash_args)))


def cmd_flash(args):
    from . import flasher

    firmware = flasher.Firmware(args.source).check(args.profile, args.board)
    args.profile, args.board = firmware.profile, firmware.board  # config.txt checked by its firmware
    files = provision_files(args)
    flasher.flash(firmware, files, port=args.port, out=args.out, baud=args.baud)


def cmd_sim(args):
    from .sim import run

    return run.run(args.profile, args.config, args.broker, args.heapsize, args.speed, args.dir,
                   bare_world=args.bare_world)


def cmd_ota(args):
    from . import ota

    image = ota.load_image(args.image)
    targets = [ota.target(c, args.broker, args.cafile) for c in args.config]
    print(f"{image.version}: {len(image.data)} bytes, sha256 {image.sha256[:16]}...")
    if args.offer:
        if not args.url:
            raise EpxError("--offer needs --url: the image must stay where devices can fetch it")
        results = [ota.offer(t, image, args.url, release_url=args.release_url,
                             allow_downgrade=args.allow_downgrade) for t in targets]
        for r in results:
            print(ota.describe(r, image))
        return 0 if all(r.outcome == "offered" for r in results) else 1
    results = ota.rollout(targets, image, url=args.url, serve_host=args.serve_host,
                          progress=ota.ProgressBar(), comeback_timeout=args.timeout,
                          allow_downgrade=args.allow_downgrade,
                          say=lambda text: print(text, flush=True))
    for r in results:
        print(ota.describe(r, image))
    if len(results) < len(targets):
        print(f"canary {targets[0].name} did not stay healthy: {len(targets) - 1} devices not updated")
    return 0 if len(results) == len(targets) and all(r.outcome == "kept" for r in results) else 1


def cmd_cmd(args):
    from . import diag

    host, port = diag.broker_address(args.broker)
    return answered(args.name, diag.send(
        host, port, args.name, " ".join(args.text), key=args.key, counter=args.counter,
        timeout=args.timeout, user=args.user, password=args.password, cafile=args.cafile))


def answered(name, reply):
    """Print the device's reply: on stdout, or as the error when the device refused."""
    if diag.refused(reply):
        raise EpxError(f"{name}: {reply}")
    print(reply)


CONFIG_REPORT_GRACE_S = 180  # after the trial: the device's reboot, network and report


def cmd_config(args):
    import re
    import time

    from . import diag

    host, port = diag.broker_address(args.broker)
    text = diag.config_command(args.verb, args.args, args.key)
    waited = []

    def follow(reply):
        """After `config: trying ...`: until the device says it kept or dropped the change."""
        if args.no_wait or not reply.startswith("config: trying"):
            return None
        print(reply, flush=True)
        trial = re.search(r"within (\d+) min", reply)
        seconds = (int(trial.group(1)) if trial else 5) * 60 + CONFIG_REPORT_GRACE_S
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))
        print(f"{args.name} reboots into the change and keeps it once MQTT is up on it; "
              f"waiting until {until} for kept or dropped (--no-wait: don't)", flush=True)
        waited.append(seconds)
        return seconds, lambda r: r.startswith(("config: candidate kept", "config: candidate dropped"))

    reply, outcome = diag.send(host, port, args.name, text, key=args.key, counter=args.counter,
                               timeout=args.timeout, user=args.user, password=args.password,
                               cafile=args.cafile, follow=follow)
    if not waited:
        return answered(args.name, reply)
    if outcome is None:
        raise EpxError(f"{args.name}: neither kept nor dropped within {waited[0]:g} s "
                       f"(watch stat/{args.name}/Log)")
    if outcome.startswith("config: candidate dropped"):
        raise EpxError(f"{args.name}: {outcome}")
    print(outcome)


def cmd_devices(args):
    from . import devices, diag

    host, port = diag.broker_address(args.broker)
    login = {"user": args.user, "password": args.password, "cafile": args.cafile}
    if not args.watch:
        print(devices.survey(host, port, timeout=args.timeout, **login), end="")
        return
    clear = "\x1b[H\x1b[J" if sys.stdout.isatty() else ""

    def show(table):
        print(f"{clear}{time.strftime('%H:%M:%S')} {host}:{port}\n{table}", flush=True)

    import time

    devices.survey(host, port, timeout=args.timeout, watch=show, **login)


def cmd_profiles(args):
    print("\n".join(build.profiles()))


def cmd_version(args):
    print(build.firmware_version(args.profile) if args.profile else build.describe())


class Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line on stderr (exit 2), naming the help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class Help(argparse.RawDescriptionHelpFormatter):
    """Each option's default in its help (unless it has none or says it already)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and (action.option_strings or action.nargs in ("?", "*"))):
            text += " (default: %(default)s)"
        return text


def positive(kind):
    """An argparse type: a number above zero."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value

    convert.__name__ = kind.__name__
    return convert


def command(sub, name, help, example, **kw):
    """A subcommand whose help ends with one example."""
    return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                          formatter_class=Help, **kw)


def signed_request_args(s):
    """The options `epx cmd` and `epx config` share: the counter, the wait, broker login."""
    s.add_argument("--counter", type=int, help="above the last accepted (default: Unix time in s)")
    s.add_argument("--timeout", type=positive(float), default=10, help="seconds to wait for the reply")
    s.add_argument("--user", help="broker user name")
    s.add_argument("--password", help="broker password")
    s.add_argument("--cafile", help="the broker's CA certificate (PEM), for TLS")


def parser():
    profiles, boards = build.profiles(), build.boards()
    board_help = f"the board: {', '.join(boards)}"
    profile_help = f"the profile: {', '.join(profiles)}"
    p = Parser(prog="epx", description="Build, simulate, flash and operate epx appliances "
               "(`epx COMMAND --help`: its options and an example).", formatter_class=Help,
               epilog="example:\n  epx sim h2o")
    p.add_argument("--version", action="version", version=f"epx {__version__} ({build.describe()})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = command(sub, "fetch", "fetch and verify the pinned MicroPython source into deps/",
                "epx fetch")
    s.add_argument("--force", action="store_true", help="fetch again even if present")
    s.set_defaults(func=cmd_fetch)

    s = command(sub, "unix", "build a profile's host firmware", "epx unix h2o --board EPX_WT32_ETH01")
    s.add_argument("profile", help=f"one of {', '.join(profiles)}, or the path of a manifest")
    s.add_argument("--board", default=build.DEFAULT_BOARD,
                   help=f"whose board.py the firmware carries: {', '.join(boards)}")
    s.set_defaults(func=cmd_unix)

    s = command(sub, "esp32-check", "check a profile's ESP32 firmware short of the IDF compile",
                "epx esp32-check h2o relay")
    s.add_argument("profile", nargs="*",
                   help=f"profiles to check: {', '.join(profiles)} (default: every profile)")
    s.add_argument("--board", default=build.DEFAULT_BOARD, help=board_help)
    s.set_defaults(func=cmd_esp32_check)

    s = command(sub, "esp32", "build a profile's ESP32 firmware in ESP-IDF's Docker image into "
                "dist/<profile>-<board>/", "epx esp32 h2o --board EPX_ESP32")
    s.add_argument("profile", help=profile_help)
    s.add_argument("--board", default=build.DEFAULT_BOARD, help=board_help)
    s.set_defaults(func=cmd_esp32)

    s = command(sub, "image", "write a profile's host app image (build/unix-<profile>/app.bin)",
                "epx image h2o")
    s.add_argument("profile", help=profile_help)
    s.set_defaults(func=cmd_image)

    s = command(sub, "provision", "config.txt (littlefs) and NVS for a real or simulated device",
                "epx provision --config my-config.txt --out provision/")
    s.add_argument("profile", nargs="?",
                   help=f"the firmware to install (new simulated device, --merged): {', '.join(profiles)}")
    s.add_argument("--config", help="the config.txt to install, checked first by the profile's "
                   "firmware (without: an unconfigured device that opens its setup portal); an "
                   "appassword is added if it has none")
    s.add_argument("--file", action="append", metavar="NAME=PATH", help="another file for the filesystem")
    s.add_argument("--nvs", metavar="CSV", help="initial NVS values (esp-idf-nvs-partition-gen CSV)")
    s.add_argument("--board", default=build.DEFAULT_BOARD, help=board_help)
    target = s.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="DIR", help="a simulated device folder")
    target.add_argument("--out", metavar="DIR", help="image files for a real device")
    s.add_argument("--merged", action="store_true", help="with --out: one image of the whole flash")
    s.add_argument("--app", help="with --merged: the ESP32 app image (default: dist/<profile>-<board>)")
    s.add_argument("--bootloader", help="with --merged: ESP-IDF's bootloader.bin")
    s.set_defaults(func=cmd_provision)

    s = command(sub, "flash", "write a build or a downloaded release and config.txt to a connected "
                "ESP32 in one esptool call (firmware, erased otadata, the littlefs image)",
                "epx flash dist/h2o-EPX_ESP32 --config my-config.txt")
    s.add_argument("source", help="dist/<profile>-<board>/, or a release's "
                   "<profile>-<board>-firmware.bin (its -firmware.json beside it)")
    s.add_argument("--config", help="the config.txt to install (without: an unconfigured "
                   "device that opens its setup portal); an appassword is added if it has none")
    s.add_argument("--file", action="append", metavar="NAME=PATH", help="another file for the filesystem")
    s.add_argument("--port", help="the serial port (default: esptool finds the ESP32)")
    s.add_argument("--baud", type=positive(int), help="esptool's baud rate (default: esptool's)")
    s.add_argument("--profile", help=f"refuse unless the firmware is this profile: {', '.join(profiles)}")
    s.add_argument("--board", help=f"refuse unless the firmware is for this board: {', '.join(boards)}")
    s.add_argument("--out", metavar="FILE", help="write one merged image of the whole flash "
                   "(esptool merge-bin) instead of flashing")
    s.set_defaults(func=cmd_flash)

    s = command(sub, "sim", "run a profile on a simulated device with a local mosquitto",
                "epx sim h2o --speed 60")
    s.add_argument("profile", help=profile_help)
    s.add_argument("--config", help="config.txt (default: profiles/<profile>/config.txt.example)")
    s.add_argument("--broker", metavar="HOST:PORT", help="an MQTT broker (default: start mosquitto)")
    s.add_argument("--heapsize", type=positive(int), help="MicroPython heap in bytes (default: 1 MiB)")
    s.add_argument("--speed", type=positive(float), default=1, help="device seconds per real second")
    s.add_argument("--dir", help="the device folder (default: a new build/sim/<profile>-<n>)")
    s.add_argument("--bare-world", action="store_true",
                   help="attach no device models (default: the profile's demo world, tools/epx/sim/worlds.py)")
    s.set_defaults(func=cmd_sim)

    s = command(sub, "ota", "update devices over the air (the first one is the canary)",
                "epx ota dist/h2o-EPX_ESP32/micropython.bin tank1.txt tank2.txt")
    s.add_argument("image", help="an ESP32 app image: micropython.bin, or build/unix-<profile>/app.bin")
    s.add_argument("config", nargs="+", help="each device's config.txt (mqttname, ota_key, broker)")
    s.add_argument("--url", help="where devices fetch the image (default: served from this host)")
    s.add_argument("--serve-host", help="this host's address as the devices see it")
    s.add_argument("--broker", metavar="HOST[:PORT]", help="instead of the config's mqttbroker")
    s.add_argument("--cafile", help="the broker's CA certificate (PEM), for TLS")
    s.add_argument("--timeout", type=positive(float), default=900, help="seconds to come back healthy")
    s.add_argument("--allow-downgrade", action="store_true",
                   help="let devices install a version older than theirs (signed in the request; "
                        "never below a device's secure version floor)")
    s.add_argument("--offer", action="store_true",
                   help="offer the image (at --url) to each device's Home Assistant update entity "
                        "instead: signed, retained; Install in Home Assistant installs exactly it")
    s.add_argument("--release-url", help="with --offer: the release notes' URL")
    s.set_defaults(func=cmd_ota)

    s = command(sub, "cmd", "send a diagnostic to a device (signed with --key) and print its "
                "reply; exit 1 when the device refuses it",
                'epx cmd --broker 192.168.1.2:1883 --name h2o --key "$OTA_KEY" reboot')
    s.add_argument("text", nargs="+", help="the command and its arguments: " + ", ".join(diag.COMMANDS))
    s.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="the MQTT broker (port 1883 if not given)")
    s.add_argument("--name", required=True, help="the device's mqttname")
    s.add_argument("--key", help="the device's ota_key: signs the command (reboot, msg_rm, resetstats)")
    signed_request_args(s)
    s.set_defaults(func=cmd_cmd)

    s = command(sub, "config", "read or change a device's config.txt over MQTT (signed); "
                "a change that does not bring MQTT up is undone",
                'epx config --broker 192.168.1.2:1883 --name h2o --key "$OTA_KEY" set ssid "New Net"')
    s.add_argument("verb", choices=("get", "set", "unset"))
    s.add_argument("args", nargs="*", help="set: KEY VALUE [KEY VALUE ...]; unset: KEY [KEY ...]")
    s.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="the MQTT broker (port 1883 if not given)")
    s.add_argument("--name", required=True, help="the device's mqttname")
    s.add_argument("--key", required=True, help="the device's ota_key: signs the request")
    s.add_argument("--no-wait", action="store_true",
                   help="set, unset: return once the device tries the change (default: wait "
                        "until it kept it, exit 0, or dropped it, exit 1)")
    signed_request_args(s)
    s.set_defaults(func=cmd_config)

    s = command(sub, "devices", "every epx device on a broker in one table: name, profile, "
                "version, online, uptime, IP, RSSI, last reset, safe mode",
                "epx devices --broker 192.168.1.2:1883 --watch")
    s.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="the MQTT broker (port 1883 if not given)")
    s.add_argument("--watch", action="store_true", help="print the table again at each change, until Ctrl-C")
    s.add_argument("--timeout", type=positive(float), default=5,
                   help="seconds online devices get to send their health")
    s.add_argument("--user", help="broker user name")
    s.add_argument("--password", help="broker password")
    s.add_argument("--cafile", help="the broker's CA certificate (PEM), for TLS")
    s.set_defaults(func=cmd_devices)

    s = command(sub, "profiles", "list the profiles", "epx profiles")
    s.set_defaults(func=cmd_profiles)

    s = command(sub, "version", "the firmware version a build would carry", "epx version h2o")
    s.add_argument("profile", nargs="?", help=profile_help + " (default: the checkout's version)")
    s.set_defaults(func=cmd_version)
    return p


def main(argv=None):
    import os

    args = parser().parse_args(argv)
    try:
        status = args.func(args)
    except EpxError as e:
        print(f"epx: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: still one line, the traceback when asked for
        if os.environ.get("EPX_TRACEBACK"):
            raise
        print(f"epx {args.command}: {type(e).__name__}: {e} (a bug in epx; EPX_TRACEBACK=1 "
              f"shows where)", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
