"""What every benchmark cell does, and how the rounds of many cells are interleaved.

A **cell** is known at collection time (``Cell``), so the session can plan its rounds
before any test runs.  The cells of one benchmark module form a **batch**; when the
first test of a batch runs, the whole batch is measured as randomized multiple
interleaved trials (RMIT): every cell's warm-up rounds first, then passes in which each
cell runs one round, in a fresh random order each pass.  This host has slow phases of
seconds; run back to back, a cell's rounds all land in one phase and its median moves
from run to run, while interleaved, a slow phase costs each of several cells one round
and their medians stay put.  Each test then hands its own cell's rounds to
pytest-benchmark, which computes and saves the statistics as usual.

Only ``run`` is timed.  Models live in a cache (starting pools is not what a cell
measures) that is emptied after each batch; a model that breaks (a worker died, a wait
timed out) is thrown away and started afresh for its next round, so one failure fails
one cell.  Every result is checked, outside the timing, against the workload's
``expected`` results or, where it has none, one serial run's.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from benchmarks._profiles import PROFILES, Profile
from benchmarks._testhooks import kill_worker_model, slowdown_factor
from workloads import WORKLOADS, UserWorkload, Workload, resolve_workload, workload_ref
from workloads.models import (
    DEFAULT_START_METHOD,
    MODELS,
    Model,
    ModelError,
    get_model,
    process_cpu_seconds,
    stop_multiprocessing_helpers,
    unavailable_models,
)

# -- selection and parametrization (shared by conftest.py and the benchmark modules) --


def selected_models(config: pytest.Config) -> list[str]:
    raw = config.getoption("models") or ""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or list(MODELS)


def get_profile(config: pytest.Config) -> Profile:
    return PROFILES[config.getoption("profile")]


# The users' workloads of ``--workload``, resolved and checked by conftest.py.
USER_WORKLOADS = pytest.StashKey[list[UserWorkload]]()


def user_workloads(config: pytest.Config) -> list[UserWorkload]:
    return config.stash.get(USER_WORKLOADS, [])


# Session settings a model may take (``Model.settings``): suite option -> its dest.
SETTINGS = ("start_method", "dask_scheduler")


def session_settings(config: pytest.Config) -> dict[str, Any]:
    """The suite's options that models take as constructor keywords (unset ones left out)."""
    found = {}
    for name in SETTINGS:
        value = config.getoption(name, default=None)
        if value is not None:
            found[name] = value
    return found


def model_options(model: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor options of ``model`` among the session's settings."""
    return {key: settings[key] for key in MODELS[model].settings if key in settings}


def model_params(
    config: pytest.Config, cells: list[tuple[str, int, int]], workload: Workload | None = None
) -> list[Any]:
    """pytest.param per (model, tasks, workers), skipping visibly what cannot run here."""
    chosen = selected_models(config)
    missing = unavailable_models()
    params = []
    for model, tasks, workers in cells:
        if model not in chosen:
            continue
        reason = missing.get(model)
        if reason is None and workload is not None:
            reason = MODELS[model].unsupported(workload)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(
            pytest.param(model, tasks, workers, id=f"{model}-{tasks}-{workers}", marks=marks)
        )
    return params


def model_cells(bound: str, task_counts: tuple[int, ...]) -> list[tuple[str, int, int]]:
    """(model, tasks, workers) for every model, each task count, its pool sizes."""
    return [
        (model, tasks, workers)
        for tasks in task_counts
        for model, cls in MODELS.items()
        for workers in cls.worker_counts(bound, tasks)
    ]


def parametrize_cells(
    metafunc: pytest.Metafunc,
    bound: str,
    task_counts: tuple[int, ...],
    workload: Workload | str | None = None,
) -> None:
    """Parametrize (model, tasks, workers): every model, each task count, its pool sizes.

    ``workload`` (default: the one the test is named after, ``test_NAME``) lets a model
    that cannot run it be skipped with its reason.
    """
    if workload is None:
        workload = metafunc.function.__name__.removeprefix("test_")
    spec = WORKLOADS.get(workload) if isinstance(workload, str) else workload
    cells = model_cells(bound, task_counts)
    metafunc.parametrize(("model", "tasks", "workers"), model_params(metafunc.config, cells, spec))


# -- the model cache --------------------------------------------------------------------


class ModelCache:
    """Started models keyed by (name, workers, options); rebuilt when broken."""

    def __init__(self, timeout: float, start_method: str = DEFAULT_START_METHOD) -> None:
        self.timeout = timeout
        self.start_method = start_method
        self.models: dict[tuple[Any, ...], Model] = {}
        self.references: dict[tuple[Any, ...], list[Any]] = {}
        self.killed: set[str] = set()
        # other things a batch's cells share (an echo server, a load client): key ->
        # (the thing, how to close it); closed with the models after each batch
        self.resources: dict[Any, tuple[Any, Callable[[], None]]] = {}

    def resource(self, key: Any, start: Callable[[], tuple[Any, Callable[[], None]]]) -> Any:
        """A shared thing for the cells of a batch, started on first use."""
        if key not in self.resources:
            self.resources[key] = start()
        return self.resources[key][0]

    def drop(self, key: Any) -> None:
        """Close and forget one resource (it broke); the next use starts it afresh."""
        entry = self.resources.pop(key, None)
        if entry is not None:
            entry[1]()

    def get(self, name: str, workers: int | None = None, **options: Any) -> Model:
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
                # Also Ctrl-C or SIGTERM mid-start: what it started so far goes now, not
                # at exit (a half-started pool's threads or processes would outlive us).
                model.close()
                raise
            self.models[key] = model
        return model

    def reference(self, workload: Workload, params: Mapping[str, Any], tasks: int) -> list[Any]:
        """What every model must return for the cell: the workload's ``expected``
        results where it has them (no waiting), else one serial run's."""
        key = (workload.name, tuple(sorted(params.items())), tasks)
        if key not in self.references:
            known = workload.expected_results(tasks, **params)
            if known is None:
                known = self.get("serial").run(workload, dict(params), tasks)
            self.references[key] = known
        return self.references[key]

    def close_models(self) -> None:
        for model in self.models.values():
            model.close()
        self.models.clear()
        for key in list(self.resources):
            self.drop(key)

    def close(self) -> None:
        self.close_models()
        stop_multiprocessing_helpers()


def _kill_a_worker_soon(model: Model, delay: float = 0.05) -> None:
    def kill() -> None:
        time.sleep(delay)
        for pid in model.child_pids()[:1]:
            os.kill(pid, 9)

    threading.Thread(target=kill, daemon=True).start()


def describe_mismatch(expected: list[Any], got: list[Any]) -> str:
    if len(expected) != len(got):
        return f"{len(got)} results instead of {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            return f"task {index}: expected {want!r}, got {have!r}"
    return "no difference"


# -- cells ------------------------------------------------------------------------------


class CellError(RuntimeError):
    """A cell of a non-model kind could not run a round (its server died, ...)."""


@dataclass(frozen=True)
class Round:
    seconds: float
    cpu_s: float
    result: Any


class Runner:
    """A prepared cell: ``round()`` times one call, ``problem()`` judges its result."""

    def round(self) -> Round:
        raise NotImplementedError

    def problem(self, result: Any) -> str | None:
        return None

    def void(self, result: Any) -> str | None:
        """Why this round measured something other than the cell, or None.

        A void round is a correct run under conditions the cell did not ask for (a
        convoy worker the GIL never let run, say): it is thrown away and run again, up
        to ``VOID_LIMIT`` times per cell, and counted in ``extra_info["void_rounds"]``.
        A wrong result is a ``problem()``, which fails the cell at once.
        """
        return None

    def finish(self, seconds: list[float]) -> dict[str, Any]:
        """More ``extra_info``, once after the cell's last measured round (untimed).

        ``seconds`` are the measured rounds.  The cell's model is still started, so an
        extra untimed round (a memory measurement, say) can run here.
        """
        return {}


@dataclass(frozen=True)
class Cell:
    """One benchmark cell: what it runs, how many rounds, and its ``extra_info``."""

    group: str
    rounds: int
    warmup: int
    info: Mapping[str, Any]
    # cells interleave with the others of their batch; None: their benchmark module
    batch: str | None = field(default=None, kw_only=True)

    def prepare(self, cache: ModelCache) -> Runner:
        raise NotImplementedError

    def summary(self, results: list[Any]) -> dict[str, Any]:
        """More ``extra_info`` from the measured rounds' results (none by default)."""
        return {}


@dataclass(frozen=True)
class ModelCell(Cell):
    """A workload run as ``tasks`` tasks by a registered model."""

    workload: str = ""
    model: str = ""
    tasks: int = 1
    workers: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def prepare(self, cache: ModelCache) -> Runner:
        return _ModelRunner(self, cache)


class _ModelRunner(Runner):
    def __init__(self, cell: ModelCell, cache: ModelCache) -> None:
        self.cell = cell
        self.cache = cache
        self.workload = resolve_workload(cell.workload)
        self.params = dict(cell.params)
        self.expected = cache.reference(self.workload, self.params, cell.tasks)
        self.slow = slowdown_factor(cell.workload)
        self.model()  # start it now: a model that cannot start fails before any timing

    def model(self) -> Model:
        cell = self.cell
        return self.cache.get(cell.model, cell.workers, **cell.options)

    def round(self) -> Round:
        model = self.model()
        name = self.cell.model
        if kill_worker_model() == name and name not in self.cache.killed:
            self.cache.killed.add(name)
            # Mid-round: half a task's duration in, while the tasks are in flight.
            task_s = self.workload.task_seconds(**self.params) or 0.1
            _kill_a_worker_soon(model, delay=task_s / 2)
        return timed_run(
            model, lambda: model.run(self.workload, self.params, self.cell.tasks), self.slow
        )

    def finish(self, seconds: list[float]) -> dict[str, Any]:
        return {"model_info": model_facts(self.model())}

    def problem(self, result: Any) -> str | None:
        if result == self.expected:
            return None
        return (
            f"{self.cell.model} returned wrong results for {self.cell.workload} x "
            f"{self.cell.tasks}: {describe_mismatch(self.expected, result)}"
        )


def model_facts(model: Model) -> dict[str, Any]:
    """What a started model says about itself beyond its name and flavour (an event
    loop's module, a start method, a Dask cluster's shape and version, a subinterpreter
    pool's backend): ``extra_info["model_info"]``."""
    return {k: v for k, v in model.info().items() if k not in ("model", "flavour")}


def timed_run(model: Model, run: Callable[[], Any], slow: float = 1.0) -> Round:
    """One timed ``run()`` of a model: wall time and the CPU of its processes.

    The wall time is measured around ``run()``, or where the tasks ran when the model
    says so (``Model.last_run_s``: gevent's worker process).

    ``slow`` is the test-only factor of ``BOUNDBENCH_SLOWDOWN``: the round is stretched
    to that many times its length, nothing else changes.
    """
    model.last_run_s = None
    cpu_before = model.cpu_seconds()
    started = time.perf_counter()
    results = run()
    elapsed = time.perf_counter() - started
    if model.last_run_s is not None:  # timed where the tasks ran (Model.last_run_s)
        elapsed = model.last_run_s
    if slow != 1.0:
        time.sleep((slow - 1.0) * elapsed)
        elapsed *= slow
    return Round(elapsed, model.cpu_seconds() - cpu_before, results)


@dataclass(frozen=True)
class CallCell(Cell):
    """A cell that times a plain call (the seed's loops, a pool's start-up)."""

    call: Callable[[], Any] = print
    expect: Any = None
    # CPU clock read before and after each round (own process by default).
    cpu_clock: Callable[[], float] = process_cpu_seconds

    def prepare(self, cache: ModelCache) -> Runner:
        return _CallRunner(self)


class _CallRunner(Runner):
    def __init__(self, cell: CallCell) -> None:
        self.cell = cell

    def round(self) -> Round:
        cpu_before = self.cell.cpu_clock()
        started = time.perf_counter()
        result = self.cell.call()
        elapsed = time.perf_counter() - started
        return Round(elapsed, self.cell.cpu_clock() - cpu_before, result)

    def problem(self, result: Any) -> str | None:
        if result == self.cell.expect:
            return None
        return f"expected {self.cell.expect!r}, got {result!r}"


# The batch name of a model whose cells run apart from the other models' (own_batch),
# followed by the model's name.
APART = "model:"


def model_cell(
    profile: Profile,
    *,
    workload: str | Workload,
    model: str,
    tasks: int,
    workers: int | None,
    params: Mapping[str, Any],
    rounds: int,
    warmup: int,
    start_method: str | None = None,
    settings: Mapping[str, Any] | None = None,
    group: str | None = None,
    label: str | None = None,
) -> ModelCell:
    """The cell for a workload under a model, with the ``extra_info`` the contract names.

    ``settings`` are the session's (``session_settings``); the model takes those it
    names in ``Model.settings``, and they are recorded.  ``start_method`` is a shortcut
    for ``settings={"start_method": ...}``.
    """
    spec = resolve_workload(workload) if isinstance(workload, str) else workload
    ref = workload if isinstance(workload, str) else workload_ref(workload)
    model_cls = MODELS[model]
    given = dict(settings or {})
    if start_method is not None:
        given.setdefault("start_method", start_method)
    options = model_options(model, given)
    workers = workers if model_cls.pooled else None
    # How many tasks run at once: a pool's size; serial 1, a scheduler every task.
    effective = (
        min(workers or tasks, tasks)
        if model_cls.pooled
        else model_cls.worker_counts(spec.bound, tasks)[0]
    )
    ideal = spec.task_seconds(**params)
    info: dict[str, Any] = {
        "bound": spec.bound,
        "workload": label or spec.name,
        "model": model,
        "flavour": model_cls.flavour,
        "tasks": tasks,
        "workers": effective,
        "params": dict(params),
        "profile": profile.name,
        **options,
    }
    if ideal is not None:
        info["ideal_s"] = ideal
    cap = model_cls.worker_cap
    if cap is not None and workers == cap < tasks and "tasks" in model_cls.choices(spec.bound):
        # One worker per task was asked for and capped: the report says so.
        info["workers_cap"] = cap
    return ModelCell(
        batch=f"{APART}{model}" if model_cls.own_batch else None,
        group=group or f"{spec.name}:tasks={tasks}",
        rounds=rounds,
        warmup=warmup,
        info=info,
        workload=ref,
        model=model,
        tasks=tasks,
        workers=workers,
        params=dict(params),
        options=options,
    )


# -- planning and interleaving -----------------------------------------------------------

CellBuilder = Callable[..., Cell]
# The CPU cells' batch: other CPU-bound cells (the seed's loops, start-ups) join it, so
# their rounds spread over its minute instead of a few seconds of their own.
CPU_BATCH = "benchmarks/test_cpu.py"
_BUILDER_ATTR = "boundbench_cell"


def cell_builder(build: CellBuilder) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a benchmark test: ``build(config, **params)`` says which cell it measures."""

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        setattr(test, _BUILDER_ATTR, build)
        return test

    return mark


# Void rounds (``Runner.void``) a cell may throw away and run again before it fails.
VOID_LIMIT = 3


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    error: str | None = None
    # why each void round was thrown away (measured and warm-up rounds alike)
    voids: list[str] = field(default_factory=list)
    # extra_info from ``Runner.finish``
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trials:
    """The session's plan: every cell by node id, in batches; their measured rounds."""

    seed: int
    cache: ModelCache | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)
    batch_of: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def plan(self, items: list[pytest.Item], config: pytest.Config) -> None:
        for item in items:
            build = getattr(getattr(item, "function", None), _BUILDER_ATTR, None)
            if build is None or item.get_closest_marker("skip") is not None:
                continue
            callspec = getattr(item, "callspec", None)
            params = dict(callspec.params) if callspec is not None else {}
            cell = self.cells[item.nodeid] = build(config, **params)
            batch = batch_name(cell.batch, item.nodeid)
            self.batch_of[item.nodeid] = batch
            self.batches.setdefault(batch, []).append(item.nodeid)

    def outcome(self, nodeid: str) -> Outcome:
        if nodeid not in self.outcomes:
            batch = self.batches[self.batch_of[nodeid]]
            self.run_batch([n for n in batch if n not in self.outcomes])
        return self.outcomes[nodeid]

    def run_batch(self, nodeids: list[str]) -> None:
        assert self.cache is not None, "the trials fixture attaches the cache"
        try:
            _interleave(self.cache, {n: self.cells[n] for n in nodeids}, self.outcomes, self.seed)
        finally:
            # A batch's pools and workers are not left to run beside the next batch.
            self.cache.close_models()


def batch_name(cell_batch: str | None, nodeid: str) -> str:
    """The batch a cell's rounds interleave in: its benchmark module by default.

    A model that runs apart (``APART``) still runs one module at a time: only the pools
    of one module's cells are alive together (a dask cluster per pool size, each five
    processes waking on timers; all of the session's at once made its CPU cells 15-25%
    slower).  Other named batches (``CPU_BATCH``) span modules on purpose.
    """
    module = nodeid.split("::", 1)[0]
    if cell_batch is None:
        return module
    if cell_batch.startswith(APART):
        return f"{cell_batch} {module}"
    return cell_batch


def schedule(rounds: Mapping[str, int]) -> list[list[str]]:
    """Passes of the interleaved trial: in each, the cells that run a round then.

    A cell with fewer rounds than the longest spreads them evenly over the passes, so a
    slow phase of the host is as likely to hit any of its rounds as another cell's.
    """
    passes = max(rounds.values(), default=0)
    plan: list[list[str]] = [[] for _ in range(passes)]
    for key, count in rounds.items():
        for index in range(count):
            plan[math.floor(index * passes / count)].append(key)
    return plan


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """The measured passes run with the heap they start with frozen (``gc.freeze()``).

    A full collection walks every object the process holds: pytest's, the plugins',
    the harness's, a Dask client's; 50-70 ms each here, a dozen in the io_socket module
    alone, landing in whichever round allocated last.  Frozen, those objects are left
    out: a round still pays for collecting its own garbage, not for the harness's heap.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _interleave(
    cache: ModelCache, cells: Mapping[str, Cell], outcomes: dict[str, Outcome], seed: int
) -> None:
    rng = random.Random(seed)
    runners: dict[str, Runner] = {}
    for key, cell in cells.items():
        outcomes[key] = Outcome()
        try:
            runners[key] = cell.prepare(cache)
        except (ModelError, CellError, LookupError, ValueError) as exc:
            outcomes[key].error = f"could not prepare the cell: {exc}"

    def one_round(key: str) -> Round | None:
        outcome = outcomes[key]
        if outcome.error:
            return None
        try:
            measured, outcome.error = judged_round(runners[key], outcome.voids)
        except (ModelError, CellError) as exc:
            outcome.error = str(exc)
            return None
        return measured

    warmups = [key for key in runners for _ in range(cells[key].warmup)]
    rng.shuffle(warmups)
    for key in warmups:
        one_round(key)
    with frozen_heap():
        for keys in schedule({key: cells[key].rounds for key in runners}):
            rng.shuffle(keys)
            for key in keys:
                measured = one_round(key)
                if measured is not None:
                    outcomes[key].seconds.append(measured.seconds)
                    outcomes[key].cpu_s.append(measured.cpu_s)
                    outcomes[key].results.append(measured.result)
    for key, runner in runners.items():
        outcome = outcomes[key]
        if outcome.error or not outcome.seconds:
            continue
        try:
            outcome.extra = runner.finish(list(outcome.seconds))
        except (ModelError, CellError) as exc:
            outcome.error = f"after its rounds: {exc}"


def judged_round(runner: Runner, voids: list[str]) -> tuple[Round | None, str | None]:
    """One round of ``runner`` and, if it failed, why; void rounds are run again.

    ``voids`` collects why each void round was thrown away; past ``VOID_LIMIT`` of them
    the cell fails (with the last reason), rather than retrying forever.
    """
    while True:
        measured = runner.round()
        problem = runner.problem(measured.result)
        if problem:
            return None, problem
        void = runner.void(measured.result)
        if void is None:
            return measured, None
        voids.append(void)
        if len(voids) > VOID_LIMIT:
            return None, f"{void} ({len(voids)} void rounds, more than the {VOID_LIMIT} allowed)"


class _ReplayClock:
    """A timer for pytest-benchmark that replays rounds measured earlier.

    pytest-benchmark reads its timer once before and once after each round; this clock
    advances by the next recorded round between those two reads, so the saved
    statistics and raw data are exactly the interleaved rounds.
    """

    __name__ = "perf_counter (interleaved rounds, replayed)"

    def __init__(self, seconds: list[float]) -> None:
        self._steps: Iterator[float] = iter(seconds)
        self._now = 0.0
        self._reads = 0

    def __call__(self) -> float:
        self._reads += 1
        if self._reads % 2 == 0:
            self._now += next(self._steps)
        return self._now


def measure(benchmark: Any, trials: Trials, node: pytest.Item) -> None:
    """The body of every planned benchmark test."""
    cell = trials.cells.get(node.nodeid)
    if cell is None:
        pytest.fail(f"{node.nodeid}: no cell was planned for this test", pytrace=False)
    benchmark.group = cell.group
    benchmark.extra_info.update(cell.info)
    if not benchmark.enabled:
        # --benchmark-disable: every cell once, as a plain test, nothing interleaved.
        assert trials.cache is not None
        _once(benchmark, trials.cache, cell)
        return
    outcome = trials.outcome(node.nodeid)
    if outcome.error:
        pytest.fail(outcome.error, pytrace=False)
    if not outcome.seconds:
        pytest.fail("the cell measured no round", pytrace=False)
    benchmark.extra_info["cpu_s"] = sum(outcome.cpu_s) / len(outcome.cpu_s)
    benchmark.extra_info["interleaved"] = True
    if outcome.voids:
        benchmark.extra_info["void_rounds"] = len(outcome.voids)
    benchmark.extra_info.update(cell.summary(outcome.results))
    benchmark.extra_info.update(outcome.extra)
    benchmark._timer = _ReplayClock(outcome.seconds)
    benchmark.pedantic(lambda: None, rounds=len(outcome.seconds), iterations=1)


def _once(benchmark: Any, cache: ModelCache, cell: Cell) -> None:
    voids: list[str] = []
    try:
        runner = cell.prepare(cache)
        # pedantic with benchmarks disabled calls the target once and times nothing.
        measured, problem = benchmark.pedantic(
            judged_round, args=(runner, voids), rounds=1, iterations=1
        )
    except (ModelError, CellError, LookupError, ValueError) as exc:
        pytest.fail(str(exc), pytrace=False)
    if measured is None:  # judged_round says why whenever it keeps no round
        pytest.fail(str(problem), pytrace=False)
    benchmark.extra_info.update(cell.summary([measured.result]))
    try:
        benchmark.extra_info.update(runner.finish([measured.seconds]))
    except (ModelError, CellError) as exc:
        pytest.fail(f"after its round: {exc}", pytrace=False)


def gevent_patched() -> list[str]:
    """What, if anything, gevent has patched in this process."""
    if "gevent.monkey" not in sys.modules:
        return []
    from gevent import monkey

    return sorted(monkey.saved) if monkey.is_anything_patched() else []
