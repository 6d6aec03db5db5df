"""The GitHub workflow (.github/workflows/firmware.yml) run here, short of Docker: its shell
steps in a fresh clone with only the distribution's python3 on PATH, `docker` a stand-in
(tests/fake_docker.py), the uploads and the release's assets as the actions would make them.
The test job's `make test` and the stock job's `make test-stock` are this suite itself and
`make test-stock`; here they are only checked to be what the jobs run."""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import fake_docker
from clone import STOCK_PATH, fresh_clone, micropython_tree, stock_env
import soakkit
from releasekit import fake_artifact
from epx import build
from epx.paths import ROOT
from epx.sim import appimage

WORKFLOW = ROOT / ".github" / "workflows" / "firmware.yml"
RELEASE = ROOT / "ci" / "release_assets.py"
RELEASE_FILES = ("firmware.bin", "micropython.bin", "firmware.json")


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def expand(text, **values):
    """The workflow's `${{ a.b }}` expressions this test knows; any other one fails the test."""
    def value(m):
        key = m.group(1).strip()
        assert key in values, f"unknown expression {key!r} in {text!r}"
        return str(values[key])
    return re.sub(r"\$\{\{([^}]*)\}\}", value, text)


def run_steps(job):
    return [s for s in job["steps"] if "run" in s]


def uses(job, action):
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


def test_no_step_installs_into_the_runners_python(workflow):
    for name, job in workflow["jobs"].items():
        for step in run_steps(job):
            assert "pip install" not in step["run"], (name, step)
            # ci/setup.sh asks for sudo only for apt; a job may set a kernel knob (Yama)
            assert "sudo" not in step["run"] or step["run"].startswith("sudo sysctl "), (name, step)


def test_jobs_run_the_readmes_commands(workflow):
    jobs = workflow["jobs"]
    assert run_steps(jobs["test"])[-1]["run"].strip() == "make test"
    assert run_steps(jobs["loaded"])[-1]["run"].strip() == "make test-loaded"
    assert run_steps(jobs["homeassistant"])[-1]["run"].strip() == "make test-ha"
    assert run_steps(jobs["fleet"])[-1]["run"].strip() == "make test-fleet"
    assert run_steps(jobs["soak"])[-1]["run"].startswith("make test-soak")
    assert jobs["soak"]["strategy"]["matrix"]["profile"] == list(soakkit.PROFILES)
    days = run_steps(jobs["soak"])[-1]["env"]["EPX_SOAK_DAYS"]  # on the schedule: 30
    assert "schedule" in days and "matrix.scheduled_days" in days, days
    assert {"scheduled_days": 30} in jobs["soak"]["strategy"]["matrix"]["include"]
    assert workflow.get("on", workflow.get(True))["schedule"]
    assert run_steps(jobs["mutants"])[-1]["run"].strip() == "make mutants"
    assert jobs["mutants"]["if"] == "github.event_name == 'schedule'"  # weekly, not on a push
    assert "make test-stock" in run_steps(jobs["stock"])[-1]["run"].splitlines()[-1]
    assert {m["image"] for m in jobs["stock"]["strategy"]["matrix"]["include"]} == {"debian:12", "ubuntu:24.04"}
    matrix = jobs["esp32"]["strategy"]["matrix"]
    assert sorted(matrix["profile"]) == build.profiles()
    assert sorted(matrix["board"]) == build.boards()
    upload, = uses(jobs["esp32"], "actions/upload-artifact")
    assert upload["with"]["name"] == "${{ matrix.profile }}-${{ matrix.board }}"
    assert upload["with"]["if-no-files-found"] == "error"
    assert [Path(p).name for p in upload["with"]["path"].splitlines()] == ["firmware.bin", "micropython.bin",
                                                                     "firmware.json"]
    release = jobs["release"]
    assert release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(release["needs"]) == {"test", "esp32"}
    assert release["permissions"] == {"contents": "write", "pages": "write", "id-token": "write"}
    download, = uses(release, "actions/download-artifact")
    assets, page = run_steps(release)
    assert assets["run"].split() == ["python3", "ci/release_assets.py", download["with"]["path"], "release"]
    assert page["run"].split() == ["python3", "ci/install_page.py", "release"]
    publish, = uses(release, "softprops/action-gh-release")
    assert publish["with"]["files"] == "release/*"
    pages, = uses(release, "actions/upload-pages-artifact")
    assert pages["with"]["path"] == "release" and uses(release, "actions/deploy-pages")


def test_one_run_per_commit_and_ref(workflow):
    on = workflow.get("on", workflow.get(True))
    # A branch's commits run through its pull request only; main and release tags on push.
    assert on["push"] == {"branches": ["main"], "tags": ["v*"]} and "pull_request" in on
    group = workflow["concurrency"]["group"]
    assert "github.ref" in group and "github.event_name" in group
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_the_esp_idf_image_is_built_once_per_run(workflow):
    jobs = workflow["jobs"]
    builder, = uses(jobs["esp32-image"], "docker/build-push-action")
    loader, = uses(jobs["esp32"], "docker/build-push-action")
    assert builder["with"]["context"] == loader["with"]["context"] == "docker"
    scope = "type=gha,scope=esp-idf"
    assert builder["with"]["cache-to"] == "type=gha,mode=max,scope=esp-idf"
    assert builder["with"]["cache-from"] == loader["with"]["cache-from"] == scope
    assert "cache-to" not in loader["with"] and loader["with"]["load"] is True
    assert jobs["esp32"]["needs"] == "esp32-image"
    # epx uses the loaded image as it is (no `docker build` of its own in the matrix).
    assert loader["with"]["tags"] == "${{ env.EPX_ESP_IDF_IMAGE }}"
    assert jobs["esp32"]["env"][build.PREBUILT_IMAGE] == "epx-idf:ci"


def setup_installs(tmp_path, *args):
    """The apt packages `ci/setup.sh ARGS` asks for on a machine with none of the test
    tools (no mosquitto, no chromium, a gcc without -m32), its venv already made: apt-get,
    sudo and the venv's python are stand-ins that log."""
    root = tmp_path / "checkout"
    (root / "ci").mkdir(parents=True)
    shutil.copy(ROOT / "ci" / "setup.sh", root / "ci")
    shutil.copy(ROOT / "pyproject.toml", root)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "apt.log"
    for tool in ("bash", "env", "id", "sha256sum", "cut", "cat", "dirname", "make", "strip", "git", "python3"):
        os.symlink(shutil.which(tool), bin_ / tool)
    stubs = {
        "apt-get": f'[ "$1" = install ] && echo "$@" >> {log}; exit 0',
        "sudo": 'exec "$@"',
        "gcc": 'for a; do [ "$a" = -m32 ] && exit 1; done; exit 0',
    }
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    stubs[str(venv / "python")] = f'[ "$1" = -c ] && [ -n "$2" ] && echo "{root}/tools/epx/__init__.py"; exit 0'
    for name, body in stubs.items():
        path = Path(name) if "/" in name else bin_ / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    done = subprocess.run(["bash", "ci/setup.sh", *args], cwd=root, env={"PATH": str(bin_), "HOME": str(tmp_path)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted(w for line in lines for w in line.split()[1:] if not w.startswith("-"))


def test_the_esp32_job_installs_only_what_its_build_uses(tmp_path):
    # ci/build-esp32.sh: `epx esp32` runs make, gcc (mpy-cross) and git on the host; no
    # broker, no 32-bit gcc, no browser.
    assert "bash ci/setup.sh esp32" in (ROOT / "ci" / "build-esp32.sh").read_text()
    assert setup_installs(tmp_path / "esp32", "esp32") == []
    assert setup_installs(tmp_path / "all") == [
        "chromium", "chromium-driver", "gcc-multilib", "mosquitto", "mosquitto-clients"]


# --- the README's CI table, held to the workflow -----------------------------------------

def readme_ci_table():
    """{job: {column: [code spans]}} of the README's CI table."""
    lines = (ROOT / "README.md").read_text().splitlines()
    top = lines.index("| job | matrix | runs | produces |")
    columns = ["job", "matrix", "runs", "produces"]
    table = {}
    for line in lines[top + 2:]:
        if not line.startswith("|"):
            break
        cells = dict(zip(columns, (c.strip() for c in line.strip("|").split("|"))))
        # In `runs`, a parenthesis says what a step does, not another step.
        spans = {k: re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", v) if k == "runs" else v)
                 for k, v in cells.items()}
        table[spans["job"][0]] = dict(spans, text=cells)
    return table


def normalised(text):
    """A step's shell text as the README writes it: `${{ matrix.x }}` is `<x>`."""
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", r"<\1>", text)


def action_name(step):
    return step["uses"].split("@")[0]


def readme_runs_errors(name, job, claims):
    """What the README's `runs` column says of a job that its steps do not do, in order."""
    steps = [s for s in job["steps"] if "run" in s or action_name(s) != "actions/checkout"]
    errors, at = [], 0
    for claim in claims:
        for i in range(at, len(steps)):
            step = steps[i]
            if ("run" in step and any(claim in line for line in normalised(step["run"]).splitlines())) or (
                    "uses" in step and action_name(step) == claim):
                at = i + 1
                break
        else:
            errors.append(f"{name}: README says `{claim}`; no step after the last one it named does that")
    for step in steps:
        said = [c for c in claims if ("run" in step and any(c in l for l in normalised(step["run"]).splitlines()))
                or ("uses" in step and action_name(step) == c)]
        if not said:
            errors.append(f"{name}: step {step.get('name') or step.get('uses')!r} is not in the README")
    return errors


def matrix_claims(job):
    matrix = job.get("strategy", {}).get("matrix", {})
    claims = []
    for key in ("profile", "board"):
        claims += matrix.get(key, [])
    claims += [m["image"] for m in matrix.get("include", []) if "image" in m]
    claims += [v for e in matrix.get("exclude", []) for v in e.values()]
    return claims


def test_the_readmes_ci_table_is_the_workflow(workflow):
    table, jobs = readme_ci_table(), workflow["jobs"]
    assert set(table) == set(jobs)
    errors = []
    for name, job in jobs.items():
        errors += readme_runs_errors(name, job, table[name]["runs"])
        said = [c for c in table[name]["matrix"] if not c.endswith(".py")]
        if said != matrix_claims(job):
            errors.append(f"{name}: README's matrix {said}, the workflow's {matrix_claims(job)}")
    assert errors == []
    # What the table's wording adds: Python 3.13, the soak's days, no network, the uploads.
    ha, = uses(jobs["homeassistant"], "actions/setup-python")
    assert "(3.13)" in table["homeassistant"]["text"]["runs"] and ha["with"]["python-version"] == "3.13"
    assert "30 on the weekly schedule, switch 10" in table["soak"]["text"]["runs"]
    assert "`docker run --network none`" in table["esp32"]["text"]["runs"]
    upload, = uses(jobs["esp32"], "actions/upload-artifact")
    assert table["esp32"]["produces"] == [normalised(upload["with"]["name"])] + [
        Path(p).name for p in upload["with"]["path"].splitlines()]
    assert table["release"]["produces"] == [f"<profile>-<board>-{f}" for f in (*RELEASE_FILES, "manifest.json")] + [
        "SHA256SUMS", "index.html", "esp-web-tools/"]


def test_the_readme_table_check_catches_a_drift(workflow):
    """The table's reading fails on a step the README leaves out or one it invents."""
    jobs = workflow["jobs"]
    table = readme_ci_table()
    fleet = dict(jobs["fleet"], steps=[s for s in jobs["fleet"]["steps"] if "sysctl" not in s.get("run", "")])
    assert readme_runs_errors("fleet", fleet, table["fleet"]["runs"]) == [
        "fleet: README says `sudo sysctl -w kernel.yama.ptrace_scope=0`; no step after the last one it named does that"]
    ptrace = "sudo sysctl -w kernel.yama.ptrace_scope=0"
    assert readme_runs_errors("fleet", jobs["fleet"], [c for c in table["fleet"]["runs"] if c != ptrace]) == [
        "fleet: step 'peers readable by the simulated devices' is not in the README"]
    # order matters: the ptrace step before the suite
    assert readme_runs_errors("fleet", jobs["fleet"], table["fleet"]["runs"][::-1])


def download_artifacts(upload, values, workspace, into):
    """What actions/download-artifact leaves: <artifact name>/<each uploaded file>."""
    folder = into / expand(upload["with"]["name"], **values)
    folder.mkdir(parents=True)
    for path in expand(upload["with"]["path"], **values).split():
        src = workspace / path
        assert src.is_file(), f"upload-artifact: {src} missing (if-no-files-found: error)"
        shutil.copy2(src, folder / src.name)
    return folder


def test_esp32_job_and_release_run_short_of_docker(workflow, tmp_path):
    """One profile x board of the esp32 job (its run steps as GitHub runs them: bash -e, in the
    checkout), its upload, then the release job's step over what was uploaded."""
    workspace = fresh_clone(tmp_path / "workspace")
    os.symlink(micropython_tree(), workspace / "micropython")  # the second checkout
    log = fake_docker.install(tmp_path / "bin")
    env = stock_env(PATH=f"{tmp_path / 'bin'}:{STOCK_PATH}", GITHUB_WORKSPACE=str(workspace),
                    EPX_VERSION="9.9.9")
    job = workflow["jobs"]["esp32"]
    values = {"matrix.profile": "h2o", "matrix.board": "EPX_ESP32", "github.workspace": workspace}
    env.update(job["env"])  # the image the job loaded (docker/build-push-action, load: true)
    for step in run_steps(job):
        step_env = dict(env, **{k: expand(v, **values) for k, v in step.get("env", {}).items()})
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               expand(step["run"], **values)], cwd=workspace, env=step_env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    # The step's own `esptool image-info` printed the app descriptor's version.
    assert "h2o-9.9.9" in done.stdout
    # No `docker build`: the job's image is the run's, loaded; its build runs with no network
    # (after `docker info`: epx checks the daemon answers).
    info, call = [line.split() for line in log.read_text().splitlines()]
    assert info[:2] == ["info", "--format"]
    assert call[:4] == ["run", "--rm", "--network", "none"]
    assert call[call.index("epx-build") - 1] == job["env"][build.PREBUILT_IMAGE]
    assert (workspace / ".venv" / "bin" / "epx").exists()

    release = workflow["jobs"]["release"]
    artifacts = workspace / uses(release, "actions/download-artifact")[0]["with"]["path"]
    folder = download_artifacts(uses(job, "actions/upload-artifact")[0], values, workspace, artifacts)
    info = json.loads((folder / "firmware.json").read_text())
    assert (info["profile"], info["board"], info["version"]) == ("h2o", "EPX_ESP32", "h2o-9.9.9")
    desc, _ = appimage.read(folder / "micropython.bin")
    assert desc["version"] == "h2o-9.9.9"

    # The install page needs npm (tests/test_install_page.py opens it in chromium).
    steps = [s for s in run_steps(release) if "install_page" not in s["run"] or shutil.which("npm")]
    for step in steps:
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                              cwd=workspace, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert check_sums(workspace / "release") == sorted(
        f"h2o-EPX_ESP32-{f}" for f in (*RELEASE_FILES, "manifest.json"))
    if len(steps) == 2:
        assert "h2o-EPX_ESP32-manifest.json" in (workspace / "release" / "index.html").read_text()


def check_sums(folder):
    """`sha256sum -c SHA256SUMS` in folder, as a user checks a download; the names it lists."""
    done = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(line.rsplit(": ", 1)[0] for line in done.stdout.splitlines())
    assert sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in ("SHA256SUMS", "index.html")) == names
    return names


# --- the release's checksum list on fabricated artifacts -----------------------------

def release_assets(artifacts, out):
    return subprocess.run(["python3", str(RELEASE), str(artifacts), str(out)], capture_output=True, text=True,
                          env=stock_env())


def test_release_assets_and_checksum_list(tmp_path):
    artifacts = tmp_path / "artifacts"
    for profile in ("h2o", "switch"):
        for board in build.boards():
            fake_artifact(artifacts, profile, board, payload=f"{profile}{board}".encode())
    done = release_assets(artifacts, tmp_path / "release")
    assert done.returncode == 0, done.stderr
    names = check_sums(tmp_path / "release")
    assert len(names) == 2 * len(build.boards()) * 4  # three files and the manifest
    assert "h2o-EPX_ESP32-micropython.bin" in names
    assert (tmp_path / "release" / "switch-EPX_WT32_ETH01-firmware.json").read_bytes() == (
        artifacts / "switch-EPX_WT32_ETH01" / "firmware.json").read_bytes()
    # A changed asset is caught by the list (sha256sum itself is the check).
    with open(tmp_path / "release" / "h2o-EPX_ESP32-firmware.bin", "r+b") as f:
        f.write(b"\0")
    bad = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=tmp_path / "release",
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "h2o-EPX_ESP32-firmware.bin: FAILED" in bad.stdout


@pytest.mark.parametrize("breakage, message", [
    ("missing", "no firmware.json"),
    ("mismatch", "sha256 or size is not micropython.bin's"),
    ("misnamed", "describes h2o-EPX_ESP32"),
])
def test_release_refuses_incomplete_or_mixed_artifacts(tmp_path, breakage, message):
    artifacts = tmp_path / "artifacts"
    fake_artifact(artifacts, "relay", "EPX_ESP32")
    folder = fake_artifact(artifacts, "h2o", "EPX_ESP32")
    if breakage == "missing":
        (folder / "firmware.json").unlink()
    elif breakage == "mismatch":  # a micropython.bin from another build
        (folder / "micropython.bin").write_bytes(appimage.build(b"other", "h2o-1.1"))
    else:
        folder.rename(artifacts / "h2o-EPX_WT32_ETH01")
    done = release_assets(artifacts, tmp_path / "release")
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "release").exists()  # nothing half-published
