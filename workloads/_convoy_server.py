"""The convoy server: one process holding an echo server and each round's CPU work.

Started by ``workloads.convoy.ConvoyServer`` (see there why it is a process of its own).
It lives beside ``convoy.py``, not in ``workloads/net``: it runs the convoy's CPU work,
and the network package imports no workload (no import cycle).
Threads: the main thread answers the control pipe, an acceptor thread accepts, and each
connection gets a thread that echoes with blocking ``recv`` / ``sendall``, as the
``threaded`` style does; between rounds, nothing else runs.

Protocol (length-prefixed pickle on stdin/stdout, as the load client's workers):
<- ("hello", {"pid", "port", "switch_interval"}) once listening;
-> ("load", {"placement", "cpu_threads", "switch_interval"}) <- ("loaded", {"workers"}),
   sent once every worker is running;
-> ("unload",) <- ("unloaded", {"switch_interval", "default_switch_interval", "work",
   "seconds"}), the interval restored first;
-> ("status",) <- ("status", {"switch_interval", "threads", "children", "loaded"});
a request that fails is answered ("error", text, traceback), with the CPU work stopped
and the interval restored, and the process keeps serving.  EOF on stdin: stop the work,
close the pool and the server, exit 0.  SIGTERM (also sent when the parent dies): kill
the whole process group at once, the pool's workers with it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from types import FrameType
from typing import Any

import psutil

from workloads.convoy import (
    WORK_TIMEOUT,
    check_load,
    native_work,
    pool_init,
    pool_python_work,
    python_work,
)
from workloads.net._common import (
    AcceptGuard,
    OneLineParser,
    RateLimitedLog,
    accept_connection,
    exit_with_parent,
    get_logger,
    int_in,
    loopback_host,
    make_listener,
)
from workloads.net._ipc import read_message, write_message

# Pool workers kept for the processes placement (grown when a round asks for more).
POOL_WORKERS = 4
# Longest a connection thread or the acceptor gets to finish when the server closes.
CLOSE_GRACE = 2.0
RECV_SIZE = 64 * 1024


class EchoServer:
    """An acceptor thread and a blocking echo thread per connection."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._guard = AcceptGuard(RateLimitedLog(get_logger("convoy")))
        self._acceptor = threading.Thread(target=self._accept, name="convoy-accept", daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def _accept(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(self.listener, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in sel.select(self._guard.remaining() or None)}
                if self._wake_r in ready:
                    return
                if self.listener not in ready or self._guard.paused():
                    continue
                conn = accept_connection(self.listener, self._guard)
                if conn is None:
                    continue
                conn.setblocking(True)
                thread = threading.Thread(target=self._echo, args=(conn,), name="convoy-echo")
                with self._lock:
                    self._conns[conn] = thread
                thread.start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(RECV_SIZE):
                conn.sendall(data)
        except OSError:
            pass  # reset: this connection only
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_GRACE
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._acceptor.join(CLOSE_GRACE)
        with self._lock:
            conns = dict(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes its thread; close would not
        for thread in conns.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()


class _Gate:
    """The CPU threads' start signal: each says it is ready, then waits for all to go.

    Started one by one, each spinning thread would hold the GIL while the control
    thread waits for it to start the next (a switch interval or more per thread);
    parked at the gate, they cost nothing until all of them are let go at once.
    """

    def __init__(self) -> None:
        self.ready = threading.Semaphore(0)
        self.go = threading.Event()

    def release(self) -> None:
        self.ready.release()
        self.go.wait()


class CpuWork:
    """A round's CPU work and the switch interval it runs under; restored after each."""

    def __init__(self, start_method: str) -> None:
        self.default_interval = sys.getswitchinterval()
        self.context = mp.get_context(start_method)
        self.pool: ProcessPoolExecutor | None = None
        self.pool_size = 0
        self.pool_signals: tuple[Any, Any] | None = None
        self.loaded = False
        self.stop: Any = None
        self.threads: list[threading.Thread] = []
        self.gate: _Gate | None = None
        self.results: list[int | BaseException | None] = []
        self.futures: list[Future[int]] = []
        self.started_at = 0.0

    def load(self, placement: str, cpu_threads: int, switch_interval: float) -> dict[str, Any]:
        if self.loaded:
            raise RuntimeError("load while already loaded: unload first")
        check_load(placement, cpu_threads, switch_interval)
        self.loaded = True
        try:
            sys.setswitchinterval(switch_interval)
            self.started_at = time.perf_counter()
            if placement == "processes" and cpu_threads:
                self._start_pool_work(cpu_threads)
            elif cpu_threads:
                self._start_threads(placement, cpu_threads)
        except BaseException:
            with contextlib.suppress(Exception):
                self._stop()
            self.loaded = False
            sys.setswitchinterval(self.default_interval)
            raise
        return {"workers": cpu_threads}

    def unload(self) -> dict[str, Any]:
        if not self.loaded:
            raise RuntimeError("unload without load")
        try:
            work = self._stop()
        finally:
            self.loaded = False
            sys.setswitchinterval(self.default_interval)
        return {
            "switch_interval": sys.getswitchinterval(),
            "default_switch_interval": self.default_interval,
            "work": work,
            "seconds": time.perf_counter() - self.started_at,
        }

    # -- threads ------------------------------------------------------------------------

    def _start_threads(self, placement: str, count: int) -> None:
        work = python_work if placement == "threads" else native_work
        self.stop = threading.Event()
        gate = self.gate = _Gate()
        self.results = [None] * count

        def run(index: int) -> None:
            try:
                self.results[index] = work(self.stop, gate)
            except BaseException as exc:  # reported by unload
                self.results[index] = exc
                gate.ready.release()

        self.threads = [
            threading.Thread(target=run, args=(i,), name=f"convoy-cpu-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self.threads:
            thread.start()
        self._wait_started(gate.ready, count)
        gate.go.set()

    # -- the process pool ---------------------------------------------------------------

    def _ensure_pool(self, count: int) -> ProcessPoolExecutor:
        if self.pool is not None and self.pool_size < count:
            self._drop_pool()
        if self.pool is None:
            self.pool_signals = (self.context.Event(), self.context.Semaphore(0))
            self.pool_size = max(count, POOL_WORKERS)
            self.pool = ProcessPoolExecutor(
                self.pool_size,
                mp_context=self.context,
                initializer=pool_init,
                initargs=self.pool_signals,
            )
        return self.pool

    def _start_pool_work(self, count: int) -> None:
        pool = self._ensure_pool(count)
        assert self.pool_signals is not None
        self.stop, started = self.pool_signals
        self.stop.clear()
        # A worker runs one task until the stop event: N tasks are on N workers at once.
        self.futures = [pool.submit(pool_python_work) for _ in range(count)]
        try:
            self._wait_started(started, count)
        except BaseException:
            self._drop_pool()  # its start signal may now count stale starts
            raise

    def _drop_pool(self) -> None:
        pool, self.pool = self.pool, None
        if self.pool_signals is not None:
            self.pool_signals[0].set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        self.pool_signals = None

    # -- both ---------------------------------------------------------------------------

    def _wait_started(self, started: Any, count: int) -> None:
        deadline = time.monotonic() + WORK_TIMEOUT
        for _ in range(count):
            if not started.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"the CPU work did not start within {WORK_TIMEOUT} s")

    def _stop(self) -> list[int]:
        """Set the stop event and collect every worker's count (bounded waits)."""
        if self.stop is None:
            return []
        self.stop.set()
        if self.gate is not None:  # threads still parked at the gate see the stop at once
            self.gate.go.set()
            self.gate = None
        deadline = time.monotonic() + WORK_TIMEOUT
        threads, self.threads = self.threads, []
        futures, self.futures = self.futures, []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            raise RuntimeError(f"a CPU thread did not stop within {WORK_TIMEOUT} s")
        work: list[int] = []
        for result in self.results[: len(threads)]:
            if isinstance(result, BaseException):
                raise RuntimeError(f"a CPU thread failed: {result!r}")
            work.append(result or 0)
        self.results = []
        if futures:
            _, pending = wait_futures(futures, max(0.0, deadline - time.monotonic()))
            if pending:
                self._drop_pool()
                raise RuntimeError(f"a pool worker did not stop within {WORK_TIMEOUT} s")
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                self._drop_pool()
                raise RuntimeError(f"a pool worker failed: {errors[0]!r}")
            work.extend(f.result() for f in futures)
            self.stop.clear()
        self.stop = None
        return work

    def close(self) -> None:
        if self.loaded:
            with contextlib.suppress(Exception):
                self.unload()
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.shutdown(wait=True, cancel_futures=True)


def _kill_own_group(signum: int, frame: FrameType | None) -> None:
    # The pool's workers are in our process group: they go with us, not after us.
    os.killpg(os.getpgrp(), signal.SIGKILL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m workloads._convoy_server")
    parser.add_argument("--host", type=loopback_host, default="127.0.0.1")
    parser.add_argument("--parent-pid", type=int_in(1), default=None)
    parser.add_argument("--start-method", choices=mp.get_all_start_methods(), default="forkserver")
    parser.add_argument("--cpus", default=None, help="comma-separated CPUs to pin to")
    args = parser.parse_args(argv)
    if args.cpus is not None:
        try:
            args.cpus = sorted({int(c) for c in args.cpus.split(",")})
        except ValueError:
            parser.error(f"--cpus: not a list of CPU numbers: {args.cpus!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpus and not hasattr(os, "sched_setaffinity"):
        print(
            "note: CPU pinning is not available on this platform; running unpinned", file=sys.stderr
        )
    elif args.cpus:
        # First, before any thread exists: every thread and pool worker inherits it.
        os.sched_setaffinity(0, args.cpus)
    exit_with_parent(args.parent_pid)
    signal.signal(signal.SIGTERM, _kill_own_group)
    # The protocol owns the real stdout; anything else printed goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server = EchoServer(make_listener(args.host, 0))
    work = CpuWork(args.start_method)
    server.start()
    try:
        write_message(channel, ("hello", {"pid": os.getpid(),
                                          "port": server.listener.getsockname()[1],
                                          "switch_interval": sys.getswitchinterval()}))  # fmt: skip
        while (message := read_message(sys.stdin.buffer)) is not None:
            try:
                kind = message[0]
                if kind == "load":
                    spec = message[1]
                    reply: Any = work.load(
                        spec["placement"], spec["cpu_threads"], spec["switch_interval"]
                    )
                    write_message(channel, ("loaded", reply))
                elif kind == "unload":
                    write_message(channel, ("unloaded", work.unload()))
                elif kind == "status":
                    me = psutil.Process()
                    facts = {
                        "switch_interval": sys.getswitchinterval(),
                        "threads": sorted(t.name for t in threading.enumerate()),
                        "children": sorted(c.pid for c in me.children(recursive=True)),
                        "loaded": work.loaded,
                    }
                    write_message(channel, ("status", facts))
                else:
                    raise ValueError(f"unknown request {kind!r}")
            except Exception as exc:  # report, keep serving
                text = "".join(traceback.format_exception_only(exc)).strip()
                write_message(channel, ("error", text, traceback.format_exc()))
    except BrokenPipeError:
        pass  # the parent is gone
    finally:
        work.close()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
