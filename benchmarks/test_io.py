"""I/O-bound cells: io_sleep under every model, 10 and 100 tasks (profile-dependent)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks._harness import ModelCache, ideal_seconds, run_cell
from benchmarks._profiles import Profile
from conftest import get_profile, parametrize_cells
from workloads import get_workload
from workloads.models import MODELS

# A cell whose ideal time is above this gets the profile's few slow rounds.
SLOW_CELL_S = 0.5


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        parametrize_cells(metafunc, "io", get_profile(metafunc.config).io_tasks)


def test_io_sleep(
    benchmark: Any, model_cache: ModelCache, profile: Profile, model: str, tasks: int, workers: int
) -> None:
    params = profile.params["io_sleep"]
    # The few slow rounds go to cells that cannot overlap much (serial, small pools).
    one_task = ideal_seconds(get_workload("io_sleep"), params) or 0.0
    slow = one_task * math.ceil(tasks / workers) > SLOW_CELL_S
    run_cell(
        benchmark,
        model_cache,
        profile=profile.name,
        workload_name="io_sleep",
        model_name=model,
        tasks=tasks,
        workers=workers if MODELS[model].pooled else None,
        params=params,
        rounds=profile.slow_rounds if slow else profile.rounds,
        warmup=0 if slow else profile.warmup,
    )
