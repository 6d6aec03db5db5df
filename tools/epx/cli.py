"""The `epx` command."""

import argparse
import json
import sys

from . import build, partitions, source
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
                          allow_downgrade=args.allow_downgrade)
    for r in results:
        print(ota.describe(r, image))
    if len(results) < len(targets):
        print(f"canary {targets[0].name} did not stay healthy: {len(targets) - 1} devices not updated")
    return 0 if len(results) == len(targets) and all(r.outcome == "kept" for r in results) else 1


def cmd_cmd(args):
    from . import diag

    host, port = diag.broker_address(args.broker)
    print(diag.send(host, port, args.name, " ".join(args.text), key=args.key, counter=args.counter,
                    timeout=args.timeout, user=args.user, password=args.password,
                    cafile=args.cafile))


def cmd_config(args):
    from . import diag

    host, port = diag.broker_address(args.broker)
    text = diag.config_command(args.verb, args.args)
    reply = diag.send(host, port, args.name, text, key=args.key, counter=args.counter,
                      timeout=args.timeout, user=args.user, password=args.password,
                      cafile=args.cafile)
    print(reply)
    return 1 if "refused" in reply or reply.startswith("OTA: bad command") else 0


def cmd_profiles(args):
    print("\n".join(build.profiles()))


def cmd_version(args):
    print(build.firmware_version(args.profile) if args.profile else build.describe())


def signed_request_args(s):
    """The options `epx cmd` and `epx config` share: the counter, the wait, broker login."""
    s.add_argument("--counter", type=int, help="above the last accepted (default: Unix time in s)")
    s.add_argument("--timeout", type=float, default=10, help="seconds to wait for the reply")
    s.add_argument("--user", help="broker user name")
    s.add_argument("--password", help="broker password")
    s.add_argument("--cafile", help="the broker's CA certificate (PEM), for TLS")


def parser():
    p = argparse.ArgumentParser(prog="epx", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("fetch", help="fetch and verify the pinned MicroPython source")
    s.add_argument("--force", action="store_true", help="fetch again even if present")
    s.set_defaults(func=cmd_fetch)

    s = sub.add_parser("unix", help="build a profile's host firmware")
    s.add_argument("profile", help="a profile name, or the path of a manifest")
    s.add_argument("--board", default=build.DEFAULT_BOARD, help="whose board.py the firmware carries")
    s.set_defaults(func=cmd_unix)

    s = sub.add_parser("esp32-check", help="check a profile's ESP32 firmware short of the IDF compile")
    s.add_argument("profile", nargs="*", help="default: every profile")
    s.add_argument("--board", default=build.DEFAULT_BOARD)
    s.set_defaults(func=cmd_esp32_check)

    s = sub.add_parser("esp32", help="build a profile's ESP32 firmware in ESP-IDF's Docker image")
    s.add_argument("profile")
    s.add_argument("--board", default=build.DEFAULT_BOARD)
    s.set_defaults(func=cmd_esp32)

    s = sub.add_parser("image", help="write a profile's host app image (build/unix-<profile>/app.bin)")
    s.add_argument("profile")
    s.set_defaults(func=cmd_image)

    s = sub.add_parser("provision", help="config.txt (littlefs) and NVS for a real or simulated device")
    s.add_argument("profile", nargs="?", help="the firmware to install (new simulated device, --merged)")
    s.add_argument("--config", help="the config.txt to install, checked first by the profile's "
                   "firmware (without: an unconfigured device that opens its setup portal); an "
                   "appassword is added if it has none")
    s.add_argument("--file", action="append", metavar="NAME=PATH", help="another file for the filesystem")
    s.add_argument("--nvs", metavar="CSV", help="initial NVS values (esp-idf-nvs-partition-gen CSV)")
    s.add_argument("--board", default=build.DEFAULT_BOARD)
    target = s.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="DIR", help="a simulated device folder")
    target.add_argument("--out", metavar="DIR", help="image files for a real device")
    s.add_argument("--merged", action="store_true", help="with --out: one image of the whole flash")
    s.add_argument("--app", help="with --merged: the ESP32 app image (default: dist/<profile>-<board>)")
    s.add_argument("--bootloader", help="with --merged: ESP-IDF's bootloader.bin")
    s.set_defaults(func=cmd_provision)

    s = sub.add_parser("sim", help="run a profile on a simulated device with a local mosquitto")
    s.add_argument("profile")
    s.add_argument("--config", help="config.txt (default: profiles/<profile>/config.txt.example)")
    s.add_argument("--broker", metavar="HOST:PORT", help="an MQTT broker (default: start mosquitto)")
    s.add_argument("--heapsize", type=int, help="MicroPython heap in bytes")
    s.add_argument("--speed", type=float, help="device seconds per real second (default 1)")
    s.add_argument("--dir", help="the device folder (default: build/sim/<profile>, made afresh)")
    s.add_argument("--bare-world", action="store_true",
                   help="attach no device models (default: the profile's demo world, tools/epx/sim/worlds.py)")
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser("ota", help="update devices over the air (the first one is the canary)")
    s.add_argument("image", help="an ESP32 app image: micropython.bin, or build/unix-<profile>/app.bin")
    s.add_argument("config", nargs="+", help="each device's config.txt (mqttname, ota_key, broker)")
    s.add_argument("--url", help="where devices fetch the image (default: served from this host)")
    s.add_argument("--serve-host", help="this host's address as the devices see it")
    s.add_argument("--broker", metavar="HOST[:PORT]", help="instead of the config's mqttbroker")
    s.add_argument("--cafile", help="the broker's CA certificate (PEM), for TLS")
    s.add_argument("--timeout", type=float, default=900, help="seconds to come back healthy")
    s.add_argument("--allow-downgrade", action="store_true",
                   help="let devices install a version older than theirs (signed in the request; "
                        "never below a device's secure version floor)")
    s.add_argument("--offer", action="store_true",
                   help="offer the image (at --url) to each device's Home Assistant update entity "
                        "instead: signed, retained; Install in Home Assistant installs exactly it")
    s.add_argument("--release-url", help="with --offer: the release notes' URL")
    s.set_defaults(func=cmd_ota)

    s = sub.add_parser("cmd", help="send a diagnostic to a device (signed with --key) and print its reply")
    s.add_argument("text", nargs="+", help="the command and its arguments, e.g. reboot, stats, log")
    s.add_argument("--broker", required=True, metavar="HOST[:PORT]")
    s.add_argument("--name", required=True, help="the device's mqttname")
    s.add_argument("--key", help="the device's ota_key: signs the command (reboot, msg_rm, resetstats)")
    signed_request_args(s)
    s.set_defaults(func=cmd_cmd)

    s = sub.add_parser("config", help="read or change a device's config.txt over MQTT (signed); "
                       "a change that does not bring MQTT up is undone")
    s.add_argument("verb", choices=("get", "set", "unset"))
    s.add_argument("args", nargs="*", help="set: KEY VALUE [KEY VALUE ...]; unset: KEY [KEY ...]")
    s.add_argument("--broker", required=True, metavar="HOST[:PORT]")
    s.add_argument("--name", required=True, help="the device's mqttname")
    s.add_argument("--key", required=True, help="the device's ota_key: signs the request")
    signed_request_args(s)
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("profiles", help="list the profiles")
    s.set_defaults(func=cmd_profiles)

    s = sub.add_parser("version", help="the firmware version a build would carry")
    s.add_argument("profile", nargs="?")
    s.set_defaults(func=cmd_version)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        status = args.func(args)
    except EpxError as e:
        print(f"epx: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
