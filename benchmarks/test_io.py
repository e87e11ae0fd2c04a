"""I/O-bound cells: io_sleep under every model, 10 and 100 tasks (profile-dependent)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks._harness import (
    Cell,
    Trials,
    cell_builder,
    get_profile,
    measure,
    model_cell,
    parametrize_cells,
)
from workloads import get_workload

# A cell whose least time a round is at least this gets the profile's few slow rounds
# (serial and small pools: their time is the sleeps', by construction), and past
# VERY_SLOW_CELL_S (serial's and two processes' 100 tasks: 5-10 s a round) one round:
# its median moves by ~0.1 % between runs, and the speedup charts need it once.
SLOW_CELL_S = 0.5
VERY_SLOW_CELL_S = 3.0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        parametrize_cells(metafunc, "io", get_profile(metafunc.config).io_tasks)


def build(config: pytest.Config, model: str, tasks: int, workers: int) -> Cell:
    profile = get_profile(config)
    params = profile.params["io_sleep"]
    # The few slow rounds go to cells that cannot overlap much (serial, small pools).
    one_task = get_workload("io_sleep").task_seconds(**params) or 0.0
    least = one_task * math.ceil(tasks / workers)
    rounds = profile.slow_rounds if least >= SLOW_CELL_S else profile.rounds
    if least >= VERY_SLOW_CELL_S:
        rounds = 1
    return model_cell(
        profile,
        workload="io_sleep",
        model=model,
        tasks=tasks,
        workers=workers,
        params=params,
        rounds=rounds,
        warmup=0 if least >= SLOW_CELL_S else profile.warmup,
        start_method=config.getoption("start_method"),
    )


@cell_builder(build)
def test_io_sleep(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)
