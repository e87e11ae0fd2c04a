"""processes: ``ProcessPoolExecutor`` with an explicit start method, warmed before timing.

forkserver is the default: fork from a threaded pytest process is unsafe (and
deprecated in 3.12), spawn re-imports everything for each worker.  The method is
recorded in the results so runs with different methods are never compared blindly.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import psutil

from .._spec import Workload
from ._base import Model, cpu_count
from .threads import collect

START_METHODS = ("forkserver", "spawn", "fork")
DEFAULT_START_METHOD = "forkserver"


def _worker_pid(pause: float) -> int:
    # Each warm-up task lingers a moment so the executor has to start a new worker for
    # the next one instead of reusing an idle one.
    time.sleep(pause)
    return os.getpid()


class ProcessesModel(Model):
    name = "processes"
    flavour = "sync"
    pooled = True

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 300.0,
        start_method: str = DEFAULT_START_METHOD,
    ) -> None:
        if start_method not in mp.get_all_start_methods():
            valid = ", ".join(mp.get_all_start_methods())
            raise ValueError(f"processes: unknown start method {start_method!r}; valid: {valid}")
        super().__init__(cpu_count() if workers is None else workers, timeout)
        self.start_method = start_method
        self.pool: cf.ProcessPoolExecutor | None = None

    def start(self) -> ProcessesModel:
        assert self.workers is not None
        context = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            context.set_forkserver_preload(["workloads"])
        self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=context)
        try:
            self._warm()
        except BaseException:
            self.close()
            raise
        super().start()
        return self

    def _warm(self) -> None:
        assert self.pool is not None
        assert self.workers is not None
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < self.workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes: only {len(seen)} of {self.workers} workers started")
            batch = [self.pool.submit(_worker_pid, 0.05) for _ in range(self.workers)]
            seen.update(collect(batch, 60))

    def pids(self) -> list[int]:
        pool_procs = getattr(self.pool, "_processes", None) or {}
        return [os.getpid(), *pool_procs]

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.pool is None or self.broken:
            raise self._fail(self.broken or "not started")
        fn = workload.task(self.flavour, **params)
        try:
            return collect([self.pool.submit(fn, i) for i in range(tasks)], self.timeout)
        except BrokenProcessPool as exc:
            raise self._fail(
                f"a worker process died while running {workload.name} ({exc}); "
                "the pool is broken and will be restarted for the next cell"
            ) from exc
        except TimeoutError as exc:
            raise self._fail(f"{exc}") from exc

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            children = [
                psutil.Process(pid)
                for pid in (getattr(pool, "_processes", None) or {})
                if psutil.pid_exists(pid)
            ]
            # Never wait unbounded on a hung worker: ask, wait a while, then kill.
            pool.shutdown(wait=False, cancel_futures=True)
            _, alive = psutil.wait_procs(children, timeout=10)
            for proc in alive:
                proc.kill()
            psutil.wait_procs(alive, timeout=5)
            pool.shutdown(wait=True)
        super().close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "start_method": self.start_method}
