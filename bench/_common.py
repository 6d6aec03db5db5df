"""What the viper benches share: a module's plain-bytecode twin, and a probe run inside a
host firmware that prints its figures as `name value` lines."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path


def bytecode_twin(path, viper_functions):
    """The module at `path` without its viper decorators (annotations are not evaluated);
    ptr32() becomes the identity."""
    twin, n = re.subn(r"^\s*@micropython\.viper\n", "", Path(path).read_text(), flags=re.M)
    assert n == viper_functions, f"expected {viper_functions} viper functions in {path}"
    return "def ptr32(x):\n    return x\n\n\n" + twin


def run_probe(exe, probe, modules):
    """Run `probe` in the firmware `exe` (frozen modules first, then `modules`: {name:
    source}) in a scratch folder; {name: value text} from its output, or exit with it."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in modules.items():
            Path(tmp, name + ".py").write_text(source)
        Path(tmp, "probe.py").write_text(probe)
        out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen',''];import probe"],
                             cwd=tmp, capture_output=True, text=True, timeout=300)
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    return dict(line.split() for line in out.stdout.split("\n") if line)
