"""Every workload gives the same answer in every flavour, and everything pickles."""

from __future__ import annotations

import asyncio
import pickle
import sys
from typing import Any

import pytest

from workloads import FLAVOURS, WORKLOADS, Workload, get_workload, seed
from workloads.cpu_loop import cpu_loop_gen, cpu_loop_sync
from workloads.models import run_generators
from workloads.runner import Bench

SMALL = {
    "cpu_loop": {"n": 5_000, "yield_every": 7},
    "cpu_native": {"size": 4096, "rounds": 3},
    "io_sleep": {"k": 2, "d": 0.001},
    "mixed": {
        "cpu_share": 0.3,
        "task_s": 0.1,
        "steps": 2,
        "cpu_iters": 5_000,
        "cpu_kind": "native",
    },
    "io_spin": {"k": 2, "d": 0.001, "spin": 50},
    # Only pickled here: its flavours need an echo server (tests/test_io_socket.py).
    "io_socket": {"k": 2, "size": 64, "delay": 0.001, "address": "127.0.0.1:9"},
}


def run_flavour(name: str, flavour: str, task_id: int, params: dict[str, Any]) -> Any:
    fn = get_workload(name).task(flavour, **params)
    if flavour == "sync":
        return fn(task_id)
    if flavour == "gen":
        return run_generators([fn(task_id)])[0]
    return asyncio.run(fn(task_id))


@pytest.mark.parametrize("name", WORKLOADS)
def test_flavours_agree(name: str) -> None:
    if name == "io_socket":
        pytest.skip("needs an echo server: tests/test_io_socket.py tests its flavours")
    for task_id in (0, 3):
        answers = {f: run_flavour(name, f, task_id, SMALL[name]) for f in FLAVOURS}
        assert len(set(answers.values())) == 1, answers
        assert answers["sync"][0] == task_id


# io_socket's flavours need an echo server: tests/test_io_socket.py checks them against it.
@pytest.mark.parametrize(
    "name", [n for n, w in WORKLOADS.items() if w.expected is not None and n != "io_socket"]
)
def test_expected_results_are_what_the_flavours_return(name: str) -> None:
    workload = get_workload(name)
    expected = workload.expected_results(4, **SMALL[name])
    assert expected == [run_flavour(name, "sync", task_id, SMALL[name]) for task_id in range(4)]
    # Both CPU kinds for mixed: the checksum is the CPU slices'.
    if name == "mixed":
        python = {**SMALL[name], "cpu_kind": "python"}
        assert workload.expected_results(2, **python) == [
            run_flavour(name, "sync", task_id, python) for task_id in range(2)
        ]


def test_a_reference_uses_expected_results_and_never_runs_serial() -> None:
    def never(task_id: int, n: int = 1) -> int:
        raise AssertionError("the serial reference run should not happen")

    known = Workload(
        name="known", bound="io", sync=never, defaults={"n": 1}, expected=lambda t, n: t * n
    )
    cache = Bench(timeout=10)
    try:
        assert cache.reference(known, {"n": 3}, 4) == [0, 3, 6, 9]
        unknown = get_workload("cpu_loop")
        assert cache.reference(unknown, {"n": 10}, 2) == [(0, 45), (1, 45)]
    finally:
        cache.close()


def test_results_prove_the_work() -> None:
    assert run_flavour("cpu_loop", "sync", 0, {"n": 10}) == (0, 45)
    assert run_flavour("io_sleep", "sync", 1, {"k": 3, "d": 0.001}) == (1, 3)
    a = run_flavour("cpu_native", "sync", 0, SMALL["cpu_native"])
    b = run_flavour("cpu_native", "sync", 1, SMALL["cpu_native"])
    assert a[1] != b[1], "different tasks hash different data"


@pytest.mark.parametrize("yield_every", [1, 2, 1000])
def test_generator_loop_yields_as_asked(yield_every: int) -> None:
    gen = get_workload("cpu_loop").gen(0, n=100, yield_every=yield_every)
    switches = 0
    result = None
    while result is None:
        try:
            assert next(gen) is None
            switches += 1
        except StopIteration as stop:
            result = stop.value
    assert result == (0, 4950)
    assert switches == -(-100 // yield_every), "one switch after each chunk"


def _opcodes(fn: Any, *args: Any) -> int:
    """Bytecodes executed in ``fn``'s own frames (a generator is driven to its end)."""
    count = 0
    code = fn.__code__

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code is not code:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        result = fn(*args)
        if hasattr(result, "__next__"):
            for _ in result:
                pass
    finally:
        sys.settrace(None)
    return count


def test_generator_cpu_loop_runs_the_sync_loop_not_instrumentation() -> None:
    """The gen flavour's cost over sync is its yields, not a countdown per iteration."""
    n, every = 20_000, 1_000
    sync = _opcodes(cpu_loop_sync, 0, n, every)
    gen = _opcodes(cpu_loop_gen, 0, n, every)
    assert gen <= sync * 1.05, (gen, sync)


@pytest.mark.parametrize("name", WORKLOADS)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_tasks_pickle(name: str, flavour: str) -> None:
    task = get_workload(name).task(flavour, **SMALL[name])
    clone = pickle.loads(pickle.dumps(task))
    assert clone.func is task.func
    assert clone.keywords == task.keywords
    assert pickle.loads(pickle.dumps(WORKLOADS[name])) == WORKLOADS[name]


def test_sleep_below_one_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match=r"below the 0\.001 s minimum"):
        get_workload("io_sleep").sync(0, k=1, d=0.0001)


def test_unknown_parameter_and_workload() -> None:
    with pytest.raises(ValueError, match="unknown parameter"):
        get_workload("cpu_loop").task("sync", m=3)
    with pytest.raises(LookupError, match="valid: cpu_loop, cpu_native, io_sleep"):
        get_workload("nope")
    with pytest.raises(ValueError, match="unknown flavour"):
        get_workload("cpu_loop").flavour("thread")


def test_seed_experiments_compute_the_same_sums() -> None:
    expected = 1000 * 999 // 2
    assert seed.two_loops_serial(1000) == (expected, expected)
    assert seed.two_loops_pingpong(1000) == (expected, expected)
