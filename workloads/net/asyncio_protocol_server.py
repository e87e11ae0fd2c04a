"""asyncio_protocol: an ``asyncio.Protocol`` with callbacks, no coroutine per request.

``data_received`` writes straight back to the transport.  Back-pressure is the
protocol's own: past the high-water mark the transport calls ``pause_writing`` and we
stop reading that connection; if its peer does not read within the stall timeout, the
connection is aborted.  Returning False from ``eof_received`` makes the transport close
itself once its buffer is flushed: half-close handled by asyncio.  The ``uvloop`` style
runs this same protocol on uvloop's loop.  Accepting is ours (``_aio.Acceptor``).
"""

from __future__ import annotations

import asyncio
import functools
import signal
import socket
from typing import cast

from ._aio import Acceptor
from ._common import RateLimitedLog, ServerConfig, get_logger

STYLE = "asyncio_protocol"


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


async def serve_async(listener: socket.socket, config: ServerConfig, style: str = STYLE) -> None:
    log = RateLimitedLog(get_logger(style))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    live: set[EchoProtocol] = set()
    acceptor = Acceptor(loop, listener, log, functools.partial(EchoProtocol, config, log, live))
    acceptor.start()
    try:
        await stop.wait()
    finally:
        acceptor.close()
        for protocol in list(live):
            if protocol.transport is not None:
                protocol.transport.abort()
        # Let connection_lost callbacks run before the loop goes.
        await asyncio.sleep(0)


def serve(listener: socket.socket, config: ServerConfig) -> None:
    asyncio.run(serve_async(listener, config))
