#!/usr/bin/env python3
"""A release's assets from the ESP32 jobs' artifacts (the workflow's release job).

ARTIFACTS/<profile>-<board>/{firmware.bin,micropython.bin,firmware.json}, as
actions/download-artifact leaves them, become OUT/<profile>-<board>-<file> (a release holds
one flat list of files), with OUT/<profile>-<board>-manifest.json, the ESP Web Tools manifest
that flashes its firmware.bin (ci/install_page.py links them), and OUT/SHA256SUMS over all of
them, in sha256sum's format (`sha256sum -c SHA256SUMS` checks a download). Each
firmware.json must describe the micropython.bin beside it. Standard library only."""

import hashlib
import json
import os
import shutil
import sys

FILES = ("firmware.bin", "micropython.bin", "firmware.json")
MANIFEST = "manifest.json"
CHIP_FAMILY = "ESP32"  # every epx board (boards/*/mpconfigboard.cmake: IDF_TARGET esp32)


class Refused(Exception):
    pass


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(folder, name):
    """One artifact folder: all three files, and a firmware.json that matches its image."""
    for file in FILES:
        if not os.path.isfile(os.path.join(folder, file)):
            raise Refused(f"{folder}: no {file}")
    try:
        with open(os.path.join(folder, "firmware.json")) as f:
            info = json.load(f)
    except ValueError as e:
        raise Refused(f"{folder}/firmware.json: {e}")
    if f"{info.get('profile')}-{info.get('board')}" != name:
        raise Refused(f"{folder}/firmware.json: describes {info.get('profile')}-{info.get('board')}")
    app = os.path.join(folder, "micropython.bin")
    if info.get("sha256") != sha256(app) or info.get("size") != os.path.getsize(app):
        raise Refused(f"{folder}/firmware.json: sha256 or size is not micropython.bin's")
    if not isinstance(info.get("flash", {}).get("firmware.bin"), int):
        raise Refused(f"{folder}/firmware.json: no flash offset for firmware.bin")
    return info


def web_manifest(name, info):
    """ESP Web Tools' manifest (its Manifest and Build types): firmware.bin, which holds the
    bootloader, partition table and app, written at its offset; a new install offers to
    erase the flash (a previous firmware's config and NVS)."""
    return {
        "name": f"epx {info['profile']} ({info['board']})",
        "version": info["version"],
        "new_install_prompt_erase": True,
        "builds": [{"chipFamily": CHIP_FAMILY,
                    "parts": [{"path": f"{name}-firmware.bin", "offset": info["flash"]["firmware.bin"]}]}],
    }


def assets(artifacts, out):
    """Copy and check every artifact into `out`; write SHA256SUMS; return the asset names."""
    names = sorted(n for n in os.listdir(artifacts) if os.path.isdir(os.path.join(artifacts, n)))
    if not names:
        raise Refused(f"{artifacts}: no artifacts")
    infos = {name: check(os.path.join(artifacts, name), name) for name in names}
    os.makedirs(out, exist_ok=True)
    written = []
    for name in names:
        for file in FILES:
            asset = f"{name}-{file}"
            shutil.copyfile(os.path.join(artifacts, name, file), os.path.join(out, asset))
            written.append(asset)
        with open(os.path.join(out, f"{name}-{MANIFEST}"), "w") as f:
            json.dump(web_manifest(name, infos[name]), f, indent=2)
            f.write("\n")
        written.append(f"{name}-{MANIFEST}")
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for asset in sorted(written):
            f.write(f"{sha256(os.path.join(out, asset))}  {asset}\n")
    return sorted(written)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: release_assets.py ARTIFACTS OUT")
    try:
        written = assets(*argv)
    except Refused as e:
        sys.exit(f"release_assets.py: {e}")
    print(f"{len(written)} assets and SHA256SUMS in {argv[1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
