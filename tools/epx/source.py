"""The pinned MicroPython source tree: fetched with apt from Debian, checked, unpacked.

MicroPython v1.25.0 comes from Debian's source package ``micropython 1.25.0+ds-1``
(trixie), whose orig tarball is pinned by SHA-256. The ``+ds`` repack empties every
``lib/`` submodule; the host build needs only mbedtls, taken from trixie's ``mbedtls``
source package (3.6, the major version ESP-IDF v5.2 uses). Debian's own patches are not
applied (one of them links the system mbedtls instead of ``lib/mbedtls``).
"""

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from . import stage
from .errors import EpxError
from .paths import DEPS, ROOT

VERSION = "1.25.0"
DEB_SUITE = "trixie"
DEB_PACKAGE = ("micropython", "1.25.0+ds-1")
ORIG_TARBALL = "micropython_1.25.0+ds.orig.tar.xz"
ORIG_SHA256 = "7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea"
MBEDTLS_PACKAGE = "mbedtls"
MBEDTLS_SERIES = "3.6."

TREE = DEPS / f"micropython-{VERSION}"
STAMP = ".epx-source"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def micropython_dir():
    """The tree to build from: $MICROPY_DIR if set, else the fetched one."""
    env = os.environ.get("MICROPY_DIR")
    if env:
        tree = Path(env).resolve()
        check_version(tree)
        return tree
    if not (TREE / STAMP).is_file():
        raise EpxError(f"{TREE.relative_to(ROOT)}: MicroPython source not fetched; run `epx fetch`")
    return TREE


def check_version(tree):
    header = tree / "py" / "mpconfig.h"
    try:
        text = header.read_text()
    except OSError:
        raise EpxError(f"{header}: not a MicroPython source tree")
    found = []
    for part in ("MAJOR", "MINOR", "MICRO"):
        for line in text.splitlines():
            words = line.split()
            if words[:2] == ["#define", "MICROPY_VERSION_" + part]:
                found.append(words[2])
    if ".".join(found) != VERSION:
        raise EpxError(f"{header}: MicroPython {'.'.join(found) or '?'}, epx is pinned to {VERSION}")


def fetch(force=False):
    """Fetch, verify and unpack the pinned tree (with mbedtls) into deps/."""
    if os.environ.get("MICROPY_DIR"):
        return micropython_dir()
    if (TREE / STAMP).is_file() and not force:
        return TREE
    DEPS.mkdir(exist_ok=True)
    download = DEPS / "debian"
    download.mkdir(exist_ok=True)
    if not (download / ORIG_TARBALL).is_file() or force:
        stage.say(f"fetching MicroPython {VERSION}'s source with apt-get source (Debian's "
                  f"{DEB_PACKAGE[0]}, about 6 MB: usually under a minute, once)")
        apt_source(download, f"{DEB_PACKAGE[0]}={DEB_PACKAGE[1]}")
    orig = download / ORIG_TARBALL
    verify_sha256(orig, ORIG_SHA256)
    mbedtls = mbedtls_tarball(download)
    if mbedtls is None:
        stage.say(f"fetching {MBEDTLS_PACKAGE} {MBEDTLS_SERIES}x's source for TLS (about 6 MB, once)")
        mbedtls = mbedtls_tarball(apt_source(download, MBEDTLS_PACKAGE))
    if mbedtls is None:
        raise EpxError(f"{download}: no {MBEDTLS_PACKAGE} {MBEDTLS_SERIES}x orig tarball from {DEB_SUITE}")
    stage.say(f"unpacking into {TREE.relative_to(ROOT)}/ (sha256 checked; seconds)")
    unpack(orig, mbedtls)
    return TREE


def verify_sha256(path, expected):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise EpxError(f"{path}: sha256 {digest.hexdigest()} is not the pinned {expected}; nothing built")


def mbedtls_tarball(folder):
    for path in sorted(Path(folder).glob(f"{MBEDTLS_PACKAGE}_{MBEDTLS_SERIES}*.orig.tar.*")):
        return path
    return None


def unpack(orig, mbedtls):
    staging = Path(tempfile.mkdtemp(prefix="micropython.", dir=DEPS))
    try:
        with tarfile.open(orig) as tar:
            extract(tar, staging)
        (top,) = staging.iterdir()
        check_version(top)
        lib = top / "lib" / "mbedtls"
        shutil.rmtree(lib, ignore_errors=True)
        with tarfile.open(mbedtls) as tar:
            extract(tar, staging / "mbedtls")
        (mbed_top,) = (staging / "mbedtls").iterdir()
        mbed_top.rename(lib)
        (top / STAMP).write_text(f"{ORIG_TARBALL} {ORIG_SHA256}\n{mbedtls.name}\n")
        shutil.rmtree(TREE, ignore_errors=True)
        top.rename(TREE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract(tar, dest):
    """Unpack with tarfile's "tar" filter; a Python without it (Debian 12's 3.11.2; filters
    came in 3.11.4) gets the same refusal of members that would land outside `dest`."""
    if hasattr(tarfile, "tar_filter"):
        try:
            tar.extractall(dest, filter="tar")
        except tarfile.FilterError as e:
            raise EpxError(f"{tar.name}: {e}")
        return
    top = os.path.realpath(dest)
    for member in tar.getmembers():
        where = os.path.realpath(os.path.join(top, member.name))
        link = member.issym() and os.path.realpath(os.path.join(os.path.dirname(where), member.linkname))
        if os.path.commonpath([top, where]) != top or member.isdev() or (
                link and os.path.commonpath([top, link]) != top):
            raise EpxError(f"{tar.name}: member {member.name} would land outside {dest}")
    tar.extractall(dest)


def debian_archive():
    """(URI, Signed-By) of the machine's own Debian archive entry."""
    for uri, signed_by in apt_entries():
        if uri.rstrip("/").endswith("/debian"):
            return uri, signed_by
    raise EpxError("/etc/apt/sources.list*: no Debian archive entry to derive a deb-src entry from")


def apt_entries():
    listing, folder = APT_SOURCES
    files = [listing] + (sorted(folder.iterdir()) if folder.is_dir() else [])
    for path in files:
        if path.name.endswith(".sources"):
            yield from deb822_entries(path.read_text())
        elif path.name.endswith(".list") and path.is_file():
            yield from one_line_entries(path.read_text())


def deb822_entries(text):
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if ":" in line and not line.startswith((" ", "#")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("signed-by")


def one_line_entries(text):
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        signed_by = None
        if words and words[0].startswith("["):
            options = []
            while words:
                word = words.pop(0)
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
            for option in options:
                if option.startswith("signed-by="):
                    signed_by = option.split("=", 1)[1]
        if words:
            yield words[0], signed_by


def apt_source(into, spec):
    """Download a Debian source package with apt, from a private deb-src list."""
    uri, signed_by = debian_archive()
    state = DEPS / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    options = f"[signed-by={signed_by}] " if signed_by else ""
    sources = state / "sources.list"
    sources.write_text(f"deb-src {options}{uri} {DEB_SUITE} main\n")
    apt = [
        "-o", f"Dir::Etc::SourceList={sources}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "APT::Sandbox::User=root",
    ]
    run(["apt-get", *apt, "-q", "update"], "apt-get update")
    run(["apt-get", *apt, "-q", "source", "--download-only", spec], f"apt-get source {spec}", cwd=into)
    return into


def run(argv, what, cwd=None):
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise EpxError(f"{what}: {last}")
