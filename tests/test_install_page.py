"""The release's install page and ESP Web Tools manifests (ci/release_assets.py,
ci/install_page.py) on artifacts for every profile x board the workflow's esp32 job builds:
each manifest checked against the Manifest and Build types esp-web-tools itself declares
(dist/const.d.ts of the pinned npm package), and the page, served as GitHub Pages serves the
release folder, opened in the real chromium: every appliance listed with ESP Web Tools'
install button, each manifest it links parsed by the browser and pointing at a firmware
the release holds, at the offset firmware.json gives."""

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest
import yaml

from browserkit import browser  # noqa: F401 (the fixture)
from clone import stock_env
from epx.paths import ROOT
from releasekit import fake_artifact

sys.path.insert(0, str(ROOT / "ci"))
import install_page  # noqa: E402

WORKFLOW = ROOT / ".github" / "workflows" / "firmware.yml"


def built_appliances():
    """(profile, board) of every esp32 job of the workflow's matrix."""
    matrix = yaml.safe_load(WORKFLOW.read_text())["jobs"]["esp32"]["strategy"]["matrix"]
    excluded = {(e["profile"], e["board"]) for e in matrix.get("exclude", [])}
    return [(p, b) for p in matrix["profile"] for b in matrix["board"] if (p, b) not in excluded]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The pinned esp-web-tools tarball, by npm (as the release job fetches it)."""
    if not shutil.which("npm"):
        pytest.skip("npm is not installed: the install page vendors esp-web-tools with it")
    return install_page.npm_pack(str(tmp_path_factory.mktemp("npm")))


@pytest.fixture(scope="module")
def release(tmp_path_factory, package):
    tmp = tmp_path_factory.mktemp("release")
    for profile, board in built_appliances():
        fake_artifact(tmp / "artifacts", profile, board, payload=f"{profile} {board}".encode())
    for argv in (["ci/release_assets.py", str(tmp / "artifacts"), str(tmp / "release")],
                 ["ci/install_page.py", str(tmp / "release")]):
        done = subprocess.run(["python3", *argv], cwd=ROOT, capture_output=True, text=True, env=stock_env())
        assert done.returncode == 0, done.stderr
    return tmp / "release"


# --- the manifests against esp-web-tools' own declarations -----------------------------

def declared(package):
    """{interface: {field: (type text, optional)}} of dist/const.d.ts's Manifest and Build."""
    with tarfile.open(package) as tar:
        text = tar.extractfile("package/dist/const.d.ts").read().decode()
    found = {}
    for name in ("Manifest", "Build"):
        body = re.search(r"export interface %s \{(.*?)\n\}" % name, text, re.S).group(1)
        body = re.sub(r"/\*\*.*?\*/", "", body, flags=re.S)
        fields, depth, field = {}, 0, ""
        for char in body:  # fields end at a top-level ";"
            depth += {"{": 1, "}": -1}.get(char, 0)
            if char == ";" and depth == 0:
                m = re.fullmatch(r"(\w+)(\??):\s*(.*)", " ".join(field.split()))
                fields[m.group(1)] = (m.group(3), m.group(2) == "?")
                field = ""
            else:
                field += char
        found[name] = fields
    return found


def type_errors(value, text, where):
    text = text.strip()
    if text == "string":
        return [] if isinstance(value, str) else [f"{where}: not a string"]
    if text == "number":
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{where}: not a number"]
    if text == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: not a boolean"]
    if text == "Build[]":
        return [] if isinstance(value, list) else [f"{where}: not a list"]
    if text.startswith('"'):
        literals = re.findall(r'"([^"]*)"', text)
        return [] if value in literals else [f"{where}: {value!r} is not one of {literals}"]
    if text.startswith("{") and text.endswith("}[]"):
        inner = dict(re.findall(r"(\w+): (\w+);", text))
        assert inner, text
        if not isinstance(value, list) or not value:
            return [f"{where}: not a non-empty list"]
        errors = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or set(item) != set(inner):
                errors.append(f"{where}[{i}]: fields {sorted(item)} are not {sorted(inner)}")
                continue
            for key, kind in inner.items():
                errors += type_errors(item[key], kind, f"{where}[{i}].{key}")
        return errors
    raise AssertionError(f"a declared type this test cannot read: {text}")


def object_errors(value, fields, where):
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    errors = [f"{where}: no {k}" for k, (_, optional) in fields.items() if not optional and k not in value]
    errors += [f"{where}: {k} is not declared" for k in value if k not in fields]
    for key in value.keys() & fields.keys():
        errors += type_errors(value[key], fields[key][0], f"{where}.{key}")
    return errors


def manifest_errors(manifest, types):
    errors = object_errors(manifest, types["Manifest"], "manifest")
    for i, build in enumerate(manifest.get("builds") or []):
        errors += object_errors(build, types["Build"], f"manifest.builds[{i}]")
    return errors


def test_manifests_follow_esp_web_tools_declared_format(release, package):
    types = declared(package)
    assert {"name", "version", "builds"} <= set(types["Manifest"]) and "chipFamily" in types["Build"]
    for profile, board in built_appliances():
        name = f"{profile}-{board}"
        manifest = json.loads((release / f"{name}-manifest.json").read_text())
        assert manifest_errors(manifest, types) == []
        info = json.loads((release / f"{name}-firmware.json").read_text())
        (build,) = manifest["builds"]
        assert build["chipFamily"] == "ESP32"
        assert build["parts"] == [{"path": f"{name}-firmware.bin", "offset": info["flash"]["firmware.bin"]}]
        assert manifest["version"] == info["version"]
    # The check fails on what esp-web-tools would not read.
    good = json.loads((release / "h2o-EPX_ESP32-manifest.json").read_text())
    for broken, message in (
            ({**good, "builds": [{**good["builds"][0], "chipFamily": "ESP32-XYZ"}]}, "is not one of"),
            ({**good, "builds": [{"chipFamily": "ESP32", "parts": [{"path": "f.bin", "offset": "4096"}]}]},
             "offset: not a number"),
            ({k: v for k, v in good.items() if k != "version"}, "no version"),
            ({**good, "improv": True}, "improv is not declared")):
        assert any(message in e for e in manifest_errors(broken, types)), broken


# --- the page in chromium ----------------------------------------------------------------

@pytest.fixture
def served(release):
    """The release folder over HTTP, as GitHub Pages serves it."""
    handler = functools.partial(QuietHandler, directory=str(release))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


FETCH_MANIFESTS = """
const done = arguments[arguments.length - 1];
const buttons = [...document.querySelectorAll("tr[data-appliance]")].map(row => ({
  appliance: row.dataset.appliance,
  cells: [...row.querySelectorAll("td")].slice(0, 3).map(td => td.textContent.trim()),
  manifest: row.querySelector("esp-web-install-button").getAttribute("manifest"),
}));
Promise.all(buttons.map(async b => {
  const url = new URL(b.manifest, location.href);
  const manifest = await (await fetch(url)).json();
  const parts = await Promise.all(manifest.builds[0].parts.map(async p => {
    const part = new URL(p.path, url);
    const resp = await fetch(part);
    return {url: part.pathname, status: resp.status, size: (await resp.arrayBuffer()).byteLength};
  }));
  return {...b, manifest, parts};
})).then(done, e => done(String(e)));
"""


def test_the_install_page_in_chromium(browser, served, release):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served + "index.html")
    # ESP Web Tools' bundle loaded and defined its element (the vendored npm package).
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return !!customElements.get('esp-web-install-button')"))
    # Each button rendered its own (Web Serial is there: the connect button, not the
    # "unsupported" slot).
    rendered = """return [...document.querySelectorAll('esp-web-install-button')]
        .filter(b => b.shadowRoot && b.shadowRoot.querySelector('button')).length"""
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(rendered) == len(built_appliances()))
    browser.set_script_timeout(60)
    rows = browser.execute_async_script(FETCH_MANIFESTS)
    assert isinstance(rows, list), rows
    assert sorted(r["appliance"] for r in rows) == sorted(f"{p}-{b}" for p, b in built_appliances())
    sums = dict(reversed(line.split("  ")) for line in (release / "SHA256SUMS").read_text().splitlines())
    for row in rows:
        profile, board = row["appliance"].rsplit("-", 1)
        assert row["cells"] == [profile, board, f"{profile}-1.0"]
        (part,) = row["parts"]
        asset = part["url"].rsplit("/", 1)[1]
        assert asset == f"{row['appliance']}-firmware.bin" and asset in sums
        assert part["status"] == 200 and part["size"] == (release / asset).stat().st_size
        assert row["manifest"]["builds"][0]["parts"][0]["offset"] == 0x1000
