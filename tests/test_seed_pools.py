"""The tutorial's pools: the three ways of collecting agree, a task's error is never lost,
every wait is bounded, and no worker process outlives its experiment."""

from __future__ import annotations

import functools
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import operator
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._harness import Outcome, in_process, interleave
from benchmarks.catalogue import SEED_POOLS
from tests._cells import planned
from tests._procs import live_children
from workloads import seed
from workloads.models import stop_multiprocessing_helpers

POOLS = pytest.mark.parametrize("pool", seed.POOLS)
WAYS = pytest.mark.parametrize("collect", seed.COLLECT_WAYS)
SLEEP_S = 0.01


def helper_pids() -> set[int]:
    """The forkserver and resource tracker: shared by every pool, stopped by the session."""
    pids = set()
    for helper, attr in (
        (getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid"),
        (getattr(multiprocessing.resource_tracker, "_resource_tracker", None), "_pid"),
    ):
        pid = getattr(helper, attr, None)
        if pid is not None:
            pids.add(pid)
    return pids


def strays(before: set[int], timeout: float = 5.0) -> list[Any]:
    """Our live descendants that are neither old nor the multiprocessing helpers."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in live_children() if p.pid not in before | helper_pids()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def no_strays() -> Iterator[None]:
    before = {p.pid for p in live_children()}
    yield
    assert strays(before) == [], "a pool worker outlived its experiment"


@pytest.fixture(scope="module", autouse=True)
def _stop_helpers() -> Iterator[None]:
    yield
    stop_multiprocessing_helpers()


@pytest.mark.slow
@POOLS
def test_the_three_ways_agree(pool: str, no_strays: None) -> None:
    answers = {
        collect: seed.pool_experiment(pool, collect, sleep_s=SLEEP_S)
        for collect in seed.COLLECT_WAYS
    }
    expected = [name + 10 for name in range(seed.POOL_TASKS)]
    assert answers == {collect: expected for collect in seed.COLLECT_WAYS}


def later_finishes_first(name: int) -> int:
    """Task 0 sleeps longest: completion order is the reverse of task order."""
    time.sleep(0.05 * (4 - name))
    return name + 10


@pytest.mark.slow
@POOLS
@WAYS
def test_results_come_back_in_task_order(pool: str, collect: str) -> None:
    got = seed.pool_experiment(pool, collect, tasks=4, workers=4, task=later_finishes_first)
    assert got == [10, 11, 12, 13]


@POOLS
@WAYS
def test_a_raising_task_is_reported(pool: str, collect: str, no_strays: None) -> None:
    # Tasks 0-2 return, task 3 raises IndexError, in a worker thread or process.
    task = functools.partial(operator.getitem, [0, 1, 2])
    with pytest.raises(IndexError, match="list index out of range"):
        seed.pool_experiment(pool, collect, task=task)


@WAYS
def test_the_first_raising_task_is_the_one_reported(collect: str) -> None:
    # 10 // 0 in task 0, and nothing else fails.
    task = functools.partial(operator.floordiv, 10)
    with pytest.raises(ZeroDivisionError):
        seed.pool_experiment("threads", collect, task=task)


@pytest.mark.slow
@WAYS
def test_a_hung_process_pool_times_out_and_its_workers_are_killed(
    collect: str, no_strays: None
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        seed.pool_experiment("processes", collect, sleep_s=30.0, timeout=0.5)
    assert time.monotonic() - started < 5.0, "the stuck workers were killed, not awaited"


@pytest.mark.slow
def test_a_slow_thread_pool_times_out_within_bounds() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        seed.pool_experiment("threads", "callback", sleep_s=0.5, timeout=0.1)
    # Threads cannot be killed: shutdown waits for the running sleeps, queued ones are cancelled.
    assert time.monotonic() - started < 1.0 + seed.POOL_CLOSE_WAIT_S


def test_process_workers_cpu_is_counted(no_strays: None) -> None:
    meter = seed.WorkerCPU()
    seed.pool_experiment("processes", "result", sleep_s=SLEEP_S, worker_cpu=meter)
    first = meter.seconds
    assert first >= 0.0
    seed.pool_experiment("processes", "result", sleep_s=SLEEP_S, worker_cpu=meter)
    assert meter.seconds >= first
    threads = seed.WorkerCPU()
    seed.pool_experiment("threads", "result", sleep_s=SLEEP_S, worker_cpu=threads)
    assert threads.seconds == 0.0, "threads' CPU is this process's own"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool": "fibers"}, "unknown pool 'fibers'; valid: threads, processes"),
        ({"collect": "poll"}, "unknown way to collect 'poll'; valid: callback, result"),
        ({"tasks": 0}, "tasks=0 and workers=2 must be at least 1"),
        ({"workers": 0}, "tasks=4 and workers=0 must be at least 1"),
        ({"sleep_s": 0.0001}, r"sleep_s=0\.0001 s is below the 0\.001 s minimum"),
        ({"timeout": 0}, "timeout=0 must be positive"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"pool": "threads", "collect": "result", **kwargs}
    with pytest.raises(ValueError, match=message):
        seed.pool_experiment(**args)


# -- the benchmark cells ------------------------------------------------------------------


def pool_cells(profile: str) -> dict[str, Any]:
    return {
        f"{pool}-{collect}": planned(
            "test_seed_pool",
            profile,
            model=pool,
            tasks=seed.POOL_TASKS,
            workers=seed.POOL_WORKERS,
            collect=collect,
        )
        for pool in seed.POOLS
        for collect in seed.COLLECT_WAYS
    }


@pytest.mark.parametrize("profile", list(SEED_POOLS))
def test_planned_cells_carry_the_contract_keys(profile: str) -> None:
    sleep = SEED_POOLS[profile][0]
    for name, cell in pool_cells(profile).items():
        pool, collect = name.split("-")
        info = cell.info
        assert cell.group == "seed"
        assert info["workload"] == f"seed_pool_{pool}"
        assert info["model"] == pool
        assert info["collect"] == collect
        assert (info["tasks"], info["workers"]) == (seed.POOL_TASKS, seed.POOL_WORKERS)
        assert info["params"] == {"sleep_s": sleep, "collect": collect}
        assert info["ideal_s"] == pytest.approx(2 * sleep), "two waves of sleeps"
        assert info["bound"] == "io"
        assert info["profile"] == profile
        assert ("start_method" in info) == (pool == "processes")


@pytest.mark.slow
def test_quick_cells_run_verified_with_workers_cpu(no_strays: None) -> None:
    cells = pool_cells("quick")
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=in_process(30))
    sleep_s, rounds, _ = SEED_POOLS["quick"]
    for name, outcome in outcomes.items():
        assert outcome.error is None, (name, outcome.error)
        assert len(outcome.seconds) == rounds
        assert min(outcome.seconds) >= 2 * sleep_s
        assert all(cpu >= 0 for cpu in outcome.cpu_s)
