"""The interleaved trials: how rounds are planned, run, failed and handed on."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from typing import Any

import pytest

from benchmarks._groups import APART, Cell
from benchmarks._harness import Outcome, ReplayClock, batch_name, in_process, interleave, schedule
from benchmarks.catalogue import CPU_BATCH
from tests._cells import planned
from tests._procs import is_live
from workloads.runner import VOID_LIMIT, Bench, Round
from workloads.runner import Cell as Prepared

HERE = "tests.test_harness"
# What the recording cells of this module ran, in order (in-process runners only).
LOG: list[str] = []


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


class Recording(Prepared):
    """Logs its name each round and returns ``result`` (0, 1, 2... when None); the
    round numbers in ``void_at`` are void."""

    def __init__(self, name: str, result: Any = None, void_at: list[int] | None = None) -> None:
        self.name, self.result, self.void_at = name, result, set(void_at or ())
        self.count = itertools.count()

    def round(self) -> Round:
        LOG.append(self.name)
        index = next(self.count)
        return Round(0.001, 0.001, index if self.result is None else self.result)

    def problem(self, result: Any) -> str | None:
        return None if self.result in (None, self.name) else f"{self.name} is wrong"

    def void(self, result: Any) -> str | None:
        return f"round {result} was void" if result in self.void_at else None

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        return {"results": results}


def recording(bench: Bench, **kwargs: Any) -> Prepared:
    return Recording(**kwargs)


def cell(name: str, rounds: int, warmup: int = 0, **kwargs: Any) -> Cell:
    return Cell(group="g", rounds=rounds, warmup=warmup, info={},
                kind=f"{HERE}:recording", kwargs={"name": name, **kwargs})  # fmt: skip


def test_a_model_that_runs_apart_does_so_one_module_at_a_time() -> None:
    cpu, io = "benchmarks/test_cpu.py::test_cpu_loop[dask-2-2]", "benchmarks/test_io.py::x"
    assert batch_name(None, cpu) == "benchmarks/test_cpu.py"
    dask_cpu, dask_io = batch_name(f"{APART}dask", cpu), batch_name(f"{APART}dask", io)
    assert dask_cpu != dask_io  # one module's clusters alive at a time
    assert dask_cpu not in ("benchmarks/test_cpu.py", CPU_BATCH)
    # A batch that spans modules on purpose stays one.
    assert batch_name(CPU_BATCH, cpu) == batch_name(CPU_BATCH, io) == CPU_BATCH


def test_rounds_are_interleaved_in_random_order_after_all_warmups() -> None:
    LOG.clear()
    cells = {name: cell(name, rounds=6, warmup=1) for name in "abcd"}
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=1, opener=in_process(5))
    assert sorted(LOG[:4]) == list("abcd"), "warm-ups come first"
    timed = LOG[4:]
    assert len(timed) == 24
    passes = [timed[i : i + 4] for i in range(0, 24, 4)]
    assert all(sorted(p) == list("abcd") for p in passes), "each pass runs every cell once"
    assert len({tuple(p) for p in passes}) > 1, "the order changes from pass to pass"
    assert all(len(outcomes[name].seconds) == 6 for name in "abcd")
    assert all(outcome.error is None for outcome in outcomes.values())
    # The measured rounds' results reach the cell's end; warm-ups' do not.
    assert outcomes["a"].extra == {"results": [1, 2, 3, 4, 5, 6]}


def test_a_wrong_result_fails_its_cell_only_and_stops_its_rounds() -> None:
    LOG.clear()
    cells = {name: cell(name, rounds=3, result=name) for name in "ab"}
    cells["bad"] = cell("bad", rounds=3, result=1)
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=in_process(5))
    assert outcomes["bad"].error == "bad is wrong"
    assert outcomes["bad"].seconds == []
    assert LOG.count("bad") == 1
    assert len(outcomes["a"].seconds) == len(outcomes["b"].seconds) == 3


def test_a_void_round_is_run_again_and_counted_and_too_many_fail_the_cell_only() -> None:
    cells = {
        "ok": cell("ok", rounds=4),
        "some": cell("some", rounds=4, void_at=[1, 2]),
        "many": cell("many", rounds=4, void_at=list(range(VOID_LIMIT + 1))),
    }
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=in_process(5))
    assert outcomes["ok"].extra["results"] == [0, 1, 2, 3]
    assert outcomes["ok"].voids == []
    # Rounds 1 and 2 were thrown away and run again: four kept, none void among them.
    assert outcomes["some"].extra["results"] == [0, 3, 4, 5]
    assert outcomes["some"].voids == ["round 1 was void", "round 2 was void"]
    assert outcomes["some"].error is None
    many = outcomes["many"]
    assert many.seconds == []
    assert len(many.voids) == VOID_LIMIT + 1
    assert many.error == (
        f"round {VOID_LIMIT} was void ({VOID_LIMIT + 1} void rounds, "
        f"more than the {VOID_LIMIT} allowed)"
    )


def test_a_cell_that_cannot_be_prepared_fails_alone() -> None:
    cells = {"ok": cell("ok", rounds=2), "bad": cell("bad", rounds=2, nonsense=1)}
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=in_process(5))
    assert "could not prepare the cell: TypeError" in (outcomes["bad"].error or "")
    assert outcomes["ok"].error is None
    assert len(outcomes["ok"].seconds) == 2


@pytest.mark.slow
def test_a_model_cell_that_times_out_fails_and_the_next_cell_gets_a_fresh_model() -> None:
    common = {"kind": "workloads.runner.cells:model", "group": "g", "rounds": 2, "warmup": 0,
              "info": {}}  # fmt: skip
    kwargs: dict[str, Any] = {"workload": "io_sleep", "model": "threads", "tasks": 1,
                              "workers": 1, "options": {}}  # fmt: skip
    cells = {
        "hang": Cell(**common, kwargs={**kwargs, "params": {"k": 1, "d": 1.0}}),
        "fine": Cell(**common, kwargs={**kwargs, "params": {"k": 1, "d": 0.001}}),
    }
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=in_process(0.3))
    assert outcomes["hang"].error is not None
    assert "unfinished after 0.3 s" in outcomes["hang"].error
    assert outcomes["fine"].error is None
    assert len(outcomes["fine"].seconds) == 2


def test_the_replay_clock_hands_pytest_benchmark_exactly_the_measured_rounds() -> None:
    rounds = [0.5, 0.25, 0.125]
    clock = ReplayClock()
    clock.load(rounds)
    durations = []
    for _ in rounds:
        start = clock()
        durations.append(clock() - start)
    assert durations == rounds


def test_a_capped_process_pool_says_so() -> None:
    capped = planned("test_io_sleep", "standard", model="processes", tasks=100, workers=32)
    assert capped.info["workers_cap"] == 32
    assert capped.info["workers"] == 32
    fitting = planned("test_io_sleep", "standard", model="processes", tasks=10, workers=10)
    assert "workers_cap" not in fitting.info


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
    cache = Bench(timeout=10)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cache.model("threads", 4)
    assert cache.models == {}
    left = [t for t in threading.enumerate() if t.name.startswith("boundbench")]
    for thread in left:
        thread.join(5)
    assert not any(t.is_alive() for t in left)
    assert time.monotonic() - started < 10
    cache.close()


@pytest.mark.slow
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
    cache = Bench(timeout=10)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cache.model("processes", 2)
    took = time.monotonic() - started
    cache.shutdown()
    assert cache.models == {}
    assert took < 5, took
    left = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before and is_live(child)
    ]
    assert left == []


@pytest.mark.slow
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
    processes.stop_multiprocessing_helpers()  # the forkserver this test started
    assert not any(is_live(worker) for worker in workers)


@pytest.mark.parametrize("profile", ["quick", "standard"])
def test_every_session_option_reaches_every_model_cell_that_takes_it(profile: str) -> None:
    """--dask-scheduler and --start-method, through the one path (Session.options), in
    every group of the catalogue: the model gets them and the results record them."""
    from benchmarks._groups import Session
    from benchmarks.catalogue import CATALOGUE
    from workloads.models import MODELS

    settings = {"start_method": "spawn", "dask_scheduler": "tcp://127.0.0.1:8786"}
    session = Session(profile, settings=settings)
    seen: set[tuple[str, str]] = set()
    for name, group in CATALOGUE.items():
        for row in group.rows(session):
            params = dict(zip(group.argnames, row.values, strict=True))
            model = params.get("model")
            if model not in MODELS or not MODELS[model].settings or row.skip:
                continue
            made = group.cell(session, **params)
            options = made.kwargs.get("options", made.kwargs.get("kwargs"))
            # A start-up variant sets its own (processes-spawn, ...): the variant wins.
            for key in set(MODELS[model].settings) - set(params.get("variant", {})):
                assert options[key] == settings[key], (name, row.id, key)
                assert made.info[key] == settings[key], (name, row.id, key)
                seen.add((name, key))
    for test in ("test_cpu_loop", "test_io_sleep", "test_mixed", "test_io_socket", "test_startup"):
        assert (test, "dask_scheduler") in seen, test
        assert (test, "start_method") in seen or test == "test_startup", test


def test_test_hooks_are_read_strictly_and_said_when_active(monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads.runner import _hooks

    assert _hooks.slowdowns("cpu_loop=2, echo:select=1.5") == {"cpu_loop": 2.0, "echo:select": 1.5}
    for bad in ("cpu_loop", "cpu_loop=x", "=2", "cpu_loop=0.5"):
        with pytest.raises(ValueError, match="is not KEY=FACTOR"):
            _hooks.slowdowns(bad)
    monkeypatch.delenv(_hooks.SLOWDOWN_ENV, raising=False)
    monkeypatch.delenv(_hooks.KILL_ENV, raising=False)
    assert _hooks.active() == {}
    monkeypatch.setenv(_hooks.SLOWDOWN_ENV, "io_sleep=2")
    assert _hooks.active() == {_hooks.SLOWDOWN_ENV: "io_sleep=2"}
    assert _hooks.slowdown_factor("io_sleep") == 2.0
    assert _hooks.slowdown_factor("cpu_loop") == 1.0


def test_every_catalogue_entry_is_a_benchmark_test_of_its_parameters() -> None:
    """The benchmark modules, imported here: each test they define is a catalogue entry
    of the same name whose parameters (besides pytest-benchmark's and the session's
    fixtures) are its group's, and every entry has its test."""
    import importlib
    import inspect
    from pathlib import Path

    from benchmarks.catalogue import CATALOGUE

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    found = {}
    for path in sorted(folder.glob("test_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        for name, test in vars(module).items():
            if name.startswith("test_") and callable(test):
                found[name] = test
    assert set(found) == set(CATALOGUE)
    for name, test in found.items():
        params = tuple(inspect.signature(test).parameters)
        assert params == ("benchmark", "trials", "request", *CATALOGUE[name].argnames), name
