"""Every model returns exactly serial's results; failures are clear; nothing is left."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._harness import ModelCache, gevent_patched
from tests._procs import live_children
from workloads import WORKLOADS, Workload, get_workload
from workloads.models import (
    MODELS,
    Model,
    ModelError,
    ModelTimeout,
    available_models,
    get_model,
    run_generators,
    stop_multiprocessing_helpers,
    unavailable_models,
)
from workloads.models.processes import worker_pid

SMALL = {
    "cpu_loop": {"n": 20_000, "yield_every": 100},
    "cpu_native": {"size": 1 << 16, "rounds": 4},
    "io_sleep": {"k": 2, "d": 0.002},
    "mixed": {
        "cpu_share": 0.5,
        "task_s": 0.1,
        "steps": 2,
        "cpu_iters": 20_000,
        "cpu_kind": "python",
    },
}
# A model that cannot run a test's usual workload (asyncio_processes needs a hybrid
# flavour) runs mixed with these parameters instead.
INSTEAD = {
    "cpu_loop": {"cpu_share": 1.0, "task_s": 0.1, "steps": 1, "cpu_iters": 200_000},
    "io_sleep": {"cpu_share": 0.0, "task_s": 0.1, "steps": 1, "cpu_iters": 0},
}


def runnable(model: str, workload: str, params: dict[str, Any]) -> tuple[Workload, dict[str, Any]]:
    spec = get_workload(workload)
    if MODELS[model].unsupported(spec) is None:
        return spec, params
    return get_workload("mixed"), {**INSTEAD[workload], "task_s": max(params.get("d", 0.0), 0.1)}


AVAILABLE_NAMES = [name for name in MODELS if name not in unavailable_models()]
AVAILABLE = [
    pytest.param(name, marks=pytest.mark.skip(reason=unavailable_models().get(name, "")))
    if name in unavailable_models()
    else name
    for name in MODELS
]


@pytest.fixture(params=AVAILABLE)
def model(request: pytest.FixtureRequest) -> Iterator[Model]:
    instance = get_model(request.param, workers=3)
    instance.start()
    yield instance
    instance.close()


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("tasks", [1, 5])
def test_every_model_matches_serial(model: Model, workload: str, tasks: int) -> None:
    spec = get_workload(workload)
    reason = model.unsupported(spec)
    if reason:
        pytest.skip(reason)
    expected = get_model("serial").run(spec, SMALL[workload], tasks)
    assert model.run(spec, SMALL[workload], tasks) == expected
    assert model.healthy


def test_models_report_cpu_and_pids(model: Model) -> None:
    before = model.cpu_seconds()
    model.run(*runnable(model.name, "cpu_loop", {"n": 200_000, "yield_every": 1000}), 2)
    assert model.cpu_seconds() > before
    assert os.getpid() in model.pids()
    assert model.info()["model"] == model.name


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(LookupError, match="valid: serial, generator, threads, processes"):
        get_model("fibers")


def test_missing_dependency_is_a_reason_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def no_uvloop(name: str, *args: Any) -> Any:
        return None if name == "uvloop" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_uvloop)
    assert "uvloop" not in available_models()
    reason = unavailable_models()["uvloop"]
    assert "pip install 'boundbench[uvloop]'" in reason
    with pytest.raises(LookupError, match="uvloop is not installed"):
        get_model("uvloop")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        get_model("threads", workers=0)
    with pytest.raises(ValueError, match="unknown start method"):
        get_model("processes", start_method="teleport")


def test_generator_scheduler_caps_tasks_in_flight() -> None:
    running = 0
    peak = 0

    def task(i: int) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        yield 0.002
        yield
        running -= 1
        return i

    assert run_generators((task(i) for i in range(10)), limit=3) == list(range(10))
    assert peak == 3


def test_generator_scheduler_overlaps_sleeps_and_bounds_time() -> None:
    def sleeper(d: float) -> Any:
        yield d
        return d

    started = time.monotonic()
    assert run_generators([sleeper(0.05) for _ in range(20)]) == [0.05] * 20
    assert time.monotonic() - started < 0.05 * 20 / 2, "sleeps overlap"
    with pytest.raises(ModelError, match=r"after 0\.05 s"):
        run_generators([sleeper(5.0)], timeout=0.05)


def test_a_task_that_raises_fails_with_its_error() -> None:
    def boom() -> Any:
        yield
        raise ZeroDivisionError("bad task")

    with pytest.raises(ModelError, match="task 0 raised ZeroDivisionError"):
        run_generators([boom()])


@pytest.mark.parametrize("name", ["processes", "gevent"])
def test_a_killed_worker_fails_the_run_clearly_and_a_new_model_works(name: str) -> None:
    spec = get_workload("io_sleep")
    model = get_model(name, workers=2).start()
    try:
        victim = model.child_pids()[0]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(ModelError, match="died") as info:
            model.run(spec, {"k": 20, "d": 0.01}, 4)
        assert name in str(info.value)
        assert not model.healthy
        # A broken model says so again instead of hanging.
        with pytest.raises(ModelError):
            model.run(spec, {"k": 1, "d": 0.001}, 1)
    finally:
        model.close()
    with get_model(name, workers=2) as fresh:
        assert fresh.run(spec, {"k": 1, "d": 0.001}, 2) == [(0, 1), (1, 1)]


def test_gevent_task_error_fails_the_cell_not_the_worker() -> None:
    with get_model("gevent") as model:
        with pytest.raises(ModelError, match=r"below the 0\.001 s minimum"):
            model.run(get_workload("io_sleep"), {"k": 1, "d": 0.0}, 1)
        assert model.healthy
        assert model.run(get_workload("io_sleep"), {"k": 1, "d": 0.001}, 1) == [(0, 1)]


@pytest.mark.parametrize("name", [n for n in AVAILABLE_NAMES if n != "serial"])
def test_a_timeout_fails_the_run_and_retires_the_model(name: str) -> None:
    """Every model that waits on something gives up cleanly; the cache then rebuilds it."""
    spec, params = runnable(name, "io_sleep", {"k": 1, "d": 3.0})
    model = get_model(name, workers=1, timeout=0.3).start()
    try:
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"0\.3"):
            model.run(spec, params, 1)
        assert time.monotonic() - started < 2.5
        assert not model.healthy
    finally:
        started = time.monotonic()
        model.close()
        # close() is bounded even with a task still sleeping in a worker
        assert time.monotonic() - started < 15


def test_the_model_cache_rebuilds_a_timed_out_model() -> None:
    cache = ModelCache(timeout=0.3)
    try:
        first = cache.get("threads", 1)
        with pytest.raises(ModelTimeout):
            first.run(get_workload("io_sleep"), {"k": 1, "d": 2.0}, 1)
        second = cache.get("threads", 1)
        assert second is not first
        assert second.run(get_workload("io_sleep"), {"k": 1, "d": 0.001}, 1) == [(0, 1)]
    finally:
        cache.close()


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_process_pool_starts_every_worker_without_padding(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start() is what a user pays: one no-op task per worker, every worker started."""
    submitted: list[tuple[Any, tuple[Any, ...]]] = []
    real_submit = cf.ProcessPoolExecutor.submit

    def recording_submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        submitted.append((fn, args))
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(cf.ProcessPoolExecutor, "submit", recording_submit)
    model = get_model("processes", workers=3, start_method=method)
    try:
        model.start()
        assert len(model.child_pids()) == 3
    finally:
        model.close()
    assert submitted == [(worker_pid, ())] * 3


@pytest.mark.parametrize("name", [n for n in MODELS if n not in unavailable_models()])
def test_no_child_process_is_left_after_close(name: str) -> None:
    before = {p.pid for p in live_children()}
    with get_model(name, workers=2) as model:
        model.run(*runnable(name, "io_sleep", {"k": 1, "d": 0.001}), 2)
    stop_multiprocessing_helpers()
    deadline = time.monotonic() + 10
    while (left := [p for p in live_children() if p.pid not in before]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert left == [], [p.cmdline() for p in left]


def test_the_pytest_process_is_never_patched() -> None:
    import socket
    import threading

    with get_model("gevent") as model:
        model.run(get_workload("io_sleep"), {"k": 2, "d": 0.001}, 10)
    assert gevent_patched() == []
    assert time.sleep.__module__ == "time"
    assert socket.socket.__module__ == "socket"
    assert threading.Thread.__module__ == "threading"
    assert "gevent" not in sys.modules or not sys.modules["gevent"].monkey.is_anything_patched()
