#!/usr/bin/env python3
"""The release's install page: OUT/index.html lists every appliance (profile x board) that
ci/release_assets.py left in OUT, each with ESP Web Tools' install button on its
<profile>-<board>-manifest.json. ESP Web Tools is the npm package `esp-web-tools`, pinned
by version and integrity: `npm pack` fetches it, its built browser bundle (dist/web/) goes
to OUT/esp-web-tools/. After writing the firmware, the button speaks Improv Serial to set
the device's WiFi. GitHub Pages serves OUT as it is (the manifests' paths are relative).
Standard library and npm only.

    install_page.py OUT
"""

import base64
import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "esp-web-tools"
VERSION = "10.4.0"
INTEGRITY = "sha512-3pwkeFFm5Fj7UQo8SJNYK5RXrtNCpq6X9QoI6bMT4GBZWgrJqjn0YvM9ihG74BtMoSFYXfmDtkehuxe50PTMPQ=="
BUNDLE = "package/dist/web/"
VENDORED = "esp-web-tools"
MANIFEST_SUFFIX = "-manifest.json"


class Refused(Exception):
    pass


def npm_pack(into):
    """The pinned package's tarball, checked against its pinned integrity."""
    done = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", into, "--silent"],
                          capture_output=True, text=True)
    if done.returncode:
        raise Refused(f"npm pack {PACKAGE}@{VERSION}: {(done.stderr.strip().splitlines() or ['failed'])[-1]}")
    path = os.path.join(into, done.stdout.strip().splitlines()[-1])
    with open(path, "rb") as f:
        found = "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()
    if found != INTEGRITY:
        raise Refused(f"{path}: integrity {found} is not the pinned {INTEGRITY}")
    return path


def vendor(tarball, out):
    """dist/web/ of the package into out/esp-web-tools/."""
    dest = os.path.join(out, VENDORED)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.isfile() and member.name.startswith(BUNDLE) and "/" not in member.name[len(BUNDLE):]:
                with open(os.path.join(dest, member.name[len(BUNDLE):]), "wb") as f:
                    f.write(tar.extractfile(member).read())
    if not os.path.isfile(os.path.join(dest, "install-button.js")):
        raise Refused(f"{tarball}: no {BUNDLE}install-button.js")
    return dest


def appliances(out):
    """[(name, manifest file, manifest)] for each manifest in out, by name."""
    found = []
    for file in sorted(os.listdir(out)):
        if file.endswith(MANIFEST_SUFFIX):
            with open(os.path.join(out, file)) as f:
                found.append((file[:-len(MANIFEST_SUFFIX)], file, json.load(f)))
    if not found:
        raise Refused(f"{out}: no *{MANIFEST_SUFFIX} (run ci/release_assets.py first)")
    return found


ROW = """    <tr data-appliance="{name}">
      <td>{profile}</td><td>{board}</td><td>{version}</td>
      <td><esp-web-install-button manifest="{manifest}"></esp-web-install-button></td>
    </tr>"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>epx: install an appliance</title>
  <script type="module" src="{vendored}/install-button.js"></script>
  <style>
    body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }}
    table {{ border-collapse: collapse; }}
    td, th {{ padding: .4em 1em; border-bottom: 1px solid #ccc; text-align: left; }}
  </style>
</head>
<body>
  <h1>epx: install an appliance</h1>
  <p>Connect the ESP32 by USB, pick its appliance and board, press Connect: the page writes
  the firmware, then sets the device's WiFi over its serial console (Improv). Needs a browser
  with Web Serial (Chrome, Edge). Each firmware and its checksum are also release assets.</p>
  <table>
    <tr><th>appliance</th><th>board</th><th>version</th><th></th></tr>
{rows}
  </table>
</body>
</html>
"""


def page(out):
    rows = []
    for name, file, manifest in appliances(out):
        profile, board = name.rsplit("-", 1)
        rows.append(ROW.format(name=html.escape(name), profile=html.escape(profile), board=html.escape(board),
                               version=html.escape(manifest["version"]), manifest=html.escape(file)))
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write(PAGE.format(vendored=VENDORED, rows="\n".join(rows)))
    return len(rows)


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: install_page.py OUT")
    out = argv[0]
    try:
        count = len(appliances(out))
        with tempfile.TemporaryDirectory() as tmp:
            vendor(npm_pack(tmp), out)
        page(out)
    except Refused as e:
        sys.exit(f"install_page.py: {e}")
    print(f"{out}/index.html: {count} appliances on {PACKAGE} {VERSION}")


if __name__ == "__main__":
    main(sys.argv[1:])
