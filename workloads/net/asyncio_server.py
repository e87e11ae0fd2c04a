"""asyncio: streams (``StreamReader``/``StreamWriter``), a coroutine per connection.

``writer.write`` never blocks; back-pressure comes from ``await writer.drain()``, which
waits while the transport holds more than its high-water mark.  The drain gets a stall
timeout, so a peer that never reads is dropped instead of holding its buffer forever.
Accepting is ours (``_aio.Acceptor``): asyncio's own storms when descriptors run out.
"""

from __future__ import annotations

import asyncio
import signal
import socket

from ._aio import Acceptor
from ._common import (
    SHUTDOWN_GRACE,
    RateLimitedLog,
    ServerConfig,
    get_logger,
)

STYLE = "asyncio"


async def _echo(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: ServerConfig,
    log: RateLimitedLog,
    live: set[asyncio.StreamWriter],
) -> None:
    live.add(writer)
    transport = writer.transport
    transport.set_write_buffer_limits(high=config.high_water)
    try:
        while data := await reader.read(config.recv_size):
            writer.write(data)
            # Nothing left in the transport's buffer (the usual case): no need to arm a
            # timer per request just to find that out.
            if transport.get_write_buffer_size():
                async with asyncio.timeout(config.stall_timeout):
                    await writer.drain()
        # Half-close: the reply is in the transport's hands; close() flushes it first.
    except TimeoutError:
        log.warning(
            "stall", "dropping a connection: its peer has not read for %.1f s", config.stall_timeout
        )
        transport.abort()
    except OSError:
        transport.abort()  # reset or broken pipe: this connection only
    finally:
        live.discard(writer)
        writer.close()
        try:
            # The flush of a half-closed peer's echo is bounded too.
            async with asyncio.timeout(config.stall_timeout):
                await writer.wait_closed()
        except TimeoutError:
            transport.abort()
        except OSError:
            pass


async def serve_async(listener: socket.socket, config: ServerConfig) -> None:
    log = RateLimitedLog(get_logger(STYLE))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    live: set[asyncio.StreamWriter] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _echo(reader, writer, config, log, live)

    def streams() -> asyncio.StreamReaderProtocol:
        # What asyncio.start_server builds for each connection.
        reader = asyncio.StreamReader(limit=config.recv_size, loop=loop)
        return asyncio.StreamReaderProtocol(reader, echo, loop=loop)

    acceptor = Acceptor(loop, listener, log, streams)
    acceptor.start()
    try:
        await stop.wait()
    finally:
        acceptor.close()
        for writer in list(live):
            writer.transport.abort()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if handlers:
            await asyncio.wait(handlers, timeout=SHUTDOWN_GRACE)


def serve(listener: socket.socket, config: ServerConfig) -> None:
    asyncio.run(serve_async(listener, config))
