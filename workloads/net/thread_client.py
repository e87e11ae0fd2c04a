"""The tutorial's client, done right: a blocking socket per thread, one thread each.

Each thread sends a request with ``sendall`` (the tutorial's ``send`` could send part of
it), then reads until the whole echo is back (its single ``recv(1024)`` could return
part of it), and compares every byte.  It is a workload to measure: threads block in
the kernel and release the GIL, but every request takes a GIL hand-off, so beside the
multiplexed ``processes`` client it shows what a thread per connection costs.
Requests larger than the socket buffers (~MBs) can deadlock this send-then-read shape.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from array import array
from typing import Any

from ._common import check_loopback
from .load import DEFAULT_TIMEOUT, LoadError, LoadResult, merge, split

RECV_SIZE = 256 * 1024
_INVERT = bytes(range(255, -1, -1))


def _client(
    index: int,
    host: str,
    port: int,
    todo: int,
    size: int,
    duration: float | None,
    timeout: float,
    start: threading.Barrier,
    out: dict[int, dict[str, Any]],
) -> None:
    latencies = array("d")
    errors: list[str] = []
    verified = mismatches = done = 0
    payload = random.Random(index).randbytes(size)
    payloads = (payload, payload.translate(_INVERT))
    sock: socket.socket | None = None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        errors.append(f"connection {index}: connect failed: {exc!r}")
    try:
        start.wait(timeout)
    except threading.BrokenBarrierError:
        errors.append(f"connection {index}: the others never started")
    started = time.monotonic()
    end_at = started + duration if duration is not None else None
    try:
        while sock is not None and not errors:
            if end_at is not None and time.monotonic() >= end_at:
                break
            if end_at is None and done >= todo:
                break
            expected = payloads[done & 1]
            t0 = time.perf_counter()
            sock.sendall(expected)
            got = 0
            while got < size:
                chunk = sock.recv(min(RECV_SIZE, size - got))
                if not chunk:
                    raise ConnectionError("the server closed the connection mid-request")
                if chunk != expected[got : got + len(chunk)]:
                    mismatches += 1
                    raise ValueError(f"echo differs at bytes {got}..{got + len(chunk)}")
                got += len(chunk)
            latencies.append(time.perf_counter() - t0)
            verified += size
            done += 1
    except (OSError, ValueError) as exc:
        errors.append(f"connection {index}: {exc!r}")
    finally:
        if sock is not None:
            sock.close()
    out[index] = {
        "latencies": latencies.tobytes(),
        "requests": done,
        "bytes_verified": verified,
        "errors": len(errors),
        "mismatches": mismatches,
        "error_samples": errors,
        "cpu_s": 0.0,  # one process: measured once, around all threads
        "started": started,
        "ended": time.monotonic(),
    }


def run_thread_clients(
    host: str,
    port: int,
    connections: int,
    requests: int,
    size: int,
    duration: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> LoadResult:
    """``connections`` threads, ``requests`` in total; a ``LoadResult`` like ``run_load``."""
    check_loopback(host)
    counts = split(requests, connections) if duration is None else [0] * connections
    start = threading.Barrier(connections + 1)
    out: dict[int, dict[str, Any]] = {}
    threads = [
        threading.Thread(
            target=_client,
            args=(i, host, port, counts[i], size, duration, timeout, start, out),
            name=f"echo-client-{i}",
            daemon=True,
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    cpu_started = time.process_time()
    try:
        start.wait(timeout)
    except threading.BrokenBarrierError as exc:
        raise LoadError("the client threads did not all start") from exc
    deadline = time.monotonic() + timeout + (duration or 0.0)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    cpu = time.process_time() - cpu_started
    if any(thread.is_alive() for thread in threads):
        raise LoadError(f"client threads still running after {timeout} s")
    facts = [out[i] for i in range(connections)]
    facts[0]["cpu_s"] = cpu
    return merge(
        facts,
        client="threads",
        connections=connections,
        processes=1,
        size=size,
        requested=0 if duration is not None else requests,
        duration=duration,
    )
