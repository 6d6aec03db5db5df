"""The host firmware of an earlier commit, for make test-ha's upgrades: that commit's tree
(git archive) under build/old/<commit> with this checkout's deps, built and run by its own
tools (`epx sim`), so it is exactly what that commit shipped. A device folder names the
simulated chip (its MAC), so the same folder run by this commit's Demo is the same device
after an upgrade."""

import os
import shutil
import signal
import subprocess
import sys

from epx.paths import BUILD, ROOT


def tree(commit):
    root = BUILD / "old" / commit
    if not (root / "tools" / "epx").exists():
        part = BUILD / "old" / f"{commit}.part"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(part)], input=archive, check=True)
        shutil.copytree(ROOT / "deps", part / "deps", symlinks=True)
        os.replace(part, root)
    return root


def _env(root):
    return dict(os.environ, PYTHONPATH=str(root / "tools"), EPX_BUILD=str(root / "build"))


def build(commit, profiles):
    """Build each profile's host firmware at commit (one at a time: they share a tree)."""
    root = tree(commit)
    for profile in profiles:
        subprocess.run([sys.executable, "-m", "epx", "unix", profile], cwd=root, env=_env(root),
                       check=True, capture_output=True, timeout=1800)


class OldDevice:
    """`epx sim <profile>` of that commit against the broker, in folder, at real time."""

    def __init__(self, commit, profile, folder, broker):
        root = tree(commit)
        self.log = open(f"{folder}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "epx", "sim", profile, "--broker", f"{broker.host}:{broker.port}",
             "--speed", "1", "--dir", str(folder)],
            cwd=root, env=_env(root), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # epx sim stops its devices on SIGTERM
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
