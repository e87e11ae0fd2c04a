"""Counting instructions under callgrind (workloads.counting, issue #20).

Each counted program below runs once, under ``counting.command()``, and reports what it
did; the tests read its counts.  Without valgrind they skip, unless
BOUNDBENCH_REQUIRE_VALGRIND=1 (a machine that must count fails instead).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from workloads import counting

# Every test that runs Valgrind is marked so; the quick ones at the end read synthetic dumps.
VALGRIND = (pytest.mark.valgrind, pytest.mark.slow)

ROOT = Path(__file__).resolve().parents[1]
# One counted program (interpreter start-up under callgrind is ~3 s, a pool more).
RUN_TIMEOUT_S = 150
# Iterations of the counted loop: ~450 instructions each, ~45 M a task (a round's fixed
# cost in the parent, ~0.5 M, stays under 1 % of a task in the doubling rule).
N = 100_000


def need_valgrind() -> None:
    missing = [tool for tool in ("valgrind", "vgdb", "cc") if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (apt-get install valgrind gcc)"
    if os.environ.get("BOUNDBENCH_REQUIRE_VALGRIND") == "1":
        pytest.fail(f"BOUNDBENCH_REQUIRE_VALGRIND=1 but {reason}")
    pytest.skip(reason)


def counted_run(
    tmp: Path, program: str, *args: str, skip_args: tuple[str, ...] = counting.SKIP_ARGS
) -> tuple[Path, dict[str, Any]]:
    """Run ``program`` (its source) under callgrind; its outdir and its last stdout line.

    The program imports ``counting`` from a copy beside it: importing the ``workloads``
    package takes ~10 s under callgrind, in each process a pool starts by exec."""
    need_valgrind()
    script = tmp / "program.py"
    script.write_text(textwrap.dedent(program))
    shutil.copy(counting.__file__, tmp / "counting.py")
    outdir = tmp / "counts"
    argv, env = counting.command(outdir, skip_args=skip_args)
    done = subprocess.run(
        [*argv, str(script), *args],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return outdir, json.loads(done.stdout.strip().splitlines()[-1])


ROUNDS = """
import json, os, sys, threading
import concurrent.futures as cf
import multiprocessing as mp

import counting


def work(n):
    total = 0
    for i in range(n):
        total += i
    return total


def hold(barrier):
    barrier.wait(60)  # every worker exists before the first task


def threads(n, k):
    started = [threading.Thread(target=work, args=(n,)) for _ in range(k)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()


def main():
    n, method = int(sys.argv[1]), sys.argv[2]
    counter = counting.Counter()
    context = mp.get_context(method)
    start = {"initializer": hold, "initargs": (context.Barrier(2),)}
    with cf.ProcessPoolExecutor(2, mp_context=context, **start) as pool:
        list(pool.map(work, [n] * 4))
        workers = sorted(pool._processes)

        def counted(tag, call):
            counting.zero_pids(workers)
            counter.zero()
            call()
            counter.dump(tag)
            counting.dump_pids(workers, tag)

        counted("warm", lambda: work(n))  # a process's first dump carries extra costs
        for tag in ("serial-a", "serial-b"):
            counted(tag, lambda: work(n))
        for tag, tasks in (("pool2-a", 2), ("pool2-b", 2), ("pool4", 4)):
            counted(tag, lambda: list(pool.map(work, [n] * tasks)))
        counted("threads1", lambda: threads(n, 1))
        counted("threads2", lambda: threads(n, 2))
    print(json.dumps({"self": os.getpid(), "workers": workers, "on": counter.on_valgrind()}))


if __name__ == "__main__":
    main()
"""


@pytest.fixture(scope="module", params=["fork", "forkserver"])
def rounds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Counts of ``ROUNDS``, one program a start method: tag -> {pid: Ir}, and its pids."""
    outdir, said = counted_run(tmp_path_factory.mktemp("rounds"), ROUNDS, str(N), request.param)
    tags = ["serial-a", "serial-b", "pool2-a", "pool2-b", "pool4", "threads1", "threads2"]
    return {tag: counting.read_counts(outdir, tag) for tag in tags}, said


@pytest.mark.valgrind
@pytest.mark.slow
def test_counted_process_is_on_valgrind(rounds: Any) -> None:
    counts, said = rounds
    assert said["on"] is True
    # Every round has the counted process and both workers (dumped by vgdb).
    assert set(counts["pool4"]) == {said["self"], *said["workers"]}


@pytest.mark.valgrind
@pytest.mark.slow
def test_the_same_round_counts_the_same(rounds: Any) -> None:
    counts, said = rounds
    a, b = counts["serial-a"][said["self"]], counts["serial-b"][said["self"]]
    assert abs(a - b) / a < 0.001, (a, b)
    assert 300 * N < a < 700 * N  # a pure-Python loop's iteration: ~450 instructions


@pytest.mark.valgrind
@pytest.mark.slow
def test_pool_workers_are_counted_and_summed(rounds: Any) -> None:
    counts, said = rounds
    serial = counts["serial-a"][said["self"]]
    pool = counts["pool2-a"]
    # The tasks ran in the workers: each did at least part of one, the parent little.
    assert sum(pool[pid] for pid in said["workers"]) > 1.9 * serial
    assert pool[said["self"]] < 0.2 * serial
    # Same round twice: the whole (parent + workers) agrees.
    a, b = sum(counts["pool2-a"].values()), sum(counts["pool2-b"].values())
    assert abs(a - b) / a < 0.01, (a, b)


@pytest.mark.valgrind
@pytest.mark.slow
def test_per_task_count_holds_when_tasks_double(rounds: Any) -> None:
    counts, _ = rounds
    two, four = sum(counts["pool2-a"].values()) / 2, sum(counts["pool4"].values()) / 4
    assert abs(four - two) / two < 0.01, (two, four)


@pytest.mark.valgrind
@pytest.mark.slow
def test_threads_are_counted_in_their_process(rounds: Any) -> None:
    counts, said = rounds
    one, two = counts["threads1"][said["self"]], counts["threads2"][said["self"]]
    assert abs(two - 2 * one) / (2 * one) < 0.03, (one, two)
    # The idle workers ran (next to) nothing meanwhile.
    assert all(counts["threads2"][pid] < 0.01 * one for pid in said["workers"])


SKIPPED = """
import glob, json, os, subprocess, sys, time

import counting

prefix = os.environ[counting.PREFIX_ENV]


def fifos(pid):
    return glob.glob(f"{prefix}-from-vgdb-to-{pid}-*")


def refused(pid):
    try:
        counting.zero_pids([pid], timeout=10)
    except counting.CountingError as exc:
        return str(exc)
    return None


python = sys.executable
server = subprocess.Popen(
    [python, "-m", "workloads.net", "serve", "--style", "threaded", "--port", "0"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
)
load = subprocess.Popen(
    [python, "-m", "workloads.net._load_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
)
listening = server.stdout.readline().decode()
hello = load.stdout.read(4)  # its hello's length: it runs
alive = {"server": server.pid, "load": load.pid}
said = {
    "listening": listening,
    "hello": len(hello),
    "fifos": {name: fifos(pid) for name, pid in alive.items()},
    "refused": {name: refused(pid) for name, pid in alive.items()},
    "own_fifos": len(fifos(os.getpid())),
}
code = "import os; print(os.getpid())"
marked = subprocess.run([python, "-c", code, "bb-not-counted"], capture_output=True, text=True)
traced = subprocess.run([python, "-c", code], capture_output=True, text=True)
said["marked"], said["traced"] = int(marked.stdout), int(traced.stdout)
server.terminate()
load.stdin.close()
server.wait(30)
load.wait(30)
said.update(server=server.pid, load=load.pid)
print(json.dumps(said))
"""


@pytest.mark.valgrind
@pytest.mark.slow
def test_servers_load_workers_and_marked_children_are_not_counted(tmp_path: Path) -> None:
    skip = (*counting.SKIP_ARGS, "bb-not-counted")
    outdir, said = counted_run(tmp_path, SKIPPED, skip_args=skip)
    assert said["listening"].startswith("listening on "), said
    assert said["hello"] == 4
    assert said["own_fifos"] > 0  # the counted process itself is reachable by vgdb
    assert said["fifos"] == {"server": [], "load": []}
    for name in ("server", "load"):
        assert "no FIFO found matching pid" in said["refused"][name], said["refused"]
    files = {path.name for path in outdir.iterdir()}
    for pid in (said["server"], said["load"], said["marked"]):
        assert f"callgrind.{pid}" not in files
    assert f"callgrind.{said['traced']}" in files  # the control: an unmarked child is traced


@pytest.mark.valgrind
@pytest.mark.slow
def test_a_pid_not_under_valgrind_fails_clearly(tmp_path: Path) -> None:
    need_valgrind()
    native = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = time.monotonic()
        with pytest.raises(counting.CountingError, match=rf"pid {native.pid}: .*no FIFO"):
            counting.dump_pids([native.pid], "t", prefix=str(tmp_path / "vgdb"), timeout=10)
        assert time.monotonic() - started < 5
    finally:
        native.kill()
        native.wait()


@pytest.mark.valgrind
@pytest.mark.slow
def test_a_tag_nobody_dumped_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(counting.CountingError, match="no callgrind dump tagged 'r1'"):
        counting.read_counts(tmp_path, "r1")
    with pytest.raises(ValueError, match="letters, digits"):
        counting.read_counts(tmp_path, "a b")


@pytest.mark.valgrind
@pytest.mark.slow
def test_without_valgrind_counting_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(counting.CountingUnavailable, match=r"apt-get install valgrind$") as info:
        counting.facts()
    assert "\n" not in str(info.value)
    with pytest.raises(counting.CountingUnavailable, match="apt-get install valgrind"):
        counting.command(tmp_path / "out")


@pytest.mark.valgrind
@pytest.mark.slow
def test_facts_name_the_tool_the_machine_and_the_real_interpreter(tmp_path: Path) -> None:
    need_valgrind()
    shim = tmp_path / "python"  # like pyenv's: a script that runs the interpreter
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    found = counting.facts(str(shim))
    assert found["valgrind"].startswith("valgrind-")
    assert found["tool"] == "callgrind"
    assert "--collect-atstart=yes" in found["flags"]
    assert found["env"]["PYTHONHASHSEED"] == "0"
    assert found["python_real_path"] == os.path.realpath(sys.executable)
    assert found["cpu_model"]
    argv, env = counting.command(tmp_path / "out", python=str(shim))
    assert argv[-1] == sys.executable  # the script is not what runs under valgrind
    assert Path(env[counting.SHIM_ENV]).is_file()


@pytest.mark.valgrind
@pytest.mark.slow
def test_outside_valgrind_the_counter_does_nothing() -> None:
    need_valgrind()
    counter = counting.Counter()
    assert counter.on_valgrind() is False
    counter.zero()
    counter.dump("nothing")


# -- quick: the reader on synthetic dumps, the flags --------------------------------------


def _dump(path: Path, pid: int, trigger: str, instructions: int) -> None:
    path.write_text(
        f"version: 1\ncreator: callgrind-3.19.0\npid: {pid}\ncmd: python3\npart: 1\n\n"
        f"desc: I1 cache:\ndesc: Timerange: Basic block 0 - 10\ndesc: Trigger: {trigger}\n\n"
        f"positions: line\nevents: Ir\nsummary: {instructions}\n\n\nfl=(1) x.c\n"
        f"totals: {instructions + 5}\n"
    )


def test_the_reader_sums_the_round_tag_and_takes_exits_once(tmp_path: Path) -> None:
    _dump(tmp_path / "callgrind.100.1", 100, "Client Request: round-1", 1_000)
    _dump(tmp_path / "callgrind.200.1", 200, "dump round-1", 2_000)
    _dump(tmp_path / "callgrind.200.2", 200, "dump round-2", 9_999)
    _dump(tmp_path / "callgrind.300", 300, "Program termination", 500)
    # the summary line (what zero cleared), never the totals
    assert counting.read_counts(tmp_path, "round-1") == {100: 1_000, 200: 2_000}
    assert counting.take_exits(tmp_path) == {300: 500}
    assert counting.take_exits(tmp_path) == {}
    with pytest.raises(counting.CountingError, match="round-9"):
        counting.read_counts(tmp_path, "round-9")
    with pytest.raises(ValueError, match="letters, digits"):
        counting.read_counts(tmp_path, "no spaces")


def test_the_flags_count_children_but_not_servers_or_load_workers() -> None:
    flags = counting.flags("/out")
    assert "--trace-children=yes" in flags
    skip = next(f for f in flags if f.startswith("--trace-children-skip-by-arg="))
    for pattern in ("workloads.net", "workloads._convoy_server"):
        assert pattern in skip
    assert "--collect-atstart=yes" in flags
    assert counting.PINNED_ENV["PYTHONHASHSEED"] == "0"
