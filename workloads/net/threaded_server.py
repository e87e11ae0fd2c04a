"""threaded: the tutorial's blocking server, one thread per connection.

Each thread does ``recv`` then ``sendall``: a partial send is finished by ``sendall``
and, because the thread does not read again until its reply is out, the per-connection
buffer is the one chunk in hand.  A peer that stops reading blocks its own thread only,
and ``SO_SNDTIMEO`` turns that block into an error after the stall timeout, so the
connection is dropped instead of holding a thread forever.  Idle connections are kept:
they cost one parked thread each (stack size trimmed so 2000 of them are cheap).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

from ._common import (
    ACCEPT_BATCH,
    POLL_INTERVAL,
    SHUTDOWN_GRACE,
    AcceptGuard,
    RateLimitedLog,
    ServerConfig,
    StopSignals,
    accept_connection,
    get_logger,
    hard_close,
)

STYLE = "threaded"
# A parked echo thread needs little stack; the default (8 MiB of address space) makes
# thousands of connections a memory question instead of a scheduling one.
THREAD_STACK_SIZE = 256 * 1024


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


class _Connections:
    """The live connections, so a stopping server can wake every thread it started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.socks: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()

    def add(self, conn: socket.socket, thread: threading.Thread) -> None:
        with self.lock:
            self.socks.add(conn)
            self.threads.add(thread)

    def remove(self, conn: socket.socket, thread: threading.Thread) -> None:
        with self.lock:
            self.socks.discard(conn)
            self.threads.discard(thread)

    def shutdown_all(self) -> list[threading.Thread]:
        with self.lock:
            socks, threads = list(self.socks), list(self.threads)
        for conn in socks:
            # shutdown, not close: it wakes a thread blocked in recv/send on this socket,
            # while close would free the descriptor under its feet.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return threads


def _echo(
    conn: socket.socket, config: ServerConfig, log: RateLimitedLog, live: _Connections
) -> None:
    drop = False
    try:
        # A blocking send gives up with EAGAIN after this long without progress.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(config.stall_timeout))
        while True:
            data = conn.recv(config.recv_size)
            if not data:
                break  # half-close: every byte received has already been echoed
            conn.sendall(data)
    except BlockingIOError:
        drop = True
        log.warning(
            "stall",
            "dropping a connection: its peer has not read for %.1f s",
            config.stall_timeout,
        )
    except OSError:
        pass  # reset or broken pipe: this connection only
    finally:
        live.remove(conn, threading.current_thread())
        if drop:
            hard_close(conn)
        else:
            conn.close()


def serve(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    guard = AcceptGuard(log)
    live = _Connections()
    threading.stack_size(THREAD_STACK_SIZE)
    # The main thread only accepts; select lets a signal wake it at once.
    listener.setblocking(False)
    with StopSignals() as stop:
        stop_fd, listen_fd = stop.fileno(), listener.fileno()
        while not stop.requested:
            waiting_on = [stop_fd] if guard.paused() else [stop_fd, listen_fd]
            timeout = guard.remaining() or POLL_INTERVAL
            readable, _, _ = select.select(waiting_on, [], [], timeout)
            if stop_fd in readable:
                stop.drain()
            if listen_fd not in readable:
                continue
            for _ in range(ACCEPT_BATCH):
                conn = accept_connection(listener, guard)
                if conn is None:
                    break
                conn.setblocking(True)
                thread = threading.Thread(
                    target=_echo, args=(conn, config, log, live), name="echo", daemon=True
                )
                live.add(conn, thread)
                try:
                    thread.start()
                except RuntimeError as exc:  # can't start new thread: drop this one only
                    live.remove(conn, thread)
                    hard_close(conn)
                    log.warning("thread", "dropping a connection: %s", exc)
    listener.close()
    deadline = time.monotonic() + SHUTDOWN_GRACE
    for thread in live.shutdown_all():
        thread.join(max(0.0, deadline - time.monotonic()))
