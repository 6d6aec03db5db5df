"""The ESP-IDF image (docker/Dockerfile) holds everything a firmware build asks for, so the
build step (`docker run --network none`, docker/build.sh) needs no network. No Docker here:
the Dockerfile's pinned lists are checked against what the pinned port itself asks for
(its CMake's GIT_SUBMODULES, its main/idf_component.yml), and its MicroPython clone against
the checksum-pinned Debian tarball the host builds use (one pin for both targets)."""

import hashlib
import importlib.util
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

from epx import build, source
from epx.paths import ROOT

DOCKER = ROOT / "docker"


def load(name):
    spec = importlib.util.spec_from_file_location(name, DOCKER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


source_digest = load("source_digest")


@pytest.fixture(scope="module")
def args():
    """The Dockerfile's ARG defaults."""
    text = (DOCKER / "Dockerfile").read_text()
    return {m[0]: m[1].strip('"') for m in re.findall(r"^ARG (\w+)=(.*)$", text, re.M)}


@pytest.fixture(scope="module")
def tree():
    return source.micropython_dir()


# --- the MicroPython source: one pin ----------------------------------------------------

def pinned_source_digest(tmp_path):
    """The digest of the pinned tarball epx fetched, or of the git checkout $MICROPY_DIR
    names (CI's host builds), as a tarball of that commit."""
    orig = source.DEPS / "debian" / source.ORIG_TARBALL
    if (source.TREE / source.STAMP).is_file() and orig.is_file():
        source.verify_sha256(orig, source.ORIG_SHA256)
        where = orig
    else:
        tree = source.micropython_dir()
        where = tmp_path / "head.tar"
        subprocess.run(["git", "-C", str(tree), "archive", "--prefix=micropython/", "-o", str(where), "HEAD"],
                       check=True)
    done = subprocess.run([sys.executable, str(DOCKER / "source_digest.py"), str(where)], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_the_image_clones_the_tree_the_host_builds_from(args, tmp_path):
    assert args["MICROPYTHON_REF"] == f"v{source.VERSION}"
    # The clone is checked, in the image, to have this digest over the Debian tarball's files.
    assert pinned_source_digest(tmp_path) == args["MICROPYTHON_TREE_SHA256"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'test "$(python3 /opt/epx/source_digest.py ${MICROPY_DIR})" = "${MICROPYTHON_TREE_SHA256}"' in dockerfile
    assert 'rev-parse HEAD)" = "${MICROPYTHON_COMMIT}"' in dockerfile


def test_the_source_digest_sees_one_changed_byte_and_skips_what_debian_drops(tmp_path):
    top = tmp_path / "mp"
    (top / "py").mkdir(parents=True)
    (top / "py" / "obj.c").write_text("int x;\n")
    (top / ".gitmodules").write_text('[submodule "lib/tinyusb"]\n\tpath = lib/tinyusb\n')
    (top / ".git").mkdir()
    (top / ".git" / "HEAD").write_text("ref\n")
    first = source_digest.digest(source_digest.tree_entries(str(top)))
    # A submodule's contents and a Files-Excluded file are not in the +ds tarball.
    (top / "lib" / "tinyusb").mkdir(parents=True)
    (top / "lib" / "tinyusb" / "tusb.c").write_text("usb\n")
    excluded = top / source_digest.EXCLUDED[0]
    excluded.parent.mkdir(parents=True)
    excluded.write_bytes(b"\x00bin")
    assert source_digest.digest(source_digest.tree_entries(str(top))) == first
    # The same tree as a tarball gives the same digest; one changed byte does not.
    with tarfile.open(tmp_path / "mp.tar", "w") as tar:
        tar.add(top / "py", "micropython-x/py")
        tar.add(top / ".gitmodules", "micropython-x/.gitmodules")
    assert source_digest.digest(source_digest.tarball_entries(tmp_path / "mp.tar")) == first
    (top / "py" / "obj.c").write_text("int y;\n")
    assert source_digest.digest(source_digest.tree_entries(str(top))) != first


# --- the submodules the port's CMake asks for ------------------------------------------

def cmake_files(tree):
    """esp32_common.cmake and every file it includes from the MicroPython tree."""
    todo, seen = [tree / "ports" / "esp32" / "esp32_common.cmake"], []
    while todo:
        path = todo.pop(0)
        seen.append(path)
        for rel in re.findall(r"include\(\$\{MICROPY_DIR\}/([\w/.]+)\)", path.read_text()):
            todo.append(tree / rel)
    return seen


def esp32_conditions(tree):
    """The CMake variables an epx ESP32 build has: what the port and our boards set ON,
    FROZEN_MANIFEST (docker/build.sh passes one); never MICROPY_LIB_DIR, UPDATE_SUBMODULES,
    CMAKE_BUILD_EARLY_EXPANSION (a real build, not the component-discovery pass)."""
    on = {"MICROPY_FROZEN_MANIFEST"}
    for path in [*cmake_files(tree), *(ROOT / "boards").glob("*/mpconfigboard.cmake")]:
        on |= set(re.findall(r"set\((\w+) ON\)", path.read_text()))
    return on


def evaluate(condition, on):
    assert condition is not None, "an elseif() around GIT_SUBMODULES: this test cannot read it"
    words = condition.split()
    if len(words) == 1 and re.fullmatch(r"\w+", words[0]):
        return words[0] in on
    if len(words) == 2 and words[0] == "NOT" and re.fullmatch(r"\w+", words[1]):
        return words[1] not in on
    raise AssertionError(f"a GIT_SUBMODULES condition this test cannot read: if({condition})")


def submodules_asked(tree, on):
    """The GIT_SUBMODULES entries an ESP32 build reaches, by their enclosing if()s."""
    asked = set()
    for path in cmake_files(tree):
        stack = []
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0].strip()
            opened = re.match(r"if\s*\((.*)\)$", code)
            if opened:
                stack.append([opened.group(1).strip(), True])
            elif re.match(r"else\s*\(", code):
                stack[-1][1] = False
            elif re.match(r"elseif\s*\(", code):
                stack[-1] = [None, True]  # read only if it encloses a GIT_SUBMODULES entry
            elif re.match(r"endif\s*\(", code):
                stack.pop()
            for sub in re.findall(r"list\(APPEND GIT_SUBMODULES ([\w/.-]+)\)", code):
                if all(evaluate(cond, on) == branch for cond, branch in stack):
                    asked.add(sub)
    return asked


def test_the_image_holds_the_submodules_the_esp32_build_asks_for(args, tree):
    on = esp32_conditions(tree)
    assert submodules_asked(tree, on) == set(args["MICROPYTHON_SUBMODULES"].split())
    # The reading follows the conditions: a board that turned lwIP on would need lib/lwip.
    assert "lib/lwip" in submodules_asked(tree, on | {"MICROPY_PY_LWIP"})
    assert "lib/micropython-lib" not in submodules_asked(tree, on | {"MICROPY_LIB_DIR"})


# --- the IDF components main/idf_component.yml asks for --------------------------------

def tilde_or_exact(spec, version):
    """Does `version` satisfy a component manager spec of the forms the port uses: `~X.Y.Z`
    (>=X.Y.Z, <X.(Y+1).0), `>=X.Y.Z`, or an exact version?"""
    have = tuple(int(p) for p in version.split("."))
    if spec.startswith("~"):
        low = tuple(int(p) for p in spec[1:].split("."))
        return low <= have < (low[0], low[1] + 1, 0)
    if spec.startswith(">="):
        return have >= tuple(int(p) for p in spec[2:].split("."))
    return have == tuple(int(p) for p in spec.split("."))


def components_asked(manifest, target="esp32"):
    """{name: version spec} of the registry components a manifest asks for on `target`."""
    asked = {}
    for name, dep in yaml.safe_load(manifest)["dependencies"].items():
        if name == "idf":
            continue
        dep = dep if isinstance(dep, dict) else {"version": dep}
        rules = [r["if"] for r in dep.get("rules", [])]
        for rule in rules:
            m = re.fullmatch(r"target in \[(.*)\]", rule.strip())
            assert m, f"a rule this test cannot read: {rule}"
            if target not in [t.strip() for t in m.group(1).split(",")]:
                break
        else:
            asked[name] = dep["version"]
    return asked


def vendoring_mismatches(manifest, pins):
    asked = components_asked(manifest)
    wrong = {n for n in asked if n in pins and not tilde_or_exact(asked[n], pins[n])}
    return set(asked) ^ set(pins) | wrong


def test_the_image_holds_the_idf_components_the_port_asks_for(args, tree):
    manifest = (tree / "ports" / "esp32" / "main" / "idf_component.yml").read_text()
    pins = dict(p.split("==") for p in args["IDF_COMPONENTS"].split())
    assert vendoring_mismatches(manifest, pins) == set()
    assert pins == {"espressif/mdns": "1.1.0"}  # tinyusb is for the S2 and S3 only
    # The IDF the manifest asks for is the image's.
    idf = yaml.safe_load(manifest)["dependencies"]["idf"]
    base = re.search(r"^FROM espressif/idf:v([\d.]+)$", (DOCKER / "Dockerfile").read_text(), re.M).group(1)
    assert tilde_or_exact(idf["version"], base)
    # The check fails on a manifest asking for more, or for another version.
    assert vendoring_mismatches(manifest + "  espressif/led_strip: \"~2.5.0\"\n", pins) == {"espressif/led_strip"}
    assert vendoring_mismatches(manifest, {"espressif/mdns": "1.2.0"}) == {"espressif/mdns"}
    assert vendoring_mismatches(manifest.replace("target in [esp32s2, esp32s3]", "target in [esp32, esp32s3]"),
                                pins) == {"espressif/esp_tinyusb"}


def lockfile(folder, deps):
    folder.mkdir(parents=True, exist_ok=True)
    lock = {"dependencies": {"idf": {"source": {"type": "idf"}, "version": "5.2.2"}}, "target": "esp32"}
    for name, version in deps.items():
        lock["dependencies"][name] = {"component_hash": hashlib.sha256(name.encode()).hexdigest(),
                                      "source": {"type": "service"}, "version": version}
        (folder / "managed_components" / name.replace("/", "__")).mkdir(parents=True)
    (folder / "dependencies.lock").write_text(yaml.safe_dump(lock))
    return folder / "dependencies.lock"


def test_the_image_build_stops_when_the_manager_resolves_other_components(args, tmp_path):
    """docker/components.py, run in the image after the component manager: the lock must
    hold exactly the pinned components, each downloaded."""
    def check(lock):
        return subprocess.run([sys.executable, str(DOCKER / "components.py"), str(lock),
                               *args["IDF_COMPONENTS"].split()], capture_output=True, text=True)

    assert check(lockfile(tmp_path / "good", {"espressif/mdns": "1.1.0"})).returncode == 0
    done = check(lockfile(tmp_path / "newer", {"espressif/mdns": "1.1.1"}))
    assert done.returncode == 1 and "resolved {'espressif/mdns': '1.1.1'}" in done.stderr
    lock = lockfile(tmp_path / "missing", {"espressif/mdns": "1.1.0"})
    (lock.parent / "managed_components" / "espressif__mdns").rmdir()
    done = check(lock)
    assert done.returncode == 1 and "not in managed_components" in done.stderr

