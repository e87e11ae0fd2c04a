"""Users' own workloads (``--workload module:NAME[,key=value...]``) under every model.

Each workload gets the cells a built-in one of its bound gets: the profile's task
counts (CPU task counts for ``cpu``, I/O ones otherwise), every model that has the
flavour it needs (the others are skipped with the flavour they miss), pools at the
sizes their model names.  Groups are ``NAME:tasks=N`` as for built-in workloads, so
the report and the check treat them alike.  Without ``--workload`` this module is not
collected at all (conftest.py).
"""

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
    model_cells,
    model_params,
    session_settings,
    user_workloads,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    profile = get_profile(config)
    params = []
    for index, user in enumerate(user_workloads(config)):
        spec = user.workload
        counts = profile.cpu_tasks if spec.bound == "cpu" else profile.io_tasks
        for param in model_params(config, model_cells(spec.bound, counts), spec):
            model, tasks, workers = param.values
            params.append(
                pytest.param(
                    index,
                    model,
                    tasks,
                    workers,
                    id=f"{spec.name}-{param.id}",
                    marks=param.marks,
                )
            )
    metafunc.parametrize(("user", "model", "tasks", "workers"), params)


def build(config: pytest.Config, user: int, model: str, tasks: int, workers: int) -> Cell:
    profile = get_profile(config)
    chosen = user_workloads(config)[user]
    spec = chosen.workload
    slow = spec.bound != "cpu" and model == "serial" and tasks > 10
    return model_cell(
        profile,
        workload=chosen.ref,
        model=model,
        tasks=tasks,
        workers=workers,
        params=spec.params(**chosen.params),
        rounds=profile.slow_rounds if slow else profile.rounds,
        warmup=0 if slow else profile.warmup,
        settings=session_settings(config),
    )


@cell_builder(build)
def test_workload(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    user: int,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)
