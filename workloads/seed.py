"""The tutorial's two experiments, at their own shape.

- CPU: two loops of ``n`` additions (``n += i``, 10,000,000 in the tutorial), run one
  after the other (``two_loops_serial``) or ping-ponged by generators, one ``next()``
  per iteration (``two_loops_pingpong``); the tutorial saw 1.16 s vs 2.07 s.
- I/O: two tasks of three 2 s sleeps, serial (12 s) vs under gevent (6 s); that one
  is an ``io_sleep`` cell (``k=3``) run by the serial and gevent models.
"""

from __future__ import annotations

from collections.abc import Generator

SEED_N = 10_000_000
SEED_SLEEPS = 3
SEED_SLEEP_S = 2.0
SEED_TASKS = 2


def loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def two_loops_serial(n: int = SEED_N) -> tuple[int, int]:
    return loop(n), loop(n)


def _yielding_loop(n: int) -> Generator[None, None, int]:
    total = 0
    for i in range(n):
        total += i
        yield
    return total


def two_loops_pingpong(n: int = SEED_N) -> tuple[int, int]:
    """The tutorial's f2: its own loop, switching to f1's generator every iteration."""
    other = _yielding_loop(n)
    total = 0
    for i in range(n):
        total += i
        next(other)
    try:
        next(other)
    except StopIteration as stop:
        return stop.value, total
    raise RuntimeError("the generator loop ran longer than n")
