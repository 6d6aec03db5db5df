"""A release's secure version: the number in every app descriptor that a device's floor
(NVS ota/floor, docs/core.md "Anti-rollback") is compared with.

It is `secure-version` under `[tool.epx]` in pyproject.toml, raised by a release that fixes
a hole. Host app images are written with it; an ESP32 build leaves it 0 (ESP-IDF sets the
field only with eFuse anti-rollback, which epx does not burn), so `stamp()` writes it into
the built image with esptool's image classes, which recompute the checksum and SHA-256.
"""

import struct
import tomllib

from .errors import EpxError
from .paths import ROOT

CHIP = "esp32"
_DESC_MAGIC = 0xABCD5432
_MAX = 0xFFFFFFFF  # esp_app_desc_t.secure_version is a uint32_t


def configured(pyproject=ROOT / "pyproject.toml"):
    """The secure version this checkout's releases carry (0 when none is set)."""
    with open(pyproject, "rb") as f:
        n = tomllib.load(f).get("tool", {}).get("epx", {}).get("secure-version", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX:
        raise EpxError(f"{pyproject.name}: [tool.epx] secure-version {n!r} is not an integer "
                       f"from 0 to {_MAX}")
    return n


def stamp(data, n):
    """The app image `data` with secure_version n in its app descriptor."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        image = LoadFirmwareImage(CHIP, bytes(data))
    except (FatalError, RuntimeError, struct.error, ValueError) as e:
        raise EpxError(f"app image: {e}")
    desc = image.segments[0].data
    if len(desc) < 8 or struct.unpack_from("<I", desc)[0] != _DESC_MAGIC:
        raise EpxError("app image: its first segment is not an app descriptor")
    if struct.unpack_from("<I", desc, 4)[0] == n:
        return bytes(data)
    if image.save(None) != bytes(data):
        # Rewriting must change nothing but the field: an image esptool would lay out
        # otherwise (padding, digest) is not ours to rewrite.
        raise EpxError("app image: esptool does not reproduce it byte for byte; not stamped")
    image.segments[0].data = desc[:4] + struct.pack("<I", n) + desc[8:]
    return image.save(None)


def stamp_merged(merged, app_offset, old_app, new_app):
    """A merged flash image (firmware.bin) with `old_app` at app_offset replaced by new_app
    (the same length)."""
    end = app_offset + len(old_app)
    if len(new_app) != len(old_app) or merged[app_offset:end] != old_app:
        raise EpxError(f"firmware.bin: the app image is not at {app_offset:#x}; not stamped")
    return merged[:app_offset] + new_app + merged[end:]
