"""The GIL convoy: echo latency of a server thread while CPU work shares its process.

One echo server thread (in a child process of its own, ``workloads.convoy``) answers a
load client in another process over one connection, request after request, while 0, 1,
2 or 4 CPU workers run beside it:

- ``threads``: pure-Python threads in the server's process, at switch intervals of 5 ms
  (CPython's default), 1 ms and 0.1 ms;
- ``native``: threads hashing with hashlib, which releases the GIL while it hashes;
- ``processes``: the pure-Python loop in a process pool's workers.

A round times a fixed number of requests (lower is better, like every cell); requests/s
and the p50/p99 latency over all measured rounds are in ``extra_info``.  The request
count is fixed per cell (``requests`` in params), sized from what a request takes here:
a round of a slow cell (a request of 1 ms or more) about 0.3 s, of a fast one 0.1 s.
With few requests a round, the slow cells' p99 is close to their slowest request.

Before each round's timing the client connects (untimed) and the CPU work starts, each
worker signalling that it runs; after it, the work stops (a stop event checked between
chunks), the child restores its switch interval and reports it; a round whose interval
cannot be confirmed restored fails, and the child is killed.  The pytest process's own
interval is never changed.  Where there are two or more CPUs, the server's process (its
threads and pool workers alike) and the client are pinned to disjoint halves, as the
echo cells are: on 2 cores, the CPU work shares the server's core, whatever its
placement, so ``native`` and ``processes`` show the OS scheduler's share of the core
where ``threads`` shows the GIL's.

What to expect (2-core VM, CPython 3.11, pinned; the published anchor is CPython 3.9,
"Python behind the scenes #13"): alone, ~25,000 req/s (anchor 30,000); beside 1, 2, 4
pure-Python threads at 5 ms, ~180, 70, 27 req/s (anchor 100, 50, 30): each request waits
about one interval per CPU thread for the GIL (p50 5.2, 16, 33 ms).  One wait per
request, not the anchor's two: the server thread takes the GIL back after its ``send``
before the CPU thread it woke can (on the shared core that thread cannot run until the
server blocks in ``recv``), so only the wait after ``recv`` is paid.  At 0.1 ms, ~4,000
and 1,700 req/s with 1 and 2 threads (anchor 3,200, 1,700), but ~120 with 4 (anchor
1,000), about what 4 threads give at 1 ms: with five threads on one core every GIL
hand-off waits for the OS scheduler, and the interval no longer decides.  ``native`` and
``processes`` leave the median alone (~0.02 ms) and cost the tail instead: p99 of 1-8 ms,
the OS scheduler's time slice on the shared core.

Profiles (2-core machine, measured on a quiet host; up to 2x on a busy one):
``quick`` 5 cells at half the requests (~8 s); ``standard`` threads at all three
intervals x 0, 1, 2, 4 CPU workers, native and processes at 5 ms x 1 and 4 (16 cells,
~23 s); ``full`` every placement at every interval x 1, 2, 4, 3x the requests, 7 rounds
(30 cells, ~2 min).
"""

from __future__ import annotations

import contextlib
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
from workloads.convoy import (
    PLACEMENTS,
    POOL_START_METHOD,
    SWITCH_INTERVALS,
    ConvoyError,
    ConvoyRefused,
    ConvoyServer,
    Unloaded,
)
from workloads.net import LoadClient, LoadError, LoadResult
from workloads.net._affinity import affinity, split_cpus
from workloads.net._histogram import Histogram
from workloads.net.load import PERCENTILES

DEFAULT_INTERVAL = SWITCH_INTERVALS[0]
PAYLOAD = 64
CONNECTIONS = 1
# Seconds a request takes here (2-core VM, CPython 3.11), by placement, CPU workers and
# switch interval; only to size each cell's fixed request count, never to judge it.
_THREADS_REQUEST_S = {
    0.005: {1: 6e-3, 2: 16e-3, 4: 40e-3},
    0.001: {1: 1.4e-3, 2: 3.5e-3, 4: 10e-3},
    0.0001: {1: 0.4e-3, 2: 0.8e-3, 4: 9e-3},
}
_ALONE_REQUEST_S = 0.05e-3
_OFF_GIL_REQUEST_S = {1: 0.1e-3, 2: 0.15e-3, 4: 0.25e-3}
# Timed length of a round: slow cells get longer rounds, so they have a few samples more.
FAST_ROUND_S = 0.1
SLOW_ROUND_S = 0.3
MIN_REQUESTS = 5


def expected_request_s(placement: str, cpu_threads: int, switch_interval: float) -> float:
    if cpu_threads == 0:
        return _ALONE_REQUEST_S
    if placement == "threads":
        return _THREADS_REQUEST_S[switch_interval][cpu_threads]
    return _OFF_GIL_REQUEST_S[cpu_threads] * (2 if switch_interval < 0.001 else 1)


def round_requests(placement: str, cpu_threads: int, switch_interval: float) -> int:
    """The cell's fixed request count per round (two significant digits)."""
    each = expected_request_s(placement, cpu_threads, switch_interval)
    wanted = (SLOW_ROUND_S if each >= 1e-3 else FAST_ROUND_S) / each
    return max(MIN_REQUESTS, int(float(f"{wanted:.2g}")))


CellKey = tuple[str, int, float]


@dataclass(frozen=True)
class ConvoyProfile:
    cells: tuple[CellKey, ...]
    rounds: int
    warmup: int
    # every cell's request count times this
    scale: float = 1.0


def _threads(intervals: tuple[float, ...], counts: tuple[int, ...]) -> list[CellKey]:
    return [("threads", n, i) for i in intervals for n in counts]


def _off_gil(intervals: tuple[float, ...], counts: tuple[int, ...]) -> list[CellKey]:
    return [(p, n, i) for p in ("native", "processes") for i in intervals for n in counts]


CONVOY_PROFILES = {
    # 5 rounds: the fewest with which the regression check's rank test can decide.
    "quick": ConvoyProfile(
        (
            *_threads((DEFAULT_INTERVAL,), (0, 1)),
            ("threads", 1, SWITCH_INTERVALS[-1]),
            *_off_gil((DEFAULT_INTERVAL,), (1,)),
        ),
        rounds=5,
        warmup=1,
        scale=0.5,
    ),
    "standard": ConvoyProfile(
        (*_threads(SWITCH_INTERVALS, (0, 1, 2, 4)), *_off_gil((DEFAULT_INTERVAL,), (1, 4))),
        rounds=5,
        warmup=1,
    ),
    "full": ConvoyProfile(
        (*_threads(SWITCH_INTERVALS, (0, 1, 2, 4)), *_off_gil(SWITCH_INTERVALS, (1, 2, 4))),
        rounds=7,
        warmup=1,
        scale=3.0,
    ),
}


def _profile_name(config: pytest.Config) -> str:
    name = config.getoption("profile", default="standard")
    return name if name in CONVOY_PROFILES else "standard"


def cell_id(placement: str, cpu_threads: int, switch_interval: float) -> str:
    return f"{placement}-{cpu_threads}-{switch_interval:g}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.function.__name__ != "test_convoy":
        return
    profile = CONVOY_PROFILES[_profile_name(metafunc.config)]
    metafunc.parametrize(
        ("cpu_placement", "cpu_threads", "switch_interval_s"),
        [pytest.param(*key, id=cell_id(*key)) for key in profile.cells],
    )


# -- the shared things: where each side runs, the server, the client ---------------------


@dataclass(frozen=True)
class Pinning:
    """The server's and the client's CPUs: disjoint halves, or (one CPU) None."""

    server_cpus: list[int] | None
    client_cpus: list[int] | None


def pinning() -> Pinning:
    halves = split_cpus()
    return Pinning(*halves) if halves else Pinning(None, None)


def _start_server(where: Pinning) -> Callable[[], tuple[ConvoyServer, Callable[[], None]]]:
    def start() -> tuple[ConvoyServer, Callable[[], None]]:
        server = ConvoyServer(cpus=where.server_cpus)
        server.start()  # kills its child itself when it cannot start
        return server, server.close

    return start


def _start_client(where: Pinning) -> Callable[[], tuple[LoadClient, Callable[[], None]]]:
    def start() -> tuple[LoadClient, Callable[[], None]]:
        client = LoadClient(CONNECTIONS, cpus=where.client_cpus)
        client.start()
        return client, client.close

    return start


def _cpus(pid: int) -> list[int]:
    """The CPUs a process may run on (empty once it is gone)."""
    try:
        return affinity(pid)
    except OSError:
        return []


SERVER = "convoy:server"
CLIENT = "convoy:client"


# -- the cell ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvoyRound:
    load: LoadResult
    server_cpu_s: float
    unloaded: Unloaded
    server_cpus: list[int]
    client_cpus: list[int]
    pinned: bool


@dataclass(frozen=True)
class ConvoyCell(Cell):
    """Echo rounds of ``requests`` while ``cpu_threads`` CPU workers run beside the server."""

    placement: str = "threads"
    cpu_threads: int = 0
    switch_interval: float = DEFAULT_INTERVAL
    requests: int = 1
    payload: int = PAYLOAD
    connections: int = CONNECTIONS

    def prepare(self, cache: ModelCache) -> Runner:
        return _ConvoyRunner(self, cache)

    def summary(self, results: list[Any]) -> dict[str, Any]:
        rounds: list[ConvoyRound] = results
        loads = [r.load for r in rounds]
        wall = sum(r.wall_s for r in loads)
        requests = sum(r.requests for r in loads)
        hist = Histogram()
        for r in loads:
            hist.merge(r.histogram)
        first = rounds[0]
        count = len(rounds)
        work_rates = [sum(r.unloaded.work) / r.unloaded.seconds for r in rounds]
        return {
            "throughput_rps": requests / wall if wall else 0.0,
            **{f"latency_{name}_ms": hist.percentile(q) / 1e6 for name, q in PERCENTILES.items()},
            "latency_max_ms": hist.max_ns / 1e6,
            "errors": sum(r.errors for r in loads),
            "server_cpu_s": sum(r.server_cpu_s for r in rounds) / count,
            "client_cpu_s": sum(r.client_cpu_s for r in loads) / count,
            # chunks (python) or hashes (native) per second, all CPU workers together
            "cpu_work_per_s": sum(work_rates) / count,
            # the child's interval after every round: its default, never left changed
            "switch_interval_restored": all(r.unloaded.restored for r in rounds),
            "default_switch_interval_s": first.unloaded.default_switch_interval_s,
            "client_processes": first.load.processes,
            "pinned": first.pinned,
            "server_cpus": first.server_cpus,
            "client_cpus": first.client_cpus,
        }


class _ConvoyRunner(Runner):
    def __init__(self, cell: ConvoyCell, cache: ModelCache) -> None:
        self.cell = cell
        self.cache = cache
        self.where: Pinning = cache.resource("convoy:pinning", lambda: (pinning(), lambda: None))
        self.client()
        server = self.server()
        if cell.placement == "processes" and cell.cpu_threads:
            # One untimed cycle of the work: the pool's workers are up before any round.
            self._load(server)
            self._unload(server)

    def server(self) -> ConvoyServer:
        try:
            server: ConvoyServer = self.cache.resource(SERVER, _start_server(self.where))
        except (ConvoyError, OSError) as exc:
            raise CellError(f"convoy: the server did not start: {exc}") from exc
        if not server.alive():
            self.cache.drop(SERVER)
            raise CellError("convoy: the server process died")
        return server

    def client(self) -> LoadClient:
        try:
            client: LoadClient = self.cache.resource(CLIENT, _start_client(self.where))
            if client.broken:  # a worker died in an earlier round: start afresh
                self.cache.drop(CLIENT)
                client = self.cache.resource(CLIENT, _start_client(self.where))
        except (LoadError, OSError) as exc:
            raise CellError(f"convoy: the load client did not start: {exc}") from exc
        return client

    def _load(self, server: ConvoyServer) -> None:
        cell = self.cell
        try:
            server.load(cell.placement, cell.cpu_threads, cell.switch_interval)
        except ConvoyRefused as exc:  # it answered: its work stopped, its interval restored
            raise CellError(f"convoy: {exc}") from exc
        except ConvoyError as exc:
            # No answer: it is killed, so no process stays with a changed interval.
            self.cache.drop(SERVER)
            raise CellError(f"convoy: {exc}; the server was killed") from exc

    def _unload(self, server: ConvoyServer) -> Unloaded:
        try:
            unloaded = server.unload()
        except ConvoyError as exc:
            self.cache.drop(SERVER)
            raise CellError(
                f"convoy: {exc}; the server was killed (its CPU work or switch interval "
                "could not be confirmed stopped and restored)"
            ) from exc
        if not unloaded.restored:
            self.cache.drop(SERVER)
            raise CellError(
                f"convoy: the server's switch interval is {unloaded.switch_interval_s} after "
                f"the round, not {unloaded.default_switch_interval_s}; the server was killed"
            )
        return unloaded

    def round(self) -> Round:
        cell = self.cell
        server = self.server()
        client = self.client()
        try:
            # Connecting (and one echoed byte) is not timed, nor is starting the CPU work.
            client.prepare(*server.address, cell.connections, cell.requests, cell.payload)
        except LoadError as exc:
            self.cache.drop(CLIENT)
            raise CellError(f"convoy: {exc}") from exc
        self._load(server)
        failure: LoadError | None = None
        try:
            cpu_before = server.cpu_seconds()
            started = time.perf_counter()
            result = client.go()
            elapsed = time.perf_counter() - started
            server_cpu = server.cpu_seconds() - cpu_before
        except LoadError as exc:
            failure = exc
        except BaseException:  # interrupted: stop the work anyway, then go on unwinding
            with contextlib.suppress(CellError):
                self._unload(server)
            raise
        # Also when the round failed: the work stops and the interval is restored, or the
        # server is killed.
        unloaded = self._unload(server)
        if failure is not None:
            self.cache.drop(CLIENT)
            raise CellError(
                f"convoy: {failure} (the server's switch interval was restored to "
                f"{unloaded.switch_interval_s})"
            )
        measured = ConvoyRound(
            load=result,
            server_cpu_s=server_cpu,
            unloaded=unloaded,
            server_cpus=_cpus(server.pid),
            client_cpus=_cpus(client.pids()[0]),
            pinned=client.cpus is not None,
        )
        return Round(elapsed, server_cpu + result.client_cpu_s, measured)

    def problem(self, result: Any) -> str | None:
        measured: ConvoyRound = result
        cell = self.cell
        if measured.load.errors or not measured.load.verified:
            return f"convoy: wrong echo: {measured.load.error_samples}"
        work = measured.unloaded.work
        if len(work) != cell.cpu_threads:
            return (
                f"convoy: {cell.cpu_threads} CPU workers were asked for, and the server "
                f"reported the work of {len(work)}: {work}"
            )
        return None

    def void(self, result: Any) -> str | None:
        # A worker that did no chunk all round never ran: on a busy host the GIL can
        # pass one thread over for a whole round (seen once here, [5, 16, 20, 0] in
        # threads-4-0.001).  The round then measured fewer workers than the cell says:
        # it is run again, not kept and not a failure of the code.
        work = result.unloaded.work
        if all(work):
            return None
        return (
            f"convoy: a CPU worker did no work all round (chunks per worker {work}): "
            "the round measured fewer workers than asked"
        )


def convoy_cell(
    config: pytest.Config, cpu_placement: str, cpu_threads: int, switch_interval_s: float
) -> Cell:
    if cpu_placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {cpu_placement!r}")
    profile_name = _profile_name(config)
    profile = CONVOY_PROFILES[profile_name]
    requests = max(
        MIN_REQUESTS,
        round(profile.scale * round_requests(cpu_placement, cpu_threads, switch_interval_s)),
    )
    params = {
        "cpu_threads": cpu_threads,
        "switch_interval_s": switch_interval_s,
        "cpu_placement": cpu_placement,
        "requests": requests,
        "payload": PAYLOAD,
        "connections": CONNECTIONS,
    }
    info: dict[str, Any] = {
        "bound": "net",
        "workload": "convoy",
        # the server's model: a thread per connection
        "model": "threads",
        "flavour": "sync",
        # docs/contract.md: a connection is a task, all in flight at once
        "tasks": CONNECTIONS,
        "workers": CONNECTIONS,
        "connections": CONNECTIONS,
        "cpu_threads": cpu_threads,
        "switch_interval_s": switch_interval_s,
        "cpu_placement": cpu_placement,
        "params": params,
        "profile": profile_name,
        "payload": PAYLOAD,
        "requests": requests,
        "client": "processes",
    }
    if cpu_placement == "processes":
        info["start_method"] = POOL_START_METHOD
    return ConvoyCell(
        group="convoy",
        rounds=profile.rounds,
        warmup=profile.warmup,
        info=info,
        placement=cpu_placement,
        cpu_threads=cpu_threads,
        switch_interval=switch_interval_s,
        requests=requests,
    )


@cell_builder(convoy_cell)
def test_convoy(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    cpu_placement: str,
    cpu_threads: int,
    switch_interval_s: float,
) -> None:
    measure(benchmark, trials, request.node)
