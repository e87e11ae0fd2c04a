"""Runner processes: what measures the cells, started and refused as the conductor wants,
timing only the round, every wait bounded, nothing left behind."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks._groups import Cell
from benchmarks._harness import Outcome, RunnerProcesses, interleave
from tests._procs import TAG_ENV, describe, live_children, wait_gone
from workloads.runner import PROTOCOL, Bench, Round, RunnerError, RunnerProcess, measured
from workloads.runner import Cell as Prepared

ROOT = Path(__file__).resolve().parents[1]
HERE = "tests.test_runner"
CALL = "workloads.runner.cells:call"


# -- probe kinds (imported by the runner from this module) ------------------------------


class SlowStart(Prepared):
    """Takes ``start_s`` to prepare, nothing to run: start-up must stay out of rounds."""

    def __init__(self, start_s: float) -> None:
        time.sleep(start_s)

    def round(self) -> Round:
        result, seconds = measured(lambda: None)
        return Round(seconds, 0.0, result)


def slow_start(bench: Bench, start_s: float) -> Prepared:
    return SlowStart(start_s)


class Hang(SlowStart):
    def round(self) -> Round:
        time.sleep(60)
        return Round(60.0, 0.0, None)


def hang(bench: Bench) -> Prepared:
    return Hang(0.0)


class Die(SlowStart):
    """SIGKILLs its runner in its round number ``after`` (0: the first)."""

    def __init__(self, after: int) -> None:
        self.left = after

    def round(self) -> Round:
        self.left -= 1
        if self.left < 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().round()


def die(bench: Bench, after: int = 0) -> Prepared:
    return Die(after)


def call(target: str, args: list[Any], expect: Any) -> dict[str, Any]:
    return {"target": target, "args": args, "kwargs": {}, "expect": expect}


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag every process a runner starts carries; none may be left at the end."""
    value = uuid.uuid4().hex
    yield value
    left = wait_gone(value, timeout=15)
    assert left == [], describe(left)


def started(tag: str, **kwargs: Any) -> RunnerProcess:
    runner = RunnerProcess(30, env={TAG_ENV: tag, **kwargs.pop("env", {})}, **kwargs)
    runner.start()
    return runner


# -- the protocol and where a runner comes from ------------------------------------------


@pytest.mark.slow
def test_the_runner_says_who_it_is_and_measures_a_model_cell(tag: str) -> None:
    runner = started(tag)
    try:
        assert runner.info["protocol"] == PROTOCOL
        assert runner.info["tree"] == str(ROOT)
        assert runner.info["python"] == platform.python_version()
        assert runner.info["pid"] != os.getpid()
        kwargs = {
            "workload": "io_sleep",
            "model": "processes",
            "tasks": 4,
            "workers": 2,
            "params": {"k": 1, "d": 0.01},
            "options": {"start_method": "forkserver"},
        }
        assert runner.prepare("c", "workloads.runner.cells:model", kwargs) == {"runner_s": ANY}
        rounds = [runner.round("c", keep=True) for _ in range(3)]
        assert all(r.get("error") is None for r in rounds), rounds
        assert all(0.02 <= r["seconds"] < 1.0 for r in rounds), rounds  # two waves of 10 ms
        assert all(r["cpu_s"] >= 0 for r in rounds)
        extra = runner.finish("c")["extra"]
        assert extra["model_info"] == {"start_method": "forkserver"}
    finally:
        runner.close()
    assert runner.proc is None


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


@pytest.mark.slow
def test_a_wrong_result_or_a_bad_cell_fails_the_cell_not_the_runner(tag: str) -> None:
    runner = started(tag)
    try:
        assert runner.prepare("wrong", CALL, call("builtins:len", [[1, 2]], 3)).get("error") is None
        assert runner.round("wrong", keep=True)["error"] == "expected 3, got 2"
        bad = runner.prepare("bad", "workloads.runner.cells:model", {"nonsense": 1})
        assert bad["error"].startswith("could not prepare the cell: TypeError")
        assert runner.prepare("fine", CALL, call("builtins:len", [[1, 2]], 2)).get("error") is None
        assert "seconds" in runner.round("fine", keep=True)
    finally:
        runner.close()


@pytest.mark.slow
def test_start_up_is_not_inside_a_measured_round(tag: str) -> None:
    """The cell takes 0.5 s to prepare (as a pool's start would); its rounds, timed by
    ``measured`` alone, take microseconds, and so does the first one."""
    runner = started(tag)
    try:
        runner.prepare("slow", f"{HERE}:slow_start", {"start_s": 0.5})
        seconds = [runner.round("slow", keep=True)["seconds"] for _ in range(5)]
    finally:
        runner.close()
    assert max(seconds) < 0.01, seconds


def test_the_hand_off_per_round_is_small_and_measured(tag: str) -> None:
    runner = started(tag)
    try:
        runner.prepare("noop", CALL, call("builtins:len", [[]], 0))
        for _ in range(300):
            runner.round("noop", keep=False)
    finally:
        runner.close()
    handoffs = sorted(runner.handoffs)
    assert len(handoffs) == 300
    median = statistics.median(handoffs)
    print(f"hand-off per round: median {median * 1e6:.0f} us, p90 {handoffs[269] * 1e6:.0f} us")
    assert 0 < median < 0.005


WRAPPERS = {
    # address-space randomisation off, as a count run wants it
    "setarch": ["setarch", platform.machine(), "-R"],
    # the instruction counter's host, without its instrumentation (seconds, not minutes)
    "valgrind": ["valgrind", "--tool=none", "-q"],
}


@pytest.mark.slow
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_the_runner_starts_under_a_wrapper_with_the_environment_given(
    tag: str, wrapper: str
) -> None:
    if shutil.which(WRAPPERS[wrapper][0]) is None:
        pytest.skip(f"{WRAPPERS[wrapper][0]} is not installed")
    runner = started(tag, wrapper=WRAPPERS[wrapper], env={"BOUNDBENCH_PROBE": "given"})
    try:
        assert runner.argv[: len(WRAPPERS[wrapper])] == WRAPPERS[wrapper]
        probe = call("os:getenv", ["BOUNDBENCH_PROBE"], "given")
        assert runner.prepare("env", CALL, probe).get("error") is None
        assert "seconds" in runner.round("env", keep=True)
    finally:
        runner.close()


def copy_tree(into: Path, protocol: int | None = None, runner: bool = True) -> Path:
    """A second code tree: this one's ``workloads`` package, marked as tree B."""
    tree = into / "tree-b"
    shutil.copytree(
        ROOT / "workloads", tree / "workloads", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tree / "workloads" / "_tree_mark.py").write_text("def where():\n    return 'tree b'\n")
    protocol_file = tree / "workloads" / "runner" / "_protocol.py"
    if protocol is not None:
        text = protocol_file.read_text().replace(
            f"PROTOCOL = {PROTOCOL}\n", f"PROTOCOL = {protocol}\n"
        )
        protocol_file.write_text(text)
    if not runner:
        shutil.rmtree(tree / "workloads" / "runner")
    return tree


def test_a_runner_from_another_code_tree_runs_that_trees_code(tag: str, tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    runner = started(tag, tree=tree)
    try:
        assert runner.info["tree"] == str(tree)
        mark = call("workloads._tree_mark:where", [], "tree b")
        assert runner.prepare("mark", CALL, mark).get("error") is None
        assert "seconds" in runner.round("mark", keep=True)
    finally:
        runner.close()


@pytest.mark.parametrize("protocol", [PROTOCOL - 1, PROTOCOL + 1])
def test_a_runner_of_another_protocol_is_refused_in_one_line(
    tag: str, tmp_path: Path, protocol: int
) -> None:
    tree = copy_tree(tmp_path, protocol=protocol)
    with pytest.raises(RunnerError) as refused:
        started(tag, tree=tree)
    message = str(refused.value)
    assert f"speaks runner protocol {protocol}, this session {PROTOCOL}" in message
    assert str(tree) in message
    assert "\n" not in message


def test_a_tree_without_a_runner_is_refused_in_one_line(tag: str, tmp_path: Path) -> None:
    tree = copy_tree(tmp_path, runner=False)
    with pytest.raises(
        RunnerError, match=r"died \(exit code 1\): .*No module named workloads\.runner"
    ):
        started(tag, tree=tree)


def other_python() -> str | None:
    """An interpreter of another version that can import the runner's dependencies."""
    candidates = [
        os.environ.get("BOUNDBENCH_OTHER_PYTHON"),
        *(shutil.which(f"python3.{minor}") for minor in range(10, 15)),
    ]
    for path in filter(None, candidates):
        if not os.path.exists(path):
            continue
        probe = [path, "-c", "import sys, psutil; print(sys.version_info[:2])"]
        done = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=30)
        if done.returncode == 0 and done.stdout.strip() != str(sys.version_info[:2]):
            return path
    return None


@pytest.mark.slow
def test_a_runner_started_by_another_interpreter(tag: str) -> None:
    python = other_python()
    if python is None:
        pytest.skip("no other Python with psutil here (set BOUNDBENCH_OTHER_PYTHON)")
    runner = started(tag, python=python)
    try:
        assert runner.info["python"] != platform.python_version()
        kwargs = {
            "workload": "cpu_loop",
            "model": "threads",
            "tasks": 2,
            "workers": 2,
            "params": {"n": 1000, "yield_every": 10},
            "options": {},
        }
        assert runner.prepare("c", "workloads.runner.cells:model", kwargs).get("error") is None
        assert "seconds" in runner.round("c", keep=True)
    finally:
        runner.close()


@pytest.mark.slow
def test_a_gevent_runner_is_patched_and_this_process_is_not(tag: str) -> None:
    from benchmarks._harness import gevent_patched

    runner = started(tag, patch="gevent.monkey:patch_all")
    try:
        assert runner.info["patched"] == "gevent.monkey:patch_all"
        kwargs = {
            "workload": "io_sleep",
            "model": "gevent",
            "tasks": 100,
            "workers": None,
            "params": {"k": 1, "d": 0.05},
            "options": {},
        }
        assert runner.prepare("g", "workloads.runner.cells:model", kwargs).get("error") is None
        reply = runner.round("g", keep=True)
        assert 0.05 <= reply["seconds"] < 0.5, reply  # 100 sleeps overlapped
        assert runner.finish("g")["extra"]["model_info"] == {"timed_in": "runner"}
    finally:
        runner.close()
    assert gevent_patched() == []


# -- every wait bounded, nothing left behind ---------------------------------------------


@pytest.mark.slow
def test_a_silent_runner_is_killed_at_its_deadline(tag: str) -> None:
    runner = RunnerProcess(0.5, env={TAG_ENV: tag}, grace_s=1.0)
    runner.start()
    runner.prepare("hang", f"{HERE}:hang", {})
    began = time.monotonic()
    with pytest.raises(RunnerError, match=r"did not answer within 1\.5 s"):
        runner.round("hang", keep=True)
    assert time.monotonic() - began < 10
    assert runner.proc is None


@pytest.mark.slow
def test_a_killed_runner_leaves_nothing_and_its_death_is_one_line(tag: str) -> None:
    runner = started(tag)
    kwargs = {
        "workload": "io_sleep",
        "model": "processes",
        "tasks": 2,
        "workers": 2,
        "params": {"k": 1, "d": 0.001},
        "options": {"start_method": "forkserver"},
    }
    runner.prepare("c", "workloads.runner.cells:model", kwargs)
    assert runner.proc is not None
    os.kill(runner.proc.pid, signal.SIGKILL)
    with pytest.raises(RunnerError, match=r"died \(signal SIGKILL\)"):
        runner.round("c", keep=True)
    runner.kill()  # its group: the pool's workers and the forkserver


@pytest.mark.slow
def test_a_dead_conductor_takes_its_runner_and_pools_along(tag: str) -> None:
    script = textwrap.dedent(
        """
        import time
        from workloads.runner import RunnerProcess
        runner = RunnerProcess(30)
        runner.start()
        kwargs = {"workload": "io_sleep", "model": "processes", "tasks": 2, "workers": 2,
                  "params": {"k": 1, "d": 0.001}, "options": {"start_method": "forkserver"}}
        runner.prepare("c", "workloads.runner.cells:model", kwargs)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, TAG_ENV: tag, "PYTHONPATH": str(ROOT)}
    conductor = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert conductor.stdout is not None
        assert conductor.stdout.readline().strip() == "ready"
        os.kill(conductor.pid, signal.SIGKILL)
        conductor.wait(10)
    finally:
        if conductor.poll() is None:
            conductor.kill()
            conductor.wait(10)
        if conductor.stdout is not None:
            conductor.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 1])
def test_a_runner_that_dies_fails_its_cell_and_the_others_get_a_new_runner(
    tag: str, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dying in its first round (before the others ran on it: they run on a new runner)
    or in its second (the others' first rounds were in it: they fail, saying so)."""

    def cell(kind: str, kwargs: dict[str, Any]) -> Cell:
        return Cell(group="g", rounds=2, warmup=0, info={}, kind=kind, kwargs=kwargs)

    cells = {
        "dies": cell(f"{HERE}:die", {"after": after}),
        "a": cell(CALL, call("builtins:len", [[1]], 1)),
        "b": cell(CALL, call("builtins:len", [[1, 2]], 2)),
    }
    monkeypatch.setenv(TAG_ENV, tag)
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=0, opener=RunnerProcesses(30))
    assert "died (signal SIGKILL)" in (outcomes["dies"].error or "")
    for key in "ab":
        if after == 0:  # seed 0 runs "dies" first in the first pass
            assert outcomes[key].error is None
            assert len(outcomes[key].seconds) == 2
        else:
            assert "its runner was lost after" in (outcomes[key].error or ""), key
    assert live_children() == []


def test_any_model_may_name_the_patch_its_runner_applies_first(tag: str) -> None:
    """``Model.runner_patch`` is a ``module:function`` reference, not a fixed list: a
    plugin (eventlet, say) names its own; the runner calls it and says so."""
    runner = started(tag, patch="faulthandler:enable")
    try:
        assert runner.info["patched"] == "faulthandler:enable"
    finally:
        runner.close()
    for bad in ("gevent", "import os", "os:getpid()", ":x"):
        with pytest.raises(ValueError, match="a runner patch is 'module:function'"):
            RunnerProcess(30, patch=bad)
