"""Start-up cost of each pool model: create, first result, shut down (group ``startup``).

The cells elsewhere start their pools outside the timed region; this is what that
start costs.  The forkserver itself is started by a warm-up round, as it is once per
session in real use.
"""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from benchmarks._harness import timed_call
from benchmarks._profiles import Profile
from conftest import selected_models
from workloads import get_workload
from workloads.models import START_METHODS, get_model, unavailable_models

CELLS = [("threads", None), *(("processes", method) for method in START_METHODS), ("gevent", None)]


def _own_and_reaped_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = selected_models(metafunc.config)
    missing = unavailable_models()
    params = [
        pytest.param(
            model,
            method or "",
            id=f"{model}-{method}" if method else model,
            marks=[pytest.mark.skip(reason=missing[model])] if model in missing else [],
        )
        for model, method in CELLS
        if model in chosen
    ]
    metafunc.parametrize(("model", "start_method"), params)


def test_startup(benchmark: Any, profile: Profile, model: str, start_method: str) -> None:
    options = {"start_method": start_method} if start_method else {}
    workload = get_workload("cpu_loop")
    params = {"n": 1, "yield_every": 1}

    def start_run_close() -> list[Any]:
        instance = get_model(model, **options)
        try:
            instance.start()
            return instance.run(workload, params, 1)
        finally:
            instance.close()

    workers = get_model(model, **options).workers or 1
    benchmark.group = "startup"
    benchmark.extra_info.update(
        {
            "bound": "cpu",
            "workload": "startup",
            "model": model,
            "flavour": "sync",
            "tasks": 1,
            "workers": workers,
            "params": options,
            "profile": profile.name,
            **options,
        }
    )
    result, cpu = timed_call(
        benchmark,
        start_run_close,
        rounds=profile.startup_rounds,
        warmup=1,
        cpu_clock=_own_and_reaped_cpu,
    )
    benchmark.extra_info["cpu_s"] = cpu
    assert result == [(0, 0)]
