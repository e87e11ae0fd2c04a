"""mixed: flavours agree, the CPU/sleep split follows the parameters, the ideal is right,
and the asyncio_processes hybrid runs it like serial and leaves nothing behind."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._procs import live_children
from workloads import Workload
from workloads import mixed as m
from workloads.models import (
    ModelError,
    ModelTimeout,
    get_model,
    run_generators,
    stop_multiprocessing_helpers,
)
from workloads.models.asyncio_processes import AsyncioProcessesModel

# Uneven on purpose: slices differ by one iteration and end in a partial chunk.
SMALL: dict[str, Any] = {
    "cpu_share": 0.3,
    "task_s": 0.1,
    "steps": 3,
    "cpu_iters": 2 * m.CHUNK_ITERS + 7,
    "cpu_kind": "python",
}
KINDS = pytest.mark.parametrize("kind", m.CPU_KINDS)


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def run_flavour(flavour: str, task_id: int, params: dict[str, Any]) -> Any:
    if flavour == "hybrid":
        return asyncio.run(m.mixed_hybrid(task_id, inline, **params))
    fn = m.MIXED.task(flavour, **params)
    if flavour == "sync":
        return fn(task_id)
    if flavour == "gen":
        return run_generators([fn(task_id)])[0]
    return asyncio.run(fn(task_id))


@pytest.mark.slow
@KINDS
def test_flavours_agree(kind: str) -> None:
    params = {**SMALL, "cpu_kind": kind}
    by_task = {}
    for task_id in (0, 5):
        answers = {f: run_flavour(f, task_id, params) for f in ("sync", "gen", "coro", "hybrid")}
        assert len(set(answers.values())) == 1, answers
        assert answers["sync"][:2] == (task_id, params["cpu_iters"])
        by_task[task_id] = answers["sync"][2]
    if kind == "native":
        assert by_task[0] != by_task[5], "different tasks hash different data"


@KINDS
def test_cpu_slice_adds_up_over_its_chunks(kind: str) -> None:
    iters = 3 * m.CHUNK_ITERS + 11
    whole = m.cpu_slice(iters, kind, 2)
    parts = [m.cpu_slice(m.CHUNK_ITERS, kind, 2)] * 3 + [m.cpu_slice(11, kind, 2)]
    assert whole == sum(parts)
    assert m.cpu_slice(0, kind) == 0
    if kind == "python":
        assert m.cpu_slice(10, kind) == 45, "the cpu_loop body"


def drive(gen: Any) -> tuple[list[float | None], Any]:
    """Every value a gen task yields, and what it returns."""
    yielded = []
    while True:
        try:
            yielded.append(next(gen))
        except StopIteration as stop:
            return yielded, stop.value


@pytest.mark.parametrize(
    ("cpu_share", "steps", "cpu_iters"),
    [(0.0, 2, 0), (0.3, 3, 2 * m.CHUNK_ITERS + 7), (0.5, 4, 5), (1.0, 3, 3 * m.CHUNK_ITERS)],
)
def test_sleep_and_cpu_follow_the_parameters(cpu_share: float, steps: int, cpu_iters: int) -> None:
    params = {**SMALL, "cpu_share": cpu_share, "steps": steps, "cpu_iters": cpu_iters}
    yielded, _ = drive(m.mixed_gen(0, **params))
    sleeps = [value for value in yielded if value]
    wait = (1 - cpu_share) * params["task_s"]
    assert len(sleeps) == (steps if cpu_share < 1 else 0)
    assert sum(sleeps) == pytest.approx(wait)
    assert m.mixed_parts(**params)[1] == pytest.approx(wait)

    offloaded: list[int] = []

    async def recording(fn: Callable[..., Any], iters: int, *args: Any) -> Any:
        assert fn is m.cpu_slice
        offloaded.append(iters)
        return fn(iters, *args)

    asyncio.run(m.mixed_hybrid(0, recording, **params))
    assert sum(offloaded) == cpu_iters
    if cpu_iters:
        assert len(offloaded) == steps
        assert max(offloaded) - min(offloaded) <= 1, "CPU slices are even"


def test_gen_gives_up_the_cpu_between_chunks() -> None:
    params = {**SMALL, "cpu_share": 1.0, "steps": 1, "cpu_iters": 3 * m.CHUNK_ITERS}
    yielded, result = drive(m.mixed_gen(0, **params))
    assert yielded == [None, None], "a switch between each of the three chunks"
    assert result == m.mixed_sync(0, **params)


def test_timing_is_plausible() -> None:
    # Generous bounds only: a sleeping task sleeps at least its waits; a pure-CPU task of
    # a few chunks does not sleep at all.
    waiting = {**SMALL, "cpu_share": 0.0, "cpu_iters": 0}
    started = time.perf_counter()
    m.mixed_sync(0, **waiting)
    assert time.perf_counter() - started >= waiting["task_s"]

    busy = {**SMALL, "cpu_share": 1.0, "cpu_iters": 3}
    started = time.perf_counter()
    m.mixed_sync(0, **busy)
    assert time.perf_counter() - started < busy["task_s"] / 2


@KINDS
def test_seconds_per_iteration_is_measured_and_plausible(kind: str) -> None:
    per_iter = m.measure_seconds_per_iter(kind, iters=20_000, repeat=2)
    assert 1e-10 < per_iter < 1e-5
    assert m.cpu_iters_for(0.5, 0.2, kind) == round(0.1 / m.SECONDS_PER_ITER[kind])
    assert m.cpu_iters_for(0.0, 0.2, kind) == 0
    assert m.cpu_iters_for(m.CPU_SHARE, m.TASK_S) == m.CPU_ITERS


@pytest.mark.parametrize(
    ("tasks", "cpu_s", "wait_s", "cores", "ideal"),
    [
        (8, 0.0, 0.2, 2, 0.2),  # pure waiting: one task's length
        (8, 0.0, 0.2, 1, 0.2),
        (8, 0.2, 0.0, 2, 0.8),  # pure CPU: all of it over the cores
        (8, 0.2, 0.0, 1, 1.6),
        (8, 0.1, 0.1, 2, 0.4),  # the middle: CPU-limited with 8 tasks
        (8, 0.1, 0.1, 1, 0.8),
        (2, 0.1, 0.1, 2, 0.2),  # few tasks: one task end to end
        (3, 0.05, 0.15, 1, 0.2),
        (5, 0.05, 0.15, 1, 0.25),
    ],
)
def test_ideal_on_hand_computed_cells(
    tasks: int, cpu_s: float, wait_s: float, cores: int, ideal: float
) -> None:
    assert m.mixed_ideal_seconds(tasks, cpu_s, wait_s, cores) == pytest.approx(ideal)


def test_ideal_from_nominal_parts_and_bad_input() -> None:
    params = {**SMALL, "cpu_share": 0.5, "task_s": 0.2, "steps": 4, "cpu_iters": 1000}
    cpu_s, wait_s = m.mixed_parts(**params, seconds_per_iter=1e-4)
    assert (cpu_s, wait_s) == pytest.approx((0.1, 0.1))
    assert m.mixed_ideal_seconds(8, cpu_s, wait_s, 2) == pytest.approx(0.4)
    assert m.mixed_seconds(**params) == 0.2
    assert m.MIXED.task_seconds(**params) == 0.2
    with pytest.raises(ValueError, match="must be at least 1"):
        m.mixed_ideal_seconds(0, 0.1, 0.1, 2)
    with pytest.raises(ValueError, match="must not be negative"):
        m.mixed_ideal_seconds(1, -0.1, 0.1, 2)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"cpu_share": -0.1}, "cpu_share=-0.1 must be between 0 and 1"),
        ({"cpu_share": 1.5}, "cpu_share=1.5 must be between 0 and 1"),
        ({"task_s": 0.05}, r"task_s=0\.05 s is below the 0\.1 s minimum"),
        ({"steps": 0}, "steps=0 must be at least 1"),
        ({"cpu_kind": "gpu"}, "unknown cpu_kind 'gpu'; valid: python, native"),
        ({"cpu_iters": -1}, "must not be negative"),
        ({"cpu_iters": 0}, "disagree"),
        ({"cpu_share": 0.0}, "disagree"),
        ({"cpu_share": 0.99, "steps": 20}, r"below the 0\.001 s minimum"),
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "gen", "coro", "hybrid"])
def test_bad_parameters_are_refused(bad: dict[str, Any], message: str, flavour: str) -> None:
    params = {**SMALL, **bad}
    # A gen task is started by hand: the scheduler would wrap the error in a ModelError.
    start = functools.partial(next, m.mixed_gen(0, **params)) if flavour == "gen" else None
    with pytest.raises(ValueError, match=message):
        start() if start else run_flavour(flavour, 0, params)


def test_unknown_kind_is_refused_everywhere() -> None:
    for call in (
        lambda: m.cpu_slice(10, "gpu"),
        lambda: m.cpu_iters_for(0.5, 0.2, "gpu"),
        lambda: m.measure_seconds_per_iter("gpu"),
    ):
        with pytest.raises(ValueError, match="unknown cpu_kind 'gpu'"):
            call()


@pytest.mark.parametrize(
    "obj",
    [
        m.cpu_slice,
        m.mixed_sync,
        m.mixed_gen,
        m.mixed_coro,
        m.mixed_hybrid,
        m.mixed_seconds,
        m.mixed_parts,
        m.mixed_ideal_seconds,
        m.measure_seconds_per_iter,
        m.cpu_iters_for,
        m.MIXED,
    ],
)
def test_everything_pickles(obj: Any) -> None:
    assert pickle.loads(pickle.dumps(obj)) == obj


@pytest.mark.parametrize("flavour", ["sync", "gen", "coro"])
def test_tasks_pickle(flavour: str) -> None:
    task = m.MIXED.task(flavour, **SMALL)
    clone = pickle.loads(pickle.dumps(task))
    assert clone.func is task.func
    assert clone.keywords == task.keywords


# -- the asyncio_processes model ------------------------------------------------------

MODEL_PARAMS: dict[str, Any] = {
    "cpu_share": 0.5,
    "task_s": 0.1,
    "steps": 2,
    "cpu_iters": m.cpu_iters_for(0.5, 0.1) // 4,
    "cpu_kind": "python",
}


def new_children(before: set[int]) -> list[Any]:
    stop_multiprocessing_helpers()
    deadline = time.monotonic() + 10
    while (left := [p for p in live_children() if p.pid not in before]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    return left


@pytest.fixture
def hybrid() -> Iterator[AsyncioProcessesModel]:
    model = AsyncioProcessesModel(workers=2).start()
    try:
        yield model
    finally:
        model.close()


@pytest.mark.slow
@KINDS
def test_hybrid_model_matches_serial(hybrid: AsyncioProcessesModel, kind: str) -> None:
    params = {**MODEL_PARAMS, "cpu_kind": kind}
    expected = get_model("serial").run(m.MIXED, params, 4)
    before = hybrid.cpu_seconds()
    assert hybrid.run(m.MIXED, params, 4) == expected
    assert hybrid.healthy
    assert hybrid.cpu_seconds() > before
    assert len(hybrid.child_pids()) == 2, "the pool's workers are counted"
    assert hybrid.info() == {
        "model": "asyncio_processes",
        "flavour": "hybrid",
        "start_method": "forkserver",
    }


def test_hybrid_model_refuses_a_workload_without_the_hook(hybrid: AsyncioProcessesModel) -> None:
    from workloads.cpu_loop import CPU_LOOP

    reason = AsyncioProcessesModel.unsupported(CPU_LOOP)
    assert reason is not None
    assert "'cpu_loop' has none" in reason
    assert AsyncioProcessesModel.unsupported(m.MIXED) is None
    with pytest.raises(ModelError, match=r"needs the workload's hybrid flavour \(Workload\.hybrid"):
        hybrid.run(CPU_LOOP, {"n": 10, "yield_every": 1}, 1)
    assert hybrid.healthy, "a refused workload does not break the model"


async def _domain_error(task_id: int, offload: Any) -> float:
    await asyncio.sleep(0.001 * task_id)
    # Raises in a worker process: math.sqrt(-1) is a ValueError there.
    result: float = await offload(math.sqrt, -1.0 if task_id == 1 else 4.0)
    await asyncio.sleep(0.05)
    return result


FAILING = Workload(
    name="failing",
    bound="mixed",
    sync=math.sqrt,
    gen=m.mixed_gen,
    coro=m.mixed_coro,
    hybrid=_domain_error,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workload", "params", "message"),
    [
        (FAILING, {}, "a task raised ValueError"),
        (m.MIXED, {**MODEL_PARAMS, "steps": 0}, "steps=0 must be at least 1"),
    ],
)
def test_a_raising_task_fails_the_run_and_leaves_no_child(
    workload: Workload, params: dict[str, Any], message: str
) -> None:
    before = {p.pid for p in live_children()}
    with AsyncioProcessesModel(workers=2) as model:
        with pytest.raises(ModelError, match=message):
            model.run(workload, params, 4)
        assert model.healthy, "a task's error is not the model's"
        assert model.run(m.MIXED, MODEL_PARAMS, 2) == [
            m.mixed_sync(i, **MODEL_PARAMS) for i in range(2)
        ]
    assert new_children(before) == []


@pytest.mark.slow
def test_no_child_is_left_after_close() -> None:
    before = {p.pid for p in live_children()}
    with AsyncioProcessesModel(workers=2) as model:
        model.run(m.MIXED, MODEL_PARAMS, 2)
        assert model.child_pids()
    assert new_children(before) == []


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_clearly() -> None:
    before = {p.pid for p in live_children()}
    model = AsyncioProcessesModel(workers=2).start()
    try:
        os.kill(model.child_pids()[0], signal.SIGKILL)
        with pytest.raises(ModelError, match="died"):
            model.run(m.MIXED, MODEL_PARAMS, 4)
        assert not model.healthy
        with pytest.raises(ModelError):
            model.run(m.MIXED, MODEL_PARAMS, 1)
    finally:
        model.close()
    assert new_children(before) == []


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown start method"):
        AsyncioProcessesModel(start_method="teleport")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        AsyncioProcessesModel(workers=0)


@pytest.mark.slow
def test_a_hung_run_times_out_and_retires_the_model() -> None:
    slow = {**MODEL_PARAMS, "cpu_share": 0.1, "task_s": 3.0, "cpu_iters": 10}
    model = AsyncioProcessesModel(workers=1, timeout=0.3).start()
    try:
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"unfinished after 0\.3 s"):
            model.run(m.MIXED, slow, 1)
        assert time.monotonic() - started < 2.5
        assert not model.healthy
    finally:
        model.close()
