"""generator: a task per connection on a yield-based scheduler of our own.

The tutorial's ``yield`` switching, grown into a server the way David Beazley's
"generators as coroutines" talks did it.  Each connection is a generator that yields
what it waits for:

- ``None``: let the others run (round-robin), as in ``workloads.models.run_generators``;
- a number: sleep that many seconds (a timer heap, as there);
- ``Wait(sock, events, timeout)``: park until the socket is readable/writable (one
  epoll for all tasks), resumed with the ready events, or ``0`` once ``timeout`` passes.

``run_generators`` itself cannot host a server: it takes its task list up front and has
no way to wait for a socket, so a task could only poll (spin) or sleep in fixed quanta.
This scheduler adds exactly those two things (spawn while running, wait on readiness)
and nothing else; no futures, no callbacks.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

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
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Wait(NamedTuple):
    sock: Any  # anything with fileno()
    events: int
    timeout: float | None = None


Task = Generator["Wait | float | None", int | None, None]


class _Slot:
    """A task and what it is parked on (``wait_id`` makes its stale timers harmless)."""

    __slots__ = ("fd", "gen", "wait_id")

    def __init__(self, gen: Task) -> None:
        self.gen = gen
        self.fd: int | None = None  # registered with the selector, if any
        self.wait_id = 0


class Scheduler:
    """Round-robin over ready tasks; epoll and a timer heap for the parked ones."""

    def __init__(self) -> None:
        self.ready: deque[tuple[_Slot, int | None]] = deque()
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, _Slot, int]] = []
        self.seq = itertools.count()
        self.slots: set[_Slot] = set()

    def spawn(self, gen: Task) -> None:
        slot = _Slot(gen)
        self.slots.add(slot)
        self.ready.append((slot, None))

    def _forget_fd(self, slot: _Slot) -> None:
        if slot.fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(slot.fd)
            slot.fd = None

    def _park(self, slot: _Slot, request: Wait | float | None) -> None:
        slot.wait_id += 1
        if request is None:
            self._forget_fd(slot)
            self.ready.append((slot, None))
            return
        if not isinstance(request, Wait):
            # A sleeping task must not stay registered: a level-triggered epoll would
            # keep reporting its socket and turn the sleep into a busy loop.
            self._forget_fd(slot)
            self._timer(slot, float(request))
            return
        fd = request.sock.fileno()
        if slot.fd is not None and slot.fd != fd:
            self._forget_fd(slot)
        # Keep a socket registered between waits: one epoll_ctl when interest changes,
        # none for the common "read again" wait.
        if slot.fd is None:
            self.selector.register(fd, request.events, slot)
            slot.fd = fd
        elif self.selector.get_key(fd).events != request.events:
            self.selector.modify(fd, request.events, slot)
        if request.timeout is not None:
            self._timer(slot, request.timeout)

    def _timer(self, slot: _Slot, delay: float) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), slot, slot.wait_id))

    def _step(self, slot: _Slot, value: int | None) -> None:
        try:
            request = slot.gen.send(value)
        except StopIteration:
            self._finish(slot)
            return
        except Exception:
            # A bug in one task ends that task (its finally closes its socket), not the
            # server.
            self._finish(slot)
            get_logger(STYLE).exception("a task failed")
            return
        self._park(slot, request)

    def _finish(self, slot: _Slot) -> None:
        self._forget_fd(slot)
        slot.wait_id += 1
        self.slots.discard(slot)

    def run(self, stop: Callable[[], bool], wake: Any = None) -> None:
        """Run until ``stop()`` is true; ``wake`` (a readable object) interrupts a wait."""
        if wake is not None:
            self.selector.register(wake, READ, None)
        try:
            while not stop():
                for _ in range(len(self.ready)):
                    slot, value = self.ready.popleft()
                    if slot in self.slots:
                        self._step(slot, value)
                now = time.monotonic()
                if self.ready:
                    timeout = 0.0
                elif self.timers:
                    timeout = min(POLL_INTERVAL, max(0.0, self.timers[0][0] - now))
                else:
                    timeout = POLL_INTERVAL
                for key, mask in self.selector.select(timeout):
                    slot = key.data
                    if slot is None:
                        wake.drain()
                        continue
                    # Still registered, but parked no more until it yields its next Wait.
                    slot.wait_id += 1
                    self.ready.append((slot, mask))
                now = time.monotonic()
                while self.timers and self.timers[0][0] <= now:
                    _, _, slot, wait_id = heapq.heappop(self.timers)
                    if slot.wait_id == wait_id and slot in self.slots:
                        slot.wait_id += 1
                        self.ready.append((slot, 0))
        finally:
            self.close()

    def close(self) -> None:
        for slot in list(self.slots):
            slot.gen.close()  # runs each task's finally: its socket is closed
        self.slots.clear()
        self.selector.close()


def echo_task(conn: socket.socket, config: ServerConfig, log: RateLimitedLog) -> Task:
    buf = EchoBuffer(conn, config)
    events = READ
    try:
        while True:
            # Only a connection with bytes pending can stall, so only it gets a timer.
            mask = yield Wait(conn, events, config.stall_timeout if buf.out else None)
            if not mask:
                if buf.stalled(time.monotonic(), config.stall_timeout):
                    log_stall(log, buf, config.stall_timeout)
                    return
                continue
            try:
                if mask & READ:
                    buf.read()
                buf.write()  # optimistic: most replies go out without waiting
            except OSError:
                return  # reset or broken pipe: this connection only
            if buf.done:
                return
            events = (READ if buf.wants_read else 0) | (WRITE if buf.wants_write else 0)
    finally:
        if buf.out:
            hard_close(conn)
        else:
            conn.close()


def accept_task(
    listener: socket.socket, scheduler: Scheduler, config: ServerConfig, log: RateLimitedLog
) -> Task:
    guard = AcceptGuard(log)
    try:
        while True:
            yield Wait(listener, READ)
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
    with StopSignals() as stop:
        scheduler.run(lambda: stop.requested, wake=stop)
