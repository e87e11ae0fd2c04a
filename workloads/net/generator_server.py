"""generator: a task per connection on the project's generator scheduler.

The tutorial's ``yield`` switching, grown into a server the way David Beazley's
"generators as coroutines" talks did it.  Each connection is a generator task on
``workloads._scheduler.Scheduler``, the scheduler the generator model runs its tasks
on: it yields ``Wait(conn, "r" | "w" | "rw", timeout)`` and is resumed once its socket
is ready (or with ``TimeoutError`` raised at its ``yield`` once the timeout passed).
The accepting task spawns a task per connection while the scheduler runs; a task that
fails ends alone (logged), never the server.  No futures, no callbacks.
"""

from __future__ import annotations

import socket
import time

from .._scheduler import READ, Scheduler, Task, Wait
from ._common import (
    ACCEPT_BATCH,
    POLL_INTERVAL,
    AcceptGuard,
    EchoBuffer,
    RateLimitedLog,
    ServerConfig,
    StopSignals,
    accept_connection,
    get_logger,
    hard_close,
    log_stall,
)

STYLE = "generator"


def echo_task(conn: socket.socket, config: ServerConfig, log: RateLimitedLog) -> Task:
    buf = EchoBuffer(conn, config)
    # The usual wait, made once: for the next request, nothing pending, no timer.
    wait = idle = Wait(conn, "r")
    try:
        while True:
            try:
                yield wait
            except TimeoutError:
                if buf.stalled(time.monotonic(), config.stall_timeout):
                    log_stall(log, buf, config.stall_timeout)
                    return
                continue
            try:
                if wait.events & READ:
                    buf.read()  # nothing to read (only writable): returns at once
                buf.write()  # optimistic: most replies go out without waiting
            except OSError:
                return  # reset or broken pipe: this connection only
            if buf.done:
                return
            if buf.out:
                # Only a connection with bytes pending can stall, so only it gets a timer.
                mode = "rw" if buf.wants_read else "w"
                wait = Wait(conn, mode, config.stall_timeout)
            else:
                wait = idle
    finally:
        if buf.out:
            hard_close(conn)
        else:
            conn.close()


def accept_task(
    listener: socket.socket, scheduler: Scheduler, config: ServerConfig, log: RateLimitedLog
) -> Task:
    guard = AcceptGuard(log)
    ready = Wait(listener, "r")
    try:
        while True:
            yield ready
            for _ in range(ACCEPT_BATCH):
                conn = accept_connection(listener, guard)
                if conn is None:
                    break
                conn.setblocking(False)
                scheduler.spawn(echo_task(conn, config, log))
            if guard.paused():
                yield guard.remaining()  # out of descriptors: sleep, don't spin
    finally:
        listener.close()


def serve(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    listener.setblocking(False)
    scheduler = Scheduler()
    scheduler.spawn(accept_task(listener, scheduler, config, log))

    def failed(task: int, exc: Exception) -> None:
        # A bug in one task ends that task (its finally closes its socket), not the server.
        get_logger(STYLE).error("task %d failed", task, exc_info=exc)

    with StopSignals() as stop:
        scheduler.watch(stop, stop.drain)
        scheduler.run(stop=lambda: stop.requested, on_error=failed, max_wait=POLL_INTERVAL)
