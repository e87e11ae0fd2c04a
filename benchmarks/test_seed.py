"""The tutorial's experiments reproduced at their shape (group ``seed``).

CPU: two 10,000,000-iteration loops, serial vs generator ping-pong (1.16 s vs 2.07 s
in the tutorial).  I/O: two tasks of three sleeps, serial vs gevent (12 s vs 6 s with
2 s sleeps; ``--seed-sleep`` scales the sleep, the shape stays).

Pools: 4 tasks of one sleep on 2 workers, two waves (6 s with the tutorial's 3 s
sleeps), in a ``ThreadPoolExecutor`` and a ``ProcessPoolExecutor`` (the session's
``--start-method``), the results gathered by ``add_done_callback``, by ``result()`` in
submission order or by ``as_completed``; every round's results are checked (task
order, so the three ways are held to the same answer).  As in the tutorial, where the
pool is made once per program and the program is the experiment, each round makes its
own pool and shuts it down: the figure includes the pool's start-up and shutdown (for
processes, starting 2 workers: tens of milliseconds), the price of the tutorial's
program.  ``extra_info``: ``workload`` ``seed_pool_threads`` / ``seed_pool_processes``,
``model`` ``threads`` / ``processes``, ``collect``, ``tasks``, ``workers``, ``params``
(``sleep_s`` and ``collect``), ``ideal_s`` (two sleeps), ``cpu_s`` (this process and
the pool's workers).  Sleeps per profile in ``POOL_PROFILES`` (standard ~6 s in all).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    CPU_BATCH,
    CallCell,
    Cell,
    Trials,
    cell_builder,
    get_profile,
    measure,
    model_cell,
    model_params,
)
from workloads import seed
from workloads.models import process_cpu_seconds

SEED_CPU = {"serial": seed.two_loops_serial, "generator": seed.two_loops_pingpong}

CELLS = {
    "test_seed_cpu": [("serial", 2, 1), ("generator", 2, 2)],
    "test_seed_io": [("serial", seed.SEED_TASKS, 1), ("gevent", seed.SEED_TASKS, seed.SEED_TASKS)],
    "test_seed_pool": [(pool, seed.POOL_TASKS, seed.POOL_WORKERS) for pool in seed.POOLS],
}


@dataclass(frozen=True)
class PoolProfile:
    sleep_s: float
    rounds: int
    warmup: int


POOL_PROFILES = {
    "quick": PoolProfile(sleep_s=0.01, rounds=3, warmup=1),
    # Rounds of 0.1-0.2 s: 6 cells x 6 rounds in about 6 s.  The warm-up round starts the
    # forkserver when no earlier cell has.
    "standard": PoolProfile(sleep_s=0.05, rounds=5, warmup=1),
    # The tutorial's own 3 s sleeps: 6 s a round, about 2 minutes for the six cells.
    "full": PoolProfile(sleep_s=seed.POOL_SLEEP_S, rounds=3, warmup=0),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cells = CELLS[metafunc.function.__name__]
    metafunc.parametrize(("model", "tasks", "workers"), model_params(metafunc.config, cells))
    if "collect" in metafunc.fixturenames:
        metafunc.parametrize("collect", seed.COLLECT_WAYS)


def seed_cpu_cell(config: pytest.Config, model: str, tasks: int, workers: int) -> Cell:
    profile = get_profile(config)
    n = profile.seed_loop_n
    expected = n * (n - 1) // 2
    return CallCell(
        group="seed",
        rounds=profile.seed_rounds,
        warmup=0,
        # Seconds-long CPU rounds: spread among the CPU cells' rounds, a slow phase of
        # the host costs them one round each, not a whole cell.
        batch=CPU_BATCH,
        info={
            "bound": "cpu",
            "workload": "seed_cpu",
            "model": model,
            "flavour": "sync" if model == "serial" else "gen",
            "tasks": tasks,
            "workers": workers,
            "params": {"n": n},
            "profile": profile.name,
        },
        call=functools.partial(SEED_CPU[model], n),
        expect=(expected, expected),
    )


def seed_io_cell(config: pytest.Config, model: str, tasks: int, workers: int) -> Cell:
    profile = get_profile(config)
    sleep = config.getoption("seed_sleep") or profile.seed_sleep_s
    return model_cell(
        profile,
        workload="io_sleep",
        label="seed_io",
        model=model,
        tasks=tasks,
        workers=None,
        params={"k": seed.SEED_SLEEPS, "d": sleep},
        rounds=profile.seed_rounds,
        warmup=0,
        group="seed",
        start_method=config.getoption("start_method"),
    )


def _own_and_workers_cpu(worker_cpu: seed.WorkerCPU) -> float:
    return process_cpu_seconds() + worker_cpu.seconds


def seed_pool_cell(
    config: pytest.Config, model: str, tasks: int, workers: int, collect: str
) -> Cell:
    profile = get_profile(config)
    sizes = POOL_PROFILES[profile.name]
    start_method = config.getoption("start_method")
    worker_cpu = seed.WorkerCPU()
    info: dict[str, Any] = {
        "bound": "io",
        "workload": f"seed_pool_{model}",
        "model": model,
        "flavour": "sync",
        "collect": collect,
        "tasks": tasks,
        "workers": workers,
        "params": {"sleep_s": sizes.sleep_s, "collect": collect},
        "ideal_s": math.ceil(tasks / workers) * sizes.sleep_s,
        "profile": profile.name,
    }
    if model == "processes":
        info["start_method"] = start_method
    return CallCell(
        group="seed",
        rounds=sizes.rounds,
        warmup=sizes.warmup,
        info=info,
        call=functools.partial(
            seed.pool_experiment,
            model,
            collect,
            tasks,
            workers,
            sizes.sleep_s,
            start_method=start_method,
            worker_cpu=worker_cpu,
        ),
        expect=[index + 10 for index in range(tasks)],  # the tutorial's name + 10
        cpu_clock=functools.partial(_own_and_workers_cpu, worker_cpu),
    )


@cell_builder(seed_cpu_cell)
def test_seed_cpu(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)


@cell_builder(seed_io_cell)
def test_seed_io(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)


@cell_builder(seed_pool_cell)
def test_seed_pool(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
    collect: str,
) -> None:
    measure(benchmark, trials, request.node)
