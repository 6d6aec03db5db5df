"""The `epx` command."""

import argparse
import json
import sys

from . import build, source
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


def cmd_profiles(args):
    print("\n".join(build.profiles()))


def cmd_version(args):
    print(build.firmware_version(args.profile) if args.profile else build.describe())


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

    s = sub.add_parser("profiles", help="list the profiles")
    s.set_defaults(func=cmd_profiles)

    s = sub.add_parser("version", help="the firmware version a build would carry")
    s.add_argument("profile", nargs="?")
    s.set_defaults(func=cmd_version)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except EpxError as e:
        print(f"epx: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
