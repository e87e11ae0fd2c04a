"""io_socket: ``k`` request/response round trips of ``size`` bytes to a loopback echo server.

Sleeping is the ideal I/O; a real socket adds system calls, buffers and wake-ups, where
the models differ.  The server is one of the project's echo servers started with a
reply delay, like a remote service (``python -m workloads.net serve --style
selectors --delay SECONDS``); the benchmark starts it and hands its address to
the tasks.

Parameters:
- ``k`` (>= 1): round trips per task, over one connection.
- ``size`` (1..``MAX_SIZE``): bytes per request; the reply is its echo.
- ``delay`` (seconds): the server's reply delay.  The task does not use it: it makes the
  ideal, ``k * delay`` (one task's round trips, every task overlapped).
- ``address`` (``"HOST:PORT"``): where the server listens, loopback only.  Set at run time
  by whoever started the server (``benchmarks/test_io_socket.py``), never recorded with a
  cell's parameters: the port changes from run to run, the cell must not.

Variants (flavours), all returning ``(task_id, k * size, crc32 of every echoed byte)``,
which ``io_socket_expected`` computes without a server:
- ``sync``: blocking sockets with a timeout; under gevent's ``monkey.patch_all()`` they
  yield to its hub.
- ``gen``: non-blocking sockets; the task yields ``Wait(sock, "r"|"w", timeout)`` and the
  generator model wakes it with ``selectors``.
- ``coro``: asyncio streams (``open_connection``, ``readexactly``).

Every echo is compared with its request byte for byte (a mismatch raises), every wait
is bounded (``IO_TIMEOUT`` per connect, send or receive; in ``coro`` per task step, one
timer for the task), and the connection is closed however the task ends.
A request is sent whole before its reply is read, as a simple RPC client does, so a
request must fit the socket buffers and the server's high-water mark: ``MAX_SIZE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import math
import os
import socket
import struct
import zlib
from collections.abc import Generator
from typing import Any

from ._spec import Workload

K = 5
SIZE = 1024
DELAY = 0.005
# 64 KiB: far below the loopback socket buffers and the server's 256 KiB high-water mark.
MAX_SIZE = 64 * 1024
# The server refuses longer delays (``--delay``); so does the workload.
MAX_DELAY = 10.0
# The longest any connect, send or receive may wait, in seconds.
IO_TIMEOUT = 10.0
# Each request starts with (task_id, round trip): an echo from the wrong task or round
# differs at once.  The rest is a pattern shifted per request.
_HEADER = struct.Struct("!II")


def _check_params(k: int, size: int, delay: float) -> None:
    if k < 1:
        raise ValueError(f"io_socket: k={k} must be at least 1")
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"io_socket: size={size} must be 1..{MAX_SIZE} bytes")
    if not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
        raise ValueError(f"io_socket: delay={delay} must be 0..{MAX_DELAY} s")


def _check(k: int, size: int, delay: float, address: str) -> tuple[str, int]:
    """Valid parameters, and the server's (host, port)."""
    _check_params(k, size, delay)
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
    task_id: int, k: int = K, size: int = SIZE, delay: float = DELAY, address: str = ""
) -> tuple[int, int, int]:
    """What every flavour returns for ``task_id``, computed without a server (``address``
    is accepted and unused: the echo does not depend on where the server is)."""
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


def io_socket_sync(
    task_id: int, k: int = K, size: int = SIZE, delay: float = DELAY, address: str = ""
) -> tuple[int, int, int]:
    host, port = _check(k, size, delay, address)
    echoed = bytearray(size)
    view = memoryview(echoed)
    crc = 0
    # Not socket.create_connection: it resolves the address first, which gevent does in
    # a thread pool; the address is an IP already.
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(k):
            sent = request(task_id, index, size)
            sock.sendall(sent)
            _recv_exactly(sock, view)
            _verify(task_id, index, sent, echoed)
            crc = zlib.crc32(echoed, crc)
    return task_id, k * size, crc


def io_socket_gen(
    task_id: int, k: int = K, size: int = SIZE, delay: float = DELAY, address: str = ""
) -> Generator[Any, None, tuple[int, int, int]]:
    # Imported here, not at the top: ``workloads`` imports this module while it is
    # itself being imported, and ``workloads.models`` (plugins and all) must not load
    # inside that; by the time a task runs, both are complete.
    from .models.generator import Wait

    host, port = _check(k, size, delay, address)
    echoed = bytearray(size)
    view = memoryview(echoed)
    crc = 0
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One Wait of each kind, yielded again and again: the scheduler keeps a socket
        # registered while its task waits on it.
        readable = Wait(sock, "r", IO_TIMEOUT)
        writable = Wait(sock, "w", IO_TIMEOUT)
        code = sock.connect_ex((host, port))
        if code == errno.EINPROGRESS:
            yield writable
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise ConnectionError(code, f"cannot connect to {host}:{port}: {os.strerror(code)}")
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
    finally:
        sock.close()
    return task_id, k * size, crc


async def io_socket_coro(
    task_id: int, k: int = K, size: int = SIZE, delay: float = DELAY, address: str = ""
) -> tuple[int, int, int]:
    host, port = _check(k, size, delay, address)
    crc = 0
    # One bound for the whole task, IO_TIMEOUT for each of its steps (the connection and
    # k round trips): a timer per round trip would cost a fifth of the task's CPU.
    async with asyncio.timeout(IO_TIMEOUT * (k + 1)):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in range(k):
                sent = request(task_id, index, size)
                writer.write(sent)
                await writer.drain()
                echoed = await reader.readexactly(size)
                _verify(task_id, index, sent, echoed)
                crc = zlib.crc32(echoed, crc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return task_id, k * size, crc


def io_socket_seconds(
    k: int = K, size: int = SIZE, delay: float = DELAY, address: str = ""
) -> float:
    """The ideal: one task's round trips, each waiting the server's delay."""
    _check_params(k, size, delay)
    return k * delay


IO_SOCKET = Workload(
    name="io_socket",
    bound="io",
    sync=io_socket_sync,
    gen=io_socket_gen,
    coro=io_socket_coro,
    defaults={"k": K, "size": SIZE, "delay": DELAY, "address": ""},
    duration=io_socket_seconds,
    expected=io_socket_expected,
)
