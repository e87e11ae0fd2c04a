"""Start-up cost of each pool model: create, a first result from every worker, shut down.

The cells elsewhere start their pools outside the timed region; this is what that
start costs a user (group ``startup``).  Nothing is padded: a process pool's start
returns once every worker has run, and close waits for them to exit.  The forkserver
itself is started by a warm-up round, as it is once per session in real use.  CPU time
counts this process and the pool's workers (a forkserver's workers are not our
children, so they are read before they exit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    APART,
    CPU_BATCH,
    Cell,
    ModelCache,
    Round,
    Runner,
    Trials,
    cell_builder,
    get_profile,
    measure,
    model_options,
    selected_models,
    session_settings,
)
from workloads import get_workload
from workloads.models import MODELS, get_model, process_cpu_seconds, unavailable_models

WORKLOAD = get_workload("cpu_loop")
PARAMS = {"n": 1, "yield_every": 1}


def variant_id(model: str, options: dict[str, Any]) -> str:
    return "-".join([model, *map(str, options.values())])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every model that declares start-up variants (Model.startup_variants) gets a cell each.
    chosen = selected_models(metafunc.config)
    missing = unavailable_models()
    params = [
        pytest.param(
            model,
            variant,
            id=variant_id(model, variant),
            marks=[pytest.mark.skip(reason=missing[model])] if model in missing else [],
        )
        for model, cls in MODELS.items()
        if model in chosen
        for variant in cls.startup_variants
    ]
    metafunc.parametrize(("model", "variant"), params)


@dataclass(frozen=True)
class StartupCell(Cell):
    model: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def prepare(self, cache: ModelCache) -> Runner:
        return _StartupRunner(self)


class _StartupRunner(Runner):
    def __init__(self, cell: StartupCell) -> None:
        self.cell = cell

    def round(self) -> Round:
        own = time.process_time()
        started = time.perf_counter()
        instance = get_model(self.cell.model, **dict(self.cell.options))
        try:
            instance.start()
            result = instance.run(WORKLOAD, PARAMS, 1)
            workers_cpu = process_cpu_seconds(*instance.child_pids())
        finally:
            instance.close()
        elapsed = time.perf_counter() - started
        return Round(elapsed, time.process_time() - own + workers_cpu, result)

    def problem(self, result: Any) -> str | None:
        return None if result == [(0, 0)] else f"expected [(0, 0)], got {result!r}"


def startup_cell(config: pytest.Config, model: str, variant: dict[str, Any]) -> Cell:
    profile = get_profile(config)
    # The session's settings (a dask scheduler's address, say), then the variant's own.
    options = {**model_options(model, session_settings(config)), **variant}
    return StartupCell(
        group="startup",
        rounds=min(profile.startup_rounds, MODELS[model].startup_rounds or profile.startup_rounds),
        warmup=1,
        # Interleaved with the CPU cells: a start-up is mostly CPU (forks, imports).
        batch=f"{APART}{model}" if MODELS[model].own_batch else CPU_BATCH,
        info={
            "bound": "cpu",
            "workload": "startup",
            "model": model,
            "flavour": "sync",
            "tasks": 1,
            "workers": get_model(model, **options).workers or 1,
            "params": options,
            "profile": profile.name,
            **options,
        },
        model=model,
        options=tuple(options.items()),
    )


@cell_builder(startup_cell)
def test_startup(
    benchmark: Any, trials: Trials, request: pytest.FixtureRequest, model: str, variant: Any
) -> None:
    measure(benchmark, trials, request.node)
