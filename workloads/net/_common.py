"""What every echo server shares: the listener, the stop signals, the accept policy, buffers.

The tutorial's servers each get the same few things wrong; the fixes live here once:

- the listener: ``SO_REUSEADDR``, bound to loopback, an explicit listen backlog;
- accept: out of descriptors (EMFILE/ENFILE) means back off and retry, not spin, not die;
- a per-connection output buffer that survives partial sends, stops reading past a
  high-water mark (back-pressure), and drops a peer that stops reading for too long;
- SIGTERM/SIGINT: a flag plus a readable socket, so a blocked ``select`` wakes at once.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import ipaddress
import logging
import math
import os
import select
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

# -- tunables ---------------------------------------------------------------------------
DEFAULT_HOST = "127.0.0.1"
# Explicit, because the default of socket.listen() (128, or 100 in asyncio) drops SYNs when
# hundreds of clients connect at once; the kernel clamps it to net.core.somaxconn.
BACKLOG = 1024
RECV_SIZE = 64 * 1024
# Past this many unsent bytes a connection is no longer read from: a peer that sends but
# never reads cannot make the server grow without bound.
HIGH_WATER = 256 * 1024
# A connection whose pending output has not moved for this long is dropped.
STALL_TIMEOUT = 10.0
# The longest any server loop blocks before it looks at its clocks (stalls, shutdown).
POLL_INTERVAL = 0.5
# Accept back-off when the process is out of descriptors: doubles from min to max.
ACCEPT_BACKOFF_MIN = 0.01
ACCEPT_BACKOFF_MAX = 0.5
# Connections accepted in one go before the loop serves the others again.
ACCEPT_BATCH = 64
# Seconds a stopping server gives its connection threads/tasks before it leaves anyway.
SHUTDOWN_GRACE = 1.0
# At most one log line a second per kind of trouble: a storm of refusals must not turn
# into a storm of log lines (or fill a pipe nobody reads).
LOG_EVERY = 1.0

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_TIMERSLACK = 29
# select() takes descriptors below this (FD_SETSIZE).
FD_SETSIZE = 1024
# struct linger {on, 0 s}: close() sends a reset and frees the buffers at once.
LINGER_RESET = struct.pack("ii", 1, 0)
FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True)
class ServerConfig:
    style: str
    stall_timeout: float = STALL_TIMEOUT
    high_water: int = HIGH_WATER
    recv_size: int = RECV_SIZE
    backlog: int = BACKLOG


def get_logger(style: str) -> logging.Logger:
    return logging.getLogger(f"workloads.net.{style}")


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines go to stderr: stdout carries only the ``listening on`` line."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def check_loopback(host: str) -> None:
    """Raise ValueError unless every address ``host`` names is on the loopback.

    The servers and the load client exist to be benchmarked here: nothing of ours may
    listen on, or send load to, a network another machine can reach.
    """
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc}") from exc
    addresses = {str(info[4][0]) for info in infos}
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a).is_loopback)
    if outside:
        raise ValueError(
            f"{host!r} is not a loopback address ({', '.join(outside)}): boundbench binds "
            "and sends load on 127.0.0.0/8 only"
        )


def loopback_host(host: str) -> str:
    """argparse type: ``host`` if it is loopback, else a usage error saying why."""
    try:
        check_loopback(host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return host


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line on stderr (``PROG: error: WHY``) and exit status 2.

    argparse's default adds the whole usage block; a script or CI log then shows the
    usage and hides the reason.  ``--help`` still prints everything.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in ``low..high`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


MAX_PORT = 65535


def server_arg_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The options every server takes (the gevent server parses them in its own process)."""
    parser = OneLineParser(prog=prog, add_help=False)
    parser.add_argument(
        "--host", type=loopback_host, default=DEFAULT_HOST, help="address to bind (loopback only)"
    )
    parser.add_argument(
        "--port", type=int_in(0, MAX_PORT), default=0, help="port to bind; 0 picks a free one"
    )
    parser.add_argument(
        "--backlog", type=int_in(1, 1 << 16), default=BACKLOG, help="listen backlog"
    )
    parser.add_argument(
        "--stall-timeout",
        type=positive_seconds,
        default=STALL_TIMEOUT,
        help="drop a connection whose pending output has not moved for this many seconds",
    )
    parser.add_argument(
        "--parent-pid",
        type=int_in(1),
        default=None,
        help="exit (as on SIGTERM) when this parent process dies (Linux)",
    )
    parser.add_argument(
        "--high-water",
        type=int_in(1),
        default=HIGH_WATER,
        help="stop reading a connection with this many bytes not yet sent",
    )
    return parser


def config_from_args(style: str, args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        style=style,
        stall_timeout=args.stall_timeout,
        high_water=args.high_water,
        backlog=args.backlog,
    )


def exit_with_parent(parent_pid: int | None) -> None:
    """Get SIGTERM when our parent dies, however it dies (Linux ``PR_SET_PDEATHSIG``).

    A server runs in a session of its own, so a parent killed with SIGKILL (a CI job's
    timeout) would leave it running, and a busy-polling one spinning, for good.
    """
    if parent_pid is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        # Not Linux: said plainly, the server still runs (its owner stops it).
        print(
            "note: this platform has no prctl(PR_SET_PDEATHSIG); the server will outlive "
            "a parent killed with SIGKILL",
            file=sys.stderr,
        )
    if os.getppid() != parent_pid:  # it died before we asked
        raise SystemExit(0)


def make_listener(host: str = DEFAULT_HOST, port: int = 0, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket with SO_REUSEADDR (a restarted server rebinds its port at once)."""
    check_loopback(host)  # refuse before binding, whoever calls
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(backlog)
    except BaseException:
        listener.close()
        raise
    return listener


def announce(listener: socket.socket) -> None:
    """The first line on stdout, flushed: how a parent learns the port it got."""
    host, port = listener.getsockname()[:2]
    sys.stdout.write(f"listening on {host}:{port}\n")
    sys.stdout.flush()


def tune_connection(conn: socket.socket) -> None:
    # Echo replies are often written in pieces (a 64 KiB request arrives in chunks): with
    # Nagle on, the last small piece waits for the peer's delayed ACK, ~40 ms per request.
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def hard_close(conn: socket.socket) -> None:
    """Close with a reset: for a peer we are dropping, not one we finished with."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    conn.close()


class PreciseSelector(selectors.DefaultSelector):
    """epoll, but a wait with a timeout ends on time to the microsecond.

    epoll counts its timeout in whole milliseconds, rounded up, which would make a 5 ms
    reply delay 5 to 6 ms; ``select`` counts in microseconds, and an epoll descriptor is
    readable exactly when it has events.  So wait on that descriptor with ``select``,
    then collect the events without waiting.  (Where the selector has no descriptor,
    e.g. kqueue-less platforms, waits stay as precise as the selector is.)
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0 and hasattr(self, "fileno"):
            fd = self.fileno()
            if fd < FD_SETSIZE:
                select.select([fd], [], [], timeout)
                timeout = 0
        events: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        return events


def reduce_timer_slack() -> None:
    """Let this process's timed waits end on time (Linux only; elsewhere a no-op).

    Linux lets a timed wait end up to 50 µs late (timer slack) to batch wake-ups; a
    server's delay line wants its timer on time.  The calling process only.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


class RateLimitedLog:
    """Logs the first event of a kind at once, then at most one summary line a second."""

    def __init__(self, log: logging.Logger, every: float = LOG_EVERY) -> None:
        self.log = log
        self.every = every
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) < self.every:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        self.last[kind] = now
        more = self.suppressed.pop(kind, 0)
        if more:
            message += f" (and {more} more like it since the last line)"
        self.log.warning(message, *args)


class AcceptGuard:
    """Back-off state for accept(): out of descriptors means wait and retry, not spin.

    While the process has no free descriptor, the listener stays readable (the pending
    connection is still queued), so a loop that just retries would spin at 100% CPU and
    log without end; and dying would drop every connection already served.
    """

    def __init__(self, log: RateLimitedLog) -> None:
        self.log = log
        self.delay = ACCEPT_BACKOFF_MIN
        self.until = 0.0

    def paused(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.until

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def failed(self, exc: OSError) -> float:
        delay = self.delay
        self.until = time.monotonic() + delay
        self.delay = min(self.delay * 2, ACCEPT_BACKOFF_MAX)
        self.log.warning(
            "accept",
            "accept() failed: %s; backing off %.0f ms before accepting again",
            exc.strerror or exc,
            delay * 1000,
        )
        return delay

    def succeeded(self) -> None:
        self.delay = ACCEPT_BACKOFF_MIN


def accept_connection(listener: socket.socket, guard: AcceptGuard) -> socket.socket | None:
    """One accepted, tuned connection, or None (nothing pending, or backing off).

    Works for blocking and non-blocking listeners; the connection keeps the blocking mode
    the caller sets.  Raises only for errors that mean the listener itself is gone.
    """
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return None
    except ConnectionAbortedError:
        return None  # the client reset before we accepted: nothing to serve
    except OSError as exc:
        if exc.errno in FD_EXHAUSTED:
            guard.failed(exc)
            return None
        raise
    guard.succeeded()
    try:
        tune_connection(conn)
    except OSError:
        conn.close()  # reset between accept and setsockopt
        return None
    return conn


class StopSignals:
    """SIGTERM/SIGINT set a flag and make ``fileno()`` readable, so a select loop wakes.

    ``signal.set_wakeup_fd`` writes a byte from C as soon as the signal lands; the flag is
    set by the Python handler, which runs in the main thread between bytecodes.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signum = signum

    def __enter__(self) -> StopSignals:
        self._old_wakeup = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self.SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_wakeup)
        self._reader.close()
        self._writer.close()

    def fileno(self) -> int:
        return self._reader.fileno()

    def drain(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._reader.recv(4096):
                pass


class EchoBuffer:
    """One connection of a readiness-based server: the bytes received and not yet echoed.

    The tutorial called ``conn.send(data)`` once and forgot what did not fit; here every
    byte received is kept until ``send`` has taken it.  ``wants_read`` is the
    back-pressure: a connection with ``high_water`` bytes pending is not read from until
    its peer reads.  ``stalled`` says its peer has not read for ``stall_timeout`` seconds.
    """

    __slots__ = ("conn", "eof", "fd", "high_water", "last_progress", "out", "recv_size")

    def __init__(self, conn: socket.socket, config: ServerConfig) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        self.out = bytearray()
        self.eof = False
        self.high_water = config.high_water
        self.recv_size = config.recv_size
        self.last_progress = time.monotonic()

    @property
    def wants_read(self) -> bool:
        return not self.eof and len(self.out) < self.high_water

    @property
    def wants_write(self) -> bool:
        return bool(self.out)

    @property
    def done(self) -> bool:
        """The peer half-closed and everything it sent has been echoed."""
        return self.eof and not self.out

    def read(self) -> bool:
        """Receive one chunk; False if there was nothing to read.  Raises on reset."""
        try:
            data = self.conn.recv(self.recv_size)
        except BlockingIOError:
            return False
        if not data:
            self.eof = True  # half-close: keep echoing what is pending, then close
        else:
            self.keep(data)
        return True

    def keep(self, data: bytes) -> None:
        """Hold received bytes until they are echoed (a delayed server holds them first)."""
        if not self.out:
            self.last_progress = time.monotonic()
        self.out += data

    def write(self) -> None:
        """Send what the kernel takes now; keep the rest.  Raises on reset/broken pipe."""
        if not self.out:
            return
        try:
            sent = self.conn.send(self.out)
        except BlockingIOError:
            return
        if sent:
            # bytearray drops a prefix in O(1): no copy of the rest.
            del self.out[:sent]
            self.last_progress = time.monotonic()

    def stalled(self, now: float, stall_timeout: float) -> bool:
        return bool(self.out) and now - self.last_progress > stall_timeout


def log_stall(log: RateLimitedLog, buffer: EchoBuffer, stall_timeout: float) -> None:
    log.warning(
        "stall",
        "dropping fd %d: %d bytes pending and its peer has not read for %.1f s",
        buffer.fd,
        len(buffer.out),
        stall_timeout,
    )
