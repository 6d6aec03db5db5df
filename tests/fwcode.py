"""Code run in a host firmware with -c: the firmware's result, and the JSON value the code
printed last (what most in-firmware tests return)."""

import json
import re
import subprocess


def run_code(exe, code, cwd, timeout=60, env=None, heap=None):
    args = [str(exe)] + (["-X", f"heapsize={heap}"] if heap else []) + ["-c", code]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def assert_units_passed(result):
    """tests/firmware/fwunit.py ran a module: it must have run tests and all passed; how many."""
    text = result.stdout + result.stderr
    summary = re.search(r"SUMMARY \S+ passed (\d+) failed (\d+)", text)
    assert result.returncode == 0 and summary, text
    assert summary.group(2) == "0", text
    assert int(summary.group(1)) > 0, text
    return int(summary.group(1))


def last_json(result):
    """The JSON value of the output's last line; the firmware must have exited with 0."""
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def boot_env(reset_cause):
    """The environment of a firmware started as after a reset of that cause."""
    return {"EPX_SIM_BOOT": json.dumps({"reset_cause": reset_cause}), "PATH": "/usr/bin:/bin"}
