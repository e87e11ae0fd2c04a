"""Every echo server style under abuse: a well-behaved client keeps being served throughout.

Each test starts its own server process (own process group) and proves, when it ends,
that no process, socket or thread of ours is left.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests._net_helpers import (
    TIMEOUT,
    Servers,
    connect,
    exchange,
    no_leaks,
    nofile_limit,
    open_fds,
    recv_exactly,
    recv_until_eof,
    reset,
    roundtrip,
    served,
    style_params,
)
from workloads._children import child_env, kill_group
from workloads.net import STYLES as REGISTERED
from workloads.net import get_style, unavailable_styles
from workloads.net._common import ServerConfig, make_listener

# The delayed styles too (``STYLE@DELAY``): io_socket's remote end takes the same abuse.
STYLES = style_params(delayed=True)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    # Autouse and first: set up before the servers, checked after they are killed.
    with no_leaks():
        yield


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Servers:
    return Servers(request, tmp_path)


# gevent's server patches the interpreter it runs in: never this one.
IN_PROCESS = [
    param for param in STYLES if not REGISTERED[param.values[0].partition("@")[0]].own_process
]


@pytest.mark.parametrize("style", IN_PROCESS)
def test_a_style_serves_in_this_process_and_stops_on_ctrl_c(style: str) -> None:
    """The quick, in-process test of every style's loop (the others start a server
    process each): the style's ``serve`` runs here, in the main thread, where its signal
    handling lives; a client thread sends 256 KiB in pieces while reading the echo, then
    presses Ctrl-C (SIGINT to this process), and ``serve`` returns.  Nothing is left."""
    name, _, delay = style.partition("@")
    module = importlib.import_module(get_style(name).module)
    data = random.Random(7).randbytes(256 * 1024)
    listener = make_listener()
    address = listener.getsockname()[:2]
    echoed: list[bytes] = []

    def client() -> None:
        try:
            with connect(address) as sock:
                echoed.append(exchange(sock, data))
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # the server's stop, as from a terminal

    missed: list[bool] = []

    def again() -> None:
        missed.append(True)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=client, name="test-client")
    # Never a hang: a server that missed the first Ctrl-C gets another one (and fails).
    watchdog = threading.Timer(TIMEOUT, again)
    thread.start()
    watchdog.start()
    try:
        module.serve(listener, ServerConfig(name), **({"delay": float(delay)} if delay else {}))
    finally:
        watchdog.cancel()
        thread.join(TIMEOUT)
        listener.close()
    assert not missed, "serve() did not stop on the first Ctrl-C"
    assert echoed == [data]


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_garbage_bytes_come_back_exactly(servers: Servers, style: str) -> None:
    server = servers.start(style)
    rng = random.Random(5)
    # Every byte value, invalid UTF-8 (the tutorial decoded and would die), NULs, CRLF.
    garbage = bytes(range(256)) * 4 + b"\xc3\x28\xff\xfe\x00\x00\r\n" + rng.randbytes(70_000)
    with connect(server.address) as sock:
        assert exchange(sock, garbage) == garbage
        for size in (1, 7, 1000, 65536):
            data = rng.randbytes(size)
            assert roundtrip(sock, data) == data
    assert served(server.address)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_reset_mid_message_closes_that_connection_only(servers: Servers, style: str) -> None:
    server = servers.start(style)
    with connect(server.address) as steady:
        assert roundtrip(steady, b"before") == b"before"
        for _ in range(5):
            rude = connect(server.address)
            rude.sendall(os.urandom(200_000))  # more than one read: the server is mid-echo
            reset(rude)
        time.sleep(0.2)
        assert roundtrip(steady, b"after") == b"after"
    assert server.alive()
    assert served(server.address)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_half_close_flushes_then_closes(servers: Servers, style: str) -> None:
    server = servers.start(style)
    data = random.Random(1).randbytes(512 * 1024)
    with connect(server.address) as sock:
        # Shut our side the moment the last byte is out: most of it is still in flight.
        assert exchange(sock, data, half_close=True) == data
    assert served(server.address)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_one_mib_message(servers: Servers, style: str) -> None:
    server = servers.start(style)
    data = random.Random(2).randbytes(1 << 20)
    with connect(server.address) as sock:
        assert exchange(sock, data) == data
        assert exchange(sock, data[::-1]) == data[::-1]
    assert served(server.address)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_one_byte_at_a_time(servers: Servers, style: str) -> None:
    server = servers.start(style)
    message = b"the tutorial assumed one recv per message " * 4
    with connect(server.address) as slow, connect(server.address) as steady:
        echoed = b""
        for index, byte in enumerate(message):
            slow.sendall(bytes([byte]))
            if index % 40 == 0:
                assert roundtrip(steady, b"ping %d" % index) == b"ping %d" % index
            time.sleep(0.0005)  # separate segments, not one coalesced write
        while len(echoed) < len(message):
            chunk = slow.recv(4096)
            assert chunk, "EOF before the whole message was echoed"
            echoed += chunk
        assert echoed == message


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_slowloris_does_not_starve_others(servers: Servers, style: str) -> None:
    server = servers.start(style)
    idle: list[socket.socket] = []
    try:
        for index in range(200):
            sock = connect(server.address)
            idle.append(sock)
            if index % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: ")  # a request that never ends
        with connect(server.address) as steady:
            started = time.monotonic()
            for number in range(200):
                payload = b"%d" % number * 100
                assert roundtrip(steady, payload) == payload
            assert time.monotonic() - started < TIMEOUT
        # The idle ones were held, not dropped: each still gets its own bytes back.
        for sock in idle[1::2]:
            assert recv_exactly(sock, 22) == b"GET / HTTP/1.1\r\nHost: "
        assert roundtrip(idle[0], b"late") == b"late"
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_client_that_never_reads_is_dropped(servers: Servers, style: str) -> None:
    server = servers.start(style, "--stall-timeout", "1.0")
    rss_before = server.rss_bytes()
    sent = 0
    dropped_after = None
    chunk = os.urandom(256 * 1024)
    with connect(server.address) as steady, connect(server.address) as flood:
        flood.setblocking(False)
        started = time.monotonic()
        next_check = started
        with selectors.DefaultSelector() as sel:
            sel.register(flood, selectors.EVENT_WRITE)
            while time.monotonic() - started < 20:
                if sel.select(0.05):
                    try:
                        sent += flood.send(chunk)
                    except BlockingIOError:
                        pass
                    except OSError:  # reset or broken pipe: the server dropped us
                        dropped_after = time.monotonic() - started
                        break
                if time.monotonic() >= next_check:  # the others are served meanwhile
                    next_check += 0.25
                    assert roundtrip(steady, b"still here") == b"still here"
        assert dropped_after is not None, f"not dropped after sending {sent >> 20} MiB"
        assert roundtrip(steady, b"after") == b"after"
    # Bounded by the socket buffers plus the server's cap, not by how much we sent.
    assert sent < 128 << 20
    assert server.rss_bytes() - rss_before < 64 << 20
    assert "has not read" in Servers.log_text(server)


def _fill_up(address: tuple[str, int], count: int) -> list[socket.socket]:
    socks = []
    for index in range(count):
        sock = connect(address)
        sock.sendall(b"%08d" % index)
        socks.append(sock)
    return socks


def _readable_within(socks: list[socket.socket], seconds: float) -> set[socket.socket]:
    """The sockets with something to read (data, EOF or a reset) within ``seconds``."""
    ready: set[socket.socket] = set()
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        while len(ready) < len(socks) and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                ready.add(key.fileobj)  # type: ignore[arg-type]
                sel.unregister(key.fileobj)
    return ready


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_out_of_descriptors_backs_off(servers: Servers, style: str) -> None:
    server = servers.start(style)
    assert served(server.address)  # its event loop (and that loop's descriptors) is up
    used = open_fds(server.pid)
    soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    # Room for about ten connections; thirty arrive (the kernel queues the rest).
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (used + 10, hard))
    socks = _fill_up(server.address, 30)
    try:
        ready = _readable_within(socks, 1.5)
        answered, refused = [], 0
        for index, sock in enumerate(socks):
            if sock not in ready:
                continue
            try:
                reply = recv_exactly(sock, 8)
            except ConnectionError:
                refused += 1  # closed at once: a clean refusal is allowed too
                continue
            assert reply == b"%08d" % index
            answered.append(sock)
        assert len(answered) >= 5
        assert len(answered) + refused < len(socks), "no connection had to wait"
        assert server.alive()
        if style != "nonblocking":  # it spins by design; the others must not
            cpu = server.cpu_seconds()
            time.sleep(1.0)
            assert server.cpu_seconds() - cpu < 0.5, "spinning while out of descriptors"
        for sock in answered:
            sock.close()
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft, hard))
        # Descriptors free again: the queued connections are served now.
        waiting = [sock for sock in socks if sock not in ready]
        late = _readable_within(waiting, TIMEOUT)
        assert len(late) == len(waiting), f"{len(waiting) - len(late)} never served"
        for sock in waiting:
            with contextlib.suppress(ConnectionError):  # refused cleanly: allowed
                assert len(recv_exactly(sock, 8)) == 8
        assert served(server.address)
        assert "backing off" in Servers.log_text(server)
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_two_thousand_connections(servers: Servers, style: str) -> None:
    count = 2000
    with nofile_limit(2 * count + 512) as limit:
        if limit < 2 * count + 100:
            pytest.skip(f"RLIMIT_NOFILE hard limit {limit} is too low for {count} connections")
        server = servers.start(style)
        socks: list[socket.socket] = []
        try:
            for index in range(count):
                sock = connect(server.address)
                sock.sendall(b"%08d" % index)
                socks.append(sock)
            ok = refused = 0
            for index, sock in enumerate(socks):
                try:
                    reply = recv_exactly(sock, 8)
                except ConnectionError:
                    refused += 1
                    continue
                assert reply == b"%08d" % index
                ok += 1
            if style == "select":
                # Refused cleanly past FD_SETSIZE; everything below it served.
                assert 1000 <= ok < 1024
                assert ok + refused == count
                assert "FD_SETSIZE" in Servers.log_text(server)
            else:
                assert ok == count
            assert server.alive()
        finally:
            for sock in socks:
                sock.close()
        assert served(server.address)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("style", STYLES)
def test_stops_on_signal_within_two_seconds(servers: Servers, style: str, sig: int) -> None:
    server = servers.start(style)
    with connect(server.address) as busy, connect(server.address) as idle:
        assert roundtrip(busy, b"x" * 1000) == b"x" * 1000
        busy.sendall(b"y" * 100_000)  # an echo in progress when the signal lands
        started = time.monotonic()
        code = server.stop(sig, timeout=2.0)
        assert code == 0, f"exit code {code} (None: still running after 2 s)"
        assert time.monotonic() - started < 2.0
        for sock in (busy, idle):
            with contextlib.suppress(ConnectionError):  # a reset tells it too
                recv_until_eof(sock)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_idle_cpu(servers: Servers, style: str) -> None:
    server = servers.start(style)
    with connect(server.address) as sock:
        assert roundtrip(sock, b"warm") == b"warm"
        time.sleep(0.2)
        cpu = server.cpu_seconds()
        time.sleep(1.0)
        used = server.cpu_seconds() - cpu
    if style == "nonblocking":
        assert used > 0.5, f"the busy-poll loop should spin, used only {used:.2f} s"
    else:
        assert used < 0.1, f"{used:.2f} CPU s in 1 s of idling"


def test_select_refuses_descriptors_past_fd_setsize(servers: Servers) -> None:
    """A smaller version of the 2000-connection test, always run: the refusal is logged."""
    with nofile_limit(1400) as limit:
        if limit < 1300:
            pytest.skip(f"RLIMIT_NOFILE hard limit {limit} is too low")
        server = servers.start("select")
        socks = []
        try:
            for _ in range(1100):
                socks.append(connect(server.address))
            with connect(server.address) as late:
                # Refused: closed by the server without an echo.
                try:
                    late.sendall(b"hello")
                    assert late.recv(16) == b""
                except ConnectionError:
                    pass
            assert roundtrip(socks[0], b"first") == b"first"
            assert server.alive()
        finally:
            for sock in socks:
                sock.close()
        assert served(server.address)
        assert "FD_SETSIZE (1024)" in Servers.log_text(server)


def test_gevent_patches_its_process_and_never_ours(servers: Servers) -> None:
    reason = unavailable_styles().get("gevent")
    if reason:
        pytest.skip(reason)
    server = servers.start("gevent")
    assert served(server.address)
    assert "monkey-patched" in Servers.log_text(server)
    assert psutil.Process(server.pid).cmdline()[1].endswith("gevent_server.py")
    monkey = sys.modules.get("gevent.monkey")
    assert monkey is None or not monkey.is_anything_patched()


_ORPHANING_PARENT = """
import sys, time
from workloads.net import ServerProcess
server = ServerProcess(sys.argv[1]).start()
print(server.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.parametrize("style", style_params(["nonblocking", "gevent"]))
def test_server_ends_when_its_parent_is_killed(style: str) -> None:
    """A SIGKILLed parent (a CI timeout) must not leave a server spinning for good."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHANING_PARENT, style],
        stdout=subprocess.PIPE,
        env=child_env(),
        start_new_session=True,
    )
    server_pid = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # bounded: the parent's server start has a timeout
        server_pid = int(line)
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"{style} server {server_pid} outlived its SIGKILLed parent")
    finally:
        kill_group(parent)
        parent.wait(timeout=5)
        if parent.stdout is not None:
            parent.stdout.close()
        if server_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server_pid, signal.SIGKILL)
