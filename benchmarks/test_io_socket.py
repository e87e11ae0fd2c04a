"""Socket I/O cells: io_socket under every model, against a loopback echo server.

Each task makes ``k`` round trips of ``size`` bytes over one connection to one
echo server (``python -m workloads.net serve --style selectors --delay DELAY``,
a process of its own, like a remote service), which echoes every request ``delay``
seconds after it arrived (one delay line for all connections, a few microseconds of
the server's CPU per request).  Groups ``io_socket:CONNECT:tasks=N``; the ideal is
``k * delay`` (one task's round trips, all tasks overlapped), so efficiency shows what
sockets add to ``io_sleep``:
- ``keep``: tasks reuse their process's idle connections, kept alive across tasks and
  rounds (the first, warm-up round opens them): system calls, buffers and wake-ups;
- ``fresh``: each task opens and closes its own connection: the same, plus the TCP
  handshake and each model's set-up of a connection.

The server's address reaches the tasks as the workload's ``address`` parameter, added
at run time by this module's runner and never part of the cell: ``extra_info["params"]``
is ``{k, size, delay, connect}``, the same in every run whatever port the server got.
It travels with the task itself (a pickled ``functools.partial`` for process pools and
gevent's worker), so it reaches every process whenever that process was started.

The server is a resource of the batch (``ModelCache.resource``): started by the first
cell that needs it, killed with the batch's models, this process's idle connections
closed with it (and at the session's end, on failure or Ctrl-C too: it runs in its own
process group, killed as a group, and ends itself if pytest dies).  A server that dies
fails the round that finds it dead and is started afresh for the next.  Results are
checked against the workload's ``expected`` (computed without a server, so no serial
reference run is needed), and every task compares each echo with its request byte for
byte.  ``extra_info`` adds ``server_style`` and ``server_cpu_s`` (the server's CPU per
round, not in ``cpu_s``: the server stands for the remote end).

Profiles (``IO_SOCKET_PROFILES``; cells that cannot overlap much take over
``SLOW_CELL_S`` a round and get the profile's few slow rounds, and serial and two
processes, seconds a round, fewer still):
- ``quick``: 50 tasks x 3 round trips of 1 KiB, 5 ms delay, kept-alive connections.
- ``standard``: 100 tasks x 5 round trips of 1 KiB, 5 ms delay (the issue's target),
  kept-alive and fresh connections.
- ``full``: 10, 100 and 500 tasks, the same round trips, both, more rounds.  Kept-alive
  connections stay open while the batch runs: four in-process pools (sync, gen, asyncio,
  uvloop) hold up to 4 x 500 descriptors in pytest's process, and as many in the
  server.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pytest

from benchmarks._harness import (
    Cell,
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
    parametrize_cells,
    timed_run,
)
from benchmarks._testhooks import slowdown_factor
from workloads import get_workload
from workloads.io_socket import CONNECT_MODES, close_idle
from workloads.models import Model
from workloads.net import ServerProcess, ServerStartError

WORKLOAD = "io_socket"
SERVER_STYLE = "selectors"
# A cell whose rounds take longer than this (serial, small pools) gets the slow rounds,
# and past VERY_SLOW_CELL_S (serial, two processes: seconds a round) the very slow ones
# (one in the standard profile: the group's budget is 15 s; their efficiency is plain
# from the ideal either way).
SLOW_CELL_S = 0.3
VERY_SLOW_CELL_S = 1.0


@dataclass(frozen=True)
class IoSocketProfile:
    tasks: tuple[int, ...]
    # how tasks get their connection (workloads.io_socket.CONNECT_MODES)
    connects: tuple[str, ...]
    k: int
    size: int
    delay: float
    rounds: int
    warmup: int
    slow_rounds: int
    # rounds of the cells that take seconds a round (serial, two processes)
    very_slow_rounds: int

    def params(self, connect: str) -> dict[str, Any]:
        return {"k": self.k, "size": self.size, "delay": self.delay, "connect": connect}


IO_SOCKET_PROFILES = {
    "quick": IoSocketProfile(
        (50,),
        ("keep",),
        k=3,
        size=1024,
        delay=0.005,
        rounds=5,
        warmup=1,
        slow_rounds=1,
        very_slow_rounds=1,
    ),
    # 7 rounds of ~30 ms cells, as the io_sleep cells; six threads 2 rounds, serial
    # (2.6 s a round) and two processes (1.3 s) one.  About 10 s for each connect mode
    # on a quiet host, the server's and the pools' start-up included.
    "standard": IoSocketProfile(
        (100,),
        CONNECT_MODES,
        k=5,
        size=1024,
        delay=0.005,
        rounds=7,
        warmup=1,
        slow_rounds=2,
        very_slow_rounds=1,
    ),
    "full": IoSocketProfile(
        (10, 100, 500),
        CONNECT_MODES,
        k=5,
        size=1024,
        delay=0.005,
        rounds=10,
        warmup=2,
        slow_rounds=3,
        very_slow_rounds=3,
    ),
}


def io_socket_profile(config: pytest.Config) -> tuple[str, IoSocketProfile]:
    name = config.getoption("profile", default="standard")
    name = name if name in IO_SOCKET_PROFILES else "standard"
    return name, IO_SOCKET_PROFILES[name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"model", "tasks", "workers"} <= set(metafunc.fixturenames):
        _, profile = io_socket_profile(metafunc.config)
        metafunc.parametrize("connect", profile.connects)
        parametrize_cells(metafunc, "io", profile.tasks)


# -- the server -------------------------------------------------------------------------


def _server_key(delay: float) -> tuple[str, float]:
    return ("io_socket:server", delay)


def _start_server(delay: float) -> Callable[[], tuple[ServerProcess, Callable[[], None]]]:
    def start() -> tuple[ServerProcess, Callable[[], None]]:
        # Started from the main thread (the harness runs cells there): the server's
        # exit-with-parent signal is tied to the thread that started it.
        server = ServerProcess(SERVER_STYLE, extra_args=("--delay", repr(delay)))
        try:
            server.start()
        except BaseException:  # also Ctrl-C during start-up: kill its process group
            server.kill()
            raise

        def stop() -> None:
            server.kill()
            close_idle()  # this process's kept-alive connections to it

        return server, stop

    return start


# -- the cell ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IoSocketRound:
    results: list[Any]
    server_cpu_s: float


@dataclass(frozen=True)
class IoSocketCell(ModelCell):
    """A model cell whose tasks talk to the batch's echo server."""

    def prepare(self, cache: ModelCache) -> Runner:
        return _IoSocketRunner(self, cache)

    def summary(self, results: list[Any]) -> dict[str, Any]:
        rounds: list[IoSocketRound] = results
        return {
            "server_style": SERVER_STYLE,
            "server_cpu_s": sum(r.server_cpu_s for r in rounds) / len(rounds),
        }


class _IoSocketRunner(Runner):
    def __init__(self, cell: IoSocketCell, cache: ModelCache) -> None:
        self.cell = cell
        self.cache = cache
        self.workload = get_workload(WORKLOAD)
        self.params = dict(cell.params)
        self.expected = cache.reference(self.workload, self.params, cell.tasks)
        self.slow = slowdown_factor(WORKLOAD)
        self.server()
        self.model()  # start it now: a model that cannot start fails before any timing

    def server(self) -> ServerProcess:
        key = _server_key(self.params["delay"])
        try:
            server: ServerProcess = self.cache.resource(key, _start_server(self.params["delay"]))
        except (ServerStartError, OSError) as exc:
            raise CellError(f"io_socket: the echo server did not start: {exc}") from exc
        if not server.alive():
            self.cache.drop(key)  # the next round starts a fresh one
            raise CellError(f"io_socket: the {SERVER_STYLE} echo server died")
        return server

    def model(self) -> Model:
        cell = self.cell
        return self.cache.get(cell.model, cell.workers, **cell.options)

    def round(self) -> Round:
        server = self.server()
        # Added here, never stored in the cell: the recorded params stay port-free.
        params = {**self.params, "address": f"{server.host}:{server.port}"}
        model = self.model()
        server_before = server.cpu_seconds()
        timed = timed_run(
            model, lambda: model.run(self.workload, params, self.cell.tasks), self.slow
        )
        server_cpu = server.cpu_seconds() - server_before
        return Round(timed.seconds, timed.cpu_s, IoSocketRound(timed.result, server_cpu))

    def finish(self, seconds: list[float]) -> dict[str, Any]:
        return {"model_info": model_facts(self.model())}

    def problem(self, result: Any) -> str | None:
        got: list[Any] = result.results
        if got == self.expected:
            return None
        return (
            f"{self.cell.model} returned wrong results for io_socket x {self.cell.tasks}: "
            f"{describe_mismatch(self.expected, got)}"
        )


def io_socket_cell(
    config: pytest.Config, connect: str, model: str, tasks: int, workers: int
) -> Cell:
    _, profile = io_socket_profile(config)
    # One round's least time: one task's round trips per wave of ``workers`` tasks.
    least = profile.k * profile.delay * math.ceil(tasks / workers)
    if least > VERY_SLOW_CELL_S:
        rounds, warmup = profile.very_slow_rounds, 0
    elif least > SLOW_CELL_S:
        rounds, warmup = profile.slow_rounds, 0
    else:
        rounds, warmup = profile.rounds, profile.warmup
    base = model_cell(
        get_profile(config),
        workload=WORKLOAD,
        model=model,
        tasks=tasks,
        workers=workers,
        params=profile.params(connect),
        group=f"{WORKLOAD}:{connect}:tasks={tasks}",
        rounds=rounds,
        warmup=warmup,
        start_method=config.getoption("start_method"),
    )
    return IoSocketCell(**{f.name: getattr(base, f.name) for f in fields(base)})


@cell_builder(io_socket_cell)
def test_io_socket(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    connect: str,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)
