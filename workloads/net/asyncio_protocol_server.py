"""asyncio_protocol: an ``asyncio.Protocol`` with callbacks, no coroutine per request.

``data_received`` writes straight back to the transport.  Back-pressure is the
protocol's own: past the high-water mark the transport calls ``pause_writing`` and we
stop reading that connection; if its peer does not read within the stall timeout, the
connection is aborted.  Returning False from ``eof_received`` makes the transport close
itself once its buffer is flushed: half-close handled by asyncio.  The ``uvloop`` style
runs this same protocol on uvloop's loop.  Accepting is ours (``_aio.Acceptor``).

``delay`` (``serve --delay SECONDS``) makes it a slow remote service: every chunk a
connection receives is echoed ``delay`` seconds after it arrived (``DelayedEcho``),
through one delay line for the whole server: a FIFO and one timer, since with the same
delay for all, arrival order is due order.  A request's reply comes ``delay`` after the
request however many pieces it arrived in, every connection keeps reading meanwhile,
and a hundred delayed replies cost a hundred writes, not a hundred timers or
coroutines: the server's own cost per request stays small beside its clients'.  The
loop then waits with microsecond precision (``_common.PreciseSelector``): epoll rounds every
wait up to the next millisecond, which would make a 5 ms delay 5 to 6 ms; and the
process's timer slack is 1 ns instead of Linux's 50 µs.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import selectors
import signal
import socket
import time
from collections.abc import Callable
from typing import cast

from ._aio import Acceptor
from ._common import PreciseSelector, RateLimitedLog, ServerConfig, get_logger, reduce_timer_slack

STYLE = "asyncio_protocol"
# The longest reply delay served (``--delay``): a remote service, not a stalled one.
MAX_DELAY = 10.0
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class EchoProtocol(asyncio.Protocol):
    def __init__(self, config: ServerConfig, log: RateLimitedLog, live: set[EchoProtocol]) -> None:
        self.config = config
        self.log = log
        self.live = live
        self.transport: asyncio.Transport | None = None
        self.stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=self.config.high_water)
        self.live.add(self)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        assert self.transport is not None
        if self.transport.get_write_buffer_size() and self.stall is None:
            # The flush of a half-closed peer's echo is bounded too.
            loop = asyncio.get_running_loop()
            self.stall = loop.call_later(self.config.stall_timeout, self._drop)
        return False  # close once everything pending has been written

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()
        if self.stall is None:
            loop = asyncio.get_running_loop()
            self.stall = loop.call_later(self.config.stall_timeout, self._drop)

    def resume_writing(self) -> None:
        assert self.transport is not None
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _drop(self) -> None:
        self.log.warning(
            "stall",
            "dropping a connection: its peer has not read for %.1f s",
            self.config.stall_timeout,
        )
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stall is not None:
            self.stall.cancel()
        self.live.discard(self)


class DelayLine:
    """Every chunk goes out ``delay`` seconds after it came in, in arrival order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        self.line: collections.deque[tuple[float, DelayedEcho, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None

    def push(self, echo: DelayedEcho, data: bytes) -> None:
        due = self.loop.time() + self.delay
        self.line.append((due, echo, data))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self._due)

    def _due(self) -> None:
        self.timer = None
        line = self.line
        # call_at may run a callback up to the clock's resolution early.
        now = self.loop.time() + _CLOCK_RESOLUTION
        while line and line[0][0] <= now:
            _, echo, data = line.popleft()
            echo.release(data)
        if line:
            self.timer = self.loop.call_at(line[0][0], self._due)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.line.clear()


class DelayedEcho(EchoProtocol):
    """The echo, ``delay`` late: received bytes wait in the delay line, then go out.

    Back-pressure: past ``high_water`` bytes held in the line, or while the transport's
    buffer is over its mark, the connection is not read.  After the peer's half-close
    the connection stays open until the held bytes are out, then closes.
    """

    def __init__(
        self, config: ServerConfig, log: RateLimitedLog, live: set[EchoProtocol], line: DelayLine
    ) -> None:
        super().__init__(config, log, live)
        self.line = line
        self.held = 0
        self.eof = False
        self.writing_paused = False
        self.reading = True

    def data_received(self, data: bytes) -> None:
        self.line.push(self, data)
        self.held += len(data)
        self._pace()

    def release(self, data: bytes) -> None:
        """Called by the line when ``data`` is due."""
        self.held -= len(data)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if self.eof and not self.held:
            transport.close()  # flushes what the transport holds, then closes
        else:
            self._pace()

    def _pace(self) -> None:
        """Read while fewer than ``high_water`` bytes are held and the peer keeps up."""
        assert self.transport is not None
        if self.eof:
            return  # nothing more to read
        want = not self.writing_paused and self.held < self.config.high_water
        if want != self.reading and not self.transport.is_closing():
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        assert self.transport is not None
        self.eof = True
        if not self.held:
            return super().eof_received()
        if self.stall is None:
            # Held bytes leave within the delay; the flush after them is bounded too.
            self.stall = asyncio.get_running_loop().call_later(
                self.line.delay + self.config.stall_timeout, self._drop
            )
        return True  # stay open (half-closed) until the held bytes are out

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pace()
        if self.stall is None:
            loop = asyncio.get_running_loop()
            self.stall = loop.call_later(self.config.stall_timeout, self._drop)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.stall is not None and not self.eof:
            self.stall.cancel()
            self.stall = None
        if self.transport is not None and not self.transport.is_closing():
            self._pace()


def _precise_loop() -> asyncio.AbstractEventLoop:
    reduce_timer_slack()
    if hasattr(selectors.DefaultSelector, "fileno"):
        return asyncio.SelectorEventLoop(PreciseSelector())
    return asyncio.new_event_loop()  # no pollable selector here: millisecond waits


async def serve_async(
    listener: socket.socket, config: ServerConfig, style: str = STYLE, delay: float = 0.0
) -> None:
    log = RateLimitedLog(get_logger(style))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    live: set[EchoProtocol] = set()
    line = DelayLine(loop, delay) if delay > 0 else None
    factory: Callable[[], EchoProtocol]
    if line is None:
        factory = functools.partial(EchoProtocol, config, log, live)
    else:
        factory = functools.partial(DelayedEcho, config, log, live, line)
    acceptor = Acceptor(loop, listener, log, factory)
    acceptor.start()
    try:
        await stop.wait()
    finally:
        acceptor.close()
        if line is not None:
            line.close()
        for protocol in list(live):
            if protocol.transport is not None:
                protocol.transport.abort()
        # Let connection_lost callbacks run before the loop goes.
        await asyncio.sleep(0)


def serve(listener: socket.socket, config: ServerConfig, delay: float = 0.0) -> None:
    """Serve until SIGTERM/SIGINT; echo each chunk ``delay`` (0..MAX_DELAY) s late."""
    if not 0 <= delay <= MAX_DELAY:
        raise ValueError(f"delay must be 0..{MAX_DELAY} s, got {delay}")
    if not delay:
        asyncio.run(serve_async(listener, config))
        return
    with asyncio.Runner(loop_factory=_precise_loop) as runner:
        runner.run(serve_async(listener, config, delay=delay))
