"""Scale cells: what each model costs per task, from 10 to 10,000 tasks (100,000 in full).

Groups ``scale:io_sleep`` (``k`` sleeps of ``d`` seconds per task) and ``scale:io_spin``
(the same with a fixed few µs of pure-Python CPU per task, ``workloads/io_spin.py``),
each at every task count of the profile for the single-process schedulers (generator,
asyncio, uvloop, gevent) and for threads with one thread per task.  In ``full`` the
schedulers go on to 100,000 tasks; threads stop at 10,000 (``kernel.pid_max`` here is
32,768).  In ``standard`` threads stop at 1,000: 10,000 threads took 14-20 s to start
here and 3-18 s a round (~1.6 ms of CPU per task, mostly the kernel's: 10,000 threads
waking at once convoy on the GIL, and the machine is saturated meanwhile), more than the
group's whole budget; one such cell costs ~90 s in ``full``.

Processes are not in this group: one process per task is capped at 32 workers
(``PROCESS_CAP``), so past 32 tasks a pool runs its tasks in waves and its efficiency
falls as tasks / 32 by construction; the I/O group already measures that at 10 and 100
tasks.

``extra_info`` per cell, besides the usual keys (``ideal_s`` = one task's duration):
- ``us_per_task``: (median - ideal_s) / tasks, µs: what each extra task costs in time;
- ``cpu_us_per_task``: CPU seconds per round (mean, every process of the model) / tasks, µs;
- ``kb_per_task``: peak resident memory of every process doing the model's work during a
  run, above its idle level, / tasks, KiB (``memory_peak_kb``, ``memory_idle_kb``: the
  sums over those processes); ``start_kb_per_task``: what starting the pool added per
  task (threads: mostly their stacks; None for the schedulers); ``memory_method`` says
  how, or why there is no figure (``None``: no ``/proc``, or an OS limit).

Memory (``workloads/memory.py`` says why this way): the kernel's peak, reset through
``/proc/PID/clear_refs`` and read as ``VmHWM`` around one untimed run per task count, in
a fresh process per model and workload, counts ascending.  Nothing samples during a
timed round (a sampling thread would take the GIL), thread and greenlet stacks are seen
(``tracemalloc`` misses them), and a fresh heap is needed: in this long-lived process
an allocator reuses what earlier rounds freed, and a run of 1,000 asyncio tasks read
0.2 KiB per task instead of 2.  Those processes run after every timed round of the
group (the first cell to finish starts them, all at once: memory does not depend on
timing), so they disturb no timing.

Results: serial would take 10,000 x 100 ms, so the expected results are computed
without waiting (the workloads' ``expected``).  Each round's results are checked inside the
round, after its timing, and only the verdict is kept: a session holding 100,000
results per round of every cell would grow by hundreds of MB.

Limits: before a threads cell is planned and again before its pool is built, the OS
limits are read (``workloads/limits.py``: threads-max, pid_max, RLIMIT_NPROC for
non-root, cgroup pids.max, max_map_count, RLIMIT_AS, strict overcommit, available
memory), and every cell's memory and descriptors are checked; a cell that would come
within 10 % of a limit is skipped with the limit and its value in the reason, never
probed by exhausting it.  All the thread pools of the group are alive at once (its
cells' rounds are interleaved), so the plan counts them together.  Pools are closed when
the group is done (the harness's model cache is emptied after each batch).

Per profile (``SCALE_PROFILES``), all with the issue's anchor of 3 sleeps of 50 ms per
task (quick: 5 ms): ``quick`` ~9 s; ``standard`` ~32 s on this 2-core host (of which
~5 s are the memory processes); ``full`` adds 100,000-task schedulers (4-12 s a round)
and 10,000 threads, ~6-7 minutes.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    CellError,
    ModelCache,
    ModelCell,
    Round,
    Runner,
    Trials,
    cell_builder,
    describe_mismatch,
    get_profile,
    measure,
    model_cell,
    model_facts,
    model_params,
    timed_run,
)
from benchmarks._testhooks import slowdown_factor
from workloads import get_workload, limits, memory
from workloads.models import Model, ModelError

SCHEDULERS = ("generator", "asyncio", "uvloop", "gevent")
SCALE_WORKLOADS = ("io_sleep", "io_spin")
# Descriptors a model opens (an event loop's selector and self-pipe; gevent's pipes).
MODEL_DESCRIPTORS = {"asyncio": 4, "uvloop": 4, "gevent": 4}
LIMIT_PREFIX = "OS limit: "


@dataclass(frozen=True)
class ScaleProfile:
    # workload -> parameters
    params: Mapping[str, Mapping[str, Any]]
    # task counts of the schedulers, and of threads (one thread per task)
    tasks: tuple[int, ...]
    thread_tasks: tuple[int, ...]
    # task count -> measured rounds, and warm-up rounds
    rounds: Mapping[int, int]
    warmup: Mapping[int, int]


SCALE_PROFILES: dict[str, ScaleProfile] = {
    # A smoke run: every model and both workloads, small counts, 15 ms tasks.
    "quick": ScaleProfile(
        params={"io_sleep": {"k": 3, "d": 0.005}, "io_spin": {"k": 3, "d": 0.005, "spin": 64}},
        tasks=(10, 1000),
        thread_tasks=(10, 100),
        rounds={10: 3, 100: 3, 1000: 3},
        warmup={},
    ),
    # The anchor, 3 x 50 ms per task, so its efficiencies compare directly (and
    # no cell has the same workload and parameters as an I/O-group cell: a report keys
    # cells by them).  No warm-up: the rounds are interleaved, so a cell's first round
    # is not the session's first.  Two rounds at 10 tasks (a cell at 0.99 of its ideal
    # whose figure is the sleeps' own jitter) and at 10,000 (0.2-1 s a round, the
    # group's biggest share); three between: the group's ~30 s.
    "standard": ScaleProfile(
        params={"io_sleep": {"k": 3, "d": 0.05}, "io_spin": {"k": 3, "d": 0.05, "spin": 64}},
        tasks=(10, 100, 1000, 10_000),
        thread_tasks=(10, 100, 1000),
        rounds={10: 2, 100: 3, 1000: 3, 10_000: 2},
        warmup={},
    ),
    # Depth: 100,000-task schedulers (seconds a round) and 10,000 threads.
    "full": ScaleProfile(
        params={"io_sleep": {"k": 3, "d": 0.05}, "io_spin": {"k": 3, "d": 0.05, "spin": 64}},
        tasks=(10, 100, 1000, 10_000, 100_000),
        thread_tasks=(10, 100, 1000, 10_000),
        rounds={10: 5, 100: 5, 1000: 5, 10_000: 3, 100_000: 3},
        warmup={10: 1, 100: 1, 1000: 1},
    ),
}


def scale_profile(config: pytest.Config) -> ScaleProfile:
    return SCALE_PROFILES[get_profile(config).name]


# -- limits -----------------------------------------------------------------------------


def cell_refusal(
    model: str, tasks: int, threads_before: int = 0, facts: limits.Facts | None = None
) -> limits.Refusal | None:
    """The OS limit a cell would hit (limits read now, or ``facts``); ``threads_before``:
    pool threads planned before this one that will be alive beside it."""
    facts = limits.read_facts() if facts is None else facts
    if model == "threads":
        refusal = limits.thread_refusal(threads_before + tasks, facts)
        if refusal is not None:
            return refusal
    refusal = limits.memory_refusal(tasks * limits.TASK_RESIDENT_BYTES, facts)
    if refusal is not None:
        return refusal
    return limits.descriptor_refusal(MODEL_DESCRIPTORS.get(model, 0), facts)


def limit_reason(refusal: limits.Refusal) -> str:
    return f"{LIMIT_PREFIX}{refusal}"


def scale_params(config: pytest.Config, workload: str) -> list[Any]:
    """pytest.param per cell; cells that would hit an OS limit skipped with it."""
    profile = scale_profile(config)
    cells = [(model, tasks, tasks) for tasks in profile.tasks for model in SCHEDULERS]
    cells += [("threads", tasks, tasks) for tasks in profile.thread_tasks]
    params = model_params(config, cells, get_workload(workload))
    # Every thread pool of the group is alive at once: each count is checked with the
    # smaller ones beside it (pools are shared by the two workloads' cells).
    beside = 0
    refused: dict[tuple[str, int], str] = {}
    facts = limits.read_facts()
    for model, tasks, _ in sorted(cells, key=lambda cell: (cell[0] != "threads", cell[1])):
        refusal = cell_refusal(model, tasks, beside if model == "threads" else 0, facts)
        if refusal is not None:
            refused[(model, tasks)] = limit_reason(refusal)
        elif model == "threads":
            beside += tasks
    out = []
    for param in params:
        model, tasks, workers = param.values
        reason = refused.get((model, tasks))
        if reason and not param.marks:
            param = pytest.param(
                model, tasks, workers, id=param.id, marks=[pytest.mark.skip(reason=reason)]
            )
        out.append(param)
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    workload = metafunc.function.__name__.removeprefix("test_scale_")
    if workload in SCALE_WORKLOADS and {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("model", "tasks", "workers"), scale_params(metafunc.config, workload))


# -- cells ------------------------------------------------------------------------------


class LimitReached(CellError):
    """The OS would refuse (or refused) what a cell needs; the cell is skipped."""


def expected_results(workload: str, params: Mapping[str, Any], tasks: int) -> list[Any]:
    """What every model must return, without running serial (10,000 x 150 ms)."""
    known = get_workload(workload).expected_results(tasks, **params)
    if known is None:
        raise LookupError(f"scale: workload {workload!r} has no expected results")
    return known


@dataclass(frozen=True)
class ScaleCell(ModelCell):
    """A model cell that adds the per-task cost and the memory per task."""

    # shared by the group's cells; not part of a cell's identity
    memory_plan: MemoryPlan | None = dataclasses.field(default=None, compare=False)

    def prepare(self, cache: ModelCache) -> Runner:
        return ScaleRunner(self, cache)


class ScaleRunner(Runner):
    def __init__(self, cell: ScaleCell, cache: ModelCache) -> None:
        self.cell = cell
        self.cache = cache
        self.workload = get_workload(cell.workload)
        self.params = dict(cell.params)
        key = ("scale-expected", cell.workload, tuple(sorted(self.params.items())), cell.tasks)
        self.expected: list[Any] = cache.resource(
            key, lambda: (expected_results(cell.workload, self.params, cell.tasks), _nothing)
        )
        self.slow = slowdown_factor(cell.workload)
        self.cpu_s: list[float] = []
        self.model()  # start it now: a model that cannot start fails before any timing

    def model(self) -> Model:
        cell = self.cell
        key = (cell.model, cell.workers, tuple(sorted(cell.options.items())))
        if key not in self.cache.models:
            # Read the limits again right before the pool exists: other pools may have
            # grown since the plan was made.
            refusal = cell_refusal(cell.model, cell.tasks)
            if refusal is not None:
                raise LimitReached(limit_reason(refusal))
        try:
            return self.cache.get(cell.model, cell.workers, **cell.options)
        except RuntimeError as exc:
            # "can't start new thread": a limit the check did not foresee.
            if isinstance(exc, (CellError, ModelError)) or "thread" not in str(exc):
                raise
            raise LimitReached(
                f"{LIMIT_PREFIX}the OS refused a thread for {cell.tasks} threads: {exc}"
            ) from exc

    def run(self, model: Model) -> list[Any]:
        try:
            return model.run(self.workload, self.params, self.cell.tasks)
        except MemoryError as exc:
            model.broken = "ran out of memory"
            raise LimitReached(
                f"{LIMIT_PREFIX}out of memory with {self.cell.tasks} tasks "
                f"(MemAvailable, RLIMIT_AS: {limits.memory_refusal(0) or 'not reached now'})"
            ) from exc

    def verdict(self, results: list[Any]) -> str | None:
        if results == self.expected:
            return None
        return (
            f"{self.cell.model} returned wrong results for {self.cell.workload} x "
            f"{self.cell.tasks}: {describe_mismatch(self.expected, results)}"
        )

    def round(self) -> Round:
        model = self.model()
        timed = timed_run(model, lambda: self.run(model), self.slow)
        self.cpu_s.append(timed.cpu_s)
        # Checked here and dropped: see the module docstring (memory).
        return Round(timed.seconds, timed.cpu_s, self.verdict(timed.result))

    def problem(self, result: Any) -> str | None:
        return result if isinstance(result, str) else None

    def finish(self, seconds: list[float]) -> dict[str, Any]:
        tasks = self.cell.tasks
        ideal = self.cell.info.get("ideal_s")
        # The measured rounds are the runner's last ones (warm-ups come first).
        cpu = self.cpu_s[-len(seconds) :] if seconds else []
        info: dict[str, Any] = {
            "us_per_task": (
                (statistics.median(seconds) - ideal) / tasks * 1e6
                if seconds and ideal is not None
                else None
            ),
            "cpu_us_per_task": statistics.fmean(cpu) / tasks * 1e6 if cpu else None,
            "model_info": model_facts(self.model()),
        }
        return {**info, **self.memory()}

    def memory(self) -> dict[str, Any]:
        """This cell's figures from the group's memory processes (started by the first
        cell to finish, after every timed round of the group)."""
        plan = self.cell.memory_plan
        cell = self.cell
        info: dict[str, Any] = {
            "kb_per_task": None,
            "start_kb_per_task": None,
            "memory_idle_kb": None,
            "memory_peak_kb": None,
            "memory_method": memory.METHOD,
        }
        reason = memory.unsupported()
        if reason is not None or plan is None:
            info["memory_method"] = reason or "not measured (no memory plan)"
            return info
        rows = self.cache.resource(
            ("scale-memory", id(plan)),
            lambda: (memory.measure_jobs(plan.jobs(), self.cache.timeout), _nothing),
        )
        row = plan.row(rows, cell.model, cell.workload, cell.params, cell.tasks)
        if row is None or row.get("skipped"):
            info["memory_method"] = (row or {}).get("skipped") or "not measured"
            return info
        if row.get("digest") != memory.digest(self.expected):
            raise CellError(f"{cell.model} returned wrong results in its memory run")
        info["kb_per_task"] = row["kb_per_task"]
        info["start_kb_per_task"] = row.get("start_kb_per_task")
        info["memory_idle_kb"] = row.get("idle_kb")
        info["memory_peak_kb"] = row.get("peak_kb")
        return info


@dataclass
class MemoryPlan:
    """The group's planned cells, (model, workload, params) -> task counts, filled as the
    cells are built; each becomes one fresh memory process (``memory.Job``)."""

    counts: dict[tuple[str, str, tuple[tuple[str, Any], ...]], set[int]] = dataclasses.field(
        default_factory=dict
    )

    @staticmethod
    def key(
        model: str, workload: str, params: Mapping[str, Any]
    ) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
        return model, workload, tuple(sorted(params.items()))

    def add(self, model: str, workload: str, params: Mapping[str, Any], tasks: int) -> None:
        self.counts.setdefault(self.key(model, workload, params), set()).add(tasks)

    def jobs(self) -> list[memory.Job]:
        return [
            memory.Job(model, workload, params, tuple(sorted(counts)))
            for (model, workload, params), counts in self.counts.items()
        ]

    def row(
        self,
        rows: Mapping[memory.Job, list[dict[str, Any]]],
        model: str,
        workload: str,
        params: Mapping[str, Any],
        tasks: int,
    ) -> dict[str, Any] | None:
        wanted = self.key(model, workload, params)
        for job, job_rows in rows.items():
            if (job.model, job.workload, job.params) == wanted:
                return next((row for row in job_rows if row.get("tasks") == tasks), None)
        return None


MEMORY_PLAN = pytest.StashKey[MemoryPlan]()


def _nothing() -> None:
    return None


def build(config: pytest.Config, workload: str, model: str, tasks: int, workers: int) -> ScaleCell:
    profile = scale_profile(config)
    base = model_cell(
        get_profile(config),
        workload=workload,
        model=model,
        tasks=tasks,
        workers=workers,
        params=dict(profile.params[workload]),
        rounds=profile.rounds.get(tasks, 3),
        warmup=profile.warmup.get(tasks, 0),
        group=f"scale:{workload}",
    )
    plan = config.stash.setdefault(MEMORY_PLAN, MemoryPlan())
    plan.add(model, workload, base.params, tasks)
    fields = {field.name: getattr(base, field.name) for field in dataclasses.fields(base)}
    return ScaleCell(**fields, memory_plan=plan)


def build_io_sleep(config: pytest.Config, model: str, tasks: int, workers: int) -> ScaleCell:
    return build(config, "io_sleep", model, tasks, workers)


def build_io_spin(config: pytest.Config, model: str, tasks: int, workers: int) -> ScaleCell:
    return build(config, "io_spin", model, tasks, workers)


def run_cell(benchmark: Any, trials: Trials, node: pytest.Item, model: str, tasks: int) -> None:
    """Measure a planned cell; a cell that met an OS limit is skipped with that limit."""
    if benchmark.enabled:
        error = trials.outcome(node.nodeid).error or ""
        if LIMIT_PREFIX in error:
            pytest.skip(error[error.index(LIMIT_PREFIX) :])
    else:
        refusal = cell_refusal(model, tasks)
        if refusal is not None:
            pytest.skip(limit_reason(refusal))
    measure(benchmark, trials, node)


@cell_builder(build_io_sleep)
def test_scale_io_sleep(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    run_cell(benchmark, trials, request.node, model, tasks)


@cell_builder(build_io_spin)
def test_scale_io_spin(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    run_cell(benchmark, trials, request.node, model, tasks)
