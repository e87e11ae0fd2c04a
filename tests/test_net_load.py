"""The load client: exact verification, merged percentiles, its own processes, its CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net_helpers import Servers, no_leaks, style_params
from workloads._children import child_env
from workloads.net import LoadClient, LoadResult, run_load, run_thread_clients
from workloads.net.load import default_processes, percentile, split

CONTRACT_KEYS = {
    "throughput_rps",
    "throughput_mb_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "errors",
    "client_cpu_s",
}


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Servers:
    return Servers(request, tmp_path)


class _BadEchoServer:
    """The tutorial's server as written: it upper-cases what it echoes (and reads 1024)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address = self.listener.getsockname()[:2]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, name="bad-echo")

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="bad-echo-conn")
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(1024)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data.upper())
                except OSError:
                    return

    def __enter__(self) -> _BadEchoServer:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.acceptor.join(5)
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


def test_percentile_and_split() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0
    assert split(10, 3) == [4, 3, 3]
    assert sum(split(7, 7)) == 7


def test_run_load_verifies_and_reports(servers: Servers) -> None:
    server = servers.start("selectors")
    result = run_load(*server.address, connections=5, requests=500, size=1000)
    assert isinstance(result, LoadResult)
    assert result.verified, result.error_samples
    assert result.errors == 0
    assert result.requests == 500
    assert result.bytes_verified == 500 * 1000
    assert result.processes == default_processes(5)
    assert len(result.histogram) == 500
    assert (
        0
        < result.latency_p50_ms
        <= result.latency_p90_ms
        <= result.latency_p99_ms
        <= result.latency_p999_ms
        <= result.latency_max_ms
    )
    assert result.client_cpu_s > 0
    data = result.as_dict()
    assert set(data) >= CONTRACT_KEYS
    assert "histogram" not in data
    json.dumps(data)


@pytest.mark.slow
def test_load_client_reuses_its_workers_and_spreads_connections(servers: Servers) -> None:
    server = servers.start("asyncio")
    with LoadClient(processes=2) as client:
        pids = client.pids()
        assert len(pids) == 2
        one = client.run(*server.address, connections=1, requests=50, size=64)
        many = client.run(*server.address, connections=10, requests=200, size=64 * 1024)
        timed = client.run(*server.address, connections=4, requests=0, size=100, duration=0.3)
        assert client.pids() == pids
    assert one.processes == 1
    assert many.processes == 2
    for result in (one, many, timed):
        assert result.verified, result.error_samples
    assert timed.requests > 10
    assert timed.wall_s == pytest.approx(0.3, abs=0.2)


@pytest.mark.slow
def test_load_client_catches_a_wrong_echo() -> None:
    with _BadEchoServer() as bad:
        result = run_load(*bad.address, connections=2, requests=20, size=3000)
        threads = run_thread_clients(*bad.address, connections=2, requests=20, size=3000)
    for res in (result, threads):
        assert not res.verified
        assert res.mismatches > 0
        assert res.errors > 0
        assert "differs" in res.error_samples[0]


@pytest.mark.slow
def test_load_client_counts_a_dead_server_as_errors(servers: Servers) -> None:
    server = servers.start("threaded")
    address = server.address
    with LoadClient(processes=1) as client:
        client.prepare(*address, connections=3, requests=3000, size=512)
        server.kill()  # connections made, server gone before "go"
        result = client.go()
    assert result.errors == 3
    assert not result.verified


@pytest.mark.slow
@pytest.mark.parametrize("style", style_params(["threaded", "gevent", "uvloop"]))
def test_thread_per_client_client(servers: Servers, style: str) -> None:
    server = servers.start(style)
    result = run_thread_clients(*server.address, connections=8, requests=400, size=2048)
    assert result.verified, result.error_samples
    assert result.client == "threads"
    assert result.requests == 400
    timed = run_thread_clients(*server.address, connections=3, requests=0, size=64, duration=0.2)
    assert timed.verified, timed.error_samples
    assert timed.requests > 3


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workloads.net", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        start_new_session=True,
        check=False,
    )


@pytest.mark.slow
def test_load_cli_json_and_text(servers: Servers) -> None:
    server = servers.start("generator")
    port = str(server.port)
    done = _cli("load", "--port", port, "--connections", "4", "--requests", "400", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= CONTRACT_KEYS
    assert data["verified"] is True
    assert data["requests"] == 400
    text = _cli("load", "--port", port, "--client", "threads", "--requests", "100", "--size", "64")
    assert text.returncode == 0, text.stderr
    for word in ("requests/s", "MB/s", "p50", "p99.9", "max", "errors", "client CPU"):
        assert word in text.stdout


@pytest.mark.slow
def test_load_cli_exit_codes() -> None:
    with _BadEchoServer() as bad:
        wrong = _cli("load", "--port", str(bad.address[1]), "--requests", "20", "--json")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["verified"] is False
    usage = _cli("load", "--port", "1", "--connections", "0")
    assert usage.returncode == 2
    assert "--connections: must be 1..10000, got 0" in usage.stderr


def test_thread_clients_against_an_echo_in_this_process() -> None:
    """The quick, in-process test of the thread-per-client client (the test above runs it
    against real servers): a plain echo in a thread of this process, every byte verified,
    and nothing left."""
    import socketserver

    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while chunk := self.request.recv(65536):
                self.request.sendall(chunk)

    with no_leaks():
        with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
            server.daemon_threads = True
            serving = threading.Thread(target=server.serve_forever, args=(0.02,), name="echo")
            serving.start()
            try:
                result = run_thread_clients(*server.server_address[:2], connections=3,
                                            requests=60, size=512)  # fmt: skip
            finally:
                server.shutdown()
                serving.join(10)
        assert result.verified, result.error_samples
        assert result.client == "threads"
        assert result.requests == 60
        assert result.errors == 0
