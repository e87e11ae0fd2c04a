"""threads: ``concurrent.futures.ThreadPoolExecutor``, warmed so every thread exists."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from typing import Any

from .._spec import Workload
from ._base import Model, ModelTimeout, cpu_count

# How long close() waits for busy worker threads before leaving them behind.
CLOSE_WAIT_S = 10.0


def default_thread_workers() -> int:
    # ThreadPoolExecutor's own default since Python 3.8.
    return min(32, cpu_count() + 4)


def _wait_at(barrier: threading.Barrier) -> None:
    barrier.wait()


def collect(futures: list[cf.Future[Any]], timeout: float) -> list[Any]:
    """Results in submission order; raises TimeoutError if any is not done in time."""
    _done, not_done = cf.wait(futures, timeout=timeout)
    if not_done:
        for future in not_done:
            future.cancel()
        raise TimeoutError(f"{len(not_done)} of {len(futures)} tasks unfinished after {timeout} s")
    return [future.result() for future in futures]


def shutdown_bounded(pool: Any, wait_s: float = CLOSE_WAIT_S) -> None:
    """Shut a thread-backed executor down, waiting at most ``wait_s`` for its threads.

    A worker stuck in a task cannot be killed: it is left to finish on its own.
    """
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + wait_s
    for thread in list(getattr(pool, "_threads", ())):
        thread.join(max(0.0, deadline - time.monotonic()))


class ThreadsModel(Model):
    name = "threads"
    flavour = "sync"
    colour_seed = 2
    process_scope = "single"
    pooled = True
    worker_choices = (
        ("io", ("cores+4", "tasks")),
        ("mixed", ("cores", "tasks")),
        ("*", ("cores",)),
    )
    startup_variants = ({},)

    def __init__(self, workers: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(default_thread_workers() if workers is None else workers, timeout)
        self.pool: cf.ThreadPoolExecutor | None = None

    def start(self) -> ThreadsModel:
        assert self.workers is not None
        self.pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="boundbench")
        # The executor makes threads lazily; hold them all at a barrier so every one
        # exists before timing starts.
        barrier = threading.Barrier(self.workers, timeout=30)
        try:
            collect([self.pool.submit(_wait_at, barrier) for _ in range(self.workers)], 60)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or timed out: free the threads that wait,
            # or close() and the interpreter's exit would wait for the barrier's timeout.
            barrier.abort()
            raise
        super().start()
        return self

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.pool is None or self.broken:
            raise self._fail(self.broken or "not started")
        fn = workload.task(self.flavour, **params)
        try:
            return collect([self.pool.submit(fn, i) for i in range(tasks)], self.timeout)
        except TimeoutError as exc:
            # A thread cannot be killed: a pool with a stuck worker is never reused.
            raise self._fail(f"{exc}; the pool is retired", ModelTimeout) from exc

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            shutdown_bounded(pool)
        super().close()
