import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPS = ROOT / "deps"
BUILD = Path(os.environ.get("EPX_BUILD", ROOT / "build")).resolve()
DIST = ROOT / "dist"
BOARDS = ROOT / "boards"
MANIFESTS = ROOT / "manifests"


def rel(path):
    """A path as the user should read it: relative to the repo when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
