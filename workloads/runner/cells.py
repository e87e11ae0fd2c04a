"""The kinds of cell a runner measures, each ``kind(bench, **kwargs) -> Cell``.

A cell travels as data, ``{"kind": "module:function", "kwargs": {...}}`` (JSON): this
module's ``model`` (a workload run by a registered model: every model cell), ``call``
(a plain call: the seed's loops and pools) and ``startup`` (a pool's start-up), and the
network and scale kinds beside their workloads (``workloads.netcells``,
``workloads.scale``).
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Mapping
from typing import Any

from .. import resolve_workload, seed
from ..models import Model, get_model, process_cpu_seconds
from ._bench import Bench, Cell, Round, describe_mismatch, kill_a_worker_soon, measured, model_facts
from ._hooks import kill_worker_model, slowdown_factor, stretched


def plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists): what a cell's data holds."""
    return json.loads(json.dumps(value))


def load(ref: str) -> Any:
    """The object ``module:name`` names."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class ModelCell(Cell):
    """``tasks`` tasks of a workload (a ``resolve_workload`` reference, as for
    ``--workload``) run by a registered model; every result is checked."""

    def __init__(
        self,
        bench: Bench,
        workload: str,
        model: str,
        tasks: int,
        workers: int | None,
        params: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> None:
        self.bench = bench
        self.ref = workload
        self.workload = resolve_workload(workload)
        self.name = model
        self.tasks = tasks
        self.workers = workers
        self.params = dict(params)
        self.options = dict(options)
        self.slow = slowdown_factor(workload)
        self.expected = self.reference()
        self.model()  # started now: a model that cannot start fails before any round

    def reference(self) -> list[Any]:
        return self.bench.reference(self.workload, self.params, self.tasks)

    def model(self) -> Model:
        return self.bench.model(self.name, self.workers, **self.options)

    def run_params(self) -> dict[str, Any]:
        """The parameters a round runs with (``params``, plus what a round adds)."""
        return self.params

    def round(self) -> Round:
        model = self.model()
        if kill_worker_model() == self.name and self.name not in self.bench.killed:
            self.bench.killed.add(self.name)
            # Mid-round: half a task's duration in, while the tasks are in flight.
            kill_a_worker_soon(model, (self.workload.task_seconds(**self.params) or 0.1) / 2)
        params = self.run_params()

        def run() -> list[Any]:
            return model.run(self.workload, params, self.tasks)

        cpu_before = model.cpu_seconds()
        result, seconds = measured(stretched(run, self.slow), model.child_pids)
        return Round(seconds, model.cpu_seconds() - cpu_before, result)

    def problem(self, result: Any) -> str | None:
        if result == self.expected:
            return None
        return (
            f"{self.name} returned wrong results for {self.workload.name} x {self.tasks}: "
            f"{describe_mismatch(self.expected, result)}"
        )

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        return {"model_info": model_facts(self.model())}


def model(bench: Bench, **kwargs: Any) -> Cell:
    return ModelCell(bench, **kwargs)


class CallCell(Cell):
    """A plain call ``target(*args, **kwargs)`` whose result must equal ``expect``.

    ``worker_cpu``: the target takes a ``seed.WorkerCPU`` meter (a pool's workers' CPU,
    read before they exit), counted with this process's.
    """

    def __init__(
        self,
        target: str,
        args: list[Any],
        kwargs: Mapping[str, Any],
        expect: Any,
        worker_cpu: bool = False,
    ) -> None:
        self.target = load(target)
        self.args = args
        self.kwargs = dict(kwargs)
        self.expect = expect
        self.meter = seed.WorkerCPU() if worker_cpu else None
        if self.meter is not None:
            self.kwargs["worker_cpu"] = self.meter

    def cpu(self) -> float:
        return process_cpu_seconds() + (self.meter.seconds if self.meter else 0.0)

    def round(self) -> Round:
        cpu_before = self.cpu()
        result, seconds = measured(lambda: self.target(*self.args, **self.kwargs))
        return Round(seconds, self.cpu() - cpu_before, result)

    def problem(self, result: Any) -> str | None:
        if plain(result) == self.expect:
            return None
        return f"expected {self.expect!r}, got {plain(result)!r}"


def call(bench: Bench, **kwargs: Any) -> Cell:
    return CallCell(**kwargs)


# The start-up cells' one task: the smallest cpu_loop, what any pool can answer at once.
STARTUP_WORKLOAD = "cpu_loop"
STARTUP_PARAMS = {"n": 1, "yield_every": 1}


class StartupCell(Cell):
    """A model's start-up: create it, a first result from every worker, close it.

    CPU counts this process and the model's workers, read before they exit (a
    forkserver's workers are not our children).
    """

    def __init__(self, model: str, options: Mapping[str, Any]) -> None:
        self.name = model
        self.options = dict(options)
        self.workload = resolve_workload(STARTUP_WORKLOAD)

    def once(self) -> tuple[list[Any], float]:
        instance = get_model(self.name, **self.options)
        try:
            instance.start()
            result = instance.run(self.workload, dict(STARTUP_PARAMS), 1)
            return result, process_cpu_seconds(*instance.child_pids())
        finally:
            instance.close()

    def round(self) -> Round:
        own = time.process_time()
        (result, workers_cpu), seconds = measured(self.once)
        return Round(seconds, time.process_time() - own + workers_cpu, result)

    def problem(self, result: Any) -> str | None:
        return None if result == [(0, 0)] else f"expected [(0, 0)], got {result!r}"


def startup(bench: Bench, **kwargs: Any) -> Cell:
    return StartupCell(**kwargs)
