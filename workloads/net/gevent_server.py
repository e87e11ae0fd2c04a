"""gevent: the tutorial's server as written (blocking code, a greenlet per connection).

``monkey.patch_all()`` must run before anything else is imported, in an interpreter of
its own, so this file is run as a script by path (``python .../gevent_server.py``): not
with ``-m``, which would import the ``workloads`` package (threading, asyncio, ...)
before the patch.  ``python -m workloads.net serve --style gevent`` exec()s it, keeping
its process id.  Importing this module patches nothing; the pytest process never is.

Like ``threaded``: recv then sendall, so the buffer is the chunk in hand; a sendall that
makes no progress for the stall timeout drops its connection.  The accept loop backs
off when descriptors run out.
"""

from __future__ import annotations

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

# The imports below follow the patch (when run as a script).
import signal
import socket
import sys
from pathlib import Path
from typing import Any

STYLE = "gevent"
_ROOT = Path(__file__).resolve().parents[2]


def _echo(conn: socket.socket, config: Any, log: Any) -> None:
    import gevent

    from workloads.net._common import hard_close

    drop = False
    try:
        while True:
            data = conn.recv(config.recv_size)
            if not data:
                break  # half-close: every byte received has already been echoed
            with gevent.Timeout(config.stall_timeout, TimeoutError):
                conn.sendall(data)
    except TimeoutError:
        drop = True
        log.warning(
            "stall", "dropping a connection: its peer has not read for %.1f s", config.stall_timeout
        )
    except OSError:
        pass  # reset or broken pipe: this connection only
    finally:
        if drop:
            hard_close(conn)
        else:
            conn.close()


def _accept_loop(listener: socket.socket, config: Any, log: Any, group: Any) -> None:
    import gevent

    from workloads.net._common import ACCEPT_BATCH, AcceptGuard, accept_connection

    guard = AcceptGuard(log)
    while True:
        # A cooperative wait for readability (the listener is non-blocking).
        gevent.socket.wait_read(listener.fileno())
        for _ in range(ACCEPT_BATCH):
            conn = accept_connection(listener, guard)
            if conn is None:
                break
            conn.setblocking(True)  # gevent's blocking: it yields to the hub instead
            group.spawn(_echo, conn, config, log)
        if guard.paused():
            gevent.sleep(guard.remaining())  # out of descriptors: sleep, don't spin


def main(argv: list[str] | None = None) -> int:
    # A script's sys.path[0] is this directory; the package lives two levels up.
    sys.path[0] = str(_ROOT)
    import gevent
    import gevent.event
    import gevent.pool
    import gevent.socket
    from gevent import monkey

    from workloads.net._common import (
        SHUTDOWN_GRACE,
        RateLimitedLog,
        announce,
        config_from_args,
        configure_logging,
        exit_with_parent,
        get_logger,
        make_listener,
        server_arg_parser,
    )

    args = server_arg_parser(prog="gevent_server").parse_args(argv)
    exit_with_parent(args.parent_pid)
    config = config_from_args(STYLE, args)
    configure_logging()
    log = RateLimitedLog(get_logger(STYLE))
    if not monkey.is_module_patched("socket"):
        log.log.error("gevent: the socket module is not patched; run this file as a script")
        return 1
    log.log.info("gevent: monkey-patched before any other import")
    try:
        listener = make_listener(args.host, args.port, config.backlog)
    except OSError as exc:  # a port in use, or one we may not bind: one line, exit 2
        print(
            f"gevent_server: error: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    listener.setblocking(False)
    announce(listener)
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    group = gevent.pool.Group()
    acceptor = gevent.spawn(_accept_loop, listener, config, log, group)
    stop.wait()
    acceptor.kill(block=True, timeout=SHUTDOWN_GRACE)
    listener.close()
    group.kill(block=True, timeout=SHUTDOWN_GRACE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
