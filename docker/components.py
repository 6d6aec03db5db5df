#!/usr/bin/env python3
"""Checks the component manager's dependencies.lock against the components the Dockerfile
pins: the same names at the same versions, each downloaded into managed_components/ (the
image then builds with no network). Runs in ESP-IDF's Python environment (PyYAML).

    components.py LOCKFILE NAME==VERSION...
"""

import os
import sys

import yaml


def locked(lockfile):
    """{name: version} of the registry components a lock file holds (not IDF itself)."""
    with open(lockfile) as f:
        lock = yaml.safe_load(f)
    return {name: str(dep["version"]) for name, dep in lock["dependencies"].items() if name != "idf"}


def managed_dir(lockfile, name):
    return os.path.join(os.path.dirname(os.path.abspath(lockfile)), "managed_components", name.replace("/", "__"))


def main(argv):
    lockfile, pins = argv[0], dict(p.split("==", 1) for p in argv[1:])
    found = locked(lockfile)
    if found != pins:
        sys.exit(f"{lockfile}: the component manager resolved {found}, the Dockerfile pins {pins}")
    missing = [n for n in found if not os.path.isdir(managed_dir(lockfile, n))]
    if missing:
        sys.exit(f"{lockfile}: {missing} not in managed_components/")
    print(f"{lockfile}: {found}")


if __name__ == "__main__":
    main(sys.argv[1:])
