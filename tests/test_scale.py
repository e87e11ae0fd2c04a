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
from typing import Any

import pytest

from benchmarks import test_scale as scale
from benchmarks._harness import ModelCache, Outcome, _interleave, model_cell
from benchmarks._profiles import PROFILES
from tests._procs import TAG_ENV, live_children, wait_gone
from workloads import get_workload, limits, memory
from workloads.io_spin import io_spin_value
from workloads.models import get_model, run_generators

ROOT = Path(__file__).resolve().parents[1]


def small_cell(model: str, tasks: int, workload: str = "io_sleep") -> scale.ScaleCell:
    params = {"k": 1, "d": 0.01} if workload == "io_sleep" else {"k": 2, "d": 0.005, "spin": 64}
    plan = scale.MemoryPlan()
    plan.add(model, workload, params, tasks)
    base = model_cell(
        PROFILES["quick"],
        workload=workload,
        model=model,
        tasks=tasks,
        workers=tasks,
        params=params,
        rounds=2,
        warmup=0,
        group=f"scale:{workload}",
    )
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    return scale.ScaleCell(**fields, memory_plan=plan)


@pytest.mark.parametrize("workload", scale.SCALE_WORKLOADS)
def test_expected_results_are_serial_results(workload: str) -> None:
    params = {"k": 2, "d": 0.001} if workload == "io_sleep" else {"k": 3, "d": 0.001, "spin": 50}
    serial = get_model("serial").run(get_workload(workload), params, 7)
    assert scale.expected_results(workload, params, 7) == serial


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
    assert set(scale.SCALE_PROFILES) == set(PROFILES)
    for profile in scale.SCALE_PROFILES.values():
        assert set(profile.params) == set(scale.SCALE_WORKLOADS)
        assert max(profile.thread_tasks) <= 10_000, "threads stop at 10,000"
    assert max(scale.SCALE_PROFILES["full"].tasks) == 100_000
    assert max(scale.SCALE_PROFILES["standard"].tasks) == 10_000


@pytest.mark.parametrize("model", ["asyncio", "threads"])
def test_a_cell_reports_its_cost_per_task(model: str) -> None:
    before = threading.active_count()
    cell = small_cell(model, 50)
    outcomes: dict[str, Outcome] = {}
    cache = ModelCache(timeout=60)
    try:
        _interleave(cache, {"cell": cell}, outcomes, seed=0)
    finally:
        cache.close_models()
    outcome = outcomes["cell"]
    assert outcome.error is None
    assert len(outcome.seconds) == 2
    # Only the verdict of each round is kept (results would pin the allocator's arenas).
    assert outcome.results == [None, None]
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
    cache = ModelCache(timeout=60)
    try:
        runner = cell.prepare(cache)
        assert isinstance(runner, scale.ScaleRunner)
        assert runner.verdict(list(runner.expected)) is None
        wrong = [*runner.expected[:-1], (4, 99)]
        problem = runner.verdict(wrong)
        assert problem is not None
        assert "task 4" in problem
        assert runner.problem(problem) == problem
    finally:
        cache.close_models()


def test_a_limit_met_when_the_pool_is_built_skips_the_cell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusal = limits.Refusal("kernel.pid_max", 32_768, 32_000, 50, "threads")
    monkeypatch.setattr(scale, "cell_refusal", lambda *args, **kw: refusal)
    before = threading.active_count()
    outcomes: dict[str, Outcome] = {}
    cache = ModelCache(timeout=60)
    try:
        _interleave(cache, {"cell": small_cell("threads", 50)}, outcomes, seed=0)
    finally:
        cache.close_models()
    error = outcomes["cell"].error or ""
    assert "OS limit: kernel.pid_max = 32,768" in error
    assert threading.active_count() == before, "no thread was started"

    class Enabled:
        enabled = True

    class Planned:
        def outcome(self, nodeid: str) -> Outcome:
            return outcomes["cell"]

    class Node:
        nodeid = "cell"

    with pytest.raises(pytest.skip.Exception, match=r"^OS limit: kernel\.pid_max = 32,768"):
        scale.run_cell(Enabled(), Planned(), Node(), "threads", 50)  # type: ignore[arg-type]


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

    class Config:
        def getoption(self, name: str, default: Any = None) -> Any:
            return {"profile": "standard", "models": ""}.get(name, default)

    params = scale.scale_params(Config(), "io_sleep")  # type: ignore[arg-type]
    assert seen == [10, 110, 1110]
    skipped = {p.id: p.marks[0].kwargs["reason"] for p in params if p.marks}
    assert list(skipped) == ["threads-1000-1000"]
    assert skipped["threads-1000-1000"].startswith("OS limit: kernel.pid_max = 1,000")


def lower_stack_and_address_space() -> None:
    # RLIMIT_AS binds root too (RLIMIT_NPROC does not).  64 MiB stacks make the gap
    # between 10 and 100 threads (0.6 vs 6 GiB of address space) wide and certain.
    resource.setrlimit(resource.RLIMIT_STACK, (64 * 2**20, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, resource.RLIM_INFINITY))


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
