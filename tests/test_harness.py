"""The interleaved trials: how rounds are planned, run, failed and handed on."""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    APART,
    CPU_BATCH,
    VOID_LIMIT,
    CallCell,
    Cell,
    ModelCache,
    Outcome,
    Round,
    Runner,
    _interleave,
    _ReplayClock,
    batch_name,
    model_cell,
    schedule,
    timed_run,
)
from benchmarks._profiles import PROFILES
from tests._procs import is_live
from workloads.models import Model


@pytest.mark.parametrize(
    "rounds", [{"a": 7, "b": 7}, {"a": 7, "b": 2, "c": 1}, {"a": 3, "b": 5}, {"a": 1}, {}]
)
def test_schedule_gives_every_cell_its_rounds_spread_over_the_passes(
    rounds: dict[str, int],
) -> None:
    plan = schedule(rounds)
    assert len(plan) == max(rounds.values(), default=0)
    assert Counter(itertools.chain.from_iterable(plan)) == Counter(rounds)
    for keys in plan:
        assert len(keys) == len(set(keys)), "at most one round of a cell per pass"
    if rounds == {"a": 7, "b": 2, "c": 1}:
        b_passes = [index for index, keys in enumerate(plan) if "b" in keys]
        assert b_passes[1] - b_passes[0] >= 3, "a cell's few rounds are spread out"


def _recording_cell(name: str, log: list[str], rounds: int, warmup: int = 0) -> CallCell:
    def call() -> str:
        log.append(name)
        return name

    return CallCell(group="g", rounds=rounds, warmup=warmup, info={}, call=call, expect=name)


def test_a_model_that_runs_apart_does_so_one_module_at_a_time() -> None:
    cpu, io = "benchmarks/test_cpu.py::test_cpu_loop[dask-2-2]", "benchmarks/test_io.py::x"
    assert batch_name(None, cpu) == "benchmarks/test_cpu.py"
    dask_cpu, dask_io = batch_name(f"{APART}dask", cpu), batch_name(f"{APART}dask", io)
    assert dask_cpu != dask_io  # one module's clusters alive at a time
    assert dask_cpu not in ("benchmarks/test_cpu.py", CPU_BATCH)
    # A batch that spans modules on purpose stays one.
    assert batch_name(CPU_BATCH, cpu) == batch_name(CPU_BATCH, io) == CPU_BATCH


def test_rounds_are_interleaved_in_random_order_after_all_warmups() -> None:
    log: list[str] = []
    cells = {name: _recording_cell(name, log, rounds=6, warmup=1) for name in "abcd"}
    outcomes: dict[str, Outcome] = {}
    _interleave(ModelCache(timeout=5), cells, outcomes, seed=1)
    assert sorted(log[:4]) == list("abcd"), "warm-ups come first"
    timed = log[4:]
    assert len(timed) == 24
    passes = [timed[i : i + 4] for i in range(0, 24, 4)]
    assert all(sorted(p) == list("abcd") for p in passes), "each pass runs every cell once"
    assert len({tuple(p) for p in passes}) > 1, "the order changes from pass to pass"
    assert all(len(outcomes[name].seconds) == 6 for name in "abcd")
    assert all(outcome.error is None for outcome in outcomes.values())


def test_measured_rounds_run_with_the_harness_heap_frozen_and_it_thaws_after() -> None:
    """A full collection in a round walks the round's own objects, not pytest's."""
    frozen: list[bool] = []

    def call() -> str:
        frozen.append(gc.get_freeze_count() > 0)
        return "x"

    cells = {"x": CallCell(group="g", rounds=3, warmup=1, info={}, call=call, expect="x")}
    gc.unfreeze()
    _interleave(ModelCache(timeout=5), cells, {}, seed=0)
    assert frozen == [False, True, True, True]  # the warm-up before the freeze
    assert gc.get_freeze_count() == 0


class _TimedElsewhere(Model):
    """A model that times its tasks where they ran, as gevent's worker does."""

    name = "elsewhere"
    flavour = "sync"

    def run(self, workload: Any, params: dict[str, Any], tasks: int) -> list[Any]:
        time.sleep(0.05)  # the pipe to the helper process, say
        self.last_run_s = 0.01
        return [None] * tasks


def test_a_round_is_timed_where_the_model_says_its_tasks_ran() -> None:
    model = _TimedElsewhere().start()
    timed = timed_run(model, lambda: model.run(None, {}, 2))
    assert timed.seconds == 0.01
    assert timed.result == [None, None]
    assert timed_run(model, lambda: model.run(None, {}, 1), slow=1.5).seconds == 0.01 * 1.5
    # A run that does not say so is timed around run(): no stale figure is reused.
    assert 0.0 <= timed_run(model, lambda: []).seconds < 0.01


def test_a_wrong_result_fails_its_cell_only_and_stops_its_rounds() -> None:
    log: list[str] = []
    cells = {name: _recording_cell(name, log, rounds=3) for name in "ab"}
    cells["bad"] = CallCell(group="g", rounds=3, warmup=0, info={}, call=lambda: 1, expect=2)
    outcomes: dict[str, Outcome] = {}
    _interleave(ModelCache(timeout=5), cells, outcomes, seed=0)
    assert outcomes["bad"].error == "expected 2, got 1"
    assert outcomes["bad"].seconds == []
    assert len(outcomes["a"].seconds) == len(outcomes["b"].seconds) == 3


@dataclass(frozen=True)
class _VoidingCell(Cell):
    """Its rounds return 0, 1, 2...; the round numbers in ``void_at`` are void."""

    void_at: frozenset[int] = frozenset()

    def prepare(self, cache: ModelCache) -> Runner:
        return _VoidingRunner(self.void_at)


class _VoidingRunner(Runner):
    def __init__(self, void_at: frozenset[int]) -> None:
        self.void_at = void_at
        self.count = itertools.count()

    def round(self) -> Round:
        return Round(0.001, 0.001, next(self.count))

    def void(self, result: Any) -> str | None:
        return f"round {result} was void" if result in self.void_at else None


def test_a_void_round_is_run_again_and_counted_and_too_many_fail_the_cell_only() -> None:
    cells = {
        "ok": _VoidingCell(group="g", rounds=4, warmup=0, info={}),
        "some": _VoidingCell(group="g", rounds=4, warmup=0, info={}, void_at=frozenset({1, 2})),
        "many": _VoidingCell(
            group="g", rounds=4, warmup=0, info={}, void_at=frozenset(range(VOID_LIMIT + 1))
        ),
    }
    outcomes: dict[str, Outcome] = {}
    _interleave(ModelCache(timeout=5), cells, outcomes, seed=0)
    assert outcomes["ok"].results == [0, 1, 2, 3]
    assert outcomes["ok"].voids == []
    # Rounds 1 and 2 were thrown away and run again: four kept, none void among them.
    assert outcomes["some"].results == [0, 3, 4, 5]
    assert outcomes["some"].voids == ["round 1 was void", "round 2 was void"]
    assert outcomes["some"].error is None
    many = outcomes["many"]
    assert many.results == []
    assert len(many.voids) == VOID_LIMIT + 1
    assert many.error == (
        f"round {VOID_LIMIT} was void ({VOID_LIMIT + 1} void rounds, "
        f"more than the {VOID_LIMIT} allowed)"
    )


def test_a_model_cell_that_times_out_fails_and_the_next_cell_gets_a_fresh_model() -> None:
    profile = PROFILES["quick"]
    common: dict[str, Any] = {
        "workload": "io_sleep",
        "model": "threads",
        "tasks": 1,
        "workers": 1,
        "rounds": 2,
        "warmup": 0,
        "start_method": "forkserver",
    }
    cells = {
        "hang": model_cell(profile, params={"k": 1, "d": 1.0}, **common),
        "fine": model_cell(profile, params={"k": 1, "d": 0.001}, **common),
    }
    cache = ModelCache(timeout=0.3)
    outcomes: dict[str, Outcome] = {}
    try:
        _interleave(cache, cells, outcomes, seed=0)
    finally:
        cache.close()
    assert outcomes["hang"].error is not None
    assert "unfinished after 0.3 s" in outcomes["hang"].error
    assert outcomes["fine"].error is None
    assert len(outcomes["fine"].seconds) == 2


def test_the_replay_clock_hands_pytest_benchmark_exactly_the_measured_rounds() -> None:
    rounds = [0.5, 0.25, 0.125]
    clock = _ReplayClock(rounds)
    durations = []
    for _ in rounds:
        start = clock()
        durations.append(clock() - start)
    assert durations == rounds


def test_a_capped_process_pool_says_so() -> None:
    profile = PROFILES["standard"]
    common: dict[str, Any] = {
        "workload": "io_sleep",
        "model": "processes",
        "params": {"k": 1, "d": 0.01},
        "rounds": 1,
        "warmup": 0,
        "start_method": "forkserver",
    }
    capped = model_cell(profile, tasks=100, workers=32, **common)
    assert capped.info["workers_cap"] == 32
    assert capped.info["workers"] == 32
    assert "workers_cap" not in model_cell(profile, tasks=10, workers=10, **common).info


def test_a_model_interrupted_while_starting_is_closed_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C or SIGTERM during a pool's warm-up: its threads go now, not after the
    warm-up barrier's 30 s timeout (which held the interpreter's exit that long)."""
    from workloads.models import threads

    class Interrupted(threads.cf.ThreadPoolExecutor):
        """The signal lands after two of the four warm-up tasks were handed out."""

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            if len(self._threads) == 2:
                raise KeyboardInterrupt("signal SIGTERM")
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(threads.cf, "ThreadPoolExecutor", Interrupted)
    cache = ModelCache(timeout=10)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cache.get("threads", 4)
    assert cache.models == {}
    left = [t for t in threading.enumerate() if t.name.startswith("boundbench")]
    for thread in left:
        thread.join(5)
    assert not any(t.is_alive() for t in left)
    assert time.monotonic() - started < 10
    cache.close()


def test_a_process_pool_interrupted_while_starting_is_killed_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its first worker waits at the start barrier for the second: no grace period for
    it (that made a SIGTERM'd run end 10 s late)."""
    import psutil

    from workloads.models import processes

    class Interrupted(processes.cf.ProcessPoolExecutor):
        def submit(self, *args: Any, **kwargs: Any) -> Any:
            if self._processes:
                raise KeyboardInterrupt("signal SIGTERM")
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(processes.cf, "ProcessPoolExecutor", Interrupted)
    before = {child.pid for child in psutil.Process().children()}
    cache = ModelCache(timeout=10)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cache.get("processes", 2)
    took = time.monotonic() - started
    cache.close()
    assert cache.models == {}
    assert took < 5, took
    left = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before and is_live(child)
    ]
    assert left == []


def test_closing_a_process_pool_whose_worker_was_just_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool still lists a worker that died and was reaped in the meantime (a race
    CI hit between ``pid_exists`` and ``psutil.Process``): close() cleans up anyway."""
    import psutil

    from workloads.models import processes

    model = processes.ProcessesModel(workers=2).start()
    assert model.pool is not None
    gone = max(psutil.pids()) + 100_000  # a pid no process has
    model.pool._processes[gone] = model.pool._processes[next(iter(model.pool._processes))]
    monkeypatch.setattr(processes.psutil, "pid_exists", lambda pid: True)
    workers = [psutil.Process(pid) for pid in model.pool._processes if pid != gone]
    model.close()
    assert not any(is_live(worker) for worker in workers)
