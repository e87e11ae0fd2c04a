"""io_socket: round trips to a delayed loopback echo server, in every flavour and model.

The flavours agree byte for byte, kept-alive connections are reused and never stale,
the server's ``--delay`` is honoured (and refused when absurd), the address never enters
a cell's recorded parameters, the benchmark module runs and leaves nothing behind, and
the overlapping models come near the ideal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import math
import multiprocessing
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchmarks.catalogue import IO_SOCKET_CELLS, SERVER_STYLE
from tests._cells import planned, prepared
from tests._net_helpers import connect, no_leaks, recv_exactly
from tests._suite_runs import DisabledRun
from workloads import get_workload
from workloads import io_socket as io_socket_module
from workloads._children import child_env
from workloads.io_socket import (
    CONNECT_MODES,
    IO_SOCKET,
    MAX_DELAY,
    close_idle,
    io_socket_coro,
    io_socket_expected,
    io_socket_gen,
    io_socket_sync,
    request,
)
from workloads.models import ModelError, get_model, run_generators, unavailable_models
from workloads.net import ServerProcess
from workloads.net import __main__ as net_main
from workloads.runner import Bench, CellError

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.002


def _start(delay: float, style: str = SERVER_STYLE) -> ServerProcess:
    return ServerProcess(style, extra_args=("--delay", repr(delay))).start()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    running = _start(DELAY)
    try:
        yield running
    finally:
        running.kill()
        close_idle()


def params(server: ServerProcess, **overrides: Any) -> dict[str, Any]:
    base = {"k": 2, "size": 1024, "delay": DELAY, "address": f"{server.host}:{server.port}"}
    return {**base, **overrides}


def run_flavour(flavour: str, task_id: int, kwargs: dict[str, Any]) -> Any:
    fn = IO_SOCKET.task(flavour, **kwargs)
    if flavour == "sync":
        return fn(task_id)
    if flavour == "gen":
        return run_generators([fn(task_id)], timeout=30)[0]
    return asyncio.run(fn(task_id))


# -- the workload -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("connect", CONNECT_MODES)
@pytest.mark.parametrize("size", [1, 8, 9, 1024, 65536])
def test_flavours_agree_byte_for_byte(server: ServerProcess, size: int, connect: str) -> None:
    with no_leaks():
        for task_id in (0, 3):
            kwargs = params(server, k=3, size=size, connect=connect)
            answers = {f: run_flavour(f, task_id, kwargs) for f in ("sync", "gen", "coro")}
            expected = io_socket_expected(task_id, 3, size, DELAY)
            assert answers == {"sync": expected, "gen": expected, "coro": expected}
            assert expected[:2] == (task_id, 3 * size)
        # Kept-alive connections wait in their pools: sync and gen one each, asyncio one
        # per event loop (two: asyncio.run makes one per task).  Closing them leaves
        # nothing behind.
        assert close_idle() == (4 if connect == "keep" else 0)


def test_requests_differ_per_task_and_round_trip() -> None:
    seen = {request(task, index, 64) for task in range(50) for index in range(5)}
    assert len(seen) == 250
    assert io_socket_expected(0)[2] != io_socket_expected(1)[2]


def test_the_ideal_is_one_tasks_delays() -> None:
    assert IO_SOCKET.task_seconds(k=5, size=1024, delay=0.005) == pytest.approx(0.025)
    assert IO_SOCKET.bound == "io"


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"address": ""}, "no server address"),
        ({"address": "10.0.0.1:80"}, "must be a loopback"),
        ({"address": "127.0.0.1"}, "must be a loopback"),
        ({"address": "127.0.0.1:0"}, "must be a loopback"),
        ({"k": 0}, "k=0 must be at least 1"),
        ({"size": 0}, "size=0 must be 1..65536"),
        ({"size": 1 << 20}, "must be 1..65536"),
        ({"delay": -1.0}, "delay=-1.0 must be 0..10.0"),
        ({"delay": math.nan}, "must be 0..10.0"),
        ({"connect": "pool"}, "connect='pool' must be one of"),
    ],
)
def test_bad_parameters_are_refused_in_every_flavour(overrides: dict[str, Any], why: str) -> None:
    kwargs = {"k": 1, "size": 16, "delay": 0.001, "address": "127.0.0.1:9", **overrides}
    with pytest.raises(ValueError, match=why):
        io_socket_sync(0, **kwargs)
    with pytest.raises(ValueError, match=why):
        next(io_socket_gen(0, **kwargs))
    with pytest.raises(ValueError, match=why):
        asyncio.run(io_socket_coro(0, **kwargs))


def _refusing_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed: nothing listens there now


@pytest.mark.parametrize("flavour", ["sync", "gen", "coro"])
def test_no_server_fails_fast_and_closes_the_socket(flavour: str) -> None:
    kwargs = {"k": 1, "size": 16, "delay": 0.001, "address": f"127.0.0.1:{_refusing_port()}"}
    with no_leaks():
        started = time.monotonic()
        with pytest.raises((ConnectionError, ModelError)):
            run_flavour(flavour, 0, kwargs)
        assert time.monotonic() - started < 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_RCVTIMEO: Linux only")
def test_sync_sockets_wait_without_a_poll_and_are_bounded_by_the_kernel(
    server: ServerProcess,
) -> None:
    close_idle()
    io_socket_sync(0, **params(server, connect="keep"))
    (sock,) = [s for idle in io_socket_module._idle.values() for s in idle]
    # No Python timeout (it would poll before every call), the kernel's instead.
    assert sock.gettimeout() is None
    bound = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    assert bound == io_socket_module._KERNEL_TIMEOUT
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16) == bound
    close_idle()


@pytest.mark.slow
def test_a_server_that_never_answers_times_a_sync_task_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(io_socket_module, "IO_TIMEOUT", 0.3)
    monkeypatch.setattr(io_socket_module, "_KERNEL_TIMEOUT", io_socket_module._timeval(0.3))
    # A listener that takes connections (the kernel's backlog) and never answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        for connect in CONNECT_MODES:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                io_socket_sync(0, k=2, size=100, delay=0.0, address=address, connect=connect)
            assert time.monotonic() - started < 5
    assert not any(io_socket_module._idle.values())  # the timed-out connection is closed


_GEVENT_SILENT = """
from gevent import monkey; monkey.patch_all()
import socket, sys, time
from workloads import io_socket
io_socket.IO_TIMEOUT = 0.3
silent = socket.create_server(("127.0.0.1", 0))
address = "127.0.0.1:%d" % silent.getsockname()[1]
started = time.monotonic()
try:
    io_socket.io_socket_sync(0, k=2, size=100, delay=0.0, address=address, connect="fresh")
except TimeoutError as exc:
    print("timeout", round(time.monotonic() - started, 1), exc)
"""


@pytest.mark.slow
@pytest.mark.skipif("gevent" in unavailable_models(), reason="gevent is not installed")
def test_under_gevent_a_task_that_never_gets_an_answer_times_out() -> None:
    """gevent's sockets wait without a timer each; the task's one deadline bounds them."""
    done = subprocess.run(
        [sys.executable, "-c", _GEVENT_SILENT],
        capture_output=True, text=True, timeout=60, env=child_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    word, took, *why = done.stdout.split()
    assert word == "timeout", done.stdout
    assert 0.3 <= float(took) < 5, done.stdout
    assert "round trips took over 0.9 s" in " ".join(why), done.stdout


def test_an_echo_that_differs_fails_the_task() -> None:
    """A server that answers with other bytes: every flavour notices, byte for byte."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def liar() -> None:
            conn, _ = listener.accept()
            with conn:
                data = recv_exactly(conn, 64)
                conn.sendall(data[:10] + b"?" + data[11:])

        kwargs = {"k": 1, "size": 64, "delay": 0.001, "address": f"127.0.0.1:{port}"}
        for flavour in ("sync", "gen", "coro"):
            with cf.ThreadPoolExecutor(1) as pool:
                served = pool.submit(liar)
                with pytest.raises(
                    (ValueError, ModelError), match="differs from the request at byte 10"
                ):
                    run_flavour(flavour, 0, kwargs)
                served.result(timeout=10)


# -- every model ------------------------------------------------------------------------

MODEL_NAMES = [
    pytest.param(name, marks=pytest.mark.skip(reason=unavailable_models()[name]))
    if name in unavailable_models()
    else name
    for name in ("serial", "generator", "threads", "processes", "gevent", "asyncio", "uvloop")
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_returns_the_expected_results(server: ServerProcess, name: str) -> None:
    """The address travels with the task into other processes (pools, gevent's worker)."""
    kwargs = params(server)
    expected = [io_socket_expected(i, 2, 1024, DELAY) for i in range(6)]
    try:
        with get_model(name, workers=3 if name in ("threads", "processes") else None) as model:
            assert model.run(get_workload("io_socket"), kwargs, 6) == expected
    finally:
        close_idle()


# -- kept-alive connections ------------------------------------------------------------


def _local_ports_to(server: ServerProcess) -> set[int]:
    """This process's established connections to ``server``, by local port."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="inet")
        if c.raddr and c.raddr.port == server.port and c.status == psutil.CONN_ESTABLISHED
    }


@pytest.mark.slow
@pytest.mark.parametrize("connect", CONNECT_MODES)
@pytest.mark.parametrize("name", ["threads", "generator", "asyncio"])
def test_kept_alive_connections_are_reused_across_rounds(
    server: ServerProcess, name: str, connect: str
) -> None:
    """keep: the first round opens a connection per task in flight, later rounds reuse
    them (the same local ports); fresh: every task closes its own."""
    close_idle()  # other tests' connections to this server
    kwargs = params(server, connect=connect)
    expected = [io_socket_expected(i, 2, 1024, DELAY) for i in range(6)]
    try:
        with get_model(name, workers=6 if name == "threads" else None) as model:
            assert model.run(IO_SOCKET, kwargs, 6) == expected
            first = _local_ports_to(server)
            for _ in range(2):
                assert model.run(IO_SOCKET, kwargs, 6) == expected
                assert _local_ports_to(server) == first
            assert len(first) == (6 if connect == "keep" else 0)
    finally:
        close_idle()
    assert not _local_ports_to(server)


class _HangUpAfterOne:
    """A server that echoes one request per connection, then closes it."""

    def __init__(self, size: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # looks at `stopping` that often
        self.size = size
        self.connections = 0
        self.closed = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(10)
                conn.sendall(recv_exactly(conn, self.size))
            self.closed.set()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()


@pytest.mark.slow
@pytest.mark.parametrize("tcp_info", [True, False], ids=["tcp_info", "poll"])
@pytest.mark.parametrize("flavour", ["sync", "gen", "coro"])
def test_a_kept_connection_the_server_closed_is_replaced(
    flavour: str, tcp_info: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second task finds the first one's connection closed by the server while it
    sat in the pool: it drops it and opens another, and the echo comes back.  Both
    checks: Linux's TCP state, and the poll used where TCP_INFO is missing."""
    if not tcp_info:
        monkeypatch.setattr(io_socket_module, "_TCP_INFO", None)
    hang_up = _HangUpAfterOne(64)
    kwargs = {"k": 1, "size": 64, "delay": 0.0, "address": hang_up.address, "connect": "keep"}
    fn = IO_SOCKET.task(flavour, **kwargs)
    loop = asyncio.new_event_loop()  # one loop for both tasks: its pool is per loop

    def task(task_id: int) -> Any:
        if flavour == "sync":
            return fn(task_id)
        if flavour == "gen":
            return run_generators([fn(task_id)], timeout=30)[0]
        return loop.run_until_complete(fn(task_id))

    try:
        with no_leaks():
            assert task(0) == io_socket_expected(0, 1, 64, 0.0)
            assert hang_up.closed.wait(10)
            time.sleep(0.05)  # the server's FIN crosses loopback
            assert task(1) == io_socket_expected(1, 1, 64, 0.0)
            assert hang_up.connections == 2
            # The second connection, closed by the server too, is the only one left.
            assert close_idle() == 1
            loop.close()
            gc.collect()
    finally:
        loop.close()
        hang_up.close()


def _idle_in_child(host: str, port: int) -> bool:
    from workloads.io_socket import _take

    return _take("sync", host, port) is not None


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_use_its_parents_connections(server: ServerProcess) -> None:
    """Two processes on one TCP connection would read each other's replies."""
    try:
        io_socket_sync(0, **params(server, connect="keep"))
        assert _idle_in_child(server.host, server.port)  # here: the kept connection...
        io_socket_sync(0, **params(server, connect="keep"))  # ...taken, given back
        with multiprocessing.get_context("fork").Pool(1) as pool:
            answer = pool.apply_async(_idle_in_child, (server.host, server.port))
            assert answer.get(timeout=30) is False
    finally:
        close_idle()


# -- the server's --delay ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", net_main.DELAY_STYLES)
def test_the_server_waits_its_delay_before_each_reply(style: str) -> None:
    delay = 0.05
    with _start(delay, style) as slow, connect(slow.address) as sock:
        for size in (100, 60_000):
            payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            started = time.monotonic()
            sock.sendall(payload)
            assert recv_exactly(sock, size) == payload
            took = time.monotonic() - started
            assert delay <= took < delay + 2.0, took


@pytest.mark.slow
@pytest.mark.parametrize("style", net_main.DELAY_STYLES)
def test_delayed_replies_overlap_across_connections(style: str) -> None:
    """One delay line for all: 20 connections' replies are not served one after another."""
    delay = 0.1
    with _start(delay, style) as slow:
        socks = [connect(slow.address) for _ in range(20)]
        try:
            started = time.monotonic()
            for index, sock in enumerate(socks):
                sock.sendall(b"%04d" % index)
            for index, sock in enumerate(socks):
                assert recv_exactly(sock, 4) == b"%04d" % index
            took = time.monotonic() - started
        finally:
            for sock in socks:
                sock.close()
    assert delay <= took < delay * 5, took


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workloads.net", "serve", *args],
        capture_output=True, text=True, timeout=60, env=child_env(),
        start_new_session=True, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (
            ["--style", "asyncio_protocol", "--delay", "-0.1"],
            "--delay: must be 0..10 seconds, got -0.1",
        ),
        (
            ["--style", "asyncio_protocol", "--delay", "nan"],
            "--delay: must be 0..10 seconds, got nan",
        ),
        (
            ["--style", "asyncio_protocol", "--delay", "inf"],
            "--delay: must be 0..10 seconds, got inf",
        ),
        (
            ["--style", "asyncio_protocol", "--delay", "1e9"],
            "--delay: must be 0..10 seconds, got 1e9",
        ),
        (["--style", "asyncio_protocol", "--delay", "soon"], "--delay: not a number: 'soon'"),
        (["--style", "select", "--delay", "0.1"], "--delay: style 'select' has none"),
        (["--style", "asyncio", "--delay", "0.1"], "--delay: style 'asyncio' has none"),
        (["--style", "gevent", "--delay", "0.1"], "--delay: style 'gevent' has none"),
    ],
)
def test_a_bad_delay_is_a_one_line_exit_2(args: list[str], why: str) -> None:
    done = _serve(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert why in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_workload_and_the_server_agree_on_the_longest_delay() -> None:
    assert MAX_DELAY == net_main.MAX_DELAY


# -- the benchmark cells -----------------------------------------------------------------


def io_socket_cell(profile: str, connect: str, model: str, tasks: int, workers: int) -> Any:
    return planned(
        "test_io_socket", profile, connect=connect, model=model, tasks=tasks, workers=workers
    )


@pytest.mark.parametrize("profile", ["quick", "standard", "full"])
def test_the_cell_records_no_address(profile: str) -> None:
    cell = io_socket_cell(profile, "keep", "asyncio", 10, 10)
    k, size, delay = IO_SOCKET_CELLS[profile][2]
    assert cell.group == "io_socket:keep:tasks=10"
    assert cell.info["params"] == {"k": k, "size": size, "delay": delay, "connect": "keep"}
    assert "address" not in cell.info["params"]
    assert cell.info["ideal_s"] == pytest.approx(k * delay)


@pytest.mark.parametrize(
    ("model", "workers", "rounds"),
    [("generator", 100, 7), ("threads", 100, 7), ("threads", 6, 2), ("serial", 1, 1)],
)
def test_slow_cells_get_fewer_rounds(model: str, workers: int, rounds: int) -> None:
    """The standard group stays within its budget: serial's 2.6 s rounds are few."""
    cell = io_socket_cell("standard", "fresh", model, 100, workers)
    assert cell.rounds == rounds


def test_a_cell_runs_against_its_own_server_and_kills_it() -> None:
    cell = io_socket_cell("quick", "keep", "generator", 10, 10)
    cache = Bench(timeout=60)
    try:
        runner = prepared(cell, cache)
        measured = runner.round()
        assert runner.problem(measured.result) is None
        (server,) = [entry[0] for entry in cache.resources.values()]
        assert server.alive()
        assert len(_local_ports_to(server)) == 10  # kept alive for the next round
        summary = runner.finish([measured.seconds], [measured.result])
        assert summary["server_style"] == SERVER_STYLE == "selectors"
        assert summary["server_cpu_s"] >= 0
        assert "address" not in cell.info["params"]
    finally:
        cache.close()
    assert not server.alive()
    assert not _local_ports_to(server)  # closed with the server


@pytest.mark.slow
@pytest.mark.parametrize("model", ["asyncio", "threads", "generator"])
def test_a_dead_server_fails_the_round_and_the_next_gets_a_new_one(model: str) -> None:
    """Also with kept-alive connections to the dead server in the pools."""
    cell = io_socket_cell("quick", "keep", model, 4, 4)
    cache = Bench(timeout=60)
    try:
        runner = prepared(cell, cache)
        assert runner.problem(runner.round().result) is None
        (first,) = [entry[0] for entry in cache.resources.values()]
        first.kill()
        with pytest.raises(CellError, match="died"):
            runner.round()
        measured = runner.round()
        assert runner.problem(measured.result) is None
        (second,) = [entry[0] for entry in cache.resources.values()]
        assert second is not first
        assert second.alive()
    finally:
        cache.close()


@pytest.mark.slow
def test_the_module_runs_quick_and_leaves_nothing_behind(quick_disabled_run: DisabledRun) -> None:
    """Read from the session's quick run of every core cell with benchmarks disabled."""
    outcomes = quick_disabled_run.module("benchmarks/test_io_socket.py")
    assert outcomes["passed"] > 0, quick_disabled_run.stdout[-3000:]
    assert outcomes["failed"] == 0, quick_disabled_run.stdout[-3000:]
    assert quick_disabled_run.left == [], "a server or worker outlived the session"


# -- plausibility ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["asyncio", "threads"])
def test_overlapping_models_come_near_the_ideal(name: str) -> None:
    """50 tasks x 3 round trips of 20 ms: the median round within 2x the ideal (the
    issue's target is 0.8 at 100 x 5 x 5 ms on a quiet machine; a loaded one gets room)."""
    tasks, k, delay = 50, 3, 0.02
    with _start(delay) as slow:
        kwargs = {"k": k, "size": 1024, "delay": delay, "address": f"{slow.host}:{slow.port}"}
        expected = [io_socket_expected(i, k, 1024, delay) for i in range(tasks)]
        with get_model(name, workers=tasks if name == "threads" else None) as model:
            model.run(IO_SOCKET, kwargs, tasks)  # warm-up: threads, connections, caches
            seconds = []
            for _ in range(5):
                started = time.perf_counter()
                assert model.run(IO_SOCKET, kwargs, tasks) == expected
                seconds.append(time.perf_counter() - started)
    efficiency = k * delay / statistics.median(seconds)
    assert 0.5 <= efficiency <= 1.0, (efficiency, seconds)
