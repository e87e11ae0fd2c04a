"""The one generator scheduler: what the echo server needs beyond the model's run
(spawning while running, a stop, a wake-up descriptor, a task failing alone), and the
waits both need.  The model's own face is tested in tests/test_models.py."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from workloads import _scheduler, io_socket
from workloads._scheduler import Scheduler, SchedulerError, SchedulerTimeout, Wait, run_tasks
from workloads.models import generator as generator_model
from workloads.net import generator_server

# A descriptor number no process here has open (far above any descriptor limit).
NOT_OPEN = 999_999


def test_the_model_the_server_and_io_socket_share_one_scheduler() -> None:
    assert generator_model.Wait is io_socket.Wait is generator_server.Wait is Wait
    assert generator_server.Scheduler is Scheduler
    assert generator_model.run_tasks is run_tasks


def test_tasks_spawned_while_running_run_too_and_results_come_in_id_order() -> None:
    scheduler = Scheduler()

    def child(n: int) -> Any:
        yield 0.001
        return n * 10

    def parent() -> Any:
        ids = []
        for n in range(3):
            ids.append(scheduler.spawn(child(n)))
            yield
        return ids

    assert scheduler.spawn(parent()) == 0
    assert scheduler.run(timeout=10) == [[1, 2, 3], 0, 10, 20]
    with pytest.raises(RuntimeError, match="runs once"):
        scheduler.run()


def test_the_limit_holds_spawned_tasks_back() -> None:
    running = peak = 0

    def task() -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        yield 0.002
        running -= 1

    scheduler = Scheduler(limit=2)
    scheduler.spawn_all(task() for _ in range(6))
    assert scheduler.run(timeout=10) == [None] * 6
    assert peak == 2
    with pytest.raises(ValueError, match="at least 1"):
        Scheduler(limit=0)


def test_stop_ends_the_run_and_closes_every_task() -> None:
    a, b = socket.socketpair()
    closed: list[str] = []

    def task(name: str) -> Any:
        try:
            while True:
                if name == "parked":
                    yield Wait(a, "r")
                elif name == "sleeping":
                    yield 30.0
                else:
                    yield
        finally:
            closed.append(name)

    with a, b:
        scheduler = Scheduler()
        for name in ("parked", "sleeping", "spinning"):
            scheduler.spawn(task(name))
        until = time.monotonic() + 0.1
        assert scheduler.run(stop=lambda: time.monotonic() > until, max_wait=0.05) == []
        assert time.monotonic() - until < 1
    assert sorted(closed) == ["parked", "sleeping", "spinning"]


def test_a_stop_needs_a_bounded_look() -> None:
    with pytest.raises(ValueError, match="finite max_wait"):
        Scheduler().run(stop=lambda: True)


def test_a_watched_descriptor_interrupts_a_long_wait() -> None:
    """The server's signal wake-up: a byte on it ends a wait that could last 30 s."""
    wake_r, wake_w = socket.socketpair()
    a, b = socket.socketpair()
    stopped: list[bool] = []

    def drain() -> None:
        wake_r.recv(64)
        stopped.append(True)

    def parked() -> Any:
        yield Wait(a, "r")

    with wake_r, wake_w, a, b:
        scheduler = Scheduler()
        scheduler.spawn(parked())
        scheduler.watch(wake_r, drain)
        timer = threading.Timer(0.1, wake_w.send, (b"!",))
        timer.start()
        try:
            started = time.monotonic()
            scheduler.run(stop=lambda: bool(stopped), max_wait=30.0)
            assert 0.1 <= time.monotonic() - started < 5
        finally:
            timer.cancel()


def test_with_on_error_a_failing_task_ends_alone() -> None:
    a, b = socket.socketpair()
    failed: list[tuple[int, str]] = []
    closed: list[int] = []

    def raises() -> Any:
        yield
        raise ValueError("boom")

    def odd() -> Any:
        try:
            yield "soon"
        finally:
            closed.append(1)

    def bad_wait() -> Any:
        try:
            yield Wait(NOT_OPEN, "r")
        finally:
            closed.append(2)

    def good() -> Any:
        b.send(b"x")
        yield Wait(a, "r", 5.0)
        return a.recv(1)

    with a, b:
        scheduler = Scheduler()
        scheduler.spawn_all([raises(), odd(), bad_wait(), good()])
        results = scheduler.run(
            timeout=10, on_error=lambda task, exc: failed.append((task, repr(exc)))
        )
    assert results == [None, None, None, b"x"]
    assert sorted(closed) == [1, 2], "a task refused is closed: its finally runs"
    # In the order they failed: odd and bad_wait at their first step, raises at its second.
    assert [task for task, _ in failed] == [1, 2, 0]
    assert "yielded 'soon'" in failed[0][1]
    assert f"cannot wait on descriptor {NOT_OPEN}" in failed[1][1]
    assert "boom" in failed[2][1]


def test_without_on_error_a_refused_wait_ends_the_run_and_closes_that_task() -> None:
    closed = []

    def bad_wait() -> Any:
        try:
            yield Wait(NOT_OPEN, "r")
        finally:
            closed.append(True)

    with pytest.raises(SchedulerError, match=f"task 0 cannot wait on descriptor {NOT_OPEN}"):
        run_tasks([bad_wait()], timeout=10)
    assert closed == [True]


def test_a_task_may_catch_its_timeouts_and_wait_again() -> None:
    """Each timed-out wait raises in the task itself, however many in a row."""
    a, b = socket.socketpair()

    def patient() -> Any:
        timeouts = 0
        wait = Wait(a, "r", 0.02)
        while True:
            try:
                yield wait
            except TimeoutError:
                timeouts += 1
                if timeouts == 3:
                    b.send(b"x")
                elif timeouts == 2:
                    yield  # round-robin, then wait again
                continue
            return timeouts, a.recv(1)

    with a, b:
        started = time.monotonic()
        assert run_tasks([patient()], timeout=10) == [(3, b"x")]
        assert 0.06 <= time.monotonic() - started < 2


def test_a_timed_out_task_can_sleep_or_end() -> None:
    a, b = socket.socketpair()

    def sleeps_after() -> Any:
        try:
            yield Wait(a, "r", 0.02)
        except TimeoutError:
            yield 0.02
        return "slept"

    def ends_at_once() -> Any:
        try:
            yield Wait(b, "r", 0.02)
        except TimeoutError:
            return "ended"
        return "woken"

    with a, b:
        assert run_tasks([sleeps_after(), ends_at_once()], timeout=10) == ["slept", "ended"]


def test_a_read_or_write_wait_wakes_on_either() -> None:
    a, b = socket.socketpair()

    def task() -> Any:
        wait = Wait(a, "rw", 1.0)
        assert repr(wait) == f"Wait({a.fileno()}, 'rw', timeout=1.0)"
        yield wait  # writable at once
        b.send(b"x")
        yield Wait(a, "r", 1.0)
        return a.recv(1)

    with a, b:
        started = time.monotonic()
        assert run_tasks([task()], timeout=10) == [b"x"]
        assert time.monotonic() - started < 0.5


def test_a_wait_on_both_times_out_in_words() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        while True:  # fill the buffer: a is neither readable nor writable
            try:
                a.send(b"x" * 65536)
            except BlockingIOError:
                break

        def task() -> Any:
            try:
                yield Wait(a, "rw", 0.02)
            except TimeoutError as exc:
                return str(exc)

        (message,) = run_tasks([task()], timeout=10)
    assert message.endswith("not readable or writable within 0.02 s")


def test_a_run_without_a_bound_times_out_only_with_one() -> None:
    def sleeper(seconds: float) -> Any:
        yield seconds
        return 1

    assert Scheduler().run() == []
    scheduler = Scheduler()
    scheduler.spawn(sleeper(0.01))
    assert scheduler.run() == [1]
    with pytest.raises(SchedulerTimeout, match=r"still sleeping after 0\.01 s"):
        run_tasks([sleeper(5.0)], timeout=0.01)


def test_the_scheduler_module_imports_nothing_of_the_project() -> None:
    """The generator model, the server and a workload import it: it may import none."""
    source = _scheduler.__file__
    assert source is not None
    with open(source) as handle:
        text = handle.read()
    assert "from ." not in text
    assert "import workloads" not in text
