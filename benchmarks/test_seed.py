"""The tutorial's two experiments reproduced at their shape (group ``seed``).

CPU: two 10,000,000-iteration loops, serial vs generator ping-pong (1.16 s vs 2.07 s
in the tutorial).  I/O: two tasks of three sleeps, serial vs gevent (12 s vs 6 s with
2 s sleeps; ``--seed-sleep`` scales the sleep, the shape stays).
"""

from __future__ import annotations

import functools
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

SEED_CPU = {"serial": seed.two_loops_serial, "generator": seed.two_loops_pingpong}

CELLS = {
    "test_seed_cpu": [("serial", 2, 1), ("generator", 2, 2)],
    "test_seed_io": [("serial", seed.SEED_TASKS, 1), ("gevent", seed.SEED_TASKS, seed.SEED_TASKS)],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cells = CELLS[metafunc.function.__name__]
    metafunc.parametrize(("model", "tasks", "workers"), model_params(metafunc.config, cells))


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
