"""The load client's engine: many echo connections multiplexed on one selector.

Each connection runs closed-loop: send a request of ``size`` bytes, read the echo,
compare every byte, record the latency (first byte sent to last byte back), repeat.
Consecutive requests on a connection carry different bytes (a random payload and its
bitwise inverse), so a server that replays stale data, drops or duplicates bytes, or
mixes connections up is caught.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import time
from array import array
from typing import Any

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
RECV_SIZE = 256 * 1024
CONNECT_TIMEOUT = 10.0
# Error messages kept per worker, for the report; the count is always exact.
MAX_ERROR_SAMPLES = 10
_INVERT = bytes(range(255, -1, -1))


class EchoMismatch(Exception):
    """The server sent back bytes we did not send, or more of them."""


def open_connections(
    host: str, port: int, count: int, timeout: float = CONNECT_TIMEOUT
) -> tuple[list[socket.socket | None], list[str]]:
    socks: list[socket.socket | None] = []
    errors: list[str] = []
    for index in range(count):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            socks.append(None)
            errors.append(f"connection {index}: connect failed: {exc!r}")
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
    return socks, errors


class _Conn:
    __slots__ = (
        "done",
        "events",
        "index",
        "payload",
        "payloads",
        "received",
        "sent",
        "sock",
        "started",
        "todo",
        "view",
    )

    def __init__(self, index: int, sock: socket.socket, todo: int, payload: bytes) -> None:
        self.index = index
        self.sock = sock
        self.todo = todo
        self.done = 0
        self.payloads = (payload, payload.translate(_INVERT))
        self.payload = payload
        self.view = memoryview(payload)
        self.sent = 0
        self.received = 0
        self.started = 0.0
        self.events = 0


def drive(
    socks: list[socket.socket | None],
    counts: list[int],
    size: int,
    duration: float | None,
    timeout: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the requests; return plain facts (picklable) for the parent to merge.

    ``counts[i]`` requests go over ``socks[i]``; with ``duration``, every connection
    keeps going until that many seconds have passed instead.  Closes every socket.
    """
    conns = []
    for index, (sock, todo) in enumerate(zip(socks, counts, strict=True)):
        if sock is not None:
            rng = random.Random(seed * 1_000_003 + index)
            conns.append(_Conn(index, sock, todo, rng.randbytes(size)))
    latencies = array("d")
    errors: list[str] = []
    error_count = 0
    mismatches = 0
    verified = 0
    requests = 0
    perf = time.perf_counter
    sel = selectors.DefaultSelector()

    def begin(c: _Conn) -> None:
        c.payload = c.payloads[c.done & 1]
        c.view = memoryview(c.payload)
        c.received = 0
        c.started = perf()
        try:
            c.sent = c.sock.send(c.payload)
        except BlockingIOError:
            c.sent = 0
        want = READ if c.sent == size else READ | WRITE
        if c.events == 0:
            sel.register(c.sock, want, c)
        elif want != c.events:
            sel.modify(c.sock, want, c)
        c.events = want

    def more(c: _Conn, now: float) -> bool:
        return now < end_at if end_at is not None else c.done < c.todo

    cpu_started = time.process_time()
    started = time.monotonic()
    end_at = started + duration if duration is not None else None
    hard_deadline = started + (duration or 0.0) + timeout
    active = 0
    for c in conns:
        if duration is not None or c.todo > 0:
            try:
                begin(c)
                active += 1
            except OSError as exc:
                error_count += 1
                errors.append(f"connection {c.index}: {exc!r}")
    while active:
        now = time.monotonic()
        if now >= hard_deadline:
            break
        for key, mask in sel.select(min(1.0, hard_deadline - now)):
            c = key.data
            try:
                if mask & WRITE and c.sent < size:
                    with contextlib.suppress(BlockingIOError):
                        c.sent += c.sock.send(c.view[c.sent :])
                    if c.sent == size:
                        sel.modify(c.sock, READ, c)
                        c.events = READ
                if not mask & READ:
                    continue
                try:
                    chunk = c.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise ConnectionError("the server closed the connection mid-request")
                got = len(chunk)
                at = c.received
                if at + got > c.sent or chunk != c.payload[at : at + got]:
                    raise EchoMismatch(
                        f"echo differs at bytes {at}..{at + got} of request {c.done} "
                        f"({c.sent} bytes sent so far)"
                    )
                c.received = at + got
                verified += got
                if c.received == size:
                    latencies.append(perf() - c.started)
                    c.done += 1
                    requests += 1
                    if more(c, time.monotonic()):
                        begin(c)
                    else:
                        sel.unregister(c.sock)
                        c.events = -1
                        active -= 1
            except EchoMismatch as exc:
                mismatches += 1
                error_count += 1
                errors.append(f"connection {c.index}: {exc}")
                sel.unregister(c.sock)
                c.events = -1
                active -= 1
            except OSError as exc:
                error_count += 1
                errors.append(f"connection {c.index}: {exc!r}")
                sel.unregister(c.sock)
                c.events = -1
                active -= 1
    ended = time.monotonic()
    cpu = time.process_time() - cpu_started
    for c in conns:
        if c.events > 0:  # still waiting at the deadline
            error_count += 1
            errors.append(
                f"connection {c.index}: request {c.done} unfinished after {timeout} s "
                f"({c.sent} of {size} bytes sent, {c.received} echoed)"
            )
    sel.close()
    for sock in socks:
        if sock is not None:
            sock.close()
    return {
        "latencies": latencies.tobytes(),
        "requests": requests,
        "bytes_verified": verified,
        "errors": error_count,
        "mismatches": mismatches,
        "error_samples": errors[:MAX_ERROR_SAMPLES],
        "cpu_s": cpu,
        "started": started,
        "ended": ended,
    }
