"""select: ``select.select`` over every connection, as the tutorial wrote it, fixed.

``select.select`` takes a bitmap of FD_SETSIZE (1024) descriptors: Python raises
``ValueError`` for a descriptor at or above it, which in the tutorial's loop would kill
the whole server.  So a connection that lands on such a descriptor is refused (closed at
once, with a log line) and the others keep being served; past ~1000 connections use
``selectors`` (epoll).  Each pass also rebuilds the descriptor lists, which is why this
style slows down as connections grow.
"""

from __future__ import annotations

import select
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

STYLE = "select"
# glibc's fd_set size; select() cannot watch a descriptor number at or above it.
FD_SETSIZE = 1024


def _close(buf: EchoBuffer) -> None:
    if buf.out:
        hard_close(buf.conn)
    else:
        buf.conn.close()


def serve(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    guard = AcceptGuard(log)
    listener.setblocking(False)
    conns: dict[int, EchoBuffer] = {}
    next_stall_check = time.monotonic() + POLL_INTERVAL
    with StopSignals() as stop:
        stop_fd, listen_fd = stop.fileno(), listener.fileno()
        while not stop.requested:
            rlist = [stop_fd]
            paused = guard.paused()
            if not paused:
                rlist.append(listen_fd)
            wlist: list[int] = []
            for fd, buf in conns.items():
                if buf.wants_read:
                    rlist.append(fd)
                if buf.wants_write:
                    wlist.append(fd)
            timeout = min(POLL_INTERVAL, guard.remaining()) if paused else POLL_INTERVAL
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
            if stop_fd in readable:
                stop.drain()
            if listen_fd in readable:
                for _ in range(ACCEPT_BATCH):
                    conn = accept_connection(listener, guard)
                    if conn is None:
                        break
                    fd = conn.fileno()
                    if fd >= FD_SETSIZE:
                        conn.close()
                        log.warning(
                            "fd_setsize",
                            "refusing a connection: its descriptor %d is at or above "
                            "FD_SETSIZE (%d), which select.select() cannot watch; still "
                            "serving %d connections (use the selectors style for more)",
                            fd,
                            FD_SETSIZE,
                            len(conns),
                        )
                        continue
                    conn.setblocking(False)
                    conns[fd] = EchoBuffer(conn, config)
            gone: set[int] = set()
            for fd in readable:
                entry = conns.get(fd)  # None for the listener and the stop socket
                if entry is None:
                    continue
                try:
                    entry.read()
                    entry.write()  # optimistic: most replies go out without waiting
                except OSError:
                    gone.add(fd)
            for fd in writable:
                entry = conns.get(fd)
                if entry is None or fd in gone:
                    continue
                try:
                    entry.write()
                except OSError:
                    gone.add(fd)
            now = time.monotonic()
            if now >= next_stall_check:
                next_stall_check = now + POLL_INTERVAL
                for fd, buf in conns.items():
                    if buf.stalled(now, config.stall_timeout):
                        log_stall(log, buf, config.stall_timeout)
                        gone.add(fd)
            for fd in set(readable).union(writable):
                entry = conns.get(fd)
                if entry is not None and entry.done:
                    gone.add(fd)
            for fd in gone:
                _close(conns.pop(fd))
    listener.close()
    for buf in conns.values():
        buf.conn.close()
