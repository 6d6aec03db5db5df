"""A fresh clone of this checkout for tests of the set-up and CI steps, and the environment
of a stock machine to run them in."""

import os
import shutil
import subprocess
from pathlib import Path

from epx import source
from epx.paths import ROOT

# A login's PATH on Debian and Ubuntu: the distribution's python3, no pyenv, no venv.
STOCK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def fresh_clone(dest):
    """`git clone` of this checkout, with the work tree's uncommitted changes and new files on
    top, so a test sees what is being changed. No build/, deps/ or .venv/."""
    dest = Path(dest)
    git("clone", "-q", str(ROOT), str(dest))
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, check=True, capture_output=True).stdout
    if diff:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=dest, input=diff, check=True)
    for name in git("ls-files", "--others", "--exclude-standard", "-z").split("\0"):
        if name and not name.startswith("deps"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def stock_env(**extra):
    """A fresh login's environment: the system PATH and no virtual environment."""
    env = {"PATH": STOCK_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def micropython_tree():
    """The pinned source this checkout already has, for a clone not to fetch it again."""
    return str(Path(source.micropython_dir()).resolve())
