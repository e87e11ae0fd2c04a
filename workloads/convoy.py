"""convoy: an echo server thread's latency while CPU-bound work shares its process.

The GIL convoy: a thread that does I/O gives the GIL up on every blocking call and, when
its data arrives, must wait for a CPU-bound thread to be *forced* to drop it, which
happens once per switch interval (5 ms by default).  Each request then costs about one
interval or more, whatever the network does.

Variants (``PLACEMENTS``: where the CPU work runs, beside one echo server thread):

- ``threads``: ``cpu_threads`` threads of pure Python (``python_work``, cpu_loop's
  body) in the server's process: they hold the GIL, so the server waits for it.
- ``native``: threads hashing ``NATIVE_BLOCK``-byte blocks (``native_work``); hashlib
  releases the GIL while it hashes, so the server competes only for the CPU.
- ``processes``: the pure-Python loop in ``cpu_threads`` workers of a process pool
  started by the server's process: no GIL shared, only the CPU.

Where it runs, and why a dedicated child process.  The server thread and the CPU work
live in a child interpreter of their own (``ConvoyServer``, running
``workloads._convoy_server``), not in the caller's (pytest's) process:

- the GIL being measured is then shared only by the server thread, the CPU work and the
  child's idle control thread; in pytest's process it would also be shared by pytest's
  own threads (pytest-timeout's, the harness's, pool feeders of other cells);
- the switch interval is changed only in the child, for one round at a time, and put
  back after every round, also when the round fails; the child reports the value it
  restored, and a child that cannot report it is killed, so no process is ever left
  with a changed interval.  The caller's interval is never touched;
- the server's side (its thread, the CPU threads, the pool's workers) can be pinned to
  its own CPUs (``cpus``) without pinning the caller, whose mask a forkserver would
  hand on to every pool it starts later.

Each round: ``load(placement, cpu_threads, switch_interval)`` starts the CPU work and
returns once every worker is running; the caller drives requests; ``unload()`` stops the
work (a stop event every worker checks between chunks of ``CHUNK`` iterations, so it
ends within a chunk and a few switch intervals), restores the interval and reports how
many chunks each worker did (a worker that did none never ran: the round is void, and
the harness runs it again; see ``Runner.void``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil

from . import _children
from .net._common import check_loopback
from .net._ipc import ChannelError, receive, write_message

PLACEMENTS = ("threads", "native", "processes")
# The switch intervals of the published experiment: CPython's default and two shorter.
SWITCH_INTERVALS = (0.005, 0.001, 0.0001)
# Iterations of the pure-Python loop between two looks at the stop event (~0.4 ms here).
CHUNK = 10_000
# Bytes hashed per call: far above hashlib's 2 KiB GIL-release threshold (~1.5 ms here).
NATIVE_BLOCK = 1 << 20
# Longest wait for the child to start, for its CPU work to start or stop, for a reply.
START_TIMEOUT = 30.0
CONTROL_TIMEOUT = 30.0
# The child's own bound on starting or stopping the work: shorter, so that it answers
# (with an error) before the parent gives up on it.
WORK_TIMEOUT = 20.0
# How long a closing child gets to leave on its own before its process group is killed.
CLOSE_TIMEOUT = 5.0
# The process pool's start method: fork in a process with running threads is unsafe.
POOL_START_METHOD = "forkserver"

# What one request takes here, to size a cell's fixed request count: a round of a slow
# cell (a request of 1 ms or more) ~0.3 s, else 0.1 s.  By switch interval, then CPU
# threads (threads placement); by CPU workers off the GIL (native, processes).
THREADS_REQUEST_S = {
    0.005: {1: 6e-3, 2: 16e-3, 4: 40e-3},
    0.001: {1: 1.4e-3, 2: 3.5e-3, 4: 10e-3},
    0.0001: {1: 0.4e-3, 2: 0.8e-3, 4: 9e-3},
}
ALONE_REQUEST_S = 0.05e-3
OFF_GIL_REQUEST_S = {1: 0.1e-3, 2: 0.15e-3, 4: 0.25e-3}
FAST_ROUND_S, SLOW_ROUND_S, MIN_REQUESTS = 0.1, 0.3, 5


def round_requests(placement: str, cpu_threads: int, switch_interval: float) -> int:
    """A cell's fixed request count per round (two significant digits)."""
    if cpu_threads == 0:
        each = ALONE_REQUEST_S
    elif placement == "threads":
        each = THREADS_REQUEST_S[switch_interval][cpu_threads]
    else:
        each = OFF_GIL_REQUEST_S[cpu_threads] * (2 if switch_interval < 0.001 else 1)
    wanted = (SLOW_ROUND_S if each >= 1e-3 else FAST_ROUND_S) / each
    return max(MIN_REQUESTS, int(float(f"{wanted:.2g}")))


class ConvoyError(RuntimeError):
    """The convoy server could not start, load, unload or answer in time."""


class ConvoyRefused(ConvoyError):
    """The convoy server answered a request with an error; its CPU work is stopped and its
    switch interval restored, and it serves on."""


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


class StartedSignal(Protocol):
    def release(self) -> None: ...


# -- the CPU work (top-level, so a process pool can run it) -----------------------------


def python_work(stop: StopFlag, started: StartedSignal, chunk: int = CHUNK) -> int:
    """Pure Python until ``stop`` is set (holds the GIL); the chunks done."""
    started.release()
    done = 0
    while not stop.is_set():
        total = 0
        for i in range(chunk):
            total += i
        done += 1
    return done


def native_work(stop: StopFlag, started: StartedSignal, block: int = NATIVE_BLOCK) -> int:
    """SHA-256 over ``block`` bytes at a time (GIL released) until ``stop``; calls done."""
    data = bytes(range(256)) * (block // 256)
    started.release()
    done = 0
    while not stop.is_set():
        hashlib.sha256(data).digest()
        done += 1
    return done


# A pool worker's stop event and start signal: multiprocessing primitives cannot travel
# with each task, only to the worker when it starts (the pool's initializer).
_POOL_SIGNALS: tuple[Any, Any] | None = None


def pool_init(stop: Any, started: Any) -> None:
    global _POOL_SIGNALS
    _POOL_SIGNALS = (stop, started)


def pool_python_work(chunk: int = CHUNK) -> int:
    """``python_work`` in a pool worker, with the signals its initializer received."""
    if _POOL_SIGNALS is None:
        raise RuntimeError("pool_python_work needs a pool started with pool_init")
    stop, started = _POOL_SIGNALS
    return python_work(stop, started, chunk)


# -- the parent's handle on the child ---------------------------------------------------


@dataclass(frozen=True)
class Unloaded:
    """What the child reports after a round's CPU work stopped."""

    # the interval in force again (the child's default, unless restoring failed)
    switch_interval_s: float
    default_switch_interval_s: float
    # chunks (python) or hashes (native) per worker during the round
    work: list[int] = field(default_factory=list)
    # seconds between the work's start and its stop
    seconds: float = 0.0

    @property
    def restored(self) -> bool:
        return self.switch_interval_s == self.default_switch_interval_s


def check_load(placement: str, cpu_threads: int, switch_interval: float) -> None:
    """ValueError with a one-line reason for parameters no round can run."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; valid: {', '.join(PLACEMENTS)}")
    if not 0 <= cpu_threads <= 64:
        raise ValueError(f"cpu_threads must be 0..64, got {cpu_threads}")
    if not 0 < switch_interval <= 1.0:
        raise ValueError(f"switch_interval must be in (0, 1] seconds, got {switch_interval}")


class ConvoyServer:
    """The child process: an echo server thread plus the CPU work of each round.

    ``cpus`` pins the child (and every thread and pool worker it starts) to those CPUs.
    The child is in a session of its own; ``close()`` (or ``_children``'s ``atexit``
    hook) ends its whole process group, pool workers included.
    """

    def __init__(
        self,
        cpus: list[int] | None = None,
        host: str = "127.0.0.1",
        timeout: float = CONTROL_TIMEOUT,
        start_method: str = POOL_START_METHOD,
    ) -> None:
        check_loopback(host)
        self.cpus = sorted(cpus) if cpus else None
        self.host = host
        self.port = 0
        self.timeout = timeout
        self.start_method = start_method
        self.default_switch_interval: float | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.loaded = False

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ConvoyError("convoy server not started")
        return self.proc.pid

    def start(self) -> ConvoyServer:
        command = [
            sys.executable,
            "-m",
            "workloads._convoy_server",
            f"--host={self.host}",
            f"--parent-pid={os.getpid()}",
            f"--start-method={self.start_method}",
        ]
        if self.cpus:
            command.append("--cpus=" + ",".join(map(str, self.cpus)))
        self.proc = _children.spawn(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            hello = self._expect("hello", START_TIMEOUT)
        except BaseException:
            self.kill()
            raise
        self.port = int(hello["port"])
        self.default_switch_interval = float(hello["switch_interval"])
        return self

    # -- protocol -----------------------------------------------------------------------

    def _send(self, message: Any) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise ConvoyError("convoy server not started")
        try:
            write_message(self.proc.stdin, message)  # type: ignore[arg-type]
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise ConvoyError(f"convoy server is gone ({self._exit_note()})") from exc

    def _expect(self, kind: str, timeout: float) -> Any:
        assert self.proc is not None
        assert self.proc.stdout is not None
        try:
            reply = receive(self.proc.stdout.fileno(), time.monotonic() + timeout)
        except ChannelError as exc:
            raise ConvoyError(
                f"convoy server: {exc} ({self._exit_note()}) while waiting for {kind!r}"
            ) from exc
        if reply[0] == "error":
            raise ConvoyRefused(f"convoy server: {reply[1]}")
        if reply[0] != kind:
            raise ConvoyError(f"convoy server: expected {kind!r}, got {reply[0]!r}")
        return reply[1]

    def _exit_note(self) -> str:
        code = None if self.proc is None else _children.exit_code(self.proc)
        return "still running" if code is None else f"exit code {code}"

    # -- rounds -------------------------------------------------------------------------

    def load(self, placement: str, cpu_threads: int, switch_interval: float) -> None:
        """Set the interval and start the CPU work; returns once every worker runs."""
        check_load(placement, cpu_threads, switch_interval)
        self._send(("load", {"placement": placement, "cpu_threads": cpu_threads,
                             "switch_interval": switch_interval}))  # fmt: skip
        self.loaded = True
        self._expect("loaded", self.timeout)

    def unload(self) -> Unloaded:
        """Stop the CPU work and restore the interval; raise if the child cannot say so."""
        self.loaded = False
        self._send(("unload",))
        facts = self._expect("unloaded", self.timeout)
        return Unloaded(
            switch_interval_s=facts["switch_interval"],
            default_switch_interval_s=facts["default_switch_interval"],
            work=list(facts["work"]),
            seconds=facts["seconds"],
        )

    def status(self) -> dict[str, Any]:
        """The child's switch interval, its threads' names and its pool workers' pids."""
        self._send(("status",))
        facts: dict[str, Any] = self._expect("status", self.timeout)
        return facts

    # -- lifetime -----------------------------------------------------------------------

    def alive(self) -> bool:
        return self.proc is not None and _children.running(self.proc)

    def pids(self) -> list[int]:
        """The child and every process under it (pool workers, the forkserver)."""
        if not self.alive():
            return []
        try:
            proc = psutil.Process(self.pid)
            return [proc.pid, *(child.pid for child in proc.children(recursive=True))]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU of the child and its pool so far."""
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def close(self) -> None:
        """EOF on the control pipe: the child stops its work and leaves; killed if slow."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        _children.end(proc, CLOSE_TIMEOUT, sig=None)

    def kill(self) -> None:
        """End the child's whole process group now (its pool too) and reap it.  Idempotent."""
        if self.proc is not None:
            _children.end(self.proc)

    def __enter__(self) -> ConvoyServer:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc else None
        return f"<ConvoyServer {self.host}:{self.port} pid={pid}>"


__all__ = [
    "CHUNK",
    "NATIVE_BLOCK",
    "PLACEMENTS",
    "SWITCH_INTERVALS",
    "ConvoyError",
    "ConvoyRefused",
    "ConvoyServer",
    "Unloaded",
    "check_load",
    "native_work",
    "pool_init",
    "pool_python_work",
    "python_work",
]
