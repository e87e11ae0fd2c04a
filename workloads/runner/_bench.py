"""What a runner holds while it measures a batch: started models and shared things
(``Bench``), prepared cells (``Cell``) and the one place a round is timed (``measured``)."""

from __future__ import annotations

import contextlib
import glob
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import Workload
from ..models import Model, ModelError, get_model, stop_multiprocessing_helpers

T = TypeVar("T")
# Void rounds (``Cell.void``) a cell may throw away and run again before it fails.
VOID_LIMIT = 3


class CellError(RuntimeError):
    """A cell could not run a round (its server died, an OS limit, ...)."""


# What a failed round or preparation raises; the cell fails, the runner goes on.
CELL_ERRORS = (ModelError, CellError, LookupError, ValueError)


class Count:
    """A count run's counter (``workloads.counting``): this runner runs under callgrind
    (``COUNT_DIR_ENV`` names its output folder).  ``last`` is the previous measured
    round's instructions per counted process."""

    def __init__(self, outdir: str) -> None:
        from .. import counting

        self.counting = counting
        self.outdir = outdir
        self.counter = counting.Counter()
        # Threads switch by wall time: under callgrind 5 ms covers 30-45 times fewer
        # instructions, so their switches (and counts) would follow the host's speed.
        sys.setswitchinterval(counting.SWITCH_INTERVAL_S)
        self.rounds = 0
        self.last: dict[int, int] = {}

    def around(self, call: Callable[[], T], workers: list[int]) -> tuple[T, float]:
        """Zero every counted process (the workers by vgdb: they are idle between
        rounds; this one last, by client request), the round, dump them all."""
        self.rounds += 1
        tag = f"round-{self.rounds}"
        self.last = {}
        try:
            self.counting.take_exits(self.outdir)  # processes that ended before the round
            # A forkserver's children inherit its counts: zeroed too, not counted itself.
            server = forkserver_pid()
            if workers or server:
                self.counting.zero_pids([*workers, *([server] if server else [])])
            self.counter.zero()
            started = time.perf_counter()
            result = call()
            seconds = time.perf_counter() - started
            self.counter.dump(tag)
            if workers:
                self.counting.dump_pids(workers, tag)
            self.last = self.counting.read_counts(self.outdir, tag)
            # processes started and ended within the round (a start-up's pool)
            for pid, instructions in self.counting.take_exits(self.outdir).items():
                self.last[pid] = self.last.get(pid, 0) + instructions
            for part in glob.glob(os.path.join(self.outdir, "callgrind.*.*")):
                os.remove(part)  # read: a round's dumps hold every function's costs
        except self.counting.CountingError as exc:
            raise CellError(f"could not count the round: {exc}") from exc
        return result, seconds


def forkserver_pid() -> int | None:
    """The pid of this process's multiprocessing forkserver, if one runs (a child whose
    command line runs ``multiprocessing.forkserver``)."""
    import psutil

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if any("multiprocessing.forkserver" in part for part in child.cmdline()):
                return int(child.pid)
    return None


COUNT_DIR_ENV = "BOUNDBENCH_COUNT_DIR"
_count: list[Count] = []


def count() -> Count | None:
    """This runner's counter in a count run, else None."""
    outdir = os.environ.get(COUNT_DIR_ENV)
    if not outdir:
        return None
    if not _count:
        _count.append(Count(outdir))
    return _count[0]


def measured(call: Callable[[], T], workers: Callable[[], list[int]] = list) -> tuple[T, float]:
    """Run ``call`` as one measured round: its result and its wall time in seconds.

    The boundary of every measured round of every cell is here and nowhere else: the
    two clock reads enclose ``call`` and nothing before or after it (starting models,
    reading CPU, checking results, the pipe to the conductor).  In a count run the
    counter is zeroed and dumped beside them (``Count.around``): ``workers`` are the
    processes beside this one that do the round's work (a pool's).
    """
    counter = count()
    if counter is not None:
        return counter.around(call, workers())
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


@dataclass(frozen=True)
class Round:
    seconds: float
    cpu_s: float
    result: Any


class Cell:
    """A prepared cell: ``round()`` measures one round; the rest judge and summarise."""

    def round(self) -> Round:
        raise NotImplementedError

    def problem(self, result: Any) -> str | None:
        """Why ``result`` is wrong (the cell fails at once), or None."""
        return None

    def void(self, result: Any) -> str | None:
        """Why a correct round measured something other than the cell (a convoy worker
        the GIL never let run): it is run again, at most ``VOID_LIMIT`` times a cell."""
        return None

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        """More ``extra_info`` after the measured rounds (their times and results),
        untimed; the cell's model is still started."""
        return {}


def judged_round(cell: Cell, voids: list[str]) -> tuple[Round | None, str | None]:
    """One round of ``cell`` and, if it failed, why; void rounds are run again and
    their reasons added to ``voids`` (past ``VOID_LIMIT``, the cell fails)."""
    while True:
        done = cell.round()
        problem = cell.problem(done.result)
        if problem:
            return None, problem
        void = cell.void(done.result)
        if void is None:
            return done, None
        voids.append(void)
        if len(voids) > VOID_LIMIT:
            return None, f"{void} ({len(voids)} void rounds, more than the {VOID_LIMIT} allowed)"


def describe_mismatch(expected: list[Any], got: list[Any]) -> str:
    if len(expected) != len(got):
        return f"{len(got)} results instead of {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            return f"task {index}: expected {want!r}, got {have!r}"
    return "no difference"


def model_facts(model: Model) -> dict[str, Any]:
    """What a started model says about itself beyond its name and flavour (an event
    loop's module, a start method, a cluster's shape): ``extra_info["model_info"]``."""
    return {k: v for k, v in model.info().items() if k not in ("model", "flavour")}


class Bench:
    """Started models keyed by (name, workers, options), rebuilt when broken, and other
    things a batch's cells share (a server, a load client), closed together."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.models: dict[tuple[Any, ...], Model] = {}
        self.references: dict[tuple[Any, ...], list[Any]] = {}
        self.resources: dict[Any, tuple[Any, Callable[[], None]]] = {}
        self.killed: set[str] = set()

    def resource(self, key: Any, start: Callable[[], tuple[Any, Callable[[], None]]]) -> Any:
        """A shared thing, started on first use by ``start() -> (thing, close)``."""
        if key not in self.resources:
            self.resources[key] = start()
        return self.resources[key][0]

    def drop(self, key: Any) -> None:
        """Close and forget one resource (it broke); the next use starts it afresh."""
        entry = self.resources.pop(key, None)
        if entry is not None:
            entry[1]()

    def model(self, name: str, workers: int | None = None, **options: Any) -> Model:
        """A started model; raises ModelError when it cannot start."""
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
            except BaseException:
                # Also Ctrl-C mid-start: what it started so far goes now, not at exit.
                model.close()
                raise
            self.models[key] = model
        return model

    def reference(self, workload: Workload, params: Mapping[str, Any], tasks: int) -> list[Any]:
        """What every model must return: the workload's ``expected`` results where it has
        them (no waiting), else one serial run's."""
        key = (workload.name, tuple(sorted(params.items())), tasks)
        if key not in self.references:
            known = workload.expected_results(tasks, **params)
            if known is None:
                known = self.model("serial").run(workload, dict(params), tasks)
            self.references[key] = known
        return self.references[key]

    def close(self) -> None:
        """Close every model and shared thing (a batch's pools do not outlive it)."""
        for model in self.models.values():
            model.close()
        self.models.clear()
        for key in list(self.resources):
            self.drop(key)

    def shutdown(self) -> None:
        self.close()
        stop_multiprocessing_helpers()


def kill_a_worker_soon(model: Model, delay: float) -> None:
    """Test hook: SIGKILL one of the model's worker processes after ``delay`` s; a model
    that runs in this runner's own patched process (gevent) has this one for a worker."""
    pids = model.child_pids()[:1] or ([os.getpid()] if type(model).runner_patch else [])

    def kill() -> None:
        time.sleep(delay)
        for pid in pids:
            os.kill(pid, 9)

    threading.Thread(target=kill, daemon=True).start()
