"""uvloop: the ``asyncio_protocol`` server on uvloop's libuv-based event loop.

Same protocol, same back-pressure and half-close handling; only the loop differs, so
the gap between the two styles is the loop's own cost.  An optional extra:
``pip install 'boundbench[uvloop]'``.
"""

from __future__ import annotations

import asyncio
import socket

from ._common import ServerConfig
from .asyncio_protocol_server import serve_async

STYLE = "uvloop"


def serve(listener: socket.socket, config: ServerConfig) -> None:
    try:
        import uvloop
    except ImportError as exc:
        raise ImportError(
            "The uvloop style needs uvloop. Install it with: pip install 'boundbench[uvloop]'"
        ) from exc
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_async(listener, config, STYLE))
