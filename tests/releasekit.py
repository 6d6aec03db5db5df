"""What the workflow's esp32 jobs upload, fabricated: an artifact folder as
actions/download-artifact leaves it (tests/test_workflow.py, tests/test_install_page.py)."""

import hashlib
import json

from epx.sim import appimage


def fake_artifact(folder, profile, board, payload=b"app"):
    folder = folder / f"{profile}-{board}"
    folder.mkdir(parents=True)
    app = appimage.build(payload, f"{profile}-1.0")
    (folder / "micropython.bin").write_bytes(app)
    (folder / "firmware.bin").write_bytes(b"\xff" * 0x1000 + app)
    (folder / "firmware.json").write_text(json.dumps({
        "profile": profile, "board": board, "version": f"{profile}-1.0",
        "sha256": hashlib.sha256(app).hexdigest(), "size": len(app),
        "flash": {"firmware.bin": 0x1000, "micropython.bin": 0x10000}}))
    return folder
