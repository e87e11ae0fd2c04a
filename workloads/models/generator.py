"""generator: a small scheduler of our own over generator tasks (the tutorial's ``yield``).

A task yields ``None`` (let the next task run), a number of seconds to sleep, or a
``Wait(sock, "r" | "w", timeout)`` to park until a socket is ready.  The scheduler is
``workloads._scheduler``, the one the generator echo server runs on too: round-robin
for CPU yields, a timer heap for sleeps, one selector for every parked socket.  It is
one thread: CPU work gains nothing from it, and every switch costs a little, as the
tutorial measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._scheduler import SchedulerError, SchedulerTimeout, Task, Wait, run_tasks
from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout


def run_generators(
    tasks: Iterable[Task], limit: int | None = None, timeout: float = 300.0
) -> list[Any]:
    """Drive generator tasks to completion; return their return values in input order.

    At most ``limit`` tasks are in flight at once.  Raises ``ModelTimeout`` past
    ``timeout`` seconds, ``ModelError`` when a task raises; every unfinished task is
    then closed (its ``finally`` blocks run, so its sockets close).
    """
    try:
        return run_tasks(tasks, limit, timeout)
    except SchedulerTimeout as exc:
        raise ModelTimeout(f"generator: {exc}") from None
    except SchedulerError as exc:
        raise ModelError(f"generator: {exc}") from exc.__cause__


class GeneratorModel(Model):
    name = "generator"
    flavour = "gen"
    colour_seed = 1
    process_scope = "single"

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task(self.flavour, **params)
        try:
            return run_generators((fn(i) for i in range(tasks)), self.workers, self.timeout)
        except ModelTimeout as exc:
            self.broken = str(exc)
            raise


__all__ = ["GeneratorModel", "Task", "Wait", "run_generators"]
