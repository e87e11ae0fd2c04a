"""What every benchmark cell does: get a started model, time only ``run``, check results.

Models live in a session-wide cache (starting pools is not what a cell measures);
a model that breaks (a worker died) is thrown away and started afresh for the next
cell, so one failure fails one cell.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks._testhooks import kill_worker_model, slowdown_factor
from workloads import Workload, get_workload
from workloads.models import (
    DEFAULT_START_METHOD,
    Model,
    ModelError,
    cpu_count,
    get_model,
    stop_multiprocessing_helpers,
)


class ModelCache:
    """Started models keyed by (name, workers, options); rebuilt when broken."""

    def __init__(self, timeout: float, start_method: str = DEFAULT_START_METHOD) -> None:
        self.timeout = timeout
        self.start_method = start_method
        self.models: dict[tuple[Any, ...], Model] = {}
        self.references: dict[tuple[Any, ...], list[Any]] = {}
        self.killed: set[str] = set()

    def get(self, name: str, workers: int | None = None, **options: Any) -> Model:
        key = (name, workers, tuple(sorted(options.items())))
        model = self.models.get(key)
        if model is not None and not model.healthy:
            model.close()
            del self.models[key]
            model = None
        if model is None:
            model = get_model(name, workers=workers, timeout=self.timeout, **options)
            try:
                model.start()
            except ModelError as exc:
                pytest.fail(str(exc), pytrace=False)
            self.models[key] = model
        return model

    def reference(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        """Serial results for the cell: what every model must return."""
        key = (workload.name, tuple(sorted(params.items())), tasks)
        if key not in self.references:
            self.references[key] = self.get("serial").run(workload, params, tasks)
        return self.references[key]

    def close(self) -> None:
        for model in self.models.values():
            model.close()
        self.models.clear()
        stop_multiprocessing_helpers()


def _kill_a_worker_soon(model: Model, delay: float = 0.05) -> None:
    def kill() -> None:
        time.sleep(delay)
        for pid in model.child_pids()[:1]:
            os.kill(pid, 9)

    threading.Thread(target=kill, daemon=True).start()


def ideal_seconds(workload: Workload, params: dict[str, Any]) -> float | None:
    """What a perfect model takes for an I/O cell: one task's duration, all overlapped.

    A pool smaller than the task count cannot reach it; that shows as low efficiency,
    which is the point.  CPU cells need the serial time, so reports derive theirs.
    """
    return workload.task_seconds(**params)


def describe_mismatch(expected: list[Any], got: list[Any]) -> str:
    if len(expected) != len(got):
        return f"{len(got)} results instead of {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            return f"task {index}: expected {want!r}, got {have!r}"
    return "no difference"


def timed_call(
    benchmark: Any,
    target: Callable[[], Any],
    *,
    rounds: int,
    warmup: int,
    cpu_clock: Callable[[], float],
) -> tuple[Any, float]:
    """Run ``target`` under pytest-benchmark; return its last result and CPU s per call."""
    calls = 0
    last: list[Any] = [None]

    def counted() -> Any:
        nonlocal calls
        calls += 1
        last[0] = target()
        return last[0]

    cpu_before = cpu_clock()
    benchmark.pedantic(counted, rounds=rounds, warmup_rounds=warmup, iterations=1)
    cpu = (cpu_clock() - cpu_before) / max(calls, 1)
    return last[0], cpu


def run_cell(
    benchmark: Any,
    cache: ModelCache,
    *,
    profile: str,
    workload_name: str,
    model_name: str,
    tasks: int,
    workers: int | None,
    params: dict[str, Any],
    rounds: int,
    warmup: int,
    group: str | None = None,
    start_method: str | None = None,
) -> list[Any]:
    workload = get_workload(workload_name)
    method = start_method or cache.start_method
    options = {"start_method": method} if model_name == "processes" else {}
    expected = cache.reference(workload, params, tasks)
    model = cache.get(model_name, workers, **options)
    effective = model.effective_workers(tasks)
    slow = slowdown_factor(workload_name)

    def target() -> list[Any]:
        started = time.perf_counter()
        results = model.run(workload, params, tasks)
        if slow != 1.0:
            time.sleep((slow - 1.0) * (time.perf_counter() - started))
        return results

    if kill_worker_model() == model_name and model_name not in cache.killed:
        cache.killed.add(model_name)
        _kill_a_worker_soon(model)

    benchmark.group = group or f"{workload_name}:tasks={tasks}"
    ideal = ideal_seconds(workload, params)
    benchmark.extra_info.update(
        {
            "bound": workload.bound,
            "workload": workload_name,
            "model": model_name,
            "flavour": model.flavour,
            "tasks": tasks,
            "workers": effective,
            "params": dict(params),
            "profile": profile,
            **({"ideal_s": ideal} if ideal is not None else {}),
            **model.info(),
        }
    )
    try:
        results, cpu = timed_call(
            benchmark, target, rounds=rounds, warmup=warmup, cpu_clock=model.cpu_seconds
        )
    except ModelError as exc:
        pytest.fail(str(exc), pytrace=False)
    benchmark.extra_info["cpu_s"] = cpu
    if results != expected:
        pytest.fail(
            f"{model_name} returned wrong results for {workload_name} x {tasks}: "
            f"{describe_mismatch(expected, results)}",
            pytrace=False,
        )
    return results


def default_workers(model_name: str, bound: str, tasks: int) -> list[int | None]:
    """Worker counts worth measuring for a model: pools get a few, schedulers one."""
    if model_name == "threads":
        choices = [min(32, cpu_count() + 4), tasks] if bound == "io" else [cpu_count()]
    elif model_name == "processes":
        # One process per task is the I/O extreme; past 32 it measures fork, not I/O.
        choices = [cpu_count(), min(tasks, 32)] if bound == "io" else [cpu_count()]
    else:
        return [None]
    return list(dict.fromkeys(choices))


def gevent_patched() -> list[str]:
    """What, if anything, gevent has patched in this process."""
    if "gevent.monkey" not in sys.modules:
        return []
    from gevent import monkey

    return sorted(monkey.saved) if monkey.is_anything_patched() else []
