"""selectors: ``selectors.DefaultSelector`` (epoll on Linux), the tutorial's callbacks.

Each connection stays registered for exactly what it needs: read while it has room in
its output buffer and has not half-closed, write while bytes are pending.  epoll has no
FD_SETSIZE limit and does not rescan every connection on each wake-up, so this is the
readiness style that scales.
"""

from __future__ import annotations

import selectors
import socket
import time

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

STYLE = "selectors"
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _interest(buf: EchoBuffer) -> int:
    return (READ if buf.wants_read else 0) | (WRITE if buf.wants_write else 0)


def serve(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    guard = AcceptGuard(log)
    listener.setblocking(False)
    conns: dict[int, EchoBuffer] = {}
    next_stall_check = time.monotonic() + POLL_INTERVAL

    def close(buf: EchoBuffer) -> None:
        sel.unregister(buf.conn)
        del conns[buf.fd]
        if buf.out:
            hard_close(buf.conn)
        else:
            buf.conn.close()

    with StopSignals() as stop, selectors.DefaultSelector() as sel:
        sel.register(stop, READ, None)
        sel.register(listener, READ, None)
        listening = True
        while not stop.requested:
            if not listening and not guard.paused():
                sel.register(listener, READ, None)
                listening = True
            timeout = min(POLL_INTERVAL, guard.remaining()) if not listening else POLL_INTERVAL
            for key, mask in sel.select(timeout):
                buf = key.data
                if buf is None:
                    if key.fileobj is stop:
                        stop.drain()
                        continue
                    for _ in range(ACCEPT_BATCH):
                        conn = accept_connection(listener, guard)
                        if conn is None:
                            break
                        conn.setblocking(False)
                        new = EchoBuffer(conn, config)
                        conns[new.fd] = new
                        sel.register(conn, READ, new)
                    if guard.paused() and listening:
                        # The listener stays readable while we cannot accept: watching it
                        # now would turn the back-off into a busy loop.
                        sel.unregister(listener)
                        listening = False
                    continue
                if buf.fd not in conns:
                    continue  # closed earlier in this batch
                try:
                    if mask & READ:
                        buf.read()
                    buf.write()  # optimistic: most replies go out without waiting
                except OSError:
                    close(buf)  # reset or broken pipe: this connection only
                    continue
                if buf.done:
                    close(buf)
                    continue
                events = _interest(buf)
                if events != key.events:
                    sel.modify(buf.conn, events, buf)
            now = time.monotonic()
            if now >= next_stall_check:
                next_stall_check = now + POLL_INTERVAL
                for buf in [b for b in conns.values() if b.stalled(now, config.stall_timeout)]:
                    log_stall(log, buf, config.stall_timeout)
                    close(buf)
        for buf in list(conns.values()):
            buf.conn.close()
    listener.close()
