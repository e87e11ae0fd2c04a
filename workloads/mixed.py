"""mixed: a task that is partly CPU and partly waiting, interleaved, like most real work.

One task does about ``task_s`` seconds of work in ``steps`` alternating slices: a CPU
slice, then a sleep slice.  A share ``cpu_share`` of it is CPU, the rest sleeping.

Parameters:
- ``cpu_share`` (0..1): the share of the task that is CPU.  The sleep part is
  ``(1 - cpu_share) * task_s`` seconds, split evenly over the ``steps`` sleep slices.
- ``task_s`` (>= 0.1 s): the nominal length of one task, so no sleep slice of a usual
  sweep falls under the 1 ms minimum (a slice under it is refused, as in ``io_sleep``).
- ``steps`` (>= 1): how many CPU-then-sleep slice pairs.
- ``cpu_iters``: iterations of CPU work for the whole task, split evenly over the CPU
  slices.  A fixed count, not a duration: the profile fixes it from ``cpu_iters_for()``
  and the documented seconds per iteration below, measured once on the project's
  machine.  Re-calibrating each session would change a cell's parameters from run to run
  (no common cells for the regression check) and absorb a real slowdown.
  ``cpu_iters`` is 0 exactly when ``cpu_share`` is 0.
- ``cpu_kind``: ``python`` runs the ``cpu_loop`` body (``total += i``), holding the GIL;
  ``native`` hashes ``NATIVE_BYTES_PER_ITER`` bytes per iteration with SHA-256 in C,
  with the GIL released, sized so an iteration takes about as long as a Python one.

Variants (flavours), all returning ``(task_id, cpu_iters, checksum)``:
- ``sync``: CPU slices inline, ``time.sleep`` between them.
- ``gen``: yields ``None`` between CPU chunks of ``CHUNK_ITERS`` iterations so the
  generator scheduler can switch tasks, and yields the seconds of each sleep slice.
- ``coro``: CPU slices inline (they block the loop, as such code does), ``await
  asyncio.sleep`` between them.
- ``hybrid``: each CPU slice handed to ``offload`` (a process pool, in the
  ``asyncio_processes`` model), ``await asyncio.sleep`` between them.

``cpu_slice(iters, cpu_kind, seed)`` is the CPU slice as a top-level, picklable function
(a process pool runs it).  It works in chunks of at most ``CHUNK_ITERS`` iterations and
returns the sum of the chunks' checksums, so the ``gen`` flavour, which yields between
chunks, adds up to the same result as one call.

The ideal of a cell (N tasks, P cores) is ``max(N * cpu_s / P, cpu_s + wait_s)``
(``mixed_ideal_seconds``), with the parts taken from measured seconds where known
(``measure_seconds_per_iter``) rather than from the nominal share.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Generator

from ._spec import Offload, Workload

# Seconds per iteration of ``cpu_slice``, measured on the project's machine (2-core VM,
# CPython 3.11, quiet host: python 49-52 ns, native 49-52 ns) with
# ``measure_seconds_per_iter``; the profiles size ``cpu_iters`` from these.  Never
# re-measured per session; record the figure measured in each run beside its results.
PYTHON_ITER_S = 50e-9
NATIVE_ITER_S = 50e-9
SECONDS_PER_ITER = {"python": PYTHON_ITER_S, "native": NATIVE_ITER_S}
CPU_KINDS = tuple(SECONDS_PER_ITER)

# SHA-256 hashes ~0.9 ns/byte here, so 64 bytes (its block size) take about one Python
# iteration's time.
NATIVE_BYTES_PER_ITER = 64
# ~0.5 ms of work: a generator task gives up the CPU this often.
CHUNK_ITERS = 10_000
# One native chunk's bytes; far above hashlib's 2 KiB threshold for releasing the GIL.
_BLOCK = memoryview(bytes(range(256)) * (CHUNK_ITERS * NATIVE_BYTES_PER_ITER // 256))

MIN_TASK_S = 0.1
MIN_SLEEP_S = 0.001  # Linux oversleeps by ~50-80 µs: shorter sleeps measure the kernel

CPU_SHARE = 0.5
TASK_S = 0.2
STEPS = 4
CPU_KIND = "python"


def _check_kind(cpu_kind: str) -> None:
    if cpu_kind not in CPU_KINDS:
        raise ValueError(f"mixed: unknown cpu_kind {cpu_kind!r}; valid: {', '.join(CPU_KINDS)}")


def cpu_iters_for(cpu_share: float, task_s: float, cpu_kind: str = CPU_KIND) -> int:
    """The fixed ``cpu_iters`` for a nominal share, from the documented seconds per iteration."""
    _check_kind(cpu_kind)
    return round(cpu_share * task_s / SECONDS_PER_ITER[cpu_kind])


CPU_ITERS = cpu_iters_for(CPU_SHARE, TASK_S)


def _check(cpu_share: float, task_s: float, steps: int, cpu_iters: int, cpu_kind: str) -> None:
    _check_kind(cpu_kind)
    if not 0.0 <= cpu_share <= 1.0:
        raise ValueError(f"mixed: cpu_share={cpu_share} must be between 0 and 1")
    if task_s < MIN_TASK_S:
        raise ValueError(f"mixed: task_s={task_s} s is below the {MIN_TASK_S} s minimum")
    if steps < 1:
        raise ValueError(f"mixed: steps={steps} must be at least 1")
    if cpu_iters < 0:
        raise ValueError(f"mixed: cpu_iters={cpu_iters} must not be negative")
    if (cpu_iters == 0) != (cpu_share == 0):
        raise ValueError(
            f"mixed: cpu_iters={cpu_iters} and cpu_share={cpu_share} disagree "
            "(cpu_iters is 0 exactly when cpu_share is 0; see cpu_iters_for())"
        )
    sleep_s = _sleep_slice(cpu_share, task_s, steps)
    if 0 < sleep_s < MIN_SLEEP_S:
        raise ValueError(
            f"mixed: a sleep slice of {sleep_s:.6f} s is below the {MIN_SLEEP_S} s minimum; "
            "use fewer steps or a longer task_s"
        )


def _sleep_slice(cpu_share: float, task_s: float, steps: int) -> float:
    return (1.0 - cpu_share) * task_s / steps


def _slices(cpu_iters: int, steps: int) -> list[int]:
    """Iterations of each CPU slice: even, the remainder going to the first slices."""
    base, extra = divmod(cpu_iters, steps)
    return [base + 1 if index < extra else base for index in range(steps)]


def _chunks(iters: int) -> list[int]:
    full, rest = divmod(iters, CHUNK_ITERS)
    return [CHUNK_ITERS] * full + ([rest] if rest else [])


def _chunk(iters: int, cpu_kind: str, seed: int) -> int:
    if cpu_kind == "python":
        total = 0
        for i in range(iters):
            total += i
        return total
    digest = hashlib.sha256(seed.to_bytes(8, "little", signed=True))
    digest.update(_BLOCK[: iters * NATIVE_BYTES_PER_ITER])
    return int.from_bytes(digest.digest()[:8], "little")


def cpu_slice(iters: int, cpu_kind: str = CPU_KIND, seed: int = 0) -> int:
    """``iters`` iterations of CPU work; a checksum that proves them (``seed``: native data)."""
    _check_kind(cpu_kind)
    return sum(_chunk(size, cpu_kind, seed) for size in _chunks(iters))


def mixed_sync(
    task_id: int,
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> tuple[int, int, int]:
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    sleep_s = _sleep_slice(cpu_share, task_s, steps)
    checksum = 0
    for iters in _slices(cpu_iters, steps):
        checksum += cpu_slice(iters, cpu_kind, task_id)
        if sleep_s:
            time.sleep(sleep_s)
    return task_id, cpu_iters, checksum


def mixed_expected(
    task_id: int,
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> tuple[int, int, int]:
    """What every flavour returns: the CPU slices' checksums, without the sleeps."""
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    checksum = sum(cpu_slice(iters, cpu_kind, task_id) for iters in _slices(cpu_iters, steps))
    return task_id, cpu_iters, checksum


def mixed_gen(
    task_id: int,
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> Generator[float | None, None, tuple[int, int, int]]:
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    sleep_s = _sleep_slice(cpu_share, task_s, steps)
    checksum = 0
    for step, iters in enumerate(_slices(cpu_iters, steps)):
        for index, size in enumerate(_chunks(iters)):
            if index:
                yield None
            checksum += _chunk(size, cpu_kind, task_id)
        if sleep_s:
            yield sleep_s
        elif step + 1 < steps:
            yield None
    return task_id, cpu_iters, checksum


async def mixed_coro(
    task_id: int,
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> tuple[int, int, int]:
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    sleep_s = _sleep_slice(cpu_share, task_s, steps)
    checksum = 0
    for iters in _slices(cpu_iters, steps):
        checksum += cpu_slice(iters, cpu_kind, task_id)
        if sleep_s:
            await asyncio.sleep(sleep_s)
    return task_id, cpu_iters, checksum


async def mixed_hybrid(
    task_id: int,
    offload: Offload,
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> tuple[int, int, int]:
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    sleep_s = _sleep_slice(cpu_share, task_s, steps)
    checksum = 0
    for iters in _slices(cpu_iters, steps):
        if iters:
            checksum += await offload(cpu_slice, iters, cpu_kind, task_id)
        if sleep_s:
            await asyncio.sleep(sleep_s)
    return task_id, cpu_iters, checksum


def mixed_seconds(
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
) -> float:
    """The nominal length of one task.  A cell's ideal is ``mixed_ideal_seconds``, not this."""
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    return task_s


def mixed_parts(
    cpu_share: float = CPU_SHARE,
    task_s: float = TASK_S,
    steps: int = STEPS,
    cpu_iters: int = CPU_ITERS,
    cpu_kind: str = CPU_KIND,
    seconds_per_iter: float | None = None,
) -> tuple[float, float]:
    """(CPU seconds, wait seconds) of one task: CPU from ``seconds_per_iter`` (measured,
    else the documented constant), waits from the parameters."""
    _check(cpu_share, task_s, steps, cpu_iters, cpu_kind)
    per_iter = SECONDS_PER_ITER[cpu_kind] if seconds_per_iter is None else seconds_per_iter
    return cpu_iters * per_iter, (1.0 - cpu_share) * task_s


def mixed_ideal_seconds(
    tasks: int, cpu_s_per_task: float, wait_s_per_task: float, cores: int
) -> float:
    """The physical limit of a cell: the cores' share of all CPU, or one task end to end.

    ``cores=1`` is the limit of one process running GIL-holding work.
    """
    if tasks < 1 or cores < 1:
        raise ValueError(f"mixed: tasks={tasks} and cores={cores} must be at least 1")
    if cpu_s_per_task < 0 or wait_s_per_task < 0:
        raise ValueError("mixed: CPU and wait seconds must not be negative")
    return max(tasks * cpu_s_per_task / cores, cpu_s_per_task + wait_s_per_task)


def measure_seconds_per_iter(
    cpu_kind: str = CPU_KIND, iters: int = 1_000_000, repeat: int = 3
) -> float:
    """Seconds per iteration of ``cpu_slice`` here: the best of ``repeat`` timed calls.

    To be recorded beside results, not fed back into ``cpu_iters``.
    """
    _check_kind(cpu_kind)
    if iters < 1 or repeat < 1:
        raise ValueError(f"mixed: iters={iters} and repeat={repeat} must be at least 1")
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        cpu_slice(iters, cpu_kind)
        best = min(best, time.perf_counter() - started)
    return best / iters


MIXED = Workload(
    name="mixed",
    bound="mixed",
    sync=mixed_sync,
    gen=mixed_gen,
    coro=mixed_coro,
    defaults={
        "cpu_share": CPU_SHARE,
        "task_s": TASK_S,
        "steps": STEPS,
        "cpu_iters": CPU_ITERS,
        "cpu_kind": CPU_KIND,
    },
    duration=mixed_seconds,
    hybrid=mixed_hybrid,
    expected=mixed_expected,
)
