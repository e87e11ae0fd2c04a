"""The one face every model has: start (not timed) -> run (timed) -> close."""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any, ClassVar, Literal

import psutil

from .._spec import Workload

# Every wait on another thread, process or loop gives up after this many seconds.
DEFAULT_TIMEOUT = 300.0


class ModelError(RuntimeError):
    """A model could not run a cell: a worker died, a wait timed out, a task raised."""


class ModelTimeout(ModelError):
    """A run did not finish in time; the model that raised it is retired."""


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds of the given processes (this one if none), ignoring gone ones."""
    total = 0.0
    me = os.getpid()
    for pid in pids or (me,):
        if pid == me:
            # Nanosecond resolution for ourselves; psutil's figures move in clock ticks.
            total += time.process_time()
            continue
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class Model:
    """Runs ``tasks`` copies of a workload, task ids ``0..tasks-1``, results in id order.

    ``workers`` is how many tasks may be in flight at once: the pool size for pools,
    a concurrency cap for schedulers (``None`` means one per task).
    """

    name: ClassVar[str]
    flavour: ClassVar[str]
    # Whether ``workers`` is a real resource (threads, processes) worth parametrizing.
    pooled: ClassVar[bool] = False
    # An optional dependency: (module that must import, how to install it).
    requires: ClassVar[tuple[str, str] | None] = None
    # Session settings (command-line options of the suite, e.g. ``start_method``) this
    # model takes as constructor keywords; they are recorded in each cell's extra_info.
    settings: ClassVar[tuple[str, ...]] = ()
    # Largest pool the suite builds (one worker per task past it measures start-up).
    worker_cap: ClassVar[int | None] = None
    # Pool sizes worth measuring, as (bound or "*", choices) pairs: "cores" = this
    # machine's CPUs, "tasks" = one worker per task (capped at ``worker_cap``),
    # "cores+4" = ThreadPoolExecutor's default.
    worker_choices: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()
    # The start-up cells: one per dict of constructor options ([] = no start-up cell).
    startup_variants: ClassVar[tuple[dict[str, Any], ...]] = ()
    # Measure this model's cells in a batch of their own, not interleaved with the rest
    # of their module (it cannot share the process with what the others do).
    own_batch: ClassVar[bool] = False
    # At most this many start-up rounds (a start that takes seconds: a cluster), or None.
    startup_rounds: ClassVar[int | None] = None
    # The runner process that measures this model's cells calls this ``module:function``
    # before anything else ("gevent.monkey:patch_all"), or None: a plugin that must patch
    # its interpreter first (eventlet, say) declares its own.
    runner_patch: ClassVar[str | None] = None
    # File descriptors a started model holds open (an event loop's selector and
    # self-pipe): the scale cells check the OS's limit with them before a pool exists.
    descriptors: ClassVar[int] = 0
    # Why a count run (``--measure instructions``) leaves this model out, or None: a
    # model whose own machinery runs by wall time (heartbeats) has no stable count.
    uncountable: ClassVar[str | None] = None

    # What the reports need, saved with every run (``workloads.models.report_facts``), so
    # a plugin's model is drawn, named and tabled like a built-in one with no other edit.
    # Where charts and tables list the model: None is its place in the registry (the
    # built-ins in ``BUILTIN``'s order from 0, then plugins by name); a plugin may take a
    # place between two built-ins (3.5: right after the fourth, ``processes``).
    report_order: ClassVar[float | None] = None
    # Its colour in every chart: 0-9 one of the report's ten base colours (the built-ins
    # hold one each), any other int a colour derived from it, None one derived from the name.
    colour_seed: ClassVar[int | None] = None
    # "single": every task's CPU work shares one process and its GIL; "multi": it spreads
    # over processes (or subinterpreters, a GIL each).  The crossover chart says where the
    # best "multi" model overtakes the best "single" one; None: not said, so the model is
    # drawn but named as taking no side.
    process_scope: ClassVar[Literal["single", "multi"] | None] = None
    # Distributions whose version shapes this model's figures: every run records their
    # versions beside the suite's own (``workloads.machine.library_versions``).
    libraries: ClassVar[tuple[str, ...]] = ()

    def __init__(self, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"{self.name}: workers must be at least 1, got {workers}")
        self.workers = workers
        self.timeout = timeout
        self.started = False
        self.broken: str | None = None
        # How long the last run() took where its tasks ran, for a model that runs them
        # in a helper process of the suite's own (gevent's worker: the pipe to it is the
        # harness's, which a user of the model never pays); None: timed around run().
        self.last_run_s: float | None = None

    # -- the face -----------------------------------------------------------------
    def start(self) -> Model:
        self.started = True
        return self

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        self.started = False

    # -- facts --------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self.started and self.broken is None

    def pids(self) -> list[int]:
        """Every process that does this model's work, this one included."""
        return [os.getpid()]

    def child_pids(self) -> list[int]:
        return [pid for pid in self.pids() if pid != os.getpid()]

    def cpu_seconds(self) -> float:
        """Cumulative user + system CPU of every process doing this model's work."""
        return process_cpu_seconds(*self.pids())

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "flavour": self.flavour}

    @classmethod
    def unsupported(cls, workload: Workload) -> str | None:
        """Why this model cannot run ``workload`` (a skip reason), or None if it can."""
        if cls.flavour in ("sync", "gen", "coro") and getattr(workload, cls.flavour) is None:
            return (
                f"{cls.name} runs the {cls.flavour!r} flavour, which workload "
                f"{workload.name!r} does not have"
            )
        return None

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this interpreter cannot run the model at all (a skip reason), or None."""
        if cls.requires is not None:
            module, fix = cls.requires
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return (
                    f"Model {cls.name!r} is not available: {module} is not installed. "
                    f"Install it with: {fix}"
                )
        return None

    @classmethod
    def choices(cls, bound: str) -> tuple[str, ...]:
        """The pool-size choices (``worker_choices``) for a ``bound`` workload."""
        by_bound = dict(cls.worker_choices)
        return by_bound.get(bound) or by_bound.get("*") or ("cores",)

    @classmethod
    def worker_counts(cls, bound: str, tasks: int) -> list[int]:
        """The pool sizes worth a cell for ``tasks`` tasks of a ``bound`` workload."""
        if not cls.pooled:
            return [tasks]
        choices = cls.choices(bound)
        cores = cpu_count()
        sizes = {"cores": cores, "cores+4": min(32, cores + 4), "tasks": tasks}
        counts = []
        for choice in choices:
            count = sizes[choice]
            if cls.worker_cap is not None:
                count = min(count, cls.worker_cap)
            counts.append(max(1, count))
        return list(dict.fromkeys(counts))

    def _fail(self, message: str, error: type[ModelError] = ModelError) -> ModelError:
        """Mark the model broken (the cache rebuilds it) and make the cell's error."""
        self.broken = message
        return error(f"{self.name}: {message}")

    def __enter__(self) -> Model:
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} workers={self.workers} started={self.started}>"
