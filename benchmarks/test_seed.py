"""The tutorial's two experiments reproduced at their shape (group ``seed``).

CPU: two 10,000,000-iteration loops, serial vs generator ping-pong (1.16 s vs 2.07 s
in the tutorial).  I/O: two tasks of three sleeps, serial vs gevent (12 s vs 6 s with
2 s sleeps; ``--seed-sleep`` scales the sleep, the shape stays).
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._harness import ModelCache, run_cell, timed_call
from benchmarks._profiles import Profile
from conftest import model_params
from workloads import seed
from workloads.models import process_cpu_seconds

SEED_CPU = {"serial": seed.two_loops_serial, "generator": seed.two_loops_pingpong}


def test_seed_cpu(benchmark: Any, profile: Profile, model: str, tasks: int, workers: int) -> None:
    n = profile.seed_loop_n
    benchmark.group = "seed"
    benchmark.extra_info.update(
        {
            "bound": "cpu",
            "workload": "seed_cpu",
            "model": model,
            "flavour": "sync" if model == "serial" else "gen",
            "tasks": tasks,
            "workers": workers,
            "params": {"n": n},
            "profile": profile.name,
        }
    )
    result, cpu = timed_call(
        benchmark,
        lambda: SEED_CPU[model](n),
        rounds=profile.slow_rounds,
        warmup=0,
        cpu_clock=process_cpu_seconds,
    )
    benchmark.extra_info["cpu_s"] = cpu
    expected = n * (n - 1) // 2
    assert result == (expected, expected)


CELLS = {
    "test_seed_cpu": [("serial", 2, 1), ("generator", 2, 2)],
    "test_seed_io": [("serial", seed.SEED_TASKS, 1), ("gevent", seed.SEED_TASKS, seed.SEED_TASKS)],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cells = CELLS[metafunc.function.__name__]
    metafunc.parametrize(("model", "tasks", "workers"), model_params(metafunc.config, cells))


def test_seed_io(
    benchmark: Any,
    model_cache: ModelCache,
    profile: Profile,
    pytestconfig: Any,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    sleep = pytestconfig.getoption("seed_sleep") or profile.seed_sleep_s
    run_cell(
        benchmark,
        model_cache,
        profile=profile.name,
        workload_name="io_sleep",
        model_name=model,
        tasks=tasks,
        workers=None,
        params={"k": seed.SEED_SLEEPS, "d": sleep},
        rounds=profile.slow_rounds,
        warmup=0,
        group="seed",
    )
    benchmark.extra_info["workload"] = "seed_io"
