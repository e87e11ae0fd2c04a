"""The scale group: per-task figures, OS limits met with a skip, nothing left behind."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import resource
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import catalogue
from benchmarks._groups import Cell, Session, memory_jobs
from benchmarks._harness import Outcome, Trials, in_process, interleave, measure
from tests._cells import prepared
from tests._procs import TAG_ENV, live_children, wait_gone
from workloads import get_workload, limits, memory, scale
from workloads.io_spin import io_spin_value
from workloads.models import get_model, run_generators
from workloads.runner import Bench

ROOT = Path(__file__).resolve().parents[1]


SCALE_WORKLOADS = ("io_sleep", "io_spin")


def small_cell(model: str, tasks: int, workload: str = "io_sleep") -> Cell:
    """A scale cell of small tasks, planned with its memory job."""
    params = {"k": 1, "d": 0.01} if workload == "io_sleep" else {"k": 2, "d": 0.005, "spin": 64}
    kwargs = {"workload": workload, "model": model, "tasks": tasks, "workers": tasks,
              "params": params, "options": {}}  # fmt: skip
    cell = Cell(group=f"scale:{workload}", rounds=2, warmup=0,
                info={"ideal_s": get_workload(workload).task_seconds(**params)},
                kind=catalogue.SCALE_KIND, kwargs=kwargs)  # fmt: skip
    (planned,) = memory_jobs([cell])
    return planned


@pytest.mark.parametrize("workload", SCALE_WORKLOADS)
def test_expected_results_are_serial_results(workload: str) -> None:
    params = {"k": 2, "d": 0.001} if workload == "io_sleep" else {"k": 3, "d": 0.001, "spin": 50}
    serial = get_model("serial").run(get_workload(workload), params, 7)
    assert get_workload(workload).expected_results(7, **params) == serial


def test_io_spin_flavours_agree_and_pickle() -> None:
    spin = get_workload("io_spin")
    params: dict[str, Any] = {"k": 3, "d": 0.001, "spin": 50}
    answers = {
        "sync": spin.task("sync", **params)(4),
        "gen": run_generators([spin.task("gen", **params)(4)])[0],
        "coro": asyncio.run(spin.task("coro", **params)(4)),
    }
    assert len(set(answers.values())) == 1, answers
    assert answers["sync"] == io_spin_value(4, **params)
    assert io_spin_value(4, **params) != io_spin_value(5, **params), "the work depends on the task"
    assert pickle.loads(pickle.dumps(spin)) == spin
    with pytest.raises(ValueError, match=r"below the 0\.001 s minimum"):
        spin.sync(0, d=0.0001)
    # The ideal is the waits plus the documented CPU: a few µs.
    ideal = spin.task_seconds(**params)
    assert ideal is not None
    assert 0 < ideal - 0.003 < 20e-6


def test_every_profile_sizes_both_workloads() -> None:
    assert set(catalogue.SCALE) == set(catalogue.SCALE_PARAMS) == set(catalogue.PROFILES)
    for _, threads, _, _ in catalogue.SCALE.values():
        assert max(threads) <= 10_000, "threads stop at 10,000"
    assert max(catalogue.SCALE["full"][0]) == 100_000
    assert max(catalogue.SCALE["standard"][0]) == 10_000


@pytest.mark.slow
@pytest.mark.parametrize("model", ["asyncio", "threads"])
def test_a_cell_reports_its_cost_per_task(model: str) -> None:
    before = threading.active_count()
    cell = small_cell(model, 50)
    outcomes: dict[str, Outcome] = {}
    interleave({"cell": cell}, outcomes, seed=0, opener=in_process(60))
    outcome = outcomes["cell"]
    assert outcome.error is None
    assert len(outcome.seconds) == 2
    extra = outcome.extra
    ideal = cell.info["ideal_s"]
    median = sorted(outcome.seconds)[0] / 2 + sorted(outcome.seconds)[1] / 2
    assert extra["us_per_task"] == pytest.approx((median - ideal) / 50 * 1e6)
    assert extra["cpu_us_per_task"] > 0
    assert extra["memory_method"] == memory.METHOD
    assert extra["kb_per_task"] is not None
    assert extra["kb_per_task"] >= 0
    assert extra["memory_peak_kb"] >= extra["memory_idle_kb"] > 0
    if model == "threads":
        assert extra["start_kb_per_task"] > 0
    assert threading.active_count() == before, "the pool's threads are gone"


def test_wrong_results_fail_the_cell() -> None:
    cell = small_cell("generator", 5)
    cache = Bench(timeout=60)
    try:
        runner = prepared(cell, cache)
        assert isinstance(runner, scale.ScaleCell)
        # Only the verdict of each round is kept (results would pin the allocator's arenas).
        assert runner.round().result.problem is None
        wrong = [*runner.expected[:-1], (4, 99)]
        problem = runner.verdict(wrong)
        assert problem is not None
        assert "task 4" in problem
        assert runner.problem(scale.ScaleRound(problem, 0.0)) == problem
    finally:
        cache.close()


def test_a_limit_met_when_the_pool_is_built_skips_the_cell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusal = limits.Refusal("kernel.pid_max", 32_768, 32_000, 50, "threads")
    monkeypatch.setattr(scale, "cell_refusal", lambda *args, **kw: refusal)
    before = threading.active_count()
    cell = small_cell("threads", 50)
    trials = Trials(seed=0, opener=in_process(60), cells={"cell": cell}, batches={"b": ["cell"]},
                    batch_of={"cell": "b"})  # fmt: skip
    error = trials.outcome("cell").error or ""
    assert "OS limit: kernel.pid_max = 32,768" in error
    assert threading.active_count() == before, "no thread was started"

    benchmark = SimpleNamespace(enabled=True, group=None, extra_info={})
    node: Any = SimpleNamespace(nodeid="cell")
    with pytest.raises(pytest.skip.Exception, match=r"^OS limit: kernel\.pid_max = 32,768"):
        measure(benchmark, trials, node)


def test_collection_counts_the_group_pools_together(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake(
        model: str, tasks: int, threads_before: int = 0, facts: limits.Facts | None = None
    ) -> limits.Refusal | None:
        if model != "threads":
            return None
        seen.append(threads_before + tasks)
        total = threads_before + tasks
        return limits.Refusal("kernel.pid_max", 1000, 0, total, "threads") if total > 500 else None

    monkeypatch.setattr(scale, "cell_refusal", fake)
    rows = catalogue.CATALOGUE["test_scale_io_sleep"].rows(Session("standard"))
    assert seen == [10, 110, 1110]
    skipped = {row.id: row.skip for row in rows if row.skip}
    assert list(skipped) == ["threads-1000-1000"]
    assert skipped["threads-1000-1000"].startswith("OS limit: kernel.pid_max = 1,000")


def lower_stack_and_address_space() -> None:
    # RLIMIT_AS binds root too (RLIMIT_NPROC does not).  64 MiB stacks make the gap
    # between 10 and 100 threads (0.6 vs 6 GiB of address space) wide and certain.
    resource.setrlimit(resource.RLIMIT_STACK, (64 * 2**20, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_an_os_limit_skips_cells_with_its_name_and_nothing_is_left(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    out = tmp_path / "run.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/test_scale.py",
            "--profile",
            "quick",
            "-k",
            "threads",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"--benchmark-storage=file://{tmp_path}",
            f"--benchmark-json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, TAG_ENV: tag},
        preexec_fn=lower_stack_and_address_space,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed, 2 skipped" in result.stdout, result.stdout[-2000:]
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips, result.stdout[-2000:]
    assert all("OS limit: RLIMIT_AS = 4,096 MiB: " in line for line in skips), skips
    assert wait_gone(tag) == [], "a process outlived the run"
    saved = json.loads(out.read_text())
    for bench in saved["benchmarks"]:
        extra = bench["extra_info"]
        assert bench["group"] in ("scale:io_sleep", "scale:io_spin")
        assert extra["tasks"] == 10
        assert extra["model"] == "threads"
        for key in ("us_per_task", "cpu_us_per_task", "kb_per_task", "ideal_s", "cpu_s"):
            assert extra[key] is not None, key
    assert live_children() == []
