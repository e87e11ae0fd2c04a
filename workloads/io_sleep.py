"""io_sleep: a task that waits ``k`` times for ``d`` seconds, like a chain of I/O calls.

Variants (flavours):
- ``sync``: ``time.sleep(d)``; under gevent's ``monkey.patch_all()`` it yields to the hub.
- ``gen``: ``yield d``: the generator scheduler parks the task on its timer heap.
- ``coro``: ``await asyncio.sleep(d)``.

``d`` is at least 1 ms: Linux oversleeps every sleep by roughly 50-80 µs, which would
swamp shorter delays and measure the kernel's timer slack instead of the model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

from ._spec import Workload

K = 2
D = 0.02
MIN_D = 0.001


def _check(k: int, d: float) -> None:
    if d < MIN_D:
        raise ValueError(f"io_sleep: d={d} s is below the {MIN_D} s minimum")
    if k < 1:
        raise ValueError(f"io_sleep: k={k} must be at least 1")


def io_sleep_sync(task_id: int, k: int = K, d: float = D) -> tuple[int, int]:
    _check(k, d)
    for _ in range(k):
        time.sleep(d)
    return task_id, k


def io_sleep_gen(task_id: int, k: int = K, d: float = D) -> Generator[float, None, tuple[int, int]]:
    _check(k, d)
    for _ in range(k):
        yield d
    return task_id, k


async def io_sleep_coro(task_id: int, k: int = K, d: float = D) -> tuple[int, int]:
    _check(k, d)
    for _ in range(k):
        await asyncio.sleep(d)
    return task_id, k


def io_sleep_expected(task_id: int, k: int = K, d: float = D) -> tuple[int, int]:
    """What every flavour returns, without sleeping."""
    _check(k, d)
    return task_id, k


def io_sleep_seconds(k: int = K, d: float = D) -> float:
    return k * d


IO_SLEEP = Workload(
    name="io_sleep",
    bound="io",
    sync=io_sleep_sync,
    gen=io_sleep_gen,
    coro=io_sleep_coro,
    defaults={"k": K, "d": D},
    duration=io_sleep_seconds,
    expected=io_sleep_expected,
)
