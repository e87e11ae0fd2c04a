"""io_socket: ``k`` request/response round trips of ``size`` bytes to a loopback echo server.

Sleeping is the ideal I/O; a real socket adds system calls, buffers and wake-ups, where
the models differ.  The server is one of the project's echo servers started with a
reply delay, like a remote service (``python -m workloads.net serve --style
selectors --delay SECONDS``); the benchmark starts it and hands its address to
the tasks.

Parameters:
- ``k`` (>= 1): round trips per task, over one connection.
- ``connect``: how a task gets that connection.
  - ``"keep"`` (the default): it takes an idle connection to the server from its
    process's pool, opening one only when none is idle, and gives it back once its
    round trips are verified, as a client of a remote service keeps its connections
    alive (HTTP keep-alive, a database pool).  Connections outlive tasks and rounds, so
    a round measures the round trips: requests, replies, wake-ups.
  - ``"fresh"``: it opens its own connection and closes it at the end, so every task
    also pays the TCP handshake and each model's set-up of a connection (asyncio's
    transport and streams, gevent's socket wrapper).
- ``size`` (1..``MAX_SIZE``): bytes per request; the reply is its echo.
- ``delay`` (seconds): the server's reply delay.  The task does not use it: it makes the
  ideal, ``k * delay`` (one task's round trips, every task overlapped).
- ``address`` (``"HOST:PORT"``): where the server listens, loopback only.  Set at run time
  by whoever started the server (``benchmarks/test_io_socket.py``), never recorded with a
  cell's parameters: the port changes from run to run, the cell must not.

Variants (flavours), all returning ``(task_id, k * size, crc32 of every echoed byte)``,
which ``io_socket_expected`` computes without a server:
- ``sync``: blocking sockets, each wait bounded (``_bound_waits``); under gevent's
  ``monkey.patch_all()`` they yield to its hub.
- ``gen``: non-blocking sockets; the task yields ``Wait(sock, "r"|"w", timeout)`` and the
  generator scheduler (``workloads._scheduler``, the generator model's) wakes it with
  ``selectors``.
- ``coro``: asyncio streams (``open_connection``, ``readexactly``).

Every echo is compared with its request byte for byte (a mismatch raises), every wait
is bounded (``IO_TIMEOUT`` per connect, send or receive; in ``coro`` per task step, one
timer for the task).  A connection goes back to the pool only after a task's round
trips all succeeded; otherwise it is closed, however the task ends.  An idle connection
is checked before reuse (the server closed or reset it: it is closed and another one
taken), so a restarted server never meets a stale one; bytes nobody asked for would
fail that task's echo check.
The pools belong to one process (a forked child starts with none) and, for asyncio
streams, to one event loop; ``close_idle()`` closes this process's idle connections
(the benchmark calls it when it stops the server).
A request is sent whole before its reply is read, as a simple RPC client does, so a
request must fit the socket buffers and the server's high-water mark: ``MAX_SIZE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import ipaddress
import math
import os
import select
import socket
import struct
import sys
import zlib
from collections import deque
from collections.abc import Generator
from typing import Any

from ._scheduler import Wait
from ._spec import Workload

K = 5
SIZE = 1024
DELAY = 0.005
CONNECT_MODES = ("keep", "fresh")
CONNECT = "keep"
# 64 KiB: far below the loopback socket buffers and the server's 256 KiB high-water mark.
MAX_SIZE = 64 * 1024
# The server refuses longer delays (``--delay``); so does the workload.
MAX_DELAY = 10.0
# The longest any connect, send or receive may wait, in seconds.
IO_TIMEOUT = 10.0
# Each request starts with (task_id, round trip): an echo from the wrong task or round
# differs at once.  The rest is a pattern shifted per request.
_HEADER = struct.Struct("!II")


def _check_params(k: int, size: int, delay: float, connect: str = CONNECT) -> None:
    if connect not in CONNECT_MODES:
        raise ValueError(f"io_socket: connect={connect!r} must be one of {CONNECT_MODES}")
    if k < 1:
        raise ValueError(f"io_socket: k={k} must be at least 1")
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"io_socket: size={size} must be 1..{MAX_SIZE} bytes")
    if not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
        raise ValueError(f"io_socket: delay={delay} must be 0..{MAX_DELAY} s")


def _check(k: int, size: int, delay: float, address: str, connect: str) -> tuple[str, int]:
    """Valid parameters, and the server's (host, port)."""
    _check_params(k, size, delay, connect)
    return _server(address)


# Every task of a round checks the same address: parsing it costs ~4 µs a task here.
@functools.lru_cache(maxsize=16)
def _server(address: str) -> tuple[str, int]:
    if not address:
        raise ValueError(
            "io_socket: no server address; start a server "
            "(python -m workloads.net serve --style selectors --delay SECONDS) and pass "
            "address='HOST:PORT' (the benchmark does so at run time)"
        )
    host, sep, port = address.rpartition(":")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
        number = int(port)
    except ValueError:
        loopback, number = False, 0
    if not sep or not loopback or not 0 < number < 65536:
        raise ValueError(f"io_socket: address={address!r} must be a loopback 'IP:PORT'")
    return host, number


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@functools.lru_cache(maxsize=8)
def _pattern(size: int) -> bytes:
    return bytes(range(256)) * (size // 256 + 2)


def request(task_id: int, index: int, size: int) -> bytes:
    """The ``index``-th request of task ``task_id``: ``size`` bytes, unique per request."""
    header = _HEADER.pack(task_id & 0xFFFFFFFF, index & 0xFFFFFFFF)
    if size <= len(header):
        return header[:size]
    shift = (task_id * 7 + index) % 256
    return header + _pattern(size)[shift : shift + size - len(header)]


def _verify(task_id: int, index: int, sent: bytes, echoed: bytes | bytearray) -> None:
    if echoed != sent:
        at = next(i for i, (a, b) in enumerate(zip(sent, echoed, strict=True)) if a != b)
        raise ValueError(
            f"io_socket: task {task_id}, round trip {index}: the echo differs from the "
            f"request at byte {at} of {len(sent)}"
        )


def io_socket_expected(
    task_id: int,
    k: int = K,
    size: int = SIZE,
    delay: float = DELAY,
    address: str = "",
    connect: str = CONNECT,
) -> tuple[int, int, int]:
    """What every flavour returns for ``task_id``, computed without a server (``address``
    and ``connect`` are accepted and unused: the echo depends on neither)."""
    crc = 0
    for index in range(k):
        crc = zlib.crc32(request(task_id, index, size), crc)
    return task_id, k * size, crc


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        count = sock.recv_into(view[got:])
        if not count:
            raise ConnectionError(f"io_socket: the server closed after {got} of {len(view)} bytes")
        got += count


# -- kept-alive connections ---------------------------------------------------------------

_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_StreamPools = dict[tuple[str, int], deque[_Streams]]
# This process's idle connections: (flavour, host, port) -> sockets ("sync": blocking
# with a timeout; "gen": non-blocking), and asyncio streams per event loop: id(loop) ->
# (the loop, (host, port) -> its idle streams).  Deques, so that threads may take and
# give back without a lock (append and pop are atomic).  ``_owner``: the process they
# belong to; a forked child drops what it inherited (its parent's connections).
_idle: dict[tuple[str, str, int], deque[socket.socket]] = {}
_idle_streams: dict[
    int, tuple[asyncio.AbstractEventLoop, dict[tuple[str, int], deque[_Streams]]]
] = {}
_owner = os.getpid()


def _pools_of_this_process() -> None:
    global _owner
    if _owner != os.getpid():
        _owner = os.getpid()
        _idle.clear()
        _idle_streams.clear()


# Linux: a TCP socket's state is the first byte of its TCP_INFO.  A getsockopt is one
# system call that keeps the GIL, where a peek or a poll would release it: a hundred
# threads taking their connections at once would hand the GIL round for each.
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_ESTABLISHED = 1


def _unusable(sock: Any) -> bool:
    """Whether an idle connection cannot carry a request: the server closed or reset it
    (or, where TCP_INFO is missing, sent bytes nobody asked for).

    ``sock``: a socket, or an asyncio transport's stand-in for one (``getsockopt``,
    ``fileno``).
    """
    if _TCP_INFO is not None:
        try:
            return bool(sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 8)[0] != _TCP_ESTABLISHED)
        except OSError:
            return True
    # Elsewhere: anything to read (an EOF, a reset, stray bytes) means unusable.  A
    # poll, not a peek: a socket with a timeout would wait for it.  (Under gevent,
    # whose patched poll passes through its hub, ~26 µs here against 1 µs.)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _take(flavour: str, host: str, port: int) -> socket.socket | None:
    """An idle connection to (host, port) that can carry a request, or None."""
    _pools_of_this_process()
    idle = _idle.setdefault((flavour, host, port), deque())
    while True:
        try:
            sock = idle.pop()
        except IndexError:
            return None
        if not _unusable(sock):
            return sock
        sock.close()


def _release(flavour: str, host: str, port: int, sock: socket.socket, connect: str) -> None:
    """After a task's round trips all succeeded: keep its connection, or close it."""
    if connect == "keep":
        _idle.setdefault((flavour, host, port), deque()).append(sock)
    else:
        sock.close()


def _idle_streams_of(loop: asyncio.AbstractEventLoop) -> _StreamPools:
    _pools_of_this_process()
    # The loop is held with its streams, so its id cannot name another loop meanwhile;
    # a closed loop's streams stay until close_idle() (collecting them here could land
    # a garbage collection inside a timed round).
    entry = _idle_streams.get(id(loop))
    if entry is None:
        entry = _idle_streams[id(loop)] = (loop, {})
    return entry[1]


def _take_streams(host: str, port: int) -> _Streams | None:
    idle = _idle_streams_of(asyncio.get_running_loop()).setdefault((host, port), deque())
    while idle:
        reader, writer = idle.pop()
        if writer.is_closing() or reader.at_eof() or _unusable(writer.get_extra_info("socket")):
            writer.close()
            continue
        return reader, writer
    return None


def _close_idle_streams() -> tuple[int, bool]:
    """Close the idle streams of every loop: how many, and whether a loop was closed."""
    count, orphans = 0, False
    for loop, pools in _idle_streams.values():
        for streams in pools.values():
            for _reader, writer in streams:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    writer.close()
                count += 1
                orphans = orphans or loop.is_closed()
    _idle_streams.clear()
    return count, orphans


def close_idle() -> int:
    """Close this process's idle kept-alive connections; returns how many there were.

    Streams whose event loop is closed cannot close through it (their transport would
    schedule the close on that loop): they are dropped and collected, which closes their
    sockets.
    """
    _pools_of_this_process()
    count = 0
    for idle in _idle.values():
        while idle:
            idle.pop().close()
            count += 1
    _idle.clear()
    streams, orphans = _close_idle_streams()
    if orphans:
        # Collected only once nothing refers to them: not from the loop above, whose
        # variables would still hold the last ones.  Transports and protocols refer to
        # each other: a cycle, for the cyclic collector.
        gc.collect()
    return count + streams


# -- the flavours -------------------------------------------------------------------------


def _is_gevent(sock: socket.socket) -> bool:
    """Whether ``sock`` is gevent's cooperative socket (``monkey.patch_all()``)."""
    return type(sock).__module__.startswith("gevent")


def _bound_waits(sock: socket.socket) -> None:
    """Bound a connected blocking socket's waits more cheaply than a Python timeout.

    A socket with a Python timeout pays for it on every send and receive:
    - in CPython, a poll before the call: two system calls, each releasing and taking
      back the GIL, where a blocking socket makes one.  With a hundred threads waking
      at once, each release hands the GIL on and queues the thread behind the others.
      The kernel bounds the waits instead (``SO_SNDTIMEO``, ``SO_RCVTIMEO``; a wait it
      ends raises ``BlockingIOError``).  Measured here, the threads model, 100 threads x
      5 round trips, interleaved blocks on a quiet host: efficiency 0.79 with the poll,
      0.81 without.
    - under gevent, a timer started and stopped around every wait in the hub.  The task
      runs under one deadline instead (``_task_deadline``): bare gevent, 100 greenlets x
      5 round trips, 14-18 ms of CPU a round with a timer per wait, 12-13 ms without.
    Where neither applies (no ``SO_RCVTIMEO``), the Python timeout stays.
    """
    if _is_gevent(sock):
        sock.settimeout(None)
    elif _KERNEL_TIMEOUT is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _KERNEL_TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _KERNEL_TIMEOUT)
        sock.settimeout(None)


def _task_deadline(sock: socket.socket, seconds: float) -> contextlib.AbstractContextManager[Any]:
    """Under gevent, one timer for the task's waits (``_bound_waits``); else nothing."""
    if not _is_gevent(sock):
        return contextlib.nullcontext()
    import gevent  # only where gevent already runs the task

    deadline: contextlib.AbstractContextManager[Any] = gevent.Timeout(
        seconds, TimeoutError(f"io_socket: the task's round trips took over {seconds:g} s")
    )
    return deadline


def _timeval(seconds: float) -> bytes | None:
    """``struct timeval`` for a socket option, on Linux (elsewhere: None)."""
    if not sys.platform.startswith("linux"):
        return None
    whole = int(seconds)
    return struct.pack("@ll", whole, round((seconds - whole) * 1e6))


_KERNEL_TIMEOUT = _timeval(IO_TIMEOUT)


def _open_blocking(host: str, port: int) -> socket.socket:
    # Not socket.create_connection: it resolves the address first, which gevent does in
    # a thread pool; the address is an IP already.
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.settimeout(IO_TIMEOUT)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _bound_waits(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def io_socket_sync(
    task_id: int,
    k: int = K,
    size: int = SIZE,
    delay: float = DELAY,
    address: str = "",
    connect: str = CONNECT,
) -> tuple[int, int, int]:
    host, port = _check(k, size, delay, address, connect)
    echoed = bytearray(size)
    view = memoryview(echoed)
    crc = 0
    sock = (_take("sync", host, port) if connect == "keep" else None) or _open_blocking(host, port)
    index = 0
    try:
        with _task_deadline(sock, IO_TIMEOUT * (k + 1)):
            for index in range(k):
                sent = request(task_id, index, size)
                sock.sendall(sent)
                _recv_exactly(sock, view)
                _verify(task_id, index, sent, echoed)
                crc = zlib.crc32(echoed, crc)
    except BlockingIOError as exc:  # a wait the kernel bounds ran out (_bound_waits)
        sock.close()
        raise TimeoutError(
            f"io_socket: task {task_id}, round trip {index}: the server did not take or "
            f"answer the request within {IO_TIMEOUT} s"
        ) from exc
    except BaseException:
        sock.close()
        raise
    _release("sync", host, port, sock, connect)
    return task_id, k * size, crc


def _open_nonblocking(host: str, port: int) -> Generator[Any, None, socket.socket]:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex((host, port))
        if code == errno.EINPROGRESS:
            yield Wait(sock, "w", IO_TIMEOUT)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise ConnectionError(code, f"cannot connect to {host}:{port}: {os.strerror(code)}")
    except BaseException:
        sock.close()
        raise
    return sock


def io_socket_gen(
    task_id: int,
    k: int = K,
    size: int = SIZE,
    delay: float = DELAY,
    address: str = "",
    connect: str = CONNECT,
) -> Generator[Any, None, tuple[int, int, int]]:
    host, port = _check(k, size, delay, address, connect)
    echoed = bytearray(size)
    view = memoryview(echoed)
    crc = 0
    sock = _take("gen", host, port) if connect == "keep" else None
    if sock is None:
        sock = yield from _open_nonblocking(host, port)
    try:
        # One Wait of each kind, yielded again and again: the scheduler keeps a socket
        # registered while its task waits on it.
        readable = Wait(sock, "r", IO_TIMEOUT)
        writable = Wait(sock, "w", IO_TIMEOUT)
        for index in range(k):
            sent = request(task_id, index, size)
            out = memoryview(sent)
            while out:
                try:
                    out = out[sock.send(out) :]
                except BlockingIOError:
                    yield writable
            got = 0
            while got < size:
                # Nothing can be back before the server's delay: wait first, then read.
                yield readable
                try:
                    count = sock.recv_into(view[got:])
                except BlockingIOError:
                    continue
                if not count:
                    raise ConnectionError(
                        f"io_socket: the server closed after {got} of {size} bytes"
                    )
                got += count
            _verify(task_id, index, sent, echoed)
            crc = zlib.crc32(echoed, crc)
    except BaseException:
        sock.close()
        raise
    _release("gen", host, port, sock, connect)
    return task_id, k * size, crc


async def io_socket_coro(
    task_id: int,
    k: int = K,
    size: int = SIZE,
    delay: float = DELAY,
    address: str = "",
    connect: str = CONNECT,
) -> tuple[int, int, int]:
    host, port = _check(k, size, delay, address, connect)
    crc = 0
    # One bound for the whole task, IO_TIMEOUT for each of its steps (the connection and
    # k round trips): a timer per round trip would cost a fifth of the task's CPU.
    async with asyncio.timeout(IO_TIMEOUT * (k + 1)):
        streams = _take_streams(host, port) if connect == "keep" else None
        reader, writer = streams or await asyncio.open_connection(host, port)
        kept = False
        try:
            for index in range(k):
                sent = request(task_id, index, size)
                writer.write(sent)
                await writer.drain()
                echoed = await reader.readexactly(size)
                _verify(task_id, index, sent, echoed)
                crc = zlib.crc32(echoed, crc)
            if connect == "keep":
                idle = _idle_streams_of(asyncio.get_running_loop())
                idle.setdefault((host, port), deque()).append((reader, writer))
                kept = True
        finally:
            if not kept:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    return task_id, k * size, crc


def io_socket_seconds(
    k: int = K,
    size: int = SIZE,
    delay: float = DELAY,
    address: str = "",
    connect: str = CONNECT,
) -> float:
    """The ideal: one task's round trips, each waiting the server's delay."""
    _check_params(k, size, delay, connect)
    return k * delay


IO_SOCKET = Workload(
    name="io_socket",
    bound="io",
    sync=io_socket_sync,
    gen=io_socket_gen,
    coro=io_socket_coro,
    defaults={"k": K, "size": SIZE, "delay": DELAY, "address": "", "connect": CONNECT},
    duration=io_socket_seconds,
    expected=io_socket_expected,
)
