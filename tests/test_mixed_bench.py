"""The mixed benchmark cells: the ideal, the planned extra_info, a quick run of every cell,
and plausible figures at the ends of the sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from benchmarks import catalogue as bench
from benchmarks._groups import Session, every_model
from tests._procs import TAG_ENV, wait_gone
from tests._suite_runs import DisabledRun
from workloads import mixed
from workloads.models import cpu_count, unavailable_models

ROOT = Path(__file__).resolve().parents[1]
MODULE = "benchmarks/test_mixed.py"
# Keys the report's crossover chart reads, besides those of every model cell.
MIXED_KEYS = {"bound", "workload", "cpu_share", "cpu_kind", "seconds_per_iter", "ideal_s"}
CELL_KEYS = {"model", "flavour", "tasks", "workers", "params", "profile"}


def planned(profile: str) -> list[Any]:
    """Every cell the profile plans here, built as the session builds them."""
    session = Session(profile, settings={"start_method": "forkserver"})
    group = bench.CATALOGUE["test_mixed"]
    return [
        group.cell(session, **dict(zip(group.argnames, row.values, strict=True)))
        for row in group.rows(session)
        if row.skip is None
    ]


def ideal_seconds(params: dict[str, Any], tasks: int, per_iter: float, cores: int) -> float:
    cpu_s, wait_s = mixed.mixed_parts(**params, seconds_per_iter=per_iter)
    return mixed.mixed_ideal_seconds(tasks, cpu_s, wait_s, cores)


@pytest.mark.parametrize(
    ("share", "per_iter", "tasks", "cores", "ideal"),
    [
        # 0.2 s tasks, half CPU: 2000 iterations x 50 us = 0.1 s CPU, 0.1 s waiting
        (0.5, 5e-5, 8, 2, 0.4),  # CPU-limited: 8 x 0.1 s over 2 cores
        (0.5, 5e-5, 8, 1, 0.8),
        (0.5, 5e-5, 2, 2, 0.2),  # one task end to end
        (0.5, 1e-4, 8, 2, 0.8),  # a host twice as slow: the measured CPU part doubles
        (0.5, 1e-4, 2, 4, 0.3),  # ... and so does one task's length
        (0.0, 5e-5, 8, 2, 0.2),  # pure waiting
        (1.0, 5e-5, 8, 2, 0.8),  # pure CPU: 4000 iterations x 50 us x 8 / 2
    ],
)
def test_ideal_on_known_numbers(
    share: float, per_iter: float, tasks: int, cores: int, ideal: float
) -> None:
    params = {
        "cpu_share": share,
        "task_s": 0.2,
        "steps": 4,
        "cpu_iters": round(share * 4000),
        "cpu_kind": "python",
    }
    assert ideal_seconds(params, tasks, per_iter, cores) == pytest.approx(ideal)


@pytest.mark.parametrize("profile", list(bench.MIXED))
def test_planned_cells_carry_the_contract_keys(profile: str) -> None:
    cells = planned(profile)
    shares, per_core, (_, min_rounds, max_rounds) = bench.MIXED[profile]
    assert {c.info["cpu_kind"] for c in cells} == {k for k, s in shares.items() if s}
    per_iter: dict[str, float] = {}
    for cell in cells:
        info = cell.info
        assert set(info) >= MIXED_KEYS | CELL_KEYS, set(info)
        assert info["bound"] == info["workload"] == "mixed"
        assert cell.group == f"mixed:{info['cpu_kind']}"
        assert isinstance(info["cpu_share"], float)
        assert info["cpu_share"] == info["params"]["cpu_share"]
        assert info["cpu_kind"] == info["params"]["cpu_kind"]
        assert info["tasks"] == per_core * cpu_count()
        assert min_rounds <= cell.rounds <= max_rounds
        assert 1e-10 < info["seconds_per_iter"] < 1e-5
        # Measured once per session and kind: every cell of a kind has the same figure.
        assert (
            per_iter.setdefault(info["cpu_kind"], info["seconds_per_iter"])
            == (info["seconds_per_iter"])
        )
        cpu_s = info["params"]["cpu_iters"] * info["seconds_per_iter"]
        wait_s = (1 - info["cpu_share"]) * mixed.MIN_TASK_S
        assert info["ideal_s"] == pytest.approx(
            max(info["tasks"] * cpu_s / cpu_count(), cpu_s + wait_s)
        )
        if info["model"] in ("processes", "asyncio_processes"):
            assert info["start_method"] == "forkserver"
    full = bench.MIXED["full"][0]
    assert set(full["python"]) == set(full["native"]) == set(bench.ALL_SHARES)


def test_pools_get_one_worker_per_core_and_one_per_task() -> None:
    cells = planned("standard")
    tasks = 4 * cpu_count()
    for pool in ("threads", "processes", "asyncio_processes"):
        sizes = {c.info["workers"] for c in cells if c.info["model"] == pool}
        assert sizes == {cpu_count(), tasks}, pool


def test_seconds_per_iter_is_measured_once_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(kind: str) -> float:
        calls.append(kind)
        return 5e-8

    monkeypatch.setattr(mixed, "measure_seconds_per_iter", fake)
    session = Session("quick")
    for _ in range(3):
        for kind in mixed.CPU_KINDS:
            assert bench.seconds_per_iter(session, kind) == 5e-8
    assert calls == list(mixed.CPU_KINDS)


def test_the_standard_plan_fits_its_budget() -> None:
    # Expected seconds of every planned round, plus serial's reference run per share:
    # the group's ~45 s leave room for start-ups and a slow host.
    if cpu_count() != 2:
        pytest.skip("the 45 s budget is the project's 2-core machine's; tasks grow with cores")
    cells = planned("standard")
    cores = cpu_count()
    total = 0.0
    for cell in cells:
        info = cell.info
        cpu_s, wait_s = mixed.mixed_parts(**info["params"])
        each = bench.expected_seconds(
            info["model"], info["workers"], info["tasks"], cpu_s, wait_s, cores, info["cpu_kind"]
        )
        total += (cell.rounds + cell.warmup) * each
        if info["model"] == "serial":
            total += each
    assert total < 33.0, total


def test_rounds_follow_the_expected_length() -> None:
    budget = {profile: sizes[2] for profile, sizes in bench.MIXED.items()}
    assert bench.rounds_for(budget["standard"], 0.1) == 2
    assert bench.rounds_for(budget["standard"], 0.2) == 1
    assert bench.rounds_for(budget["standard"], 0.8) == 1
    assert bench.rounds_for(budget["quick"], 0.1) == 1
    assert bench.rounds_for(budget["full"], 0.8) == 5, "the check's minimum"
    assert bench.rounds_for(budget["full"], 0.1) == 7
    # serial never overlaps; 8 processes on 2 cores overlap the waits, not the CPU
    assert bench.expected_seconds("serial", 1, 8, 0.05, 0.05, 2, "python") == pytest.approx(0.8)
    assert bench.expected_seconds("processes", 8, 8, 0.05, 0.05, 2, "python") == pytest.approx(0.2)
    assert bench.expected_seconds("threads", 8, 8, 0.05, 0.05, 2, "python") == pytest.approx(0.4)
    assert bench.expected_seconds("threads", 8, 8, 0.05, 0.05, 2, "native") == pytest.approx(0.2)
    assert bench.expected_seconds("asyncio", 8, 8, 0.0, 0.1, 2, "python") == pytest.approx(0.1)


# -- end to end, in a pytest subprocess ------------------------------------------------


def run_pytest(*args: str, tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", MODULE, *args, "-p", "no:cacheprovider", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, TAG_ENV: tag},
        check=False,
    )


@pytest.mark.slow
def test_every_quick_cell_runs_once_and_passes(quick_disabled_run: DisabledRun) -> None:
    """Read from the session's quick run of every core cell with benchmarks disabled."""
    outcomes = quick_disabled_run.module(MODULE)
    count = sum(outcomes.values())  # this module's collected cells
    shares, per_core, _ = bench.MIXED["quick"]
    every = len(every_model("mixed", (per_core * cpu_count(),))) * sum(
        len(kind) for kind in shares.values()
    )
    # every model is collected; those that cannot run here are skipped with their reason
    assert count == every > 0
    runnable = [c for c in planned("quick") if unavailable_models().get(c.model) is None]
    assert outcomes["failed"] == 0, quick_disabled_run.stdout[-3000:]
    assert outcomes["passed"] == len(runnable)
    assert outcomes["skipped"] == count - len(runnable)
    assert quick_disabled_run.left == [], "children outlived the session"


@pytest.mark.slow
def test_figures_at_the_ends_of_the_sweep_are_plausible(tmp_path: Path) -> None:
    # Standard-profile cells (what the figures come from) at shares 0 and 1, Python CPU.
    tag = uuid.uuid4().hex
    out = tmp_path / "run.json"
    result = run_pytest(
        "-k",
        "python-0.0- or python-1.0-",
        "--models",
        "serial,threads,processes,asyncio",
        f"--benchmark-json={out}",
        f"--benchmark-storage=file://{tmp_path}",
        tag=tag,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert wait_gone(tag) == [], "children outlived the session"
    run = json.loads(out.read_text())
    medians: dict[tuple[float, str, int], float] = {}
    for entry in run["benchmarks"]:
        info = entry["extra_info"]
        assert info["bound"] == "mixed"
        assert info["cpu_kind"] == "python"
        assert entry["stats"]["median"] == pytest.approx(median(entry["stats"]["data"]))
        medians[(info["cpu_share"], info["model"], info["workers"])] = entry["stats"]["median"]

    def best(share: float, model: str) -> float:
        return min(v for (s, m, _), v in medians.items() if (s, m) == (share, model))

    # Pure waiting: 8 overlapped 0.1 s tasks take ~0.1 s, serial 0.8 s.
    for model in ("threads", "asyncio"):
        assert best(0.0, "serial") / best(0.0, model) > 3.0, model
    # Pure Python CPU: one GIL for the threads, every core for the processes.
    if cpu_count() >= 2:
        assert best(1.0, "threads") / best(1.0, "processes") > 1.2
