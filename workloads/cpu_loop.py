"""cpu_loop: the tutorial's pure-Python integer loop, ``n += i`` over ``range(N)``.

It holds the GIL from start to end, so threads, gevent and asyncio cannot run two of
them at once; only processes can.

Variants (flavours):
- ``sync``: the plain loop.
- ``gen``: the same loop run in chunks of ``yield_every`` iterations with a ``yield``
  between chunks, so a scheduler can switch between tasks; the loop body is the
  ``sync`` one, so the generator's cost is the switching, nothing else.
- ``coro``: the plain loop inside ``async def`` (a coroutine that never awaits still
  blocks its event loop: that is the point).
"""

from __future__ import annotations

from collections.abc import Generator

from ._spec import Workload

N = 1_000_000
YIELD_EVERY = 1_000


def cpu_loop_sync(task_id: int, n: int = N, yield_every: int = YIELD_EVERY) -> tuple[int, int]:
    total = 0
    for i in range(n):
        total += i
    return task_id, total


def cpu_loop_gen(
    task_id: int, n: int = N, yield_every: int = YIELD_EVERY
) -> Generator[None, None, tuple[int, int]]:
    # The inner loop is the sync flavour's, byte for byte, run in chunks with a yield
    # between them: counting down inside the loop would double its bytecodes, and the
    # generator's bars would show that instrumentation instead of the cost of switching.
    # The tutorial's yield-every-iteration ping-pong is the seed group's (workloads/seed.py).
    total = 0
    step = max(1, yield_every)
    for start in range(0, n, step):
        for i in range(start, min(start + step, n)):
            total += i
        yield
    return task_id, total


async def cpu_loop_coro(
    task_id: int, n: int = N, yield_every: int = YIELD_EVERY
) -> tuple[int, int]:
    return cpu_loop_sync(task_id, n, yield_every)


CPU_LOOP = Workload(
    name="cpu_loop",
    bound="cpu",
    sync=cpu_loop_sync,
    gen=cpu_loop_gen,
    coro=cpu_loop_coro,
    defaults={"n": N, "yield_every": YIELD_EVERY},
)
