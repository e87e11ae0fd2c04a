"""Network cells: every echo server style x payload x connections, over loopback.

One server process per style (own process group, killed when its cells are done, so a
spinning ``nonblocking`` server never steals a core from another style's cells) and one
load client whose worker processes serve every cell.  Each round connects untimed (and
echoes one byte per connection, so the server has accepted and set up every connection),
then times ``requests`` echoes spread over the connections; every echoed byte is
verified.  ``extra_info`` carries throughput, latency percentiles (over all measured
rounds) and the server's and the client's CPU seconds per round.

Repeatability (the change of a cell's median between unchanged runs is what the
regression check judges):
- The echo cells are interleaved trials of the harness: every style's server is up at
  once (idle in the kernel when not served) and all their cells' rounds run in a random
  order that changes every pass, so a slow phase of the host costs many cells of many
  styles a round each instead of one style all its rounds.  The ``nonblocking`` server
  spins a core even while idle, so its cells are a batch of their own.
- Where there are two or more CPUs, the server and the load client's workers are pinned
  to disjoint halves (``server_cpus``, ``client_cpus`` in ``extra_info``), so every run
  measures the same placement; unpinned, the scheduler let them share a core in some
  runs and not in others.  Only those processes are pinned, never pytest's own (a
  forkserver would hand its mask to every later pool worker).
- One client worker per client CPU: more workers on the same CPU only add context
  switches; connections beyond one per worker share it on epoll.
- A warm-up round per cell, and rounds of a few thousand requests (~0.1-0.3 s): long
  enough that one scheduler hiccup is a small part of a round, short enough that the
  standard profile's 81 cells stay within ~85 s.

Profiles (budget for all net cells on a 2-core machine):
- ``quick`` (~10 s, the nine servers' start-ups included): 1 KiB x 10 connections per
  style, 3000 requests, 5 rounds after 1 warm-up.
- ``standard`` (~80 s): 64 B, 1 KiB, 64 KiB x 1, 10, 100 connections;
  2000 requests (600 at 64 KiB) a round, 9 rounds after 1 warm-up.
- ``full`` (~5 min): the same matrix, 5x the requests, 5 rounds after 1 warm-up.

Before its first cell each server idles for ``idle_window`` seconds with one connection
open; its CPU use meanwhile is ``server_idle_cpu_util`` (cores): ~0 for every style that
waits in the kernel, ~1 for the ``nonblocking`` busy-poll loop.

``BOUNDBENCH_SLOWDOWN=echo:STYLE=F`` (test only) stretches each timed round of that
style's cells to F times its length, inside the timed region, parameters unchanged.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    Cell,
    CellError,
    ModelCache,
    Round,
    Runner,
    Trials,
    cell_builder,
    measure,
)
from benchmarks._testhooks import slowdown_factor
from workloads.net import (
    STYLES,
    LoadClient,
    LoadError,
    LoadResult,
    ServerProcess,
    ServerStartError,
    unavailable_styles,
)
from workloads.net._affinity import affinity, pin, split_cpus, usable
from workloads.net._histogram import Histogram
from workloads.net.load import PERCENTILES


@dataclass(frozen=True)
class NetProfile:
    payloads: tuple[int, ...]
    connections: tuple[int, ...]
    # payload -> requests per round (over all connections)
    requests: dict[int, int]
    rounds: int
    warmup: int
    idle_window: float


NET_PROFILES = {
    # 5 rounds: the fewest with which the regression check's rank test can decide.
    "quick": NetProfile((1024,), (10,), {1024: 3000}, rounds=5, warmup=1, idle_window=0.3),
    # Many shorter rounds: a round's time spreads by tens of percent on a shared host, and
    # the median of 9 interleaved rounds holds better than that of 5 longer ones.
    "standard": NetProfile(
        (64, 1024, 65536),
        (1, 10, 100),
        {64: 1200, 1024: 1200, 65536: 400},
        rounds=9,
        warmup=1,
        idle_window=0.5,
    ),
    "full": NetProfile(
        (64, 1024, 65536),
        (1, 10, 100),
        {64: 15000, 1024: 15000, 65536: 4000},
        rounds=5,
        warmup=1,
        idle_window=2.0,
    ),
}


def _profile_name(config: pytest.Config) -> str:
    name = config.getoption("profile", default="standard")
    return name if name in NET_PROFILES else "standard"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.function.__name__ != "test_echo":
        return
    profile = NET_PROFILES[_profile_name(metafunc.config)]
    missing = unavailable_styles()
    styles = [
        pytest.param(
            name, id=name, marks=pytest.mark.skipif(name in missing, reason=missing.get(name, ""))
        )
        for name in STYLES
    ]
    # All cells of a style run together, as one batch, on one server process.
    metafunc.parametrize("style", styles)
    metafunc.parametrize("payload", profile.payloads, ids=str)
    metafunc.parametrize("connections", profile.connections, ids=str)


@dataclass
class RunningServer:
    process: ServerProcess
    idle_cpu_util: float
    cpus: list[int]


@dataclass(frozen=True)
class Placement:
    """Where the server and the client run: disjoint CPUs, or (one CPU) all shared."""

    server_cpus: list[int] | None
    client_cpus: list[int] | None

    @property
    def client_processes(self) -> int:
        return len(self.client_cpus) if self.client_cpus else len(usable())


def placement() -> Placement:
    halves = split_cpus()
    return Placement(*halves) if halves else Placement(None, None)


def _idle_cpu(server: ServerProcess, window: float) -> float:
    """The server's CPU use (cores) while it holds one idle connection."""
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(b"warm-up")
        assert sock.recv(64) == b"warm-up"
        time.sleep(0.05)
        before = server.cpu_seconds()
        time.sleep(window)
        return (server.cpu_seconds() - before) / window


def _start_server(
    style: str, where: Placement, idle_window: float
) -> Callable[[], tuple[RunningServer, Callable[[], None]]]:
    def start() -> tuple[RunningServer, Callable[[], None]]:
        server = ServerProcess(style)
        try:
            server.start()
            if where.server_cpus:
                pin(server.pid, where.server_cpus)
            running = RunningServer(server, _idle_cpu(server, idle_window), affinity(server.pid))
        except BaseException:  # also on Ctrl-C: kill the process group
            server.kill()
            raise
        return running, server.kill

    return start


def _start_client(where: Placement) -> Callable[[], tuple[LoadClient, Callable[[], None]]]:
    def start() -> tuple[LoadClient, Callable[[], None]]:
        client = LoadClient(where.client_processes, cpus=where.client_cpus)
        client.start()
        return client, client.close

    return start


def _summary(results: list[LoadResult], server_cpu: list[float]) -> dict[str, Any]:
    """Figures over the measured rounds: rates from totals, percentiles from all samples."""
    wall = sum(r.wall_s for r in results)
    requests = sum(r.requests for r in results)
    hist = Histogram()
    for r in results:
        hist.merge(r.histogram)
    size = results[0].size
    rounds = len(results)
    figures = {
        "throughput_rps": requests / wall if wall else 0.0,
        "throughput_mb_s": requests * size / wall / 1e6 if wall else 0.0,
        **{f"latency_{name}_ms": hist.percentile(q) / 1e6 for name, q in PERCENTILES.items()},
        "latency_max_ms": hist.max_ns / 1e6,
        "errors": sum(r.errors for r in results),
        "server_cpu_s": sum(server_cpu) / rounds,
        "client_cpu_s": sum(r.client_cpu_s for r in results) / rounds,
    }
    figures["cpu_s"] = figures["server_cpu_s"] + figures["client_cpu_s"]
    figures["server_cpu_util"] = sum(server_cpu) / wall if wall else 0.0
    figures["client_cpu_util"] = sum(r.client_cpu_s for r in results) / wall if wall else 0.0
    return figures


@dataclass(frozen=True)
class EchoCell(Cell):
    """Echo rounds against one server style: ``requests`` over ``connections``."""

    style: str = ""
    payload: int = 0
    connections: int = 1
    requests: int = 1
    idle_window: float = 0.5

    def prepare(self, cache: ModelCache) -> Runner:
        return _EchoRunner(self, cache)

    def summary(self, results: list[Any]) -> dict[str, Any]:
        rounds: list[EchoRound] = results
        first = rounds[0]
        return {
            "client_processes": first.load.processes,
            "pinned": first.pinned,
            "server_cpus": first.server.cpus,
            "client_cpus": first.client_cpus,
            "server_idle_cpu_util": first.server.idle_cpu_util,
            **_summary([r.load for r in rounds], [r.server_cpu_s for r in rounds]),
        }


@dataclass(frozen=True)
class EchoRound:
    load: LoadResult
    server_cpu_s: float
    server: RunningServer
    client_cpus: list[int]
    pinned: bool


class _EchoRunner(Runner):
    def __init__(self, cell: EchoCell, cache: ModelCache) -> None:
        self.cell = cell
        self.cache = cache
        self.where = cache.resource("net:placement", lambda: (placement(), lambda: None))
        self.slowdown = slowdown_factor("echo:" + cell.style)
        try:
            self.server: RunningServer = cache.resource(
                ("net:server", cell.style),
                _start_server(cell.style, self.where, cell.idle_window),
            )
            self.client()
        except (ServerStartError, LoadError, OSError) as exc:
            raise CellError(f"echo {cell.style}: {exc}") from exc

    def client(self) -> LoadClient:
        client: LoadClient = self.cache.resource("net:client", _start_client(self.where))
        if client.broken:  # a worker died in an earlier round: start afresh
            self.cache.drop("net:client")
            client = self.cache.resource("net:client", _start_client(self.where))
        return client

    def round(self) -> Round:
        cell = self.cell
        server = self.server.process
        if not server.alive():
            raise CellError(f"the {cell.style} server died")
        client = self.client()
        try:
            # Connecting (and one echoed byte per connection) is not timed.
            client.prepare(*server.address, cell.connections, cell.requests, cell.payload)
            cpu_before = server.cpu_seconds()
            started = time.perf_counter()
            result = client.go()
            elapsed = time.perf_counter() - started
        except LoadError as exc:
            raise CellError(f"echo {cell.style}: {exc}") from exc
        if self.slowdown != 1.0:  # test-only: stretch this timed round, nothing else changes
            time.sleep(max(0.0, (self.slowdown - 1.0) * elapsed))
            elapsed = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before
        echo = EchoRound(
            result, server_cpu, self.server, affinity(client.pids()[0]), client.cpus is not None
        )
        return Round(elapsed, server_cpu + result.client_cpu_s, echo)

    def problem(self, result: Any) -> str | None:
        measured: LoadResult = result.load
        if measured.errors or not measured.verified:
            return f"echo {self.cell.style}: wrong echo: {measured.error_samples}"
        if not self.server.process.alive():
            return f"the {self.cell.style} server died"
        return None


# The busy-poll server spins a core even while idle: it runs alone, every other style
# runs beside the others (idle in the kernel when not served).
ALONE = ("nonblocking",)


def _batch(style: str) -> str:
    return style if style in ALONE else "servers"


def echo_cell(config: pytest.Config, style: str, payload: int, connections: int) -> Cell:
    profile_name = _profile_name(config)
    profile = NET_PROFILES[profile_name]
    requests = profile.requests[payload]
    return EchoCell(
        group=f"echo:{payload}B:{connections}c",
        rounds=profile.rounds,
        warmup=profile.warmup,
        batch=f"benchmarks/test_net.py::{_batch(style)}",
        info={
            "bound": "net",
            "workload": "echo",
            "model": style,
            "flavour": STYLES[style].flavour,
            # docs/contract.md: a connection is a task, and all of them are in flight at
            # once; the client's processes are a fact of their own (client_processes).
            "tasks": connections,
            "workers": connections,
            "style": style,
            "connections": connections,
            "params": {"payload": payload, "connections": connections, "requests": requests},
            "profile": profile_name,
            "payload": payload,
            "requests": requests,
            "client": "processes",
        },
        style=style,
        payload=payload,
        connections=connections,
        requests=requests,
        idle_window=profile.idle_window,
    )


@cell_builder(echo_cell)
def test_echo(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    style: str,
    payload: int,
    connections: int,
) -> None:
    measure(benchmark, trials, request.node)
