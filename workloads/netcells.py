"""Cells that talk to a server process: ``io_socket`` (a model cell whose tasks reach an
echo server), ``echo`` (a load client against one server style) and ``convoy`` (echo
latency while CPU work shares the server's process).

Servers and the load client are shared by a batch's cells (``Bench.resource``): started
by the first cell that needs one, each in its own process group, closed with the batch;
one that dies fails the round that finds it dead and is started afresh for the next.
Where there are two or more CPUs, servers and the client's workers are pinned to
disjoint halves (the same placement every run); the runner itself is never pinned.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .convoy import ConvoyError, ConvoyRefused, ConvoyServer, Unloaded
from .io_socket import close_idle
from .net import STYLES, LoadClient, LoadError, LoadResult, ServerProcess, ServerStartError
from .net._affinity import affinity, pin, split_cpus, usable
from .net._histogram import Histogram
from .net.load import PERCENTILES
from .runner import Bench, Cell, CellError, ModelCell, Round, measured, slowdown_factor, stretched

Starter = Callable[[], tuple[Any, Callable[[], None]]]


@dataclass(frozen=True)
class Placement:
    """Where servers and the client run: disjoint CPUs, or (one CPU) all shared."""

    server_cpus: list[int] | None
    client_cpus: list[int] | None


def _placement(bench: Bench) -> Placement:
    def start() -> tuple[Placement, Callable[[], None]]:
        halves = split_cpus()
        return (Placement(*halves) if halves else Placement(None, None)), lambda: None

    found: Placement = bench.resource("placement", start)
    return found


def _client(bench: Bench, key: str, processes: int, cpus: list[int] | None) -> LoadClient:
    """The batch's load client; one whose worker died is started afresh."""

    def start() -> tuple[LoadClient, Callable[[], None]]:
        started = LoadClient(processes, cpus=cpus)
        started.start()
        return started, started.close

    try:
        found: LoadClient = bench.resource(key, start)
        if found.broken:
            bench.drop(key)
            found = bench.resource(key, start)
    except (LoadError, OSError) as exc:
        raise CellError(f"the load client did not start: {exc}") from exc
    return found


def _cpus(pid: int) -> list[int]:
    """The CPUs a process may run on (empty once it is gone)."""
    try:
        return affinity(pid)
    except OSError:
        return []


def _latencies(loads: list[LoadResult]) -> dict[str, Any]:
    hist = Histogram()
    for load in loads:
        hist.merge(load.histogram)
    return {
        **{f"latency_{name}_ms": hist.percentile(q) / 1e6 for name, q in PERCENTILES.items()},
        "latency_max_ms": hist.max_ns / 1e6,
        "errors": sum(load.errors for load in loads),
    }


# -- io_socket: a model cell against an echo server --------------------------------------


@dataclass(frozen=True)
class IoSocketRound:
    results: list[Any]
    server_cpu_s: float


class IoSocketCell(ModelCell):
    """A model cell whose tasks talk to the batch's echo server (``server_style``, each
    reply ``delay`` s late).  The address is added to each round's parameters, never
    to the cell's: its recorded params stay port-free."""

    def __init__(self, bench: Bench, server_style: str, **kwargs: Any) -> None:
        self.style = server_style
        self.delay = float(kwargs["params"]["delay"])
        self.bench = bench
        self.server()
        super().__init__(bench, **kwargs)

    def server(self) -> ServerProcess:
        key = ("io_socket:server", self.style, self.delay)

        def start() -> tuple[ServerProcess, Callable[[], None]]:
            started = ServerProcess(self.style, extra_args=("--delay", repr(self.delay)))
            try:
                started.start()
            except BaseException:  # also Ctrl-C during start-up: kill its process group
                started.kill()
                raise

            def stop() -> None:
                started.kill()
                close_idle()  # this process's kept-alive connections to it

            return started, stop

        try:
            found: ServerProcess = self.bench.resource(key, start)
        except (ServerStartError, OSError) as exc:
            raise CellError(f"io_socket: the echo server did not start: {exc}") from exc
        if not found.alive():
            self.bench.drop(key)
            raise CellError(f"io_socket: the {self.style} echo server died")
        return found

    def run_params(self) -> dict[str, Any]:
        found = self.server()
        return {**self.params, "address": f"{found.host}:{found.port}"}

    def round(self) -> Round:
        found = self.server()
        before = found.cpu_seconds()
        done = super().round()
        server_cpu = found.cpu_seconds() - before
        return Round(done.seconds, done.cpu_s, IoSocketRound(done.result, server_cpu))

    def problem(self, result: Any) -> str | None:
        return super().problem(result.results)

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        rounds: list[IoSocketRound] = results
        return {
            "server_style": self.style,
            "server_cpu_s": sum(r.server_cpu_s for r in rounds) / len(rounds),
            **super().finish(seconds, results),
        }


def io_socket(bench: Bench, **kwargs: Any) -> Cell:
    return IoSocketCell(bench, **kwargs)


# -- echo: a load client against one server style ----------------------------------------


@dataclass(frozen=True)
class EchoRound:
    load: LoadResult
    server_cpu_s: float


class EchoCell(Cell):
    """Rounds of ``requests`` echoes over ``connections`` against one ``style``'s server.

    Connecting (and one echoed byte per connection, so the server has set up every
    connection) is untimed.  Before its first cell each server idles ``idle_window`` s
    with one connection open: its CPU meanwhile is ``server_idle_cpu_util``.
    """

    def __init__(
        self,
        bench: Bench,
        style: str,
        payload: int,
        connections: int,
        requests: int,
        idle_window: float,
    ) -> None:
        self.bench = bench
        self.style, self.payload, self.connections = style, payload, connections
        self.requests, self.idle_window = requests, idle_window
        self.where = _placement(bench)
        self.slow = slowdown_factor("echo:" + style)
        try:
            started: tuple[ServerProcess, float, list[int]] = bench.resource(
                ("echo:server", style), self.start_server
            )
        except (ServerStartError, OSError) as exc:
            raise CellError(f"echo {style}: {exc}") from exc
        self.process, self.idle_util, self.server_cpus = started
        self.client()

    def client(self) -> LoadClient:
        cpus = self.where.client_cpus
        return _client(self.bench, "echo:client", len(cpus or usable()), cpus)

    def start_server(self) -> tuple[tuple[ServerProcess, float, list[int]], Callable[[], None]]:
        server = ServerProcess(self.style)
        try:
            server.start()
            if self.where.server_cpus:
                pin(server.pid, self.where.server_cpus)
            with socket.create_connection(server.address, timeout=10) as sock:
                sock.sendall(b"warm-up")
                if sock.recv(64) != b"warm-up":
                    raise OSError("the server did not echo")
                time.sleep(0.05)
                before = server.cpu_seconds()
                time.sleep(self.idle_window)
                idle = (server.cpu_seconds() - before) / self.idle_window
        except BaseException:  # also on Ctrl-C: kill the process group
            server.kill()
            raise
        return (server, idle, affinity(server.pid)), server.kill

    def round(self) -> Round:
        if not self.process.alive():
            raise CellError(f"the {self.style} server died")
        load = self.client()
        try:
            load.prepare(*self.process.address, self.connections, self.requests, self.payload)
            before = self.process.cpu_seconds()
            result, seconds = measured(stretched(load.go, self.slow))
        except LoadError as exc:
            raise CellError(f"echo {self.style}: {exc}") from exc
        server_cpu = self.process.cpu_seconds() - before
        return Round(seconds, server_cpu + result.client_cpu_s, EchoRound(result, server_cpu))

    def problem(self, result: Any) -> str | None:
        load: LoadResult = result.load
        if load.errors or not load.verified:
            return f"echo {self.style}: wrong echo: {load.error_samples}"
        if not self.process.alive():
            return f"the {self.style} server died"
        return None

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        rounds: list[EchoRound] = results
        loads = [r.load for r in rounds]
        wall = sum(r.wall_s for r in loads) or float("inf")
        requests = sum(r.requests for r in loads)
        server_cpu = sum(r.server_cpu_s for r in rounds)
        client_cpu = sum(r.client_cpu_s for r in loads)
        figures = {
            "client_processes": loads[0].processes,
            "pinned": self.where.client_cpus is not None,
            "server_cpus": self.server_cpus,
            "client_cpus": _cpus(self.client().pids()[0]),
            "server_idle_cpu_util": self.idle_util,
            "throughput_rps": requests / wall,
            "throughput_mb_s": requests * loads[0].size / wall / 1e6,
            **_latencies(loads),
            "server_cpu_s": server_cpu / len(rounds),
            "client_cpu_s": client_cpu / len(rounds),
        }
        figures["cpu_s"] = figures["server_cpu_s"] + figures["client_cpu_s"]
        figures["server_cpu_util"] = server_cpu / wall
        figures["client_cpu_util"] = client_cpu / wall
        return figures


def echo(bench: Bench, **kwargs: Any) -> Cell:
    if kwargs["style"] not in STYLES:
        raise CellError(f"echo: unknown style {kwargs['style']!r}")
    return EchoCell(bench, **kwargs)


# -- convoy: echo latency beside CPU work ------------------------------------------------

SERVER, CLIENT = "convoy:server", "convoy:client"


@dataclass(frozen=True)
class ConvoyRound:
    load: LoadResult
    server_cpu_s: float
    unloaded: Unloaded
    server_cpus: list[int]
    client_cpus: list[int]


class ConvoyCell(Cell):
    """Rounds of ``requests`` echoes while ``cpu_threads`` CPU workers (``placement``)
    run beside the server thread at ``switch_interval``.  Starting the work and
    connecting are untimed; after each round the work stops and the server's switch
    interval is confirmed restored, or the server is killed."""

    def __init__(
        self,
        bench: Bench,
        placement: str,
        cpu_threads: int,
        switch_interval: float,
        requests: int,
        payload: int,
        connections: int,
    ) -> None:
        self.bench = bench
        self.placement, self.cpu_threads, self.interval = placement, cpu_threads, switch_interval
        self.requests, self.payload, self.connections = requests, payload, connections
        self.where = _placement(bench)
        self.client()
        server = self.server()
        if placement == "processes" and cpu_threads:
            # One untimed cycle of the work: the pool's workers are up before any round.
            self._load(server)
            self._unload(server)

    def client(self) -> LoadClient:
        return _client(self.bench, CLIENT, self.connections, self.where.client_cpus)

    def server(self) -> ConvoyServer:
        def start() -> tuple[ConvoyServer, Callable[[], None]]:
            started = ConvoyServer(cpus=self.where.server_cpus)
            started.start()  # kills its child itself when it cannot start
            return started, started.close

        try:
            found: ConvoyServer = self.bench.resource(SERVER, start)
        except (ConvoyError, OSError) as exc:
            raise CellError(f"convoy: the server did not start: {exc}") from exc
        if not found.alive():
            self.bench.drop(SERVER)
            raise CellError("convoy: the server process died")
        return found

    def _load(self, server: ConvoyServer) -> None:
        try:
            server.load(self.placement, self.cpu_threads, self.interval)
        except ConvoyRefused as exc:  # it answered: its work stopped, its interval restored
            raise CellError(f"convoy: {exc}") from exc
        except ConvoyError as exc:
            # No answer: it is killed, so no process stays with a changed interval.
            self.bench.drop(SERVER)
            raise CellError(f"convoy: {exc}; the server was killed") from exc

    def _unload(self, server: ConvoyServer) -> Unloaded:
        try:
            unloaded = server.unload()
        except ConvoyError as exc:
            self.bench.drop(SERVER)
            raise CellError(
                f"convoy: {exc}; the server was killed (its CPU work or switch interval "
                "could not be confirmed stopped and restored)"
            ) from exc
        if not unloaded.restored:
            self.bench.drop(SERVER)
            raise CellError(
                f"convoy: the server's switch interval is {unloaded.switch_interval_s} after "
                f"the round, not {unloaded.default_switch_interval_s}; the server was killed"
            )
        return unloaded

    def round(self) -> Round:
        server, load = self.server(), self.client()
        try:
            load.prepare(*server.address, self.connections, self.requests, self.payload)
        except LoadError as exc:
            self.bench.drop(CLIENT)
            raise CellError(f"convoy: {exc}") from exc
        self._load(server)
        failure: LoadError | None = None
        try:
            before = server.cpu_seconds()
            result, seconds = measured(load.go)
            server_cpu = server.cpu_seconds() - before
        except LoadError as exc:
            failure = exc
        except BaseException:  # interrupted: stop the work anyway, then go on unwinding
            with contextlib.suppress(CellError):
                self._unload(server)
            raise
        # Also when the round failed: the work stops and the interval is restored.
        unloaded = self._unload(server)
        if failure is not None:
            self.bench.drop(CLIENT)
            raise CellError(
                f"convoy: {failure} (the server's switch interval was restored to "
                f"{unloaded.switch_interval_s})"
            )
        done = ConvoyRound(result, server_cpu, unloaded, _cpus(server.pid), _cpus(load.pids()[0]))
        return Round(seconds, server_cpu + result.client_cpu_s, done)

    def problem(self, result: Any) -> str | None:
        done: ConvoyRound = result
        if done.load.errors or not done.load.verified:
            return f"convoy: wrong echo: {done.load.error_samples}"
        if len(done.unloaded.work) != self.cpu_threads:
            return (
                f"convoy: {self.cpu_threads} CPU workers were asked for, and the server "
                f"reported the work of {len(done.unloaded.work)}: {done.unloaded.work}"
            )
        return None

    def void(self, result: Any) -> str | None:
        # A worker that did no chunk all round never ran (on a busy host the GIL can pass
        # one thread over for a whole round): the round measured fewer workers than the
        # cell says; it is run again, not kept and not a failure of the code.
        work = result.unloaded.work
        if all(work):
            return None
        return (
            f"convoy: a CPU worker did no work all round (chunks per worker {work}): "
            "the round measured fewer workers than asked"
        )

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        rounds: list[ConvoyRound] = results
        loads = [r.load for r in rounds]
        wall = sum(r.wall_s for r in loads)
        count, first = len(rounds), rounds[0]
        rates = [sum(r.unloaded.work) / r.unloaded.seconds for r in rounds]
        return {
            "throughput_rps": sum(r.requests for r in loads) / wall if wall else 0.0,
            **_latencies(loads),
            "server_cpu_s": sum(r.server_cpu_s for r in rounds) / count,
            "client_cpu_s": sum(r.client_cpu_s for r in loads) / count,
            # chunks (python) or hashes (native) per second, all CPU workers together
            "cpu_work_per_s": sum(rates) / count,
            # the child's interval after every round: its default, never left changed
            "switch_interval_restored": all(r.unloaded.restored for r in rounds),
            "default_switch_interval_s": first.unloaded.default_switch_interval_s,
            "client_processes": first.load.processes,
            "pinned": self.where.client_cpus is not None,
            "server_cpus": first.server_cpus,
            "client_cpus": first.client_cpus,
        }


def convoy(bench: Bench, **kwargs: Any) -> Cell:
    return ConvoyCell(bench, **kwargs)
