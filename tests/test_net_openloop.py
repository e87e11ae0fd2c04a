"""The load client's open loop (``--rate``), its latency histogram, and CPU pinning."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net_helpers import Servers, no_leaks
from workloads._children import child_env
from workloads.net import LoadClient, run_load
from workloads.net._affinity import affinity, pin, split_cpus, usable
from workloads.net._histogram import Histogram, bucket_of
from workloads.net.load import percentile

# The slow server's service time per request: capacity 1 / DELAY requests/s a connection.
DELAY = 0.005


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


class _SlowEchoServer:
    """Echoes each message after ``DELAY`` seconds: a server with a known capacity."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address = self.listener.getsockname()[:2]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, name="slow-echo")

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="slow-echo-conn")
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if len(data) > 1:  # not the one-byte hello: a request
                    time.sleep(DELAY)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def __enter__(self) -> _SlowEchoServer:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.acceptor.join(5)
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


@pytest.mark.slow
@pytest.mark.parametrize("connections", [1, 2], ids=["blocking", "epoll"])
def test_open_loop_charges_the_queue_to_latency(connections: int) -> None:
    """Offered beyond capacity, open-loop latency grows with the backlog; closed-loop
    latency (and open loop under capacity) stays near the service time."""
    capacity = connections / DELAY
    with _SlowEchoServer() as slow:
        kw = {"connections": connections, "requests": 0, "size": 100, "processes": 1}
        closed = run_load(*slow.address, duration=0.6, **kw)  # type: ignore[arg-type]
        under = run_load(*slow.address, duration=0.6, rate=capacity / 2, **kw)  # type: ignore[arg-type]
        over = run_load(*slow.address, duration=0.6, rate=capacity * 2, **kw)  # type: ignore[arg-type]
    for result in (closed, under, over):
        assert result.verified, result.error_samples
    assert closed.rate is None
    assert over.rate == capacity * 2
    # Medians, with room: one scheduling hiccup of a busy 2-core host must not fail this.
    assert DELAY * 1000 * 0.8 < closed.latency_p50_ms < DELAY * 1000 * 10
    assert under.latency_p50_ms < DELAY * 1000 * 10
    assert under.requests == pytest.approx(capacity / 2 * 0.6, rel=0.4)
    # Twice the capacity for 0.6 s: the last requests waited ~0.3 s past their slot.
    assert over.latency_p99_ms > 8 * closed.latency_p99_ms
    assert over.latency_max_ms > 100
    assert over.latency_p50_ms > 4 * closed.latency_p50_ms


@pytest.mark.slow
def test_open_loop_in_a_request_count_run_and_the_cli(tmp_path: Path) -> None:
    with _SlowEchoServer() as slow:
        port = str(slow.address[1])
        counted = run_load(*slow.address, connections=2, requests=40, size=64, rate=100.0)
        done = subprocess.run(
            [sys.executable, "-m", "workloads.net", "load", "--port", port, "--connections",
             "1", "--requests", "20", "--rate", "50", "--json"],
            capture_output=True, text=True, timeout=60, env=child_env(), check=False,
            start_new_session=True,
        )  # fmt: skip
    assert counted.verified, counted.error_samples
    assert counted.requests == 40
    assert counted.wall_s == pytest.approx(0.4, abs=0.3)  # 40 at 100/s, not as fast as it can
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["rate"] == 50.0
    assert data["requests"] == 20


def test_histogram_percentiles_merge_and_bounds() -> None:
    rng = random.Random(8)
    values = [int(rng.lognormvariate(11, 1.5)) for _ in range(20_000)]
    halves = Histogram(), Histogram()
    halves[0].record_many(values[:7000])
    halves[1].record_many(values[7000:])
    hist = halves[0].merge(halves[1])
    assert len(hist) == len(values)
    assert hist.max_ns == max(values)
    assert hist.min_ns == min(values)
    ordered = sorted(values)
    for q in (50, 90, 99, 99.9):
        assert hist.percentile(q) == pytest.approx(percentile(ordered, q), rel=0.02)
    assert hist.percentile(100) == max(values)
    assert hist.mean() == pytest.approx(sum(values) / len(values))
    assert len(hist.counts) < 4000  # bounded, whatever the number of values
    assert Histogram.from_dict(hist.to_dict()).counts == hist.counts
    assert Histogram().percentile(99) == 0
    for value in (0, 1, 255, 256, 257, 10**9 + 7):
        key = bucket_of(value)
        assert key <= value
        assert value - key <= value / 128


@pytest.mark.slow
def test_pinning_applies_to_the_named_processes_only(request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:  # fmt: skip
    ours = usable()
    with pytest.raises(ValueError, match="refusing to pin the calling process"):
        pin(os.getpid(), ours[:1])
    halves = split_cpus(ours)
    if halves is None:
        assert split_cpus([0]) is None
        pytest.skip("one usable CPU: nothing to pin apart")
    server_cpus, client_cpus = halves
    assert server_cpus
    assert client_cpus
    assert not set(server_cpus) & set(client_cpus)
    server = Servers(request, tmp_path).start("threaded")
    pin(server.pid, server_cpus)
    with LoadClient(processes=1, cpus=client_cpus) as client:
        result = client.run(*server.address, connections=3, requests=300, size=512)
        assert affinity(client.pids()[0]) == client_cpus
    assert result.verified, result.error_samples
    # the threaded server's connection threads, started after the pin, inherit it
    for tid in os.listdir(f"/proc/{server.pid}/task"):
        assert sorted(os.sched_getaffinity(int(tid))) == server_cpus
    assert usable() == ours
