"""selectors: ``selectors.DefaultSelector`` (epoll on Linux), the tutorial's callbacks.

Each connection stays registered for exactly what it needs: read while it has room in
its output buffer and has not half-closed, write while bytes are pending.  epoll has no
FD_SETSIZE limit and does not rescan every connection on each wake-up, so this is the
readiness style that scales.

``delay`` (``serve --delay SECONDS``) makes it a slow remote service, the server that
``io_socket`` cells talk to: every chunk a connection receives is echoed ``delay``
seconds after it arrived, through one delay line for the whole server (a FIFO: with the
same delay for all, arrival order is due order).  The loop waits for the next due reply
with microsecond precision (``_common.PreciseSelector``, and 1 ns timer slack), so a
5 ms delay is 5 ms, not 5 to 6.  Accepting a connection costs one ``accept`` and one
``register``, a request one ``recv``, one append and one ``send``: the server's own cost
per connection and per request stays far below its clients', so a cell measures the
client's model, not this remote end.  (The ``asyncio_protocol`` style takes ``--delay``
too; its accept, a task and a transport per connection, costs ~70 µs a connection,
which made 100 tasks' connections add ~7 ms to a 25 ms cell.)

Back-pressure with a delay: past ``high_water`` bytes held in the line or unsent, the
connection is not read.  After the peer's half-close it stays open until its held bytes
have gone out, then closes.
"""

from __future__ import annotations

import collections
import selectors
import socket
import time

from ._common import (
    ACCEPT_BATCH,
    POLL_INTERVAL,
    AcceptGuard,
    EchoBuffer,
    PreciseSelector,
    RateLimitedLog,
    ServerConfig,
    StopSignals,
    accept_connection,
    get_logger,
    hard_close,
    log_stall,
    reduce_timer_slack,
)

STYLE = "selectors"
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# The longest reply delay served (``--delay``): a remote service, not a stalled one.
MAX_DELAY = 10.0


class Connection(EchoBuffer):
    """An echo buffer that knows what it is registered for (0: not registered)."""

    __slots__ = ("events",)

    def __init__(self, conn: socket.socket, config: ServerConfig) -> None:
        super().__init__(conn, config)
        self.events = 0

    @property
    def interest(self) -> int:
        return (READ if self.wants_read else 0) | (WRITE if self.wants_write else 0)


class DelayLine:
    """Every chunk goes out ``delay`` seconds after it came in, in arrival order."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.line: collections.deque[tuple[float, DelayedConnection, bytes]] = collections.deque()

    def push(self, buf: DelayedConnection, data: bytes) -> None:
        self.line.append((time.monotonic() + self.delay, buf, data))

    def wait(self, now: float) -> float | None:
        """Seconds until the next chunk is due (0 if one is), None if the line is empty."""
        return max(0.0, self.line[0][0] - now) if self.line else None

    def release_due(self, now: float) -> list[DelayedConnection]:
        """Move every due chunk to its connection's output; the connections touched."""
        line = self.line
        touched: dict[int, DelayedConnection] = {}
        while line and line[0][0] <= now:
            _, buf, data = line.popleft()
            buf.release(data)
            touched[id(buf)] = buf
        return list(touched.values())


class DelayedConnection(Connection):
    """A connection whose echo waits ``delay`` in the server's delay line first."""

    __slots__ = ("held", "line")

    def __init__(self, conn: socket.socket, config: ServerConfig, line: DelayLine) -> None:
        super().__init__(conn, config)
        self.line = line
        self.held = 0

    @property
    def wants_read(self) -> bool:
        return not self.eof and len(self.out) + self.held < self.high_water

    @property
    def done(self) -> bool:
        return self.eof and not self.out and not self.held

    def keep(self, data: bytes) -> None:
        """Received bytes wait in the delay line first (``release`` moves them on)."""
        self.held += len(data)
        self.line.push(self, data)

    def release(self, data: bytes) -> None:
        """Called by the line when ``data`` is due: it joins the output."""
        self.held -= len(data)
        super().keep(data)


def serve(listener: socket.socket, config: ServerConfig, delay: float = 0.0) -> None:
    """Serve until SIGTERM/SIGINT; echo each chunk ``delay`` (0..MAX_DELAY) s late."""
    if not 0 <= delay <= MAX_DELAY:
        raise ValueError(f"delay must be 0..{MAX_DELAY} s, got {delay}")
    log = RateLimitedLog(get_logger(STYLE))
    guard = AcceptGuard(log)
    listener.setblocking(False)
    conns: dict[int, Connection] = {}
    line = DelayLine(delay) if delay else None
    next_stall_check = time.monotonic() + POLL_INTERVAL

    def close(buf: Connection) -> None:
        if buf.events:
            sel.unregister(buf.conn)
        del conns[buf.fd]
        if buf.out:
            hard_close(buf.conn)
        else:
            buf.conn.close()

    def settle(buf: Connection) -> None:
        """After a read or a release: send what the kernel takes, then re-register."""
        try:
            buf.write()  # optimistic: most replies go out without waiting
        except OSError:
            close(buf)  # reset or broken pipe: this connection only
            return
        if buf.done:
            close(buf)
            return
        events = buf.interest
        if events != buf.events:
            # Nothing to read or write (half-closed, or full, with bytes in the line):
            # unregistered until the line releases them.
            if not buf.events:
                sel.register(buf.conn, events, buf)
            elif not events:
                sel.unregister(buf.conn)
            else:
                sel.modify(buf.conn, events, buf)
            buf.events = events

    selector: selectors.BaseSelector
    if line is None:
        selector = selectors.DefaultSelector()
    else:
        reduce_timer_slack()
        selector = PreciseSelector()
    with StopSignals() as stop, selector as sel:
        sel.register(stop, READ, None)
        sel.register(listener, READ, None)
        listening = True
        while not stop.requested:
            if not listening and not guard.paused():
                sel.register(listener, READ, None)
                listening = True
            timeout = min(POLL_INTERVAL, guard.remaining()) if not listening else POLL_INTERVAL
            if line is not None:
                due = line.wait(time.monotonic())
                if due is not None:
                    timeout = min(timeout, due)
            for key, mask in sel.select(timeout):
                if key.data is None:
                    if key.fileobj is stop:
                        stop.drain()
                        continue
                    for _ in range(ACCEPT_BATCH):
                        conn = accept_connection(listener, guard)
                        if conn is None:
                            break
                        conn.setblocking(False)
                        new = (
                            Connection(conn, config)
                            if line is None
                            else DelayedConnection(conn, config, line)
                        )
                        conns[new.fd] = new
                        sel.register(conn, READ, new)
                        new.events = READ
                    if guard.paused() and listening:
                        # The listener stays readable while we cannot accept: watching it
                        # now would turn the back-off into a busy loop.
                        sel.unregister(listener)
                        listening = False
                    continue
                buf: Connection = key.data
                if conns.get(buf.fd) is not buf:
                    continue  # closed earlier in this batch
                if mask & READ:
                    try:
                        buf.read()
                    except OSError:
                        close(buf)
                        continue
                settle(buf)
            now = time.monotonic()
            if line is not None:
                for held in line.release_due(now):
                    if conns.get(held.fd) is held:
                        settle(held)
            if now >= next_stall_check:
                next_stall_check = now + POLL_INTERVAL
                for buf in [b for b in conns.values() if b.stalled(now, config.stall_timeout)]:
                    log_stall(log, buf, config.stall_timeout)
                    close(buf)
        for buf in list(conns.values()):
            buf.conn.close()
    listener.close()
