"""generator: a small scheduler of our own over generator tasks (the tutorial's ``yield``).

A task yields ``None`` to let the next ready task run (round-robin) and a number to
sleep that many seconds (a timer heap).  When nothing is ready the scheduler sleeps
until the earliest timer, so waiting costs no CPU.  It is one thread: CPU work gains
nothing from it, and every switch costs a little, as the tutorial measured.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Generator, Iterable
from typing import Any

from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout

Task = Generator[float | None, None, Any]


def run_generators(
    tasks: Iterable[Task], limit: int | None = None, timeout: float = 300.0
) -> list[Any]:
    """Drive generator tasks to completion; return their return values in input order.

    At most ``limit`` tasks are in flight at once.  Raises ``ModelError`` past ``timeout``
    seconds or when a task raises.
    """
    pending = deque(enumerate(tasks))
    results: dict[int, Any] = {}
    ready: deque[tuple[int, Task]] = deque()
    timers: list[tuple[float, int, int, Task]] = []
    seq = itertools.count()
    in_flight = 0
    clock = time.monotonic
    deadline = clock() + timeout
    total = len(pending)

    while len(results) < total:
        while pending and (limit is None or in_flight < limit):
            ready.append(pending.popleft())
            in_flight += 1
        if not ready:
            # Only sleepers left: wait for the earliest timer instead of spinning.
            due = timers[0][0]
            if due > deadline:
                raise ModelTimeout(f"generator: tasks still sleeping after {timeout} s")
            pause = due - clock()
            if pause > 0:
                time.sleep(pause)
        now = clock()
        while timers and timers[0][0] <= now:
            _, _, index, gen = heapq.heappop(timers)
            ready.append((index, gen))
        if now > deadline:
            raise ModelTimeout(f"generator: tasks unfinished after {timeout} s")
        for _ in range(len(ready)):
            index, gen = ready.popleft()
            try:
                delay = next(gen)
            except StopIteration as stop:
                results[index] = stop.value
                in_flight -= 1
                continue
            except Exception as exc:
                raise ModelError(f"generator: task {index} raised {exc!r}") from exc
            if delay:
                heapq.heappush(timers, (clock() + delay, next(seq), index, gen))
            else:
                ready.append((index, gen))
    return [results[i] for i in range(total)]


class GeneratorModel(Model):
    name = "generator"
    flavour = "gen"

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task(self.flavour, **params)
        try:
            return run_generators((fn(i) for i in range(tasks)), self.workers, self.timeout)
        except ModelTimeout as exc:
            self.broken = str(exc)
            raise
