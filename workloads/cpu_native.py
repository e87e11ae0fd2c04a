"""cpu_native: SHA-256 over a large buffer, done in C with the GIL released.

hashlib drops the GIL while it hashes more than 2 KiB at once, so threads can hash on
every core at the same time: the CPU-bound case where threads *do* help.

Variants (flavours):
- ``sync``: ``rounds`` updates of a ``size``-byte block.
- ``gen``: yields between rounds so a scheduler can interleave tasks.
- ``coro``: the same inside ``async def`` (blocks its loop while hashing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator

from ._spec import Workload

SIZE = 1 << 20  # 1 MiB per update: far above hashlib's 2 KiB GIL-release threshold
ROUNDS = 64


def _block(task_id: int, size: int) -> bytes:
    # Deterministic and different per task, so a mixed-up result cannot pass.
    seed = bytes((task_id + i) % 256 for i in range(256))
    return (seed * (size // 256 + 1))[:size]


def cpu_native_sync(task_id: int, size: int = SIZE, rounds: int = ROUNDS) -> tuple[int, str]:
    block = _block(task_id, size)
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(block)
    return task_id, digest.hexdigest()


def cpu_native_gen(
    task_id: int, size: int = SIZE, rounds: int = ROUNDS
) -> Generator[None, None, tuple[int, str]]:
    block = _block(task_id, size)
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(block)
        yield
    return task_id, digest.hexdigest()


async def cpu_native_coro(task_id: int, size: int = SIZE, rounds: int = ROUNDS) -> tuple[int, str]:
    return cpu_native_sync(task_id, size, rounds)


CPU_NATIVE = Workload(
    name="cpu_native",
    bound="cpu",
    sync=cpu_native_sync,
    gen=cpu_native_gen,
    coro=cpu_native_coro,
    defaults={"size": SIZE, "rounds": ROUNDS},
)
