"""The CI wiring: the workflow loads, calls what exists, and passes flags the check accepts.

The shell recipe is run for real with a stand-in interpreter that fakes only the two
slow parts (the benchmark run and the HTML report) and hands ``-m reports check`` to
the real Python, so the exit codes CI acts on are the check's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import yaml

from reports.check import build_parser
from tests._procs import as_from_a_terminal
from tests.fixtures.check.synth import CELLS, run_data, write_run

ROOT = Path(__file__).resolve().parents[1]
CI_BENCH = ROOT / "scripts" / "ci-bench.sh"
WORKFLOW = ROOT / ".github" / "workflows" / "bench.yml"
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
CHECK_CALL = re.compile(r"-m reports check\b(?P<args>.*)")


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps() -> list[dict[str, Any]]:
    return [step for job in workflow()["jobs"].values() for step in job["steps"]]


def run_blocks() -> list[str]:
    return [step["run"] for step in steps() if "run" in step]


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined, comments left out."""
    lines = text.replace("\\\n", " ").splitlines()
    return [line for line in lines if not line.lstrip().startswith("#")]


def placeholder(word: str) -> str:
    """Shell variables become a sample value, so argparse sees a plausible argument."""
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z_0-9]*\}?", "value", word)


def test_workflow_loads_and_has_the_steps() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    uses = [step.get("uses", "") for step in steps()]
    for action in (
        "actions/checkout@",
        "actions/setup-python@",
        "actions/cache/restore@",
        "actions/upload-artifact@",
        "actions/cache/save@",
    ):
        assert any(use.startswith(action) for use in uses), action
    runs = "\n".join(run_blocks())
    assert "pip install -r requirements-lock.txt" in runs  # CI installs the lock
    assert 'cat summary.md >> "$GITHUB_STEP_SUMMARY"' in runs
    upload = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "report/" in upload["with"]["path"]


def test_every_local_script_the_workflow_calls_exists() -> None:
    called = set()
    for block in run_blocks():
        called.update(re.findall(r"(?<![\w/.-])((?:\./)?scripts/[\w./-]+)", block))
    assert called, "the workflow calls no script under scripts/"
    for script in called:
        path = ROOT / script
        assert path.is_file(), f"{script} is called by the workflow but does not exist"
        assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_are_valid_bash(script: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    done = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def check_invocations() -> list[list[str]]:
    """Every `python -m reports check` argument list in the workflow and the scripts.

    The workflow hands extra arguments to scripts/ci-bench.sh, which passes them on
    with "$@": those are parsed in place of "$@".
    """
    forwarded: list[list[str]] = []
    calls: list[list[str]] = []
    for block in run_blocks():
        for line in logical_lines(block):
            match = re.search(r"scripts/ci-bench\.sh(?P<args>.*)", line)
            if match:
                forwarded.append(shlex.split(match.group("args")))
            match = CHECK_CALL.search(line)
            if match:
                calls.append(shlex.split(match.group("args")))
    for script in SCRIPTS:
        for line in logical_lines(script.read_text(encoding="utf-8")):
            match = CHECK_CALL.search(line)
            if match:
                args = shlex.split(match.group("args"))
                if "$@" in args:
                    at = args.index("$@")
                    for extra in forwarded or [[]]:
                        calls.append(args[:at] + extra + args[at + 1 :])
                else:
                    calls.append(args)
    return [[placeholder(word) for word in call] for call in calls]


def test_check_flags_used_in_ci_are_accepted() -> None:
    calls = check_invocations()
    assert calls, "neither the workflow nor the scripts run python -m reports check"
    parser = build_parser()
    for argv in calls:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"python -m reports check {shlex.join(argv)}: rejected ({exc.code})")
        assert args.markdown is not None, "CI needs the Markdown summary"
    # The workflow's own choices reach the check.
    assert any("--mode" in call for call in calls)


def test_report_call_in_the_script_is_accepted() -> None:
    from reports.report import parse_args

    text = CI_BENCH.read_text(encoding="utf-8")
    line = next(line for line in logical_lines(text) if re.search(r"-m reports \"?\$storage", line))
    argv = shlex.split(line.split("-m reports", 1)[1].split(";")[0])
    parse_args([placeholder(word) for word in argv if word != "then"])


# -- the shell recipe, run ----------------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# Stand-in interpreter: fakes the benchmark run, the A/B verdict and the HTML report, runs
# the rest.  An A/B session (--ab-base=TREE) saves FAKE_RUN as its JSON, or, with
# FAKE_AB=fallback, falls back as the real one does: FAKE_BASE_RUN and FAKE_RUN as
# X.a.json and X.b.json beside the JSON X.json asked for.
if [ "$1 $2" = "-m pytest" ]; then
    [ -n "${FAKE_PYTEST_EXIT:-}" ] && exit "$FAKE_PYTEST_EXIT"
    base=""
    for arg in "$@"; do
        case $arg in
            --benchmark-storage=file://*) storage=${arg#--benchmark-storage=file://} ;;
            --benchmark-json=*) json=${arg#--benchmark-json=} ;;
            --ab-base=*) base=${arg#--ab-base=} ;;
        esac
    done
    if [ -n "$base" ]; then
        [ -n "${FAKE_LOG:-}" ] && echo "$PWD ${PYTHONPATH%%:*} $base \
$(git -C "$base" rev-parse HEAD) $json" >> "$FAKE_LOG"
        if [ "${FAKE_AB:-}" = fallback ]; then
            cp "$FAKE_BASE_RUN" "${json%.json}.a.json"
            cp "$FAKE_RUN" "${json%.json}.b.json"
        else
            cp "$FAKE_RUN" "$json"
        fi
        exit 0
    fi
    mkdir -p "$storage/machine"
    cp "$FAKE_RUN" "$storage/machine/0001_fake.json"
    exit 0
fi
if [ "$1 $2 $3" = "-m reports ab" ]; then
    echo "reports ab $4 $5 $6" >> "$FAKE_LOG"
    echo "## A/B verdict" > "$6"
    exit "${FAKE_AB_EXIT:-0}"
fi
if [ "$1 $2" = "-m reports" ] && [ "$3" != check ]; then
    echo "report for $3" > "$BENCH_OUT/index.html"
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""


@pytest.fixture
def recipe(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(
        PYTHON=str(fake),
        REAL_PYTHON=sys.executable,
        PYTHONPATH=str(ROOT),
        BENCH_STORAGE=str(tmp_path / "results"),
        BENCH_BASELINE=str(tmp_path / "baseline"),
        BENCH_OUT=str(tmp_path / "report"),
        BENCH_SUMMARY=str(tmp_path / "summary.md"),
        FAKE_RUN=str(tmp_path / "fake-run.json"),
        FAKE_HEAD_DIR=str(ROOT),
    )
    return env


THRESHOLDS = ROOT / "tests" / "fixtures" / "check" / "thresholds.toml"


def run_recipe(env: dict[str, str], slow: dict[str, float] | None = None, *args: str) -> int:
    current = run_data(np.random.default_rng(2), n_rounds=20, slow=slow)
    Path(env["FAKE_RUN"]).write_text(json.dumps(current), encoding="utf-8")
    done = subprocess.run(
        # Fixed thresholds: the recipe is proven, not this machine's calibration.
        ["bash", str(CI_BENCH), "--config", str(THRESHOLDS), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode


def save_baseline(env: dict[str, str]) -> None:
    write_run(Path(env["BENCH_BASELINE"]), 1, run_data(np.random.default_rng(1), n_rounds=20))


@pytest.mark.slow
def test_recipe_without_baseline_passes_with_a_notice(recipe: dict[str, str]) -> None:
    assert run_recipe(recipe) == 0
    summary = Path(recipe["BENCH_SUMMARY"]).read_text(encoding="utf-8")
    assert "no baseline yet" in summary
    assert (Path(recipe["BENCH_OUT"]) / "check.md").read_text(encoding="utf-8") == summary
    assert (Path(recipe["BENCH_OUT"]) / "index.html").exists()


@pytest.mark.slow
def test_recipe_can_require_a_baseline(recipe: dict[str, str]) -> None:
    recipe["BENCH_REQUIRE_BASELINE"] = "1"
    assert run_recipe(recipe) == 2
    assert "bad input" in Path(recipe["BENCH_SUMMARY"]).read_text(encoding="utf-8")


@pytest.mark.slow
def test_recipe_passes_unchanged_and_fails_a_regression(recipe: dict[str, str]) -> None:
    save_baseline(recipe)
    assert run_recipe(recipe, None, "--mode", "auto") == 0
    assert "no regression" in Path(recipe["BENCH_SUMMARY"]).read_text(encoding="utf-8")
    shutil.rmtree(recipe["BENCH_STORAGE"])
    assert run_recipe(recipe, {CELLS[1].name: 1.3}, "--mode", "auto") == 1
    summary = Path(recipe["BENCH_SUMMARY"]).read_text(encoding="utf-8")
    assert "REGRESSION" in summary
    assert CELLS[1].name in summary


@pytest.mark.slow
def test_recipe_stops_when_the_benchmarks_fail(recipe: dict[str, str]) -> None:
    save_baseline(recipe)
    recipe["FAKE_PYTEST_EXIT"] = "3"
    assert run_recipe(recipe) == 3
    assert not Path(recipe["BENCH_SUMMARY"]).exists()


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _worktrees() -> str:
    return _git("worktree", "list")


def run_job(recipe: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The whole job, as CI runs it (no options): for the ways it stops early."""
    return subprocess.run(
        ["bash", str(CI_BENCH)],
        cwd=ROOT, env=recipe, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def base_ref_job(recipe: dict[str, str], tmp_path: Path, **env: str) -> list[list[str]]:
    """BENCH_BASE_REF=HEAD, the job run with a 30% slower head; what the stand-in logged."""
    base_run = tmp_path / "base-run.json"
    base_run.write_text(
        json.dumps(run_data(np.random.default_rng(1), n_rounds=20)), encoding="utf-8"
    )
    log = tmp_path / "runs.log"
    recipe.update(BENCH_BASE_REF="HEAD", BENCH_BASE_STORAGE=str(tmp_path / "base"),
                  FAKE_BASE_RUN=str(base_run), FAKE_LOG=str(log), **env)  # fmt: skip
    before = _worktrees()
    recipe["STATUS"] = str(run_recipe(recipe, {CELLS[1].name: 1.3}))
    assert _worktrees() == before, "the worktree is removed"
    return [line.split() for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_recipe_measures_the_base_ref_against_this_checkout_in_one_ab_session(
    recipe: dict[str, str], tmp_path: Path
) -> None:
    """BENCH_BASE_REF: one A/B session, side A's runners from a worktree of the base."""
    session, verdict = base_ref_job(recipe, tmp_path, FAKE_AB_EXIT="1")
    assert recipe["STATUS"] == "1", "the A/B verdict's status"
    head_dir, head_path, base_dir, base_commit, json_path = session
    assert (head_dir, head_path) == (str(ROOT), str(ROOT)), "one session, from this checkout"
    assert base_dir != str(ROOT), "the base runs from a worktree of its own"
    assert base_commit == _git("rev-parse", "HEAD")
    assert json_path == str(Path(recipe["BENCH_STORAGE"]) / "ab.json")
    assert verdict == ["reports", "ab", json_path, "--markdown", recipe["BENCH_SUMMARY"]]
    assert (Path(recipe["BENCH_OUT"]) / "index.html").exists()
    assert not (tmp_path / "base").exists(), "no base run of its own"


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_recipe_checks_against_the_base_run_when_the_session_falls_back(
    recipe: dict[str, str], tmp_path: Path
) -> None:
    """A base the session cannot run (an old runner protocol): its own run, then head's."""
    assert len(base_ref_job(recipe, tmp_path, FAKE_AB="fallback")) == 1, "one session"
    assert recipe["STATUS"] == "1"
    summary = Path(recipe["BENCH_SUMMARY"]).read_text(encoding="utf-8")
    assert "REGRESSION" in summary
    assert CELLS[1].name in summary
    assert [p.name for p in (tmp_path / "base").iterdir()] == ["ab.a.json"], "base run kept"


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_recipe_refuses_a_base_ref_that_is_no_commit(recipe: dict[str, str]) -> None:
    recipe["BENCH_BASE_REF"] = "no-such-branch-" + uuid.uuid4().hex
    before = _worktrees()
    done = run_job(recipe)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ci-bench: BENCH_BASE_REF={recipe['BENCH_BASE_REF']} is not a commit of this repository"
    ]
    assert _worktrees() == before


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_a_failed_base_run_ends_the_job_with_its_status(
    recipe: dict[str, str], tmp_path: Path
) -> None:
    failing = tmp_path / "failing-python"
    failing.write_text(
        '#!/bin/sh\n[ "$1 $2" = "-m pytest" ] && exit 3\nexec "$REAL_PYTHON" "$@"\n',
        encoding="utf-8",
    )
    failing.chmod(0o755)
    recipe.update(
        PYTHON=str(failing), BENCH_BASE_REF="HEAD", BENCH_BASE_STORAGE=str(tmp_path / "base")
    )
    before = _worktrees()
    done = run_job(recipe)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "ci-bench: the A/B session against HEAD failed (exit 3); nothing to check"
    ]
    assert not Path(recipe["BENCH_SUMMARY"]).exists(), "nothing was checked"
    assert _worktrees() == before


SLOW_PYTHON = """#!/bin/sh
# Stand-in interpreter whose benchmark run takes long: says its base tree, then waits.
if [ "$1 $2" = "-m pytest" ]; then
    for arg in "$@"; do
        case $arg in --ab-base=*) echo "${arg#--ab-base=}" > "$MARK" ;; esac
    done
    sleep 60
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_base_run_removes_its_worktree(
    recipe: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (or a CI runner's SIGTERM) to the job's process group during the base run."""
    slow = tmp_path / "slow-python"
    slow.write_text(SLOW_PYTHON, encoding="utf-8")
    slow.chmod(0o755)
    mark = tmp_path / "mark"
    recipe.update(
        PYTHON=str(slow), MARK=str(mark), BENCH_BASE_REF="HEAD",
        BENCH_BASE_STORAGE=str(tmp_path / "base"),
    )  # fmt: skip
    before = _worktrees()
    job = subprocess.Popen(
        ["bash", str(CI_BENCH)],
        cwd=ROOT, env=recipe, start_new_session=True, preexec_fn=as_from_a_terminal,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (mark.exists() and mark.read_text(encoding="utf-8").strip()):
            assert time.monotonic() < deadline, "the A/B session never started"
            assert job.poll() is None, "the job ended before its A/B session"
            time.sleep(0.05)
        tree = Path(mark.read_text(encoding="utf-8").strip())
        assert tree.is_dir()
        os.killpg(job.pid, sig)
        assert job.wait(timeout=15) in (-sig, 128 + sig)  # killed by it, or exits so
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    assert not tree.exists()
    assert _worktrees() == before
    # Nothing of the job's process group still runs (the stand-in's sleep included; a
    # zombie is dead, waiting for init to reap it).
    deadline = time.monotonic() + 10
    while left := _alive_in_group(job.pid):
        assert time.monotonic() < deadline, left
        time.sleep(0.1)


def _alive_in_group(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def test_save_baseline_keeps_only_the_latest_run(tmp_path: Path) -> None:
    storage, dest = tmp_path / "results", tmp_path / "baseline"
    for number in (1, 2, 3):
        write_run(storage, number, run_data(np.random.default_rng(number), n_rounds=3))
    (dest / "old").mkdir(parents=True)
    script = str(ROOT / "scripts" / "ci-save-baseline.sh")
    done = subprocess.run(
        ["bash", script, str(storage), str(dest)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert [path.name[:4] for path in dest.iterdir()] == ["0003"]
    # Nothing saved yet: a notice, and the old baseline stays.
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        ["bash", script, str(empty), str(dest)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "no saved run" in done.stderr
    assert [path.name[:4] for path in dest.iterdir()] == ["0003"]
