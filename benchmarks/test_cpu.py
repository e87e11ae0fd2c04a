"""CPU-bound cells: cpu_loop (holds the GIL) and cpu_native (releases it), every model."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._harness import ModelCache, run_cell
from benchmarks._profiles import Profile
from conftest import get_profile, parametrize_cells
from workloads.models import MODELS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        parametrize_cells(metafunc, "cpu", get_profile(metafunc.config).cpu_tasks)


def _run(
    workload: str,
    benchmark: Any,
    model_cache: ModelCache,
    profile: Profile,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    run_cell(
        benchmark,
        model_cache,
        profile=profile.name,
        workload_name=workload,
        model_name=model,
        tasks=tasks,
        workers=workers if MODELS[model].pooled else None,
        params=profile.params[workload],
        rounds=profile.rounds,
        warmup=profile.warmup,
    )


def test_cpu_loop(
    benchmark: Any, model_cache: ModelCache, profile: Profile, model: str, tasks: int, workers: int
) -> None:
    _run("cpu_loop", benchmark, model_cache, profile, model, tasks, workers)


def test_cpu_native(
    benchmark: Any, model_cache: ModelCache, profile: Profile, model: str, tasks: int, workers: int
) -> None:
    _run("cpu_native", benchmark, model_cache, profile, model, tasks, workers)
