"""Accepting for the asyncio-loop styles: our accept loop, not the event loop's own.

CPython's ``_accept_connection`` (3.11-3.13) does not stop after EMFILE: it logs and
reschedules a retry once per remaining backlog slot, up to ``backlog`` times per wake-up
(python/cpython#151615, fixed upstream in 2026), which with our explicit backlog of 1024
is a storm of tracebacks and a busy loop exactly when the process is short of
descriptors.  uvloop's accept (libuv) resets what it cannot take instead.  So the three
loop styles share this accept loop, with the same back-off as every other style, and
hand each socket to the loop with ``connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from ._common import ACCEPT_BATCH, AcceptGuard, RateLimitedLog, accept_connection


class Acceptor:
    """Watches the listener on a running loop; ``connect(sock)`` adopts each new socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        log: RateLimitedLog,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        self.loop = loop
        self.listener = listener
        self.guard = AcceptGuard(log)
        self.log = log
        self.protocol_factory = protocol_factory
        self.pending: set[asyncio.Task[object]] = set()
        self.retry: asyncio.TimerHandle | None = None
        self.closed = False
        listener.setblocking(False)

    def start(self) -> None:
        self.loop.add_reader(self.listener.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            conn = accept_connection(self.listener, self.guard)
            if conn is None:
                break
            conn.setblocking(False)
            task = self.loop.create_task(self._adopt(conn))
            self.pending.add(task)  # a task only weakly referenced may vanish mid-way
            task.add_done_callback(self.pending.discard)
        if self.guard.paused():
            # The listener stays readable while we cannot accept: stop watching it.
            self.loop.remove_reader(self.listener.fileno())
            self.retry = self.loop.call_later(self.guard.remaining(), self._resume)

    def _resume(self) -> None:
        self.retry = None
        if not self.closed:
            self.start()

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.protocol_factory, sock=conn)
        except OSError:
            conn.close()  # reset before the transport was made: this connection only

    def close(self) -> None:
        self.closed = True
        if self.retry is not None:
            self.retry.cancel()
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
        for task in list(self.pending):
            task.cancel()
