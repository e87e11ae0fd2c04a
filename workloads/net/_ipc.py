"""Length-prefixed pickle frames between the load client and its worker processes.

Pickle is fine here: both ends are our own code, started by us, over a private pipe.
"""

from __future__ import annotations

import os
import pickle
import selectors
import struct
import time
from typing import Any, BinaryIO

HEADER = struct.Struct("!I")


class ChannelError(RuntimeError):
    """The other end closed the pipe or did not answer in time."""


def write_message(stream: BinaryIO, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """The next message, or None when the other end closed the pipe (blocking)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def read_exactly(fd: int, size: int, deadline: float) -> bytes:
    """``size`` bytes from a pipe, waiting at most until ``deadline`` (monotonic)."""
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise ChannelError("no answer in time")
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise ChannelError("the other end closed the pipe")
            chunks.append(chunk)
            size -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float) -> Any:
    (size,) = HEADER.unpack(read_exactly(fd, HEADER.size, deadline))
    return pickle.loads(read_exactly(fd, size, deadline))
