"""A count run end to end: ``pytest benchmarks/ --measure instructions`` under Valgrind.

One small run (a cpu_loop of 20,000 iterations a task, serial and a process pool; an
io_socket cell against its echo server) proves that every process doing a cell's work is
counted and summed (the pool's two workers beside the runner), that the echo server is
not, that the counts repeat round after round, and that the run says what it counted.
Without Valgrind the run is a usage error of one line.  Skipped where Valgrind is
missing unless ``BOUNDBENCH_REQUIRE_VALGRIND=1`` (``.ci/run`` installs it and sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import catalogue
from benchmarks._groups import Session
from benchmarks._harness import COUNT_ROUNDS, Trials

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_ENV = "BOUNDBENCH_REQUIRE_VALGRIND"


def _valgrind_or_skip() -> None:
    if shutil.which("valgrind") and shutil.which("cc"):
        return
    reason = "valgrind (and a C compiler) are not installed: apt-get install valgrind gcc"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ENV}=1 makes it mandatory")
    pytest.skip(reason)


def _pytest(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _valgrind_or_skip()
    out = tmp_path_factory.mktemp("count") / "run.json"
    done = _pytest([
        "benchmarks/test_user.py", "benchmarks/test_io_socket.py", "--profile", "quick",
        "--workload", "cpu_loop,n=20000", "-k", "serial or processes-2-2",
        "--measure", "instructions", f"--benchmark-json={out}",
    ])  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _cell(run: dict[str, Any], name: str) -> dict[str, Any]:
    found = [b for b in run["benchmarks"] if b["name"] == name]
    assert found, [b["name"] for b in run["benchmarks"]]
    return found[0]


@pytest.mark.valgrind
@pytest.mark.slow
def test_a_count_run_says_what_it_counted(counted: dict[str, Any]) -> None:
    measure = counted["machine_info"]["boundbench"]["measure"]
    assert measure["kind"] == "instructions"
    assert measure["tool"] == "callgrind"
    assert measure["valgrind"].startswith("valgrind-")
    assert "--trace-children=yes" in measure["flags"]
    # the real interpreter, never pyenv's shim (a shell script)
    assert Path(measure["python_real_path"]).is_file()
    assert measure["env"]["PYTHONHASHSEED"] == "0"


@pytest.mark.valgrind
@pytest.mark.slow
def test_counts_repeat_and_sum_the_pool_workers(counted: dict[str, Any]) -> None:
    serial = _cell(counted, "test_workload[cpu_loop-serial-2-1]")
    pool = _cell(counted, "test_workload[cpu_loop-processes-2-2]")
    # Plausibility bounds, not the measured spreads (docs/counting.md): a round's count
    # is the loop's, the same every round, plus what wakes by wall time beside it (the
    # runner's parent watch, a pool's executor thread: ~105,000 instructions a wake, 0.6 %
    # of these small rounds, more wakes on a loaded host) and a garbage collection that
    # falls in one round: serial's rounds within 2 % (0.9 % seen under load 8), a pool's
    # within 5 %.
    for cell, spread in ((serial, 1.02), (pool, 1.05)):
        rounds = cell["stats"]["data"]
        assert len(rounds) == 3
        assert max(rounds) / min(rounds) < spread, rounds
    assert serial["extra_info"]["counted_processes"] == 1
    # the runner and the pool's two workers, every round
    assert pool["extra_info"]["counted_processes"] == 3
    # the workers' loops are counted: a pool's count per task is the loop's and then some
    # (pickling, queues, wake-ups), never a fraction of it
    ratio = (
        pool["extra_info"]["instructions_per_task"] / serial["extra_info"]["instructions_per_task"]
    )
    assert 0.95 < ratio < 1.6, ratio
    # ~500 instructions per iteration of cpu_loop's body on CPython 3.11: plausible range
    per_iteration = serial["extra_info"]["instructions_per_task"] / 20_000
    assert 100 < per_iteration < 5_000, per_iteration


@pytest.mark.valgrind
@pytest.mark.slow
def test_the_echo_server_is_not_counted(counted: dict[str, Any]) -> None:
    cells = [b for b in counted["benchmarks"] if b["name"].startswith("test_io_socket[")]
    assert cells, [b["name"] for b in counted["benchmarks"]]
    for cell in cells:
        # serial runs its tasks in the runner: the only process counted; the server,
        # a child of the runner's, is skipped by its arguments
        assert cell["extra_info"]["counted_processes"] == 1, cell["name"]


@pytest.mark.valgrind
@pytest.mark.slow
def test_without_valgrind_a_count_run_is_a_usage_error(tmp_path: Path) -> None:
    done = _pytest(
        ["benchmarks/test_cpu.py", "--measure", "instructions", "--collect-only"],
        env={"PATH": str(tmp_path)},  # nothing on it: no valgrind, no compiler
    )
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "--measure instructions" in lines[0]
    assert "apt-get install valgrind" in lines[0]


# -- quick: what a count run plans -----------------------------------------------------


def test_a_count_run_plans_smaller_work_and_leaves_out_what_cannot_be_counted() -> None:
    timed = Session(profile="quick")
    counted = Session(profile="quick", measure="instructions")
    loop = catalogue.CATALOGUE["test_cpu_loop"]
    [timed_variant] = loop.variants(timed)  # type: ignore[attr-defined]
    [counted_variant] = loop.variants(counted)  # type: ignore[attr-defined]
    assert counted_variant.params["n"] * 10 == timed_variant.params["n"]
    skipped = {row.id: row.skip for row in catalogue.CATALOGUE["test_startup"].rows(counted)}
    assert "heartbeats" in (skipped.get("dask") or "dask is not installed")
    assert "--profile full" in (skipped["processes-spawn"] or "")
    assert skipped["processes-fork"] is None
    assert all(row.skip is None for row in loop.rows(timed) if row.values[0] == "dask")


def test_a_count_run_keeps_at_most_three_rounds_and_one_warm_up() -> None:
    class Item:
        nodeid = "benchmarks/test_cpu.py::test_cpu_loop[serial-2-1]"
        callspec = type("CS", (), {"params": {"model": "serial", "tasks": 2, "workers": 1}})
        function = None

        def get_closest_marker(self, name: str) -> None:
            return None

    from benchmarks._harness import GROUP_ATTR

    def fn() -> None: ...

    setattr(fn, GROUP_ATTR, catalogue.CATALOGUE["test_cpu_loop"])
    item = Item()
    item.function = fn  # type: ignore[assignment]
    trials = Trials(seed=0)
    trials.plan([item], Session(profile="standard", measure="instructions"), count=True)  # type: ignore[list-item]
    cell = trials.cells[item.nodeid]
    assert cell.rounds == COUNT_ROUNDS
    assert cell.warmup <= 1
