"""nonblocking: the tutorial's ``setblocking(False)`` busy-poll loop, kept honest.

It never waits: every pass tries ``accept`` and then ``recv``/``send`` on every
connection, catching ``BlockingIOError``.  So it spins at 100% of a core even with
nothing to do, and its CPU seconds in the results show exactly that; it is here to be
measured, not copied.  What it no longer gets wrong: unsent bytes stay in a
per-connection buffer, a half-closed peer gets its echo before the close, a reset
closes that connection only, and running out of descriptors backs off accept only.
"""

from __future__ import annotations

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

STYLE = "nonblocking"


def serve(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    guard = AcceptGuard(log)
    listener.setblocking(False)
    conns: list[EchoBuffer] = []
    next_stall_check = time.monotonic() + POLL_INTERVAL
    with StopSignals() as stop:
        # No select, no sleep: the loop the tutorial wrote.  A signal handler sets the
        # flag between two bytecodes of this loop.
        while not stop.requested:
            now = time.monotonic()
            if not guard.paused(now):
                for _ in range(ACCEPT_BATCH):
                    conn = accept_connection(listener, guard)
                    if conn is None:
                        break
                    conn.setblocking(False)
                    conns.append(EchoBuffer(conn, config))
            gone: list[EchoBuffer] = []
            for buf in conns:
                try:
                    if buf.wants_read:
                        buf.read()
                    buf.write()
                except OSError:
                    gone.append(buf)  # reset or broken pipe: this connection only
                    continue
                if buf.done:
                    gone.append(buf)
            if now >= next_stall_check:
                next_stall_check = now + POLL_INTERVAL
                for buf in conns:
                    if buf.stalled(now, config.stall_timeout) and buf not in gone:
                        log_stall(log, buf, config.stall_timeout)
                        gone.append(buf)
            if gone:
                for buf in gone:
                    if buf.out:
                        hard_close(buf.conn)
                    else:
                        buf.conn.close()
                dropped = {id(buf) for buf in gone}
                conns = [buf for buf in conns if id(buf) not in dropped]
    listener.close()
    for buf in conns:
        buf.conn.close()
