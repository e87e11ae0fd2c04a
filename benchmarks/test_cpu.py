"""CPU-bound cells: cpu_loop (holds the GIL) and cpu_native (releases it), every model."""

from __future__ import annotations

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        parametrize_cells(metafunc, "cpu", get_profile(metafunc.config).cpu_tasks)


def _cell(workload: str) -> Any:
    def build(config: pytest.Config, model: str, tasks: int, workers: int) -> Cell:
        profile = get_profile(config)
        return model_cell(
            profile,
            workload=workload,
            model=model,
            tasks=tasks,
            workers=workers,
            params=profile.params[workload],
            rounds=profile.cpu_rounds,
            warmup=profile.warmup,
            start_method=config.getoption("start_method"),
        )

    return build


@cell_builder(_cell("cpu_loop"))
def test_cpu_loop(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)


@cell_builder(_cell("cpu_native"))
def test_cpu_native(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)
