"""Shared pieces of the network tests: style parameters, servers, clients, leak checks.

Every wait here is bounded (``TIMEOUT``); a hung server fails its test, never the run.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from workloads.net import STYLES, ServerProcess, unavailable_styles
from workloads.net.__main__ import DELAY_STYLES

# The longest any single client operation in these tests may wait.
TIMEOUT = 10.0
LINGER_RESET = struct.pack("ii", 1, 0)


# The reply delay of the delayed styles in the robustness probe ("STYLE@DELAY"): long
# enough that every reply waits in the delay line, short enough for 200 round trips.
PROBE_DELAY = "0.005"


def style_params(names: list[str] | None = None, *, delayed: bool = False) -> list[Any]:
    """Every registered style as a pytest param, skipped with its reason if unavailable.

    ``delayed``: also every style that takes ``serve --delay``, as ``STYLE@DELAY``
    (``Servers.start`` passes the delay): the servers ``io_socket`` talks to must
    survive the same abuse.
    """
    missing = unavailable_styles()
    chosen = list(names or list(STYLES))
    if delayed:
        chosen += [f"{name}@{PROBE_DELAY}" for name in DELAY_STYLES]
    params = []
    for name in chosen:
        style = name.partition("@")[0]
        skip = pytest.mark.skipif(style in missing, reason=missing.get(style, ""))
        params.append(pytest.param(name, id=name, marks=skip))
    return params


class Servers:
    """Starts servers for one test; kills every one of them when the test ends."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(self, style: str, *extra_args: str) -> ServerProcess:
        """``style`` may be ``STYLE@DELAY``: that style with ``--delay DELAY``."""
        style, _, delay = style.partition("@")
        if delay:
            extra_args = ("--delay", delay, *extra_args)
        log = self.tmp_path / f"server-{style}-{len(self.started)}.log"
        server = ServerProcess(style, extra_args=extra_args, log_path=log)
        # Registered before start(): a start that fails half-way is cleaned up too.
        self.request.addfinalizer(server.kill)
        self.started.append(server)
        return server.start()

    @staticmethod
    def log_text(server: ServerProcess) -> str:
        assert server.log_path is not None
        return Path(server.log_path).read_text(errors="replace")


def connect(address: tuple[str, int], timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise ConnectionError(f"EOF after {got} of {size} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_until_eof(sock: socket.socket, limit: int = 64 << 20) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got <= limit:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
    raise AssertionError(f"more than {limit} bytes before EOF")


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    """Send a small message and read its echo (small: fits the socket buffers)."""
    sock.sendall(data)
    return recv_exactly(sock, len(data))


def exchange(sock: socket.socket, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` from a thread while reading the echo here, as a good client does.

    With ``half_close`` the writer shuts down its side after the last byte and the
    reader collects everything until the server closes.
    """
    errors: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    sender = threading.Thread(target=send, name="test-sender")
    sender.start()
    try:
        echoed = recv_until_eof(sock) if half_close else recv_exactly(sock, len(data))
    finally:
        sender.join(TIMEOUT)
    assert not sender.is_alive(), "sender thread stuck"
    if errors:
        raise errors[0]
    return echoed


def reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a crashed client goes away."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


def served(address: tuple[str, int], payload: bytes = b"still serving\n") -> bool:
    """A well-behaved client gets an exact echo."""
    with connect(address) as sock:
        return roundtrip(sock, payload) == payload


# -- leaks ----------------------------------------------------------------------------
def _inet_socket_fds() -> set[int]:
    return {c.fd for c in psutil.Process().net_connections(kind="inet") if c.fd != -1}


def snapshot() -> dict[str, Any]:
    return {
        "children": {p.pid for p in psutil.Process().children(recursive=True)},
        "threads": {t.ident for t in threading.enumerate()},
        "sockets": _inet_socket_fds(),
    }


def leaks(before: dict[str, Any], wait: float = 3.0) -> dict[str, Any]:
    """What is left over since ``before``, after giving it ``wait`` seconds to go."""
    deadline = time.monotonic() + wait
    while True:
        now = snapshot()
        left = {
            "children": [f"{pid} {_describe(pid)}" for pid in now["children"] - before["children"]],
            "threads": [t.name for t in threading.enumerate() if t.ident not in before["threads"]],
            "sockets": sorted(now["sockets"] - before["sockets"]),
        }
        if not any(left.values()) or time.monotonic() > deadline:
            return {k: v for k, v in left.items() if v}
        time.sleep(0.05)


def _describe(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return "(gone)"


@contextlib.contextmanager
def no_leaks() -> Iterator[None]:
    before = snapshot()
    yield
    left = leaks(before)
    assert not left, f"left behind: {left}"


# -- descriptors ----------------------------------------------------------------------
@contextlib.contextmanager
def nofile_limit(soft: int) -> Iterator[int]:
    """Raise this process's RLIMIT_NOFILE (children inherit it); restore afterwards."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(old_soft, want), hard))
    try:
        yield max(old_soft, want)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- a probe plugin for benchmark runs in a subprocess --------------------------------
AFFINITY_OUT_ENV = "BOUNDBENCH_TEST_AFFINITY_OUT"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Loaded with ``-p tests._net_helpers``: write the pytest process's own CPU affinity
    at the end of the session to the file ``$BOUNDBENCH_TEST_AFFINITY_OUT`` names, so a
    test can prove the benchmarks pinned their server and client but never pytest."""
    out = os.environ.get(AFFINITY_OUT_ENV)
    if out and hasattr(os, "sched_getaffinity"):
        Path(out).write_text(" ".join(map(str, sorted(os.sched_getaffinity(0)))))
