"""The GIL convoy cells: the effect is there, the switch interval always comes back, and
nothing (thread, process, server) is left behind, also when a round fails.

Timing claims are ratios with generous margins (this host is shared); every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchmarks.catalogue import CONVOY
from tests._net_helpers import no_leaks
from tests._procs import TAG_ENV, describe, is_live, wait_gone
from tests._suite_runs import DisabledRun
from workloads._children import child_env
from workloads.convoy import (
    MIN_REQUESTS,
    PLACEMENTS,
    ConvoyRefused,
    ConvoyServer,
    check_load,
    round_requests,
)
from workloads.net import LoadClient
from workloads.netcells import CLIENT, SERVER, ConvoyCell, ConvoyRound
from workloads.runner import Bench, Cell, CellError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = 0.005


@pytest.fixture(autouse=True)
def _nothing_left_and_interval_untouched() -> Iterator[None]:
    """Every test: no child process, thread or socket left; pytest's interval unchanged."""
    interval = sys.getswitchinterval()
    with no_leaks():
        yield
    assert sys.getswitchinterval() == interval


@pytest.fixture
def cache() -> Iterator[Bench]:
    cache = Bench(timeout=60)
    try:
        yield cache
    finally:
        cache.close()


def cell(
    cache: Bench, placement: str, cpu_threads: int, interval: float, requests: int
) -> ConvoyCell:
    """A convoy cell prepared on ``cache``, as a runner prepares it."""
    return ConvoyCell(cache, placement, cpu_threads, interval, requests, 64, 1)


def shared(cache: Bench, key: str) -> Any:
    """A thing the cells share, as the harness's cache holds it (it must be up)."""
    return cache.resources[key][0]


def rps(runner: Cell) -> float:
    measured = runner.round()
    result: ConvoyRound = measured.result
    assert runner.problem(result) is None
    assert result.unloaded.restored
    return result.load.throughput_rps


@pytest.mark.slow
def test_one_cpu_thread_slows_the_server_by_far(cache: Bench) -> None:
    """A pure-Python thread beside the server: each request waits for the GIL (~one
    switch interval); alone, a request takes tens of microseconds.  Median of 3
    interleaved rounds each; 2x is a generous floor for a ~100x effect."""
    alone = cell(cache, "threads", 0, DEFAULT, 1000)
    beside = cell(cache, "threads", 1, DEFAULT, 20)
    runs: dict[str, list[float]] = {"alone": [], "beside": []}
    for _ in range(3):
        runs["alone"].append(rps(alone))
        runs["beside"].append(rps(beside))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    assert medians["alone"] >= 2 * medians["beside"], runs


def test_the_child_runs_at_the_cells_interval_and_restores_it() -> None:
    with ConvoyServer() as server:
        default = server.default_switch_interval
        assert default == sys.getswitchinterval()
        server.load("threads", 2, 0.0001)
        during = server.status()
        unloaded = server.unload()
        after = server.status()
    assert during["switch_interval"] == pytest.approx(0.0001)
    assert during["loaded"]
    assert sum(name.startswith("convoy-cpu") for name in during["threads"]) == 2
    assert unloaded.restored
    assert unloaded.switch_interval_s == default
    assert len(unloaded.work) == 2
    assert all(unloaded.work)
    assert after["switch_interval"] == default
    assert not after["loaded"]
    assert not [name for name in after["threads"] if name.startswith("convoy-cpu")]


@pytest.mark.slow
def test_a_refused_load_leaves_the_interval_and_the_child_as_they_were() -> None:
    with ConvoyServer() as server:
        server.load("native", 1, 0.001)
        with pytest.raises(ConvoyRefused, match="already loaded"):
            server.load("threads", 1, 0.0001)  # a second load without an unload
        assert server.status()["switch_interval"] == 0.001  # the first load still holds
        assert server.unload().restored
        assert server.status()["switch_interval"] == server.default_switch_interval
        with pytest.raises(ConvoyRefused, match="unload without load"):
            server.unload()


def _kill_soon(pids: list[int], delay: float) -> threading.Thread:
    def kill() -> None:
        time.sleep(delay)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill, name="killer")
    thread.start()
    return thread


@pytest.mark.slow
def test_a_round_that_fails_restores_the_interval(cache: Bench) -> None:
    """The load client dies in the middle of a slow round (4 CPU threads at 0.1 ms): the
    round fails, the CPU work stops, the child's interval is its default again, and the
    next round runs on a fresh client."""
    runner = cell(cache, "threads", 4, 0.0001, 2000)
    server: ConvoyServer = shared(cache, SERVER)
    client: LoadClient = shared(cache, CLIENT)
    killer = _kill_soon(client.pids(), 0.3)
    with pytest.raises(CellError, match=r"restored to 0\.005"):
        runner.round()
    killer.join(5)
    status = server.status()
    assert status["switch_interval"] == server.default_switch_interval == DEFAULT
    assert not status["loaded"]
    assert not [name for name in status["threads"] if name.startswith("convoy-cpu")]
    assert server.alive()  # it did its job: kept, not killed
    # The next round works (a new client), at the cell's interval, then restored again.
    again = cell(cache, "threads", 1, 0.0001, 50)
    assert rps(again) > 0
    assert server.status()["switch_interval"] == DEFAULT


@pytest.mark.slow
def test_a_pool_worker_that_dies_fails_the_round_and_the_server_goes(
    cache: Bench,
) -> None:
    """A process pool worker killed mid-round: the child cannot vouch for its work, so
    the round fails and the child (with its pool) is killed; the next cell starts a new
    one at the default interval."""
    runner = cell(cache, "processes", 2, 0.001, 10_000)
    server: ConvoyServer = shared(cache, SERVER)
    group = server.pids()
    # The pool's workers are the forkserver's children (they share its command line).
    workers = [
        worker.pid
        for helper in psutil.Process(server.pid).children()
        if "forkserver" in " ".join(helper.cmdline())
        for worker in helper.children()
    ]
    assert workers, "the pool's workers should be up after prepare"
    killer = _kill_soon(workers[:1], 0.1)
    with pytest.raises(CellError, match="server was killed"):
        runner.round()
    killer.join(5)
    assert SERVER not in cache.resources
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) and _alive(pid) for pid in group):
        assert time.monotonic() < deadline, "the old server's group is still there"
        time.sleep(0.05)
    fresh = cell(cache, "processes", 1, DEFAULT, 200)
    assert rps(fresh) > 0
    new_server: ConvoyServer = shared(cache, SERVER)
    assert new_server.pid != group[0]
    assert new_server.status()["switch_interval"] == DEFAULT


def _alive(pid: int) -> bool:
    try:
        return is_live(psutil.Process(pid))
    except psutil.Error:  # no such process by the time it is looked up
        return False


@pytest.mark.slow
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_every_placement_runs_and_stops_its_workers(cache: Bench, placement: str) -> None:
    runner = cell(cache, placement, 2, DEFAULT, 30)
    measured = runner.round()
    assert runner.problem(measured.result) is None
    assert len(measured.result.unloaded.work) == 2
    server: ConvoyServer = shared(cache, SERVER)
    status = server.status()
    assert not [name for name in status["threads"] if name.startswith("convoy-cpu")]


@pytest.mark.slow
def test_a_starved_worker_voids_the_round_and_a_missing_one_fails_it(cache: Bench) -> None:
    """A worker the GIL passed over all round (work 0) makes the round void, to be run
    again by the harness; a server that reports the wrong number of workers is wrong."""
    runner = cell(cache, "threads", 4, 0.001, 30)
    measured: ConvoyRound = runner.round().result
    assert runner.problem(measured) is None
    assert runner.void(measured) is None
    assert all(measured.unloaded.work)

    def with_work(work: list[int]) -> ConvoyRound:
        return replace(measured, unloaded=replace(measured.unloaded, work=work))

    starved = with_work([5, 16, 20, 0])  # what a default run here once reported
    assert runner.problem(starved) is None
    assert "did no work all round" in (runner.void(starved) or "")
    assert "reported the work of 3" in (runner.problem(with_work([5, 16, 20])) or "")


@pytest.mark.slow
def test_a_dead_parent_takes_the_child_and_its_pool_along(tmp_path: Path) -> None:
    """pytest killed with SIGKILL (a CI timeout): the convoy child, the pool's workers
    and the load client's worker all go (tagged processes, wherever reparented)."""
    tag = f"convoy-{os.getpid()}-{time.monotonic_ns()}"
    script = (
        "import sys, time\n"
        "from workloads.convoy import ConvoyServer\n"
        "from workloads.net import LoadClient\n"
        "server = ConvoyServer().start()\n"
        "client = LoadClient(1).start()\n"
        "server.load('processes', 2, 0.001)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = child_env()
    env[TAG_ENV] = tag
    # Killed processes cannot remove multiprocessing's temporary folders: this test's own.
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        left = wait_gone(tag, timeout=15)
        assert not left, describe(left)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        for p in wait_gone(tag, timeout=0.1):  # never leave them, even when failing
            p.kill()


def test_request_counts_are_fixed_per_cell_and_sized_to_short_rounds() -> None:
    for name, profile in CONVOY.items():
        assert len(set(profile[0])) == len(profile[0]), name
        for key in profile[0]:
            requests = round_requests(*key)
            assert requests == round_requests(*key) >= MIN_REQUESTS
    standard = CONVOY["standard"][0]
    assert len(standard) == 16
    assert {(p, n) for p, n, i in standard if i == 0.005} >= {
        ("threads", 0),
        ("threads", 4),
        ("native", 1),
        ("native", 4),
        ("processes", 1),
        ("processes", 4),
    }
    # the slow cells get few requests, the fast ones many
    assert round_requests("threads", 4, 0.005) < 20 < 1000 < round_requests("threads", 0, 0.005)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nowhere", 1, 0.005), "unknown placement"),
        (("threads", -1, 0.005), "cpu_threads must be"),
        (("threads", 1, 0.0), "switch_interval must be"),
        (("threads", 1, 2.0), "switch_interval must be"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(
    args: tuple[str, int, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_load(*args)


@pytest.mark.slow
def test_the_child_refuses_bad_options_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workloads._convoy_server", "--cpus", "x,y"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--cpus" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_quick_profile_passes_with_benchmark_disable(quick_disabled_run: DisabledRun) -> None:
    """Read from the session's quick run of every core cell with benchmarks disabled."""
    outcomes = quick_disabled_run.module("benchmarks/test_convoy.py")
    assert outcomes == Counter(passed=len(CONVOY["quick"][0])), quick_disabled_run.stdout[-3000:]
    assert quick_disabled_run.left == []


@pytest.mark.slow
def test_cells_keep_the_contract_and_show_the_convoy(quick_run: dict[str, Any]) -> None:
    """Two quick cells measured by the harness (read from the session's quick run of
    every core cell, which left nothing behind): the contract's keys, the interval
    restored in every round, and the CPU thread's cell slower per request."""
    cells: dict[int, dict[str, Any]] = {}
    for bench in quick_run["benchmarks"]:
        if bench["name"] not in ("test_convoy[threads-0-0.005]", "test_convoy[threads-1-0.005]"):
            continue
        info = bench["extra_info"]
        cells[info["cpu_threads"]] = bench
        assert bench["group"] == "convoy"
        assert info["bound"] == "net"
        assert info["workload"] == "convoy"
        assert info["model"] == "threads"
        assert info["tasks"] == info["workers"] == info["connections"] == 1
        assert info["cpu_placement"] == "threads"
        assert info["switch_interval_s"] == DEFAULT
        assert info["switch_interval_restored"] is True
        assert info["default_switch_interval_s"] == DEFAULT
        assert info["params"]["requests"] == info["requests"]
        for key in ("throughput_rps", "latency_p50_ms", "latency_p99_ms"):
            assert isinstance(info[key], float)
            assert info[key] > 0
        assert info["latency_p50_ms"] <= info["latency_p99_ms"]
        assert len(bench["stats"]["data"]) == CONVOY["quick"][1]
    assert set(cells) == {0, 1}
    per_request = {
        n: bench["stats"]["median"] / bench["extra_info"]["requests"] for n, bench in cells.items()
    }
    assert per_request[1] >= 2 * per_request[0], per_request
    assert cells[1]["extra_info"]["cpu_work_per_s"] > 0
    assert cells[0]["extra_info"]["cpu_work_per_s"] == 0
