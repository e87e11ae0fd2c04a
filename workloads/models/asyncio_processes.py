"""asyncio_processes: one event loop whose tasks hand their CPU slices to a process pool.

The hybrid services use in practice: the loop awaits the I/O, a warmed
``ProcessPoolExecutor`` (forkserver by default, one worker per core) does the CPU
through ``loop.run_in_executor``, so waiting costs no process and CPU is not held by
one GIL.  It runs a workload's ``hybrid`` flavour (``Workload.hybrid``), which says where
the task's CPU slices are; a workload without one is refused with a clear reason.

The pool is the ``processes`` model's own (same start method, warm-up and bounded
close), so both models' figures differ only by what the event loop adds.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout, cpu_count
from .processes import DEFAULT_START_METHOD, ProcessesModel

# How long the other tasks get to fail on their own once the pool is broken.
BROKEN_WAIT_S = 5.0


class AsyncioProcessesModel(Model):
    name = "asyncio_processes"
    # Not one of the three flavours: the optional ``Workload.hybrid`` hook.
    flavour = "hybrid"
    colour_seed = 9
    process_scope = "multi"
    pooled = True
    settings = ("start_method",)
    worker_choices = (("mixed", ("cores", "tasks")), ("*", ("cores",)))
    worker_cap = 32

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 300.0,
        start_method: str = DEFAULT_START_METHOD,
    ) -> None:
        super().__init__(cpu_count() if workers is None else workers, timeout)
        # Validates the start method now rather than at start().
        self.processes = ProcessesModel(self.workers, timeout, start_method)
        self.start_method = start_method
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def unsupported(cls, workload: Workload) -> str | None:
        """Why this model cannot run ``workload`` (a skip reason), or None if it can."""
        if workload.hybrid is None:
            return (
                f"{cls.name} needs the workload's hybrid flavour (Workload.hybrid: "
                f"async def f(task_id, offload, **params)); {workload.name!r} has none"
            )
        return None

    def start(self) -> AsyncioProcessesModel:
        self.processes.start()
        self.loop = asyncio.new_event_loop()
        super().start()
        return self

    def pids(self) -> list[int]:
        return self.processes.pids()

    async def _gather(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        assert self.loop is not None
        assert self.processes.pool is not None
        assert workload.hybrid is not None
        fn = functools.partial(workload.hybrid, **workload.params(**params))
        offload = functools.partial(self.loop.run_in_executor, self.processes.pool)
        # As in the asyncio model, ``workers`` does not cap the tasks on the loop: they
        # all wait at once, and the pool's size caps the CPU slices in flight.
        pending = [asyncio.ensure_future(fn(i, offload)) for i in range(tasks)]
        try:
            return await asyncio.wait_for(asyncio.gather(*pending), self.timeout)
        except BrokenProcessPool:
            # The pool fails every pending slice itself.  Cancelling them meanwhile races
            # its manager thread, which then dies on InvalidStateError (CPython 3.11).
            await asyncio.wait(pending, timeout=BROKEN_WAIT_S)
            raise
        finally:
            # A failed task leaves its siblings running: cancel them before the loop
            # is reused, so no orphan coroutine survives into the next cell.
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        reason = self.unsupported(workload)
        if reason:
            raise ModelError(reason)
        if self.loop is None or self.processes.pool is None or self.broken:
            raise self._fail(self.broken or "not started")
        try:
            return self.loop.run_until_complete(self._gather(workload, params, tasks))
        except BrokenProcessPool as exc:
            raise self._fail(
                f"a worker process died while running {workload.name} ({exc}); "
                "the pool is broken and will be restarted for the next cell"
            ) from exc
        except TimeoutError as exc:
            # Slices may still run in the workers: retire the model, the cache rebuilds it.
            raise self._fail(f"tasks unfinished after {self.timeout} s", ModelTimeout) from exc
        except Exception as exc:
            # A task's own error fails the cell, not the model: the pool is still sound.
            raise ModelError(f"{self.name}: a task raised {exc!r}") from exc

    def close(self) -> None:
        loop, self.loop = self.loop, None
        if loop is not None:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        self.processes.close()
        super().close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "start_method": self.start_method}
