"""The one path from the catalogue to saved results: pytest items, a plan, interleaved
rounds, pytest-benchmark's statistics.

- ``cell_test(name)`` is a benchmark test (each test module is one line per test); the
  session parametrizes it with its catalogue group's rows (``parametrize``).
- ``Trials.plan`` builds every selected cell at collection, in batches: a test module's
  cells, or a batch a cell names (``Cell.batch``).
- When the first test of a batch runs, the whole batch is measured as randomized
  multiple interleaved trials: every cell's warm-up rounds first, then passes in which
  each cell runs one round, in a fresh random order each pass.  This host has slow
  phases of seconds; interleaved, a slow phase costs each of several cells one round
  and their medians stay put.  A runner measures the rounds (``workloads.runner``); this
  process only plans and records.
- In an A/B session (``benchmarks/_ab.py``) every cell has runners on both sides, and
  each pass runs one A round and one B round of each cell back to back, in a random
  order within the pair.
- Each test hands its own cell's rounds to pytest-benchmark (``measure``), which computes
  and saves the statistics as usual: its timer for the test (the documented
  ``benchmark(timer=...)`` marker) replays the measured rounds.
"""

from __future__ import annotations

import inspect
import math
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from benchmarks._groups import APART, Cell, Group, Session, memory_jobs
from benchmarks.catalogue import CATALOGUE
from workloads.models import MODELS
from workloads.runner import COUNT_DIR_ENV, Engine, RunnerError, RunnerProcess
from workloads.runner._hooks import KILL_ENV
from workloads.scale import LIMIT_PREFIX

GROUP_ATTR = "boundbench_group"
# A count run's rounds: its counts repeat to ~0.05 % (three give a median), and each
# round costs 20-100 times its wall time under Valgrind.
COUNT_ROUNDS = 3
# An A/B session's cell that side A's runner cannot prepare: skipped, not failed.
UNAVAILABLE = "A side: not available"


def cell_test(name: str) -> Callable[..., None]:
    """The benchmark test ``name`` of the catalogue: its parameters are its group's."""
    group = CATALOGUE[name]

    def test(benchmark: Any, trials: Trials, request: pytest.FixtureRequest, **_: Any) -> None:
        measure(benchmark, trials, request.node)

    fixed = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY)
             for n in ("benchmark", "trials", "request", *group.argnames)]  # fmt: skip
    test.__signature__ = inspect.Signature(fixed)  # type: ignore[attr-defined]
    test.__name__ = test.__qualname__ = name
    setattr(test, GROUP_ATTR, group)
    return test


def group_of(item: Any) -> Group | None:
    found: Group | None = getattr(getattr(item, "function", None), GROUP_ATTR, None)
    return found


def parametrize(metafunc: pytest.Metafunc, session: Session) -> None:
    group = getattr(metafunc.function, GROUP_ATTR, None)
    if group is None:
        return
    skip = pytest.mark.skip
    params = [
        pytest.param(*row.values, id=row.id, marks=[skip(reason=row.skip)] if row.skip else [])
        for row in group.rows(session)
    ]
    metafunc.parametrize(group.argnames, params)


# -- planning --------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    error: str | None = None
    # why each void round was thrown away (warm-up and measured rounds alike)
    voids: list[str] = field(default_factory=list)
    # extra_info from the cell's end (Cell.finish in the runner)
    extra: dict[str, Any] = field(default_factory=dict)
    # a count run's: each measured round's instructions, and how many processes did them
    instructions: list[int] = field(default_factory=list)
    counted: list[int] = field(default_factory=list)
    # an A/B session's: side A's rounds (this outcome holds side B's), and which side
    # ran first in each pair
    a: Outcome | None = None
    first: list[str] = field(default_factory=list)


class ReplayClock:
    """A timer for pytest-benchmark that replays rounds measured earlier: it advances
    by the next recorded round between each pair of reads (before and after a round)."""

    __name__ = "perf_counter (interleaved rounds, replayed)"

    def __init__(self) -> None:
        self.steps: Iterator[float] = iter(())
        self.now = 0.0
        self.reads = 0

    def load(self, seconds: list[float]) -> None:
        self.steps, self.reads = iter(seconds), 0

    def __call__(self) -> float:
        self.reads += 1
        if self.reads % 2 == 0:
            self.now += next(self.steps)
        return self.now


@dataclass
class Trials:
    """The session's plan: every cell by node id, in batches; their measured rounds."""

    seed: int
    opener: Opener | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)
    batch_of: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    clocks: dict[str, ReplayClock] = field(default_factory=dict)
    # the hand-off of every round (its round trip outside the runner), seconds
    handoffs: list[float] = field(default_factory=list)

    def plan(
        self, items: list[pytest.Item], session: Session, once: bool = False, count: bool = False
    ) -> None:
        """Build the cells of the selected, runnable items.  ``once``: one round each and
        no warm-up (``--benchmark-disable``: every cell once, as a plain test).  ``count``:
        a count run, at most ``COUNT_ROUNDS`` rounds and one warm-up a cell."""
        planned = {}
        for item in items:
            group = group_of(item)
            if group is None or item.get_closest_marker("skip") is not None:
                continue
            params = dict(item.callspec.params) if hasattr(item, "callspec") else {}
            cell = group.cell(session, **params)
            if once:
                cell = replace(cell, rounds=1, warmup=0)
            elif count:
                cell = replace(cell, rounds=min(cell.rounds, COUNT_ROUNDS),
                               warmup=min(cell.warmup, 1))  # fmt: skip
            planned[item.nodeid] = cell
        for nodeid, cell in zip(planned, memory_jobs(list(planned.values())), strict=True):
            self.cells[nodeid] = cell
            batch = batch_name(cell.batch, nodeid)
            self.batch_of[nodeid] = batch
            self.batches.setdefault(batch, []).append(nodeid)
            self.clocks[nodeid] = ReplayClock()

    def outcome(self, nodeid: str) -> Outcome:
        if nodeid not in self.outcomes:
            batch = self.batches[self.batch_of[nodeid]]
            todo = {n: self.cells[n] for n in batch if n not in self.outcomes}
            assert self.opener is not None, "the trials fixture gives the runners"
            self.handoffs += interleave(todo, self.outcomes, self.seed, self.opener)
        return self.outcomes[nodeid]


def batch_name(cell_batch: str | None, nodeid: str) -> str:
    """The batch a cell's rounds interleave in: its test module's by default.

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


# (patch, side) -> a started runner; its ``sides``: ("",), or ("a", "b") in an A/B session
Opener = Callable[[str | None, str], Any]


class RunnerProcesses:
    """Runners for a batch: a process each, started as a cell first needs one (``patch``:
    the one its model asks for, ``Model.runner_patch``).  In a count run (``count_root``)
    each runs under callgrind (``workloads.counting.command``), its files in a folder of
    its own under ``count_root``.  In an A/B session (``ab``: ``_ab.Side`` by name) each
    side's runners are that side's."""

    def __init__(
        self, timeout: float, count_root: str | None = None, ab: Mapping[str, Any] | None = None
    ) -> None:
        self.timeout = timeout
        self.env: dict[str, str] = {}
        self.count_root = count_root
        self.ab = dict(ab or {})
        self.sides = tuple(self.ab) or ("",)

    def __call__(self, patch: str | None, side: str = "") -> RunnerProcess:
        if side:
            started: RunnerProcess = self.ab[side].runner(self.timeout, patch, self.env)
            return started
        if self.count_root is None:
            runner = RunnerProcess(self.timeout, patch=patch, env=self.env)
        else:
            from workloads import counting

            outdir = tempfile.mkdtemp(prefix="runner-", dir=self.count_root)
            argv, env = counting.command(outdir)
            env = {**self.env, **env, COUNT_DIR_ENV: outdir}
            runner = RunnerProcess(
                self.timeout, patch=patch, env=env, wrapper=argv[:-1], python=argv[-1]
            )
        runner.start()
        return runner

    def lost(self) -> None:
        # A runner died: if the kill hook did it, it has done its job (the runner is
        # gevent's worker); its replacements run without it.
        self.env[KILL_ENV] = ""


@dataclass
class InProcess:
    timeout: float
    sides: tuple[str, ...] = ("",)

    def __call__(self, patch: str | None, side: str = "") -> Engine:
        return Engine(self.timeout)


def in_process(timeout: float, sides: tuple[str, ...] = ("",)) -> InProcess:
    """Runners in this process (tests of the interleaving; never patched); ``sides``
    ("a", "b"): an A/B session of two alike."""
    return InProcess(timeout, sides)


def interleave(
    cells: Mapping[str, Cell], outcomes: dict[str, Outcome], seed: int, opener: Opener
) -> list[float]:
    """Measure a batch: prepare every cell, warm-ups in a random order, then the passes;
    the hand-off of each round (its round trip outside the runner) is returned.

    In an A/B session (``opener.sides``: "a", "b") every cell is prepared on both sides,
    warms up on both, and runs a pair of rounds each pass: one per side, back to back, in
    a random order.  A side that fails a cell fails it; a cell side A cannot prepare is
    ``UNAVAILABLE``, and neither side runs it.

    A runner that dies or falls silent fails the cell it was serving; the batch's other
    cells on it get a new runner, and those that had measured rounds on it fail too
    (their results were in it).
    """
    rng = random.Random(seed)
    sides: tuple[str, ...] = getattr(opener, "sides", ("",))
    runners: dict[tuple[str, str | None], Any] = {}
    prepared: dict[tuple[str, str], str | None] = {}
    handoffs: list[float] = []

    def of(key: str, side: str) -> Outcome:
        """A side's rounds of a cell: side A's are kept beside the cell's own (side B's)."""
        own = outcomes[key]
        return own.a if side == "a" and own.a is not None else own

    def failed(key: str) -> bool:
        return any(of(key, side).error for side in sides)

    def patch_of(key: str) -> str | None:
        model = cells[key].model
        return MODELS[model].runner_patch if model in MODELS else None

    def runner(side: str, patch: str | None) -> Any:
        if (side, patch) not in runners:
            runners[side, patch] = opener(patch, side)
        return runners[side, patch]

    def lost(key: str, side: str, exc: RunnerError) -> None:
        patch = patch_of(key)
        gone = runners.pop((side, patch), None)
        getattr(opener, "lost", lambda: None)()
        if gone is not None:
            handoffs.extend(getattr(gone, "handoffs", ()))
            gone.kill()
        of(key, side).error = str(exc)
        for other in [unit for unit, p in prepared.items() if (unit[1], p) == (side, patch)]:
            del prepared[other]
            outcome = of(*other)
            if outcome.seconds and not outcome.error:
                outcome.error = (
                    f"its runner was lost after {len(outcome.seconds)} of its rounds: {exc}"
                )

    def prepare(key: str, side: str) -> bool:
        """Start what the cell needs (untimed); False when it cannot run."""
        try:
            reply = runner(side, patch_of(key)).prepare(
                key, cells[key].kind, dict(cells[key].kwargs)
            )
        except RunnerError as exc:
            lost(key, side, exc)
            return False
        error = reply.get("error")
        of(key, side).error = f"not available ({error})" if error and side == "a" else error
        if error:
            return False
        prepared[key, side] = patch_of(key)
        return True

    def ask(key: str, side: str, op: str, *args: Any) -> dict[str, Any] | None:
        """A request for ``key``'s cell to its runner (prepared anew on a new runner after
        its runner was lost); None when the runner was lost now."""
        if (key, side) not in prepared and not prepare(key, side):
            return None
        try:
            reply: dict[str, Any] = getattr(runner(side, prepared[key, side]), op)(key, *args)
        except RunnerError as exc:
            lost(key, side, exc)
            return None
        return reply

    def one_round(key: str, side: str, keep: bool) -> None:
        reply = None if failed(key) else ask(key, side, "round", keep)
        if reply is None:
            return
        outcome = of(key, side)
        outcome.voids += reply.get("voids", [])
        outcome.error = reply.get("error")
        if keep and not outcome.error:
            outcome.seconds.append(reply["seconds"])
            outcome.cpu_s.append(reply["cpu_s"])
            if "instructions" in reply:
                outcome.instructions.append(reply["instructions"])
                outcome.counted.append(reply["counted_processes"])

    try:
        for key in cells:
            outcomes[key] = Outcome(a=Outcome() if "a" in sides else None)
        for key in cells:  # every cell's models and servers start before any round
            for side in sides:
                prepare(key, side)
        warmups = [(key, side) for key in cells for side in sides
                   for _ in range(cells[key].warmup)]  # fmt: skip
        rng.shuffle(warmups)
        for key, side in warmups:
            one_round(key, side, keep=False)
        for keys in schedule({key: cell.rounds for key, cell in cells.items()}):
            rng.shuffle(keys)
            for key in keys:
                pair = list(sides)
                rng.shuffle(pair)
                for side in pair:
                    one_round(key, side, keep=True)
                if len(pair) > 1 and not failed(key):
                    outcomes[key].first.append(pair[0])
        for key in cells:
            for side in sides:
                outcome = of(key, side)
                if not failed(key) and outcome.seconds:
                    reply = ask(key, side, "finish")
                    if reply is not None:
                        outcome.error = reply.get("error")
                        outcome.extra = reply.get("extra", {})
            side_a = outcomes[key].a
            if side_a is not None and side_a.error and not outcomes[key].error:
                outcomes[key].error = f"A side: {side_a.error}"
        for unit in list(runners):  # a batch's pools and servers end before the next batch
            handoffs.extend(getattr(runners[unit], "handoffs", ()))
            runners.pop(unit).close()
    finally:
        for leftover in runners.values():  # interrupted (Ctrl-C, SIGTERM) or failed
            leftover.kill()
    return handoffs


# -- recording -------------------------------------------------------------------------


def measure(benchmark: Any, trials: Trials, node: pytest.Item) -> None:
    """The body of every benchmark test: its cell's rounds, handed to pytest-benchmark."""
    cell = trials.cells.get(node.nodeid)
    if cell is None:
        pytest.fail(f"{node.nodeid}: no cell was planned for this test", pytrace=False)
    benchmark.group = cell.group
    benchmark.extra_info.update(cell.info)
    outcome = trials.outcome(node.nodeid)
    if outcome.error and LIMIT_PREFIX in outcome.error:
        pytest.skip(outcome.error[outcome.error.index(LIMIT_PREFIX) :])
    if outcome.error and outcome.error.startswith(UNAVAILABLE):
        pytest.skip(outcome.error)
    if outcome.error:
        pytest.fail(outcome.error, pytrace=False)
    if not outcome.seconds:
        pytest.fail("the cell measured no round", pytrace=False)
    if not benchmark.enabled:  # --benchmark-disable: the cell ran once, nothing to save
        benchmark.pedantic(lambda: None)
        return
    extra = benchmark.extra_info
    extra["cpu_s"] = sum(outcome.cpu_s) / len(outcome.cpu_s)
    extra["interleaved"] = True
    if outcome.voids:
        extra["void_rounds"] = len(outcome.voids)
    extra.update(outcome.extra)
    if outcome.a is not None:  # pair i: (a[i], b[i]); the statistics are side B's
        extra["ab"] = {"a": outcome.a.seconds, "b": outcome.seconds, "first": outcome.first}
    replayed: list[float] = list(outcome.seconds)
    if outcome.instructions:
        # A count run: the saved statistics are instructions per round (the same JSON, in
        # the unit machine_info's "measure" names); wall time under Valgrind is a fact.
        replayed = [float(value) for value in outcome.instructions]
        extra["wall_s_under_valgrind"] = statistics.median(outcome.seconds)
        extra["instructions_per_task"] = statistics.median(replayed) / max(1, extra["tasks"])
        extra["counted_processes"] = max(outcome.counted)
    trials.clocks[node.nodeid].load(replayed)
    benchmark.pedantic(lambda: None, rounds=len(replayed), iterations=1)


def gevent_patched() -> list[str]:
    """What, if anything, gevent has patched in this process."""
    if "gevent.monkey" not in sys.modules:
        return []
    from gevent import monkey

    return sorted(monkey.saved) if monkey.is_anything_patched() else []
