"""The load client's engine: echo connections driven from one worker process.

Each connection carries one request at a time: send ``size`` bytes, read the echo,
compare every byte, record the latency, repeat.  Consecutive requests on a connection
carry different bytes (a random payload and its bitwise inverse), so a server that
replays stale data, drops or duplicates bytes, or mixes connections up is caught.

Two engines, chosen by how many connections a worker has:

- one connection: a blocking ``sendall`` / ``recv_into`` loop, the cheapest a Python
  client can be (no readiness call per request), as vmbench's ``echo_client`` does;
  every wait is bounded by ``SO_RCVTIMEO`` / ``SO_SNDTIMEO`` in the kernel, which costs
  no extra system call (a Python socket timeout would ``poll`` before every ``recv``);
- several: non-blocking sockets multiplexed on epoll (``poll`` elsewhere).

Closed loop (default): the next request leaves when the echo of the last is back;
latency is first byte sent to last byte echoed.  Open loop (``rate``): request ``k`` of
a connection is *intended* at ``start + offset + k / rate``; it is sent then, or as soon
as the previous echo is back if that is later, and its latency counts from the intended
time, as wrk2 measures, so a server that stalls is charged for every request the stall
held back (no coordinated omission).

Latencies are integer nanoseconds appended to an ``array`` in the hot loop and folded
into a bounded ``Histogram`` every ``FOLD_EVERY`` requests and at the end.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import select
import socket
import struct
import time
from array import array
from typing import Any

from ._histogram import Histogram

RECV_SIZE = 256 * 1024
CONNECT_TIMEOUT = 10.0
# Error messages kept per worker, for the report; the count is always exact.
MAX_ERROR_SAMPLES = 10
# Raw latencies held before they are folded into the histogram: bounds memory on long runs.
FOLD_EVERY = 1 << 18
_INVERT = bytes(range(255, -1, -1))
_NS = 1_000_000_000
READ = select.POLLIN
WRITE = select.POLLOUT


class EchoMismatch(Exception):
    """The server sent back bytes we did not send, or more of them."""


def open_connections(
    host: str, port: int, count: int, timeout: float = CONNECT_TIMEOUT
) -> tuple[list[socket.socket | None], list[str]]:
    """Connect ``count`` times; each connection then echoes one byte, untimed.

    The echo proves the server has accepted the connection and made whatever it keeps
    per connection (a thread, a greenlet, a task) before any timing starts: otherwise
    the first timed requests of a round would wait for accept() and thread start-up.
    """
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
        socks.append(sock)
    for index, made in enumerate(socks):
        if made is None:
            continue
        try:
            made.sendall(b"w")
            if made.recv(16) != b"w":
                raise EchoMismatch("the first one-byte echo differs")
        except (OSError, EchoMismatch) as exc:
            made.close()
            socks[index] = None
            errors.append(f"connection {index}: first echo failed: {exc!r}")
    return socks, errors


def _first_difference(got: bytes | bytearray | memoryview, expected: bytes) -> int:
    for offset, (a, b) in enumerate(zip(bytes(got), expected, strict=False)):
        if a != b:
            return offset
    return min(len(got), len(expected))


class _Facts:
    """What a worker reports: counts, error samples, the latency histogram."""

    def __init__(self) -> None:
        self.raw = array("q")
        self.histogram = Histogram()
        self.errors: list[str] = []
        self.error_count = 0
        self.mismatches = 0
        self.verified = 0
        self.requests = 0

    def fold(self) -> None:
        self.histogram.record_many(self.raw)
        del self.raw[:]

    def error(self, text: str, *, mismatch: bool = False) -> None:
        self.error_count += 1
        self.mismatches += mismatch
        if len(self.errors) < MAX_ERROR_SAMPLES:
            self.errors.append(text)


def drive(
    socks: list[socket.socket | None],
    counts: list[int],
    size: int,
    duration: float | None,
    timeout: float,
    seed: int = 0,
    rate: float | None = None,
    offsets: list[float] | None = None,
) -> dict[str, Any]:
    """Run the requests; return plain facts (picklable) for the parent to merge.

    ``counts[i]`` requests go over ``socks[i]``; with ``duration``, every connection
    keeps going until that many seconds have passed instead.  ``rate`` is requests per
    second *per connection* (open loop); ``offsets[i]`` (seconds) staggers connection
    ``i``'s schedule so that connections do not all fire at once.  Closes every socket.
    """
    facts = _Facts()
    payloads = []
    for index, sock in enumerate(socks):
        rng = random.Random(seed * 1_000_003 + index)
        payload = rng.randbytes(size) if sock is not None else b""
        payloads.append((payload, payload.translate(_INVERT)))
    offsets = offsets or [0.0] * len(socks)
    live = [i for i, s in enumerate(socks) if s is not None]
    cpu_started = time.process_time()
    started = time.monotonic()
    try:
        if len(live) == 1:
            i = live[0]
            sock = socks[i]
            assert sock is not None
            _drive_one(facts, i, sock, counts[i], payloads[i], duration, timeout, rate, offsets[i])
        elif live:
            _drive_many(facts, socks, counts, payloads, size, duration, timeout, rate, offsets)
    finally:
        ended = time.monotonic()
        cpu = time.process_time() - cpu_started
        for sock in socks:
            if sock is not None:
                sock.close()
    facts.fold()
    return {
        "histogram": facts.histogram.to_dict(),
        "requests": facts.requests,
        "bytes_verified": facts.verified,
        "errors": facts.error_count,
        "mismatches": facts.mismatches,
        "error_samples": facts.errors,
        "cpu_s": cpu,
        "started": started,
        "ended": ended,
    }


def _drive_one(
    facts: _Facts,
    index: int,
    sock: socket.socket,
    todo: int,
    payloads: tuple[bytes, bytes],
    duration: float | None,
    timeout: float,
    rate: float | None,
    offset: float,
) -> None:
    """One connection, blocking: the fast path (see the module docstring)."""
    size = len(payloads[0])
    sock.settimeout(None)
    # Kernel-side bounds on every blocking call: EAGAIN after ``timeout`` seconds.
    limit = struct.pack("ll", int(timeout), int((timeout % 1) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    buf = bytearray(size)
    view = memoryview(buf)
    raw = facts.raw
    append = raw.append
    sendall = sock.sendall
    recv_into = sock.recv_into
    now_ns = time.perf_counter_ns
    t_start = now_ns()
    end_ns = t_start + int(duration * _NS) if duration is not None else None
    interval_ns = int(_NS / rate) if rate else 0
    due = t_start + int(offset * _NS)
    done = 0
    sent = got = 0
    try:
        while done < todo if end_ns is None else now_ns() < end_ns:
            expected = payloads[done & 1]
            if interval_ns:
                wait = due - now_ns()
                if wait > 0:
                    time.sleep(wait / _NS)  # at most one interval
                t0 = due
                due += interval_ns
            else:
                t0 = now_ns()
            sent = got = 0
            sendall(expected)
            sent = size
            while got < size:
                n = recv_into(view[got:])
                if not n:
                    raise ConnectionError("the server closed the connection mid-request")
                got += n
            t1 = now_ns()
            if buf != expected:
                at = _first_difference(buf, expected)
                raise EchoMismatch(f"echo differs at byte {at} of request {done}")
            append(t1 - t0)
            done += 1
            facts.verified += size
            if len(raw) >= FOLD_EVERY:
                facts.fold()
                append = raw.append
        # A server that echoes more than it was sent leaves bytes behind: catch them.
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            extra = sock.recv(RECV_SIZE)
            if extra:
                raise EchoMismatch(f"{len(extra)} bytes echoed beyond request {done - 1}")
    except EchoMismatch as exc:
        facts.error(f"connection {index}: {exc}", mismatch=True)
    except OSError as exc:
        if isinstance(exc, BlockingIOError | TimeoutError):
            text = (
                f"request {done} unfinished after {timeout} s "
                f"({sent} of {size} bytes sent, {got} echoed)"
            )
        else:
            text = repr(exc)
        facts.error(f"connection {index}: {text}")
    facts.requests += done


class _Conn:
    __slots__ = (
        "done",
        "due",
        "fd",
        "index",
        "payload",
        "payloads",
        "received",
        "sent",
        "sock",
        "started",
        "todo",
        "view",
        "waiting",
    )

    def __init__(
        self, index: int, sock: socket.socket, todo: int, payloads: tuple[bytes, bytes]
    ) -> None:
        self.index = index
        self.sock = sock
        self.fd = sock.fileno()
        self.todo = todo
        self.done = 0
        self.payloads = payloads
        self.payload = payloads[0]
        self.view = memoryview(self.payload)
        self.sent = 0
        self.received = 0
        self.started = 0
        self.due = 0
        # True while an open-loop connection waits for its next intended send time
        self.waiting = False


def _drive_many(
    facts: _Facts,
    socks: list[socket.socket | None],
    counts: list[int],
    payloads: list[tuple[bytes, bytes]],
    size: int,
    duration: float | None,
    timeout: float,
    rate: float | None,
    offsets: list[float],
) -> None:
    """Several connections on one poller (epoll where there is one)."""
    poller: Any = select.epoll() if hasattr(select, "epoll") else select.poll()
    scale = 1.0 if hasattr(select, "epoll") else 1000.0  # epoll: seconds; poll: ms
    conns: dict[int, _Conn] = {}
    now_ns = time.perf_counter_ns
    t_start = now_ns()
    end_ns = t_start + int(duration * _NS) if duration is not None else None
    interval_ns = int(_NS / rate) if rate else 0
    hard_deadline = time.monotonic() + (duration or 0.0) + timeout
    raw = facts.raw
    # open loop: (intended send time, fd) of connections waiting for it
    timers: list[tuple[int, int]] = []

    def begin(c: _Conn, intended: int) -> None:
        c.payload = c.payloads[c.done & 1]
        c.view = memoryview(c.payload)
        c.received = 0
        c.started = intended
        c.waiting = False
        try:
            c.sent = c.sock.send(c.payload)
        except BlockingIOError:
            c.sent = 0
        poller.modify(c.fd, READ if c.sent == size else READ | WRITE)

    def next_request(c: _Conn, now: int) -> bool:
        """Start the next request or schedule it; False when the connection is done."""
        if (end_ns is None and c.done >= c.todo) or (end_ns is not None and now >= end_ns):
            return False
        if not interval_ns:
            begin(c, now)
        elif c.due <= now:  # late already: send now, charged from the intended time
            begin(c, c.due)
            c.due += interval_ns
        else:
            c.waiting = True
            heapq.heappush(timers, (c.due, c.fd))
        return True

    def finish(c: _Conn) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            poller.unregister(c.fd)
        del conns[c.fd]

    try:
        for index, (sock, todo) in enumerate(zip(socks, counts, strict=True)):
            if sock is None or (duration is None and todo <= 0):
                continue
            sock.setblocking(False)
            c = _Conn(index, sock, todo, payloads[index])
            c.due = t_start + int(offsets[index] * _NS)
            conns[c.fd] = c
            poller.register(c.fd, READ)
            try:
                next_request(c, now_ns())
            except OSError as exc:
                facts.error(f"connection {index}: {exc!r}")
                finish(c)
        while conns:
            now = time.monotonic()
            if now >= hard_deadline:
                break
            wait = min(1.0, hard_deadline - now)
            if timers:
                wait = max(0.0, min(wait, (timers[0][0] - now_ns()) / _NS))
            for fd, mask in poller.poll(wait * scale):
                if fd not in conns:
                    continue
                c = conns[fd]
                try:
                    if mask & WRITE and c.sent < size:
                        with contextlib.suppress(BlockingIOError):
                            c.sent += c.sock.send(c.view[c.sent :])
                        if c.sent == size:
                            poller.modify(fd, READ)
                    if not mask & (READ | select.POLLHUP | select.POLLERR):
                        continue
                    try:
                        chunk = c.sock.recv(RECV_SIZE)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise ConnectionError("the server closed the connection mid-request")
                    got = len(chunk)
                    at = c.received
                    if c.waiting or at + got > c.sent or chunk != c.view[at : at + got]:
                        raise EchoMismatch(
                            f"echo differs at bytes {at}..{at + got} of request {c.done} "
                            f"({c.sent} bytes sent so far)"
                        )
                    c.received = at + got
                    facts.verified += got
                    if c.received == size:
                        t1 = now_ns()
                        raw.append(t1 - c.started)
                        c.done += 1
                        facts.requests += 1
                        if len(raw) >= FOLD_EVERY:
                            facts.fold()
                        if not next_request(c, t1):
                            finish(c)
                except EchoMismatch as exc:
                    facts.error(f"connection {c.index}: {exc}", mismatch=True)
                    finish(c)
                except OSError as exc:
                    facts.error(f"connection {c.index}: {exc!r}")
                    finish(c)
            if timers:
                now = now_ns()
                while timers and timers[0][0] <= now:
                    _, fd = heapq.heappop(timers)
                    if fd not in conns or not conns[fd].waiting:
                        continue
                    c = conns[fd]
                    if end_ns is not None and now >= end_ns:
                        finish(c)
                        continue
                    try:
                        begin(c, c.due)
                        c.due += interval_ns
                    except OSError as exc:
                        facts.error(f"connection {c.index}: {exc!r}")
                        finish(c)
        for c in conns.values():  # still waiting at the deadline
            if not c.waiting:
                facts.error(
                    f"connection {c.index}: request {c.done} unfinished after {timeout} s "
                    f"({c.sent} of {size} bytes sent, {c.received} echoed)"
                )
    finally:
        if hasattr(poller, "close"):
            poller.close()
