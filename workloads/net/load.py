"""The load client: drive an echo server from several processes, verify every byte.

Variants:
- ``processes`` (``LoadClient``, ``run_load``): the connections are spread over worker
  processes (by default one per connection up to ``MAX_DEFAULT_PROCESSES``
  connections, else one per CPU): a worker with one connection runs a blocking loop,
  the cheapest a Python client can be; a worker with several multiplexes them on epoll.
  Workers start once and serve many runs; they connect before "go", so neither
  interpreter start-up nor connection set-up is in the measurement.  ``cpus`` pins
  the workers (not the caller).
- ``threads`` (``workloads.net.thread_client``): the tutorial's client, a blocking
  thread per connection, kept as a workload of its own.

``requests`` is the total over all connections (spread evenly), as in ``ab -n``.
Closed loop by default; ``rate`` (requests/s over all connections) is the open loop of
wrk2: each request has an intended send time and its latency counts from it.
Throughput counts requests and payload bytes one way (MB = 10**6 bytes); percentiles
come from a bounded log-linear histogram (< 0.8 % relative error, nearest rank).
The client's CPU is the workers' user+system time while driving.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import _children
from ._affinity import pin
from ._common import check_loopback
from ._histogram import Histogram
from ._ipc import ChannelError, receive, write_message

DEFAULT_REQUESTS = 10_000
DEFAULT_SIZE = 1024
# Every wait on a worker gives up after this many seconds (a run's own duration added).
DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 30.0
# How long a worker gets to leave on its own once its stdin is closed.
WORKER_CLOSE_TIMEOUT = 2.0
# Default worker processes: one per connection (each then runs the blocking fast path)
# up to this many connections; past it, one worker per CPU multiplexes its share on
# epoll (on 2 cores, 10 connections: 52k req/s over 2 workers against 39k over 4).
MAX_DEFAULT_PROCESSES = 4
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


class LoadError(RuntimeError):
    """The load client could not run: a worker died or did not answer in time."""


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_processes(connections: int | None = None) -> int:
    """Worker processes for ``connections``: one each up to ``MAX_DEFAULT_PROCESSES``
    (the blocking fast path), else one per usable CPU, each multiplexing its share."""
    if connections is not None and 1 <= connections <= MAX_DEFAULT_PROCESSES:
        return connections
    return usable_cpus()


def percentile(ordered: list[float] | array[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, linearly interpolated."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass
class LoadResult:
    client: str
    connections: int
    processes: int
    size: int
    requested: int
    duration_s: float | None
    requests: int
    wall_s: float
    throughput_rps: float
    throughput_mb_s: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_max_ms: float
    latency_mean_ms: float
    errors: int
    mismatches: int
    bytes_verified: int
    client_cpu_s: float
    # offered load of the open loop (requests/s over all connections); None: closed loop
    rate: float | None = None
    # connections that could not be made at all (each also counts as an error)
    connect_failures: int = 0
    error_samples: list[str] = field(default_factory=list)
    histogram: Histogram = field(default_factory=Histogram, repr=False)

    @property
    def verified(self) -> bool:
        """Every request completed, and every byte came back exactly as sent."""
        complete = self.duration_s is not None or self.requests == self.requested
        return (
            self.errors == 0
            and self.mismatches == 0
            and complete
            and self.requests > 0
            and self.bytes_verified == self.requests * self.size
        )

    @property
    def unreachable(self) -> bool:
        """No connection could be made: nothing listens there (or it refuses us)."""
        return self.connect_failures >= self.connections and self.requests == 0

    @property
    def client_cpu_util(self) -> float:
        """The client's CPU use in cores (1.0 = one core busy for the whole run)."""
        return self.client_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["histogram"]
        data["verified"] = self.verified
        data["client_cpu_util"] = self.client_cpu_util
        return data


def merge(
    facts: list[dict[str, Any]],
    *,
    client: str,
    connections: int,
    processes: int,
    size: int,
    requested: int,
    duration: float | None,
    extra_errors: list[str] = (),  # type: ignore[assignment]
    rate: float | None = None,
) -> LoadResult:
    """One result from the workers' (or threads') own facts."""
    hist = Histogram()
    for item in facts:
        if "histogram" in item:
            hist.merge(Histogram.from_dict(item["histogram"]))
        else:  # the thread client: raw seconds
            seconds = array("d")
            seconds.frombytes(item["latencies"])
            hist.record_many(round(x * 1e9) for x in seconds)
    requests = sum(item["requests"] for item in facts)
    if facts:
        wall = max(item["ended"] for item in facts) - min(item["started"] for item in facts)
    else:
        wall = 0.0
    samples = list(extra_errors)
    for item in facts:
        samples.extend(item["error_samples"])
    errors = len(extra_errors) + sum(item["errors"] for item in facts)
    pct = {name: hist.percentile(q) / 1e6 for name, q in PERCENTILES.items()}
    connect_failures = sum("connect failed" in text for text in extra_errors)
    connect_failures += sum(
        "connect failed" in text for item in facts for text in item["error_samples"]
    )
    return LoadResult(
        client=client,
        connections=connections,
        processes=processes,
        size=size,
        requested=requested,
        duration_s=duration,
        requests=requests,
        wall_s=wall,
        throughput_rps=requests / wall if wall > 0 else 0.0,
        throughput_mb_s=requests * size / wall / 1e6 if wall > 0 else 0.0,
        latency_p50_ms=pct["p50"],
        latency_p90_ms=pct["p90"],
        latency_p99_ms=pct["p99"],
        latency_p999_ms=pct["p999"],
        latency_max_ms=hist.max_ns / 1e6,
        latency_mean_ms=hist.mean() / 1e6,
        errors=errors,
        mismatches=sum(item["mismatches"] for item in facts)
        + sum("differs" in text for text in extra_errors),
        bytes_verified=sum(item["bytes_verified"] for item in facts),
        client_cpu_s=sum(item["cpu_s"] for item in facts),
        rate=rate,
        connect_failures=connect_failures,
        error_samples=samples[:10],
        histogram=hist,
    )


class _Worker:
    def __init__(self) -> None:
        # Own process group: a terminal's Ctrl-C reaches only the parent, which ends its
        # workers itself (close(), or the atexit hook of _children).
        self.proc = _children.spawn(
            [sys.executable, "-m", "workloads.net._load_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        try:
            write_message(self.proc.stdin, message)  # type: ignore[arg-type]
        except (BrokenPipeError, ValueError) as exc:
            raise LoadError(f"load worker {self.proc.pid} is gone ({self._exit_note()})") from exc

    def expect(self, kind: str, timeout: float) -> Any:
        assert self.proc.stdout is not None
        try:
            reply = receive(self.proc.stdout.fileno(), time.monotonic() + timeout)
        except ChannelError as exc:
            raise LoadError(
                f"load worker {self.proc.pid}: {exc} ({self._exit_note()}) while waiting "
                f"for {kind!r}"
            ) from exc
        if reply[0] == "error":
            raise LoadError(f"load worker {self.proc.pid} failed: {reply[1]}\n{reply[2]}")
        if reply[0] != kind:
            raise LoadError(f"load worker {self.proc.pid}: expected {kind!r}, got {reply[0]!r}")
        return reply[1]

    def _exit_note(self) -> str:
        code = _children.exit_code(self.proc)
        return "still running" if code is None else f"exit code {code}"

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        # EOF on stdin makes it leave on its own; killed if it has not within 2 s.
        _children.end(self.proc, WORKER_CLOSE_TIMEOUT, sig=None)


class LoadClient:
    """Worker processes that drive echo connections; start once, ``run`` many times."""

    def __init__(
        self,
        processes: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cpus: list[int] | None = None,
    ) -> None:
        """``cpus``: pin every worker process to these CPUs (None: leave them be)."""
        if processes is not None and processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.processes = processes or default_processes()
        self.timeout = timeout
        self.cpus = sorted(cpus) if cpus else None
        self.workers: list[_Worker] = []
        self._job: dict[str, Any] | None = None
        self.broken: str | None = None

    def start(self) -> LoadClient:
        try:
            for _ in range(self.processes):
                self.workers.append(_Worker())
            for worker in self.workers:
                worker.expect("hello", STARTUP_TIMEOUT)
                if self.cpus:
                    pin(worker.proc.pid, self.cpus)
        except BaseException:
            self.close()
            raise
        return self

    def pids(self) -> list[int]:
        return [worker.proc.pid for worker in self.workers]

    def _fail(self, exc: LoadError) -> LoadError:
        self.broken = str(exc)
        return exc

    def prepare(
        self,
        host: str,
        port: int,
        connections: int,
        requests: int,
        size: int,
        duration: float | None = None,
        seed: int = 0,
        rate: float | None = None,
    ) -> None:
        """Connect (not timed): each worker opens its share of the connections.

        ``rate``: open loop, requests/s over all connections; connection ``i`` of ``n``
        sends at ``rate / n`` with its schedule shifted by ``i / rate``, so the
        requests of all connections arrive evenly spaced.
        """
        check_loopback(host)
        if not self.workers:
            self.start()
        if self.broken:
            raise LoadError(f"load client is broken: {self.broken}")
        if connections < 1 or size < 1:
            raise ValueError("connections and size must be at least 1")
        if duration is None and requests < 1:
            raise ValueError("requests must be at least 1 without a duration")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        used = self.workers[: min(len(self.workers), connections)]
        counts = split(requests, connections) if duration is None else [0] * connections
        shares = split(connections, len(used))
        errors: list[str] = []
        first = 0
        try:
            for number, (worker, share) in enumerate(zip(used, shares, strict=True)):
                job = {
                    "host": host,
                    "port": port,
                    "counts": counts[first : first + share],
                    "size": size,
                    "duration": duration,
                    "timeout": self.timeout,
                    "seed": seed * 1009 + number,
                    "rate": rate / connections if rate else None,
                    "offsets": [i / rate for i in range(first, first + share)] if rate else None,
                }
                first += share
                worker.send(("prepare", job))
            for worker in used:
                errors.extend(worker.expect("ready", self.timeout)["errors"])
        except LoadError as exc:
            raise self._fail(exc) from None
        self._job = {
            "used": used,
            "connections": connections,
            "requested": 0 if duration is not None else requests,
            "size": size,
            "duration": duration,
            "rate": rate,
            "connect_errors": errors,
        }

    def go(self) -> LoadResult:
        """Drive the prepared connections (the part worth timing); merge the results."""
        job, self._job = self._job, None
        if job is None:
            raise LoadError("go() without prepare()")
        wait = self.timeout + (job["duration"] or 0.0) + 5.0
        try:
            for worker in job["used"]:
                worker.send(("go",))
            facts = [worker.expect("done", wait) for worker in job["used"]]
        except LoadError as exc:
            raise self._fail(exc) from None
        return merge(
            facts,
            client="processes",
            connections=job["connections"],
            processes=len(job["used"]),
            size=job["size"],
            requested=job["requested"],
            duration=job["duration"],
            extra_errors=job["connect_errors"],
            rate=job["rate"],
        )

    def run(
        self,
        host: str,
        port: int,
        connections: int,
        requests: int,
        size: int,
        duration: float | None = None,
        seed: int = 0,
        rate: float | None = None,
    ) -> LoadResult:
        self.prepare(host, port, connections, requests, size, duration, seed, rate)
        return self.go()

    def close(self) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close()

    def __enter__(self) -> LoadClient:
        if not self.workers:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_load(
    host: str,
    port: int,
    connections: int,
    requests: int,
    size: int,
    duration: float | None = None,
    processes: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    rate: float | None = None,
) -> LoadResult:
    """One run with fresh worker processes (at most one per connection)."""
    check_loopback(host)
    processes = min(processes or default_processes(connections), connections)
    with LoadClient(processes, timeout) as client:
        return client.run(host, port, connections, requests, size, duration, rate=rate)
