"""Every model returns exactly serial's results; failures are clear; nothing is left."""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._harness import gevent_patched
from tests._procs import describe, live_children
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
from workloads.models.generator import Wait
from workloads.models.processes import worker_pid
from workloads.runner import Bench

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
    "io_spin": {"k": 2, "d": 0.002, "spin": 50},
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
# Models whose start takes seconds (a patched worker process, a local dask cluster): their
# cells here are slow; the in-process models and the pools stay in the fast tests.
SLOW_TO_START = {"gevent", "dask"}
AVAILABLE = [
    pytest.param(name, marks=pytest.mark.skip(reason=unavailable_models().get(name, "")))
    if name in unavailable_models()
    else pytest.param(name, marks=pytest.mark.slow)
    if name in SLOW_TO_START
    else name
    for name in MODELS
]


@pytest.fixture(scope="module", params=AVAILABLE)
def model(request: pytest.FixtureRequest) -> Iterator[Model]:
    """One started model per name for the module's tests (a pool, a worker or a cluster
    started once, not once per workload and task count: every test here runs cells on a
    model that already ran others, as the suite's own cache of models does)."""
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
    if workload == "io_socket":
        pytest.skip("needs an echo server: tests/test_io_socket.py runs every model on it")
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


# -- the generator scheduler's socket waits -------------------------------------------


def test_generator_scheduler_wakes_a_task_when_its_socket_is_readable() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)

        def reader() -> Any:
            yield Wait(a, "r", 5.0)
            return a.recv(16)

        def writer() -> Any:
            yield 0.05
            b.send(b"hello")
            return "sent"

        started, cpu = time.monotonic(), time.process_time()
        assert run_generators([reader(), writer()]) == [b"hello", "sent"]
        assert time.monotonic() - started >= 0.05
        assert time.process_time() - cpu < 0.04, "waiting is not spinning"


def test_generator_scheduler_waits_for_writability_and_takes_descriptors() -> None:
    a, b = socket.socketpair()
    with a, b:

        def task() -> Any:
            yield Wait(a, "w", 5.0)
            a.send(b"x")
            yield Wait(b.fileno(), "r", 5.0)
            return b.recv(1)

        assert run_generators([task()], timeout=10) == [b"x"]


def test_generator_wait_timeout_is_raised_in_the_task() -> None:
    a, b = socket.socketpair()
    with a, b:

        def patient() -> Any:
            try:
                yield Wait(a, "r", 0.05)
            except TimeoutError as exc:
                return str(exc)
            return "woken"

        started = time.monotonic()
        (message,) = run_generators([patient()], timeout=10)
        assert 0.05 <= time.monotonic() - started < 2
        assert message == f"descriptor {a.fileno()} not readable within 0.05 s"


def test_an_unhandled_wait_timeout_fails_the_run_and_closes_every_task() -> None:
    a, b = socket.socketpair()
    closed: list[str] = []

    def impatient() -> Any:
        yield Wait(a, "r", 0.05)

    def bystander(name: str) -> Any:
        try:
            yield Wait(b, "r", 60.0) if name == "parked" else 30.0
        finally:
            closed.append(name)

    with a, b:
        started = time.monotonic()
        with pytest.raises(ModelError, match="task 0 raised TimeoutError"):
            run_generators([impatient(), bystander("parked"), bystander("sleeping")])
        assert time.monotonic() - started < 2
    assert sorted(closed) == ["parked", "sleeping"]


def test_the_run_timeout_bounds_a_wait_without_its_own() -> None:
    a, b = socket.socketpair()
    closed = []

    def forever() -> Any:
        try:
            yield Wait(a, "r")
        finally:
            closed.append(True)

    with a, b:
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"unfinished after 0\.2 s"):
            run_generators([forever()], timeout=0.2)
        assert time.monotonic() - started < 2
    assert closed == [True]


def test_a_sleeping_task_with_a_ready_socket_does_not_spin() -> None:
    """Its socket stays registered after a wait; ready while the task sleeps, it is
    unregistered at the first report instead of waking the scheduler again and again."""
    a, b = socket.socketpair()
    with a, b:
        b.send(b"unread")

        def task() -> Any:
            yield Wait(a, "r", 5.0)
            yield 0.3  # the byte is still unread: the socket stays readable
            yield Wait(a, "r", 5.0)
            return a.recv(16)

        def other() -> Any:
            yield Wait(b, "r", 5.0)  # keeps the selector in use while the first sleeps
            return b.recv(16)

        cpu = time.process_time()
        started = time.monotonic()

        def poke() -> Any:
            yield 0.35
            a.send(b"done")
            return None

        assert run_generators([task(), other(), poke()], timeout=10) == [b"unread", b"done", None]
        assert time.monotonic() - started >= 0.3
        assert time.process_time() - cpu < 0.1, "the sleep was a busy loop"


def test_sleep_timers_stay_on_time_beside_socket_waits() -> None:
    """A sleeper's 20 x 5 ms take about 100 ms while another task is parked on a socket
    (the wait is to the microsecond, not epoll's milliseconds rounded up)."""
    a, b = socket.socketpair()
    with a, b:

        def sleeper() -> Any:
            started = time.monotonic()
            for _ in range(20):
                yield 0.005
            b.send(b"x")
            return time.monotonic() - started

        def parked() -> Any:
            yield Wait(a, "r", 5.0)
            return a.recv(1)

        took, got = run_generators([sleeper(), parked()], timeout=10)
        assert got == b"x"
        assert 0.1 <= took < 0.5, took


def test_two_tasks_cannot_wait_on_one_socket() -> None:
    a, b = socket.socketpair()
    with a, b:

        def waiter() -> Any:
            yield Wait(a, "r", 1.0)

        with pytest.raises(ModelError, match="already waits on"):
            run_generators([waiter(), waiter()])


def test_many_socket_waits_with_long_timeouts_stay_cheap() -> None:
    """Each wait leaves a stale timeout entry behind: they are swept, never fired."""
    pairs = [socket.socketpair() for _ in range(20)]
    try:

        def pinger(a: socket.socket, b: socket.socket) -> Any:
            readable = Wait(a, "r", 60.0)
            for index in range(300):
                b.send(b"%d," % index)
                yield readable
                a.recv(16)
            return 300

        started = time.monotonic()
        assert run_generators([pinger(a, b) for a, b in pairs], timeout=60) == [300] * 20
        assert time.monotonic() - started < 20
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ((0, "x"), "mode must be 'r' or 'w'"),
        ((0, "r", 0.0), "timeout must be a finite number above 0"),
        ((0, "r", -1.0), "timeout must be a finite number above 0"),
        ((0, "r", math.inf), "timeout must be a finite number above 0"),
        ((-1, "r"), "has no descriptor"),
    ],
)
def test_a_bad_wait_is_refused(args: tuple[Any, ...], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Wait(*args)


def test_a_task_that_yields_something_else_fails_clearly() -> None:
    def odd() -> Any:
        yield "soon"

    with pytest.raises(ModelError, match="task 0 yielded 'soon'; expected None, seconds"):
        run_generators([odd()])


def test_a_task_that_raises_fails_with_its_error() -> None:
    def boom() -> Any:
        yield
        raise ZeroDivisionError("bad task")

    with pytest.raises(ModelError, match="task 0 raised ZeroDivisionError"):
        run_generators([boom()])


@pytest.mark.slow
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


@pytest.mark.slow
def test_gevent_times_its_runs_in_the_worker_without_the_pipe() -> None:
    with get_model("gevent") as model:
        assert model.info()["timed_in"] == "worker"
        started = time.perf_counter()
        assert model.run(get_workload("io_sleep"), {"k": 2, "d": 0.05}, 3) == [
            (0, 2), (1, 2), (2, 2)
        ]  # fmt: skip
        around = time.perf_counter() - started
        assert model.last_run_s is not None
        assert 0.1 <= model.last_run_s <= around


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_model_cache_rebuilds_a_timed_out_model() -> None:
    cache = Bench(timeout=0.3)
    try:
        first = cache.model("threads", 1)
        with pytest.raises(ModelTimeout):
            first.run(get_workload("io_sleep"), {"k": 1, "d": 2.0}, 1)
        second = cache.model("threads", 1)
        assert second is not first
        assert second.run(get_workload("io_sleep"), {"k": 1, "d": 0.001}, 1) == [(0, 1)]
    finally:
        cache.close()


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert left == [], describe(left)


@pytest.mark.slow
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
