"""A stand-in for `docker` on PATH in tests of the ESP32 build path (no Docker daemon, no
ESP-IDF here): `docker build` does nothing; `docker run ... epx-build PROFILE BOARD` leaves
what docker/build.sh leaves in build/esp32-<profile>-<board>/idf/, with ESP-IDF's one
behaviour that matters to epx: CMake reads PROJECT_VER when it configures, and a build
folder that has a CMakeCache.txt is not configured again, so it keeps its old version.

The app image is a real ESP32 app image (esptool's classes, tools/epx/sim/appimage.py).
`install(folder)` puts a `docker` command in `folder`; it appends each call to docker.log.
With FAKE_DOCKER_NO_DAEMON set, every call fails as the docker CLI does without dockerd."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def install(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "docker"
    log = folder / "docker.log"
    exe.write_text(f'#!/bin/sh\nFAKE_DOCKER_LOG="{log}" exec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return log


def build_folder(argv):
    """The host folder mounted at /epx/build."""
    for i, arg in enumerate(argv):
        if arg == "-v" and argv[i + 1].endswith(":/epx/build"):
            return Path(argv[i + 1].rsplit(":", 1)[0])
    raise SystemExit("fake docker: no -v BUILD:/epx/build")


def run(argv):
    sys.path.insert(0, str(HERE.parent / "tools"))
    from epx import partitions
    from epx.sim import appimage

    profile, board = argv[argv.index("epx-build") + 1:][:2]
    build = build_folder(argv) / f"esp32-{profile}-{board}"
    idf = build / "idf"
    idf.mkdir(parents=True, exist_ok=True)
    cache = idf / "CMakeCache.txt"
    if not cache.exists():  # configure: PROJECT_VER from version.txt, as docker/build.sh passes it
        cache.write_text(f"PROJECT_VER:STRING={(build / 'version.txt').read_text().strip()}\n")
    version = cache.read_text().split("=", 1)[1].strip()
    app = appimage.build(f"{profile} {board} app".encode(), version)
    (idf / "micropython.bin").write_bytes(app)
    # makeimg.py: from 0x1000, the bootloader, the partition table at 0x8000, the app at
    # the first app partition, erased flash between them.
    table = partitions.load(HERE.parent / "boards" / board / "partitions.csv")
    first_app = min(p.offset for p in table if p.type == "app")
    merged = bytearray(b"\xff" * (first_app - 0x1000))
    merged[:9] = b"bootloader"[:9]
    merged[0x8000 - 0x1000:0x8000 - 0x1000 + 10] = b"partitions"
    (idf / "firmware.bin").write_bytes(bytes(merged) + app)


def main(argv):
    with open(os.environ.get("FAKE_DOCKER_LOG", os.devnull), "a") as log:
        log.write(" ".join(argv) + "\n")
    if os.environ.get("FAKE_DOCKER_NO_DAEMON"):  # the docker CLI's words without dockerd
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\n")
        return 1
    if argv[0] == "info":
        print("27.5.1")
        return 0
    if argv[0] == "build":
        return 0
    if argv[0] == "run":
        run(argv)
        return 0
    raise SystemExit(f"fake docker: {argv[0]}: not emulated")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
