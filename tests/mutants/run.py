"""make mutants: each named mutant of tests/mutants/*.toml applied in a scratch copy of the
work tree, its firmwares rebuilt, its tests run; the run fails when a mutant survives.

    python tests/mutants/run.py [--only NAME[,NAME...]] [--list] [--keep] [FILE.toml ...]

A mutant is the smallest change that breaks one behaviour the project claims: `file`, a
`search` text found exactly once in it, its `replace`ment, the `profiles` whose host
firmware it changes (built with `python -m epx unix <profile>` first: a mutant that does not
build is a broken mutant, not a killed one) and the `tests` (pytest node ids or files) that
must fail on it, with `env` (a table) set for them. `pending = "why"` marks a mutant
known to survive until an issue lands: reported, not failed, and reported again once it
is killed (drop the mark then).

The scratch copy is the work tree as it is (tracked and untracked files, .gitignore'd ones
left out) with deps/ linked; its build folder starts from build/unix-bare when there is
one, so a mutant costs a re-freeze, not a compile of the C core."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KEYS = {"name", "file", "search", "replace", "tests", "profiles", "env", "why", "pending"}
REQUIRED = ("name", "file", "search", "replace", "tests", "why")


class MutantError(Exception):
    pass


def load(paths=None):
    """Every mutant of the given files (default: tests/mutants/*.toml), checked for form."""
    mutants = []
    for path in paths or sorted(HERE.glob("*.toml")):
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        for m in doc.get("mutant", []):
            where = f"{Path(path).name}: {m.get('name', '?')}"
            missing = [k for k in REQUIRED if not m.get(k)]
            if missing:
                raise MutantError(f"{where}: no {', '.join(missing)}")
            if set(m) - KEYS:
                raise MutantError(f"{where}: unknown keys {sorted(set(m) - KEYS)}")
            m.setdefault("profiles", [])
            m["source"] = Path(path).name
            mutants.append(m)
    names = [m["name"] for m in mutants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MutantError(f"mutant names used twice: {dupes}")
    return mutants


def check(m, root=ROOT):
    """The reasons a mutant cannot be applied to the tree at root (empty: it can)."""
    path = root / m["file"]
    if not path.is_file():
        return [f"{m['name']}: {m['file']}: no such file"]
    problems = []
    n = path.read_text().count(m["search"])
    if n != 1:
        problems.append(f"{m['name']}: search text found {n} times in {m['file']}, not once")
    if m["search"] == m["replace"]:
        problems.append(f"{m['name']}: replace is the search text")
    for t in m["tests"]:
        test_file, _, test = t.partition("::")
        if not (root / test_file).is_file():
            problems.append(f"{m['name']}: test {t}: no such file")
        elif test and f"def {test.split('[')[0]}(" not in (root / test_file).read_text():
            problems.append(f"{m['name']}: test {t}: no such test")
    if not all(isinstance(v, str) for v in m.get("env", {}).values()):
        problems.append(f"{m['name']}: env values are text")
    for p in m["profiles"]:
        if not any((root / d / f"{p}.py").is_file() for d in ("manifests", "tests/firmware")):
            problems.append(f"{m['name']}: profile {p}: no manifest")
    return problems


def scratch_copy(dest):
    """The work tree as it is, without what git ignores, at dest; deps/ linked."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "deps").symlink_to(ROOT / "deps")


def seed_build(tree, build):
    """build/unix-bare of the work tree as the scratch build's first firmware, its paths
    moved to the scratch tree: the C core is not compiled again."""
    src = Path(os.environ.get("EPX_BUILD", ROOT / "build")).resolve() / "unix-bare"
    if not (src / "micropython").is_file():
        return False
    dst = build / "unix-bare"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("make.log"))
    old_root, new_root = str(ROOT), str(tree)
    moved = dst / old_root.lstrip("/")  # objects of the variant's own C files
    if moved.is_dir():
        target = dst / new_root.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        moved.rename(target)
    paths = re.compile(re.escape(str(src)) + "|" + re.escape(old_root))
    for dep in dst.rglob("*.P"):
        text = dep.read_text()
        fixed = paths.sub(lambda m: str(dst) if m.group(0) == str(src) else new_root, text)
        if fixed != text:
            dep.write_text(fixed)
    return True


def run(argv, cwd, env, log, timeout):
    with open(log, "a") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        try:
            return subprocess.run(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            f.write(f"timed out after {timeout} s\n")
            return None


def tail(log, n=25):
    return "".join(Path(log).read_text().splitlines(keepends=True)[-n:])


def mutate(tree, m, env, logdir, say):
    """Apply m in tree, build, run its tests, restore: 'killed', 'survived', or 'broken'
    (the mutant does not build, or its tests could not run)."""
    path = tree / m["file"]
    original = path.read_text()
    log = logdir / f"{m['name']}.log"
    log.write_text("")
    path.write_text(original.replace(m["search"], m["replace"], 1))
    env = dict(env, **m.get("env", {}))
    try:
        for profile in m["profiles"]:
            rc = run([sys.executable, "-m", "epx", "unix", profile], tree, env, log, 1800)
            if rc != 0:
                say(tail(log))
                return "broken"
        rc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:benchmark", "-p", "no:cacheprovider",
                  "-n", "0", "-x", *m["tests"]], tree, env, log, 3600)
    finally:
        path.write_text(original)
    if rc == 0:
        summary = Path(log).read_text().strip().splitlines()[-1:]
        if summary and "skipped" in summary[0] and "passed" not in summary[0]:
            say(tail(log))
            return "broken"  # nothing ran: no verdict
        return "survived"
    if rc == 1:  # tests ran, and one failed
        return "killed"
    say(tail(log))
    return "broken"


def main(args=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="mutant files (default tests/mutants/*.toml)")
    ap.add_argument("--only", help="comma-separated mutant names")
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy and logs")
    opts = ap.parse_args(args)

    def say(text):
        print(text, flush=True)

    mutants = load(opts.files or None)
    if opts.only:
        wanted = opts.only.split(",")
        unknown = [n for n in wanted if n not in {m["name"] for m in mutants}]
        if unknown:
            raise MutantError(f"unknown mutants: {unknown}")
        mutants = [m for m in mutants if m["name"] in wanted]
    problems = [p for m in mutants for p in check(m)]
    if problems:
        raise MutantError("\n".join(problems))
    if opts.list:
        for m in mutants:
            say(f"{m['name']:32} {m['file']}{'  (pending: ' + m['pending'] + ')' if m.get('pending') else ''}")
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="epx-mutants-"))
    tree, build, logdir = scratch / "tree", scratch / "build", scratch / "logs"
    for d in (tree, build, logdir):
        d.mkdir()
    env = dict(os.environ, PYTHONPATH=str(tree / "tools"), EPX_BUILD=str(build),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("EPX_VERSION", None)
    results = []
    try:
        scratch_copy(tree)
        seeded = any(m["profiles"] for m in mutants) and seed_build(tree, build)
        say(f"{len(mutants)} mutants in {tree} ({'build seeded from unix-bare' if seeded else 'no seed build'})")
        if any(m["profiles"] for m in mutants) and \
                run([sys.executable, "-m", "epx", "unix", "bare"], tree, env, logdir / "bare.log", 3600) != 0:
            raise MutantError("the unmutated bare firmware does not build:\n" + tail(logdir / "bare.log"))
        for i, m in enumerate(mutants, 1):
            t0 = time.monotonic()
            outcome = mutate(tree, m, env, logdir, say)
            took = time.monotonic() - t0
            if m.get("pending"):
                outcome = {"survived": "pending", "killed": "killed (pending: drop the mark once it is killed every run)"}.get(outcome, outcome)
            results.append((m, outcome))
            say(f"[{i}/{len(mutants)}] {m['name']}: {outcome.upper()} in {took:.0f} s"
                + (f" (pending: {m['pending']})" if m.get("pending") and outcome == "pending" else ""))
    finally:
        if opts.keep:
            say(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    failed = [(m, o) for m, o in results if o in ("survived", "broken")]
    killed = sum(1 for _, o in results if o.startswith("killed"))
    pending = [m["name"] for m, o in results if o == "pending"]
    say(f"{killed} of {len(results)} killed" + (f"; pending (expected to survive): {', '.join(pending)}" if pending else ""))
    for m, o in failed:
        say(f"FAILED {m['name']}: {o} ({m['file']}: {m['why']}; tests {' '.join(m['tests'])})")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MutantError as e:
        print(f"mutants: {e}", file=sys.stderr)
        sys.exit(2)
