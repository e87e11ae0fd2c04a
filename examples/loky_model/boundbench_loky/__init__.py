"""loky: joblib's process pool as a boundbench model (an example plugin).

loky's ``ProcessPoolExecutor`` is a ``concurrent.futures`` pool that survives a
worker's death, reuses its workers and starts them with its own ``loky`` context
(fork + exec, safe from a threaded parent).  Everything the suite needs is on the
class; the entry point ``loky = "boundbench_loky:LokyModel"`` registers it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
from typing import Any

import psutil

from workloads import Workload
from workloads.models import Model, ModelError, cpu_count

CLOSE_WAIT_S = 10.0


def _ready(_: int) -> int:
    return os.getpid()


class LokyModel(Model):
    name = "loky"
    flavour = "sync"
    pooled = True
    requires = ("loky", "pip install loky")
    worker_cap = 32
    worker_choices = (("io", ("cores", "tasks")), ("*", ("cores",)))
    startup_variants = ({},)
    # What the reports need: its CPU work spreads over processes (the crossover sentence
    # counts it among the multi-process models), and loky's version shapes its figures.
    process_scope = "multi"
    libraries = ("loky",)

    def __init__(self, workers: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(cpu_count() if workers is None else workers, timeout)
        self.pool: Any = None

    def start(self) -> LokyModel:
        import loky

        self.pool = loky.ProcessPoolExecutor(max_workers=self.workers)
        # Every worker up before timing: one no-op task each.
        list(self.pool.map(_ready, range(self.workers or 1), timeout=self.timeout))
        super().start()
        return self

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task("sync", **params)
        futures = [self.pool.submit(fn, task_id) for task_id in range(tasks)]
        try:
            return [future.result(timeout=self.timeout) for future in futures]
        except cf.TimeoutError:
            raise self._fail(f"no result within {self.timeout} s") from None
        except Exception as exc:
            if type(exc).__name__ == "TerminatedWorkerError":
                raise self._fail(f"a worker died: {exc}") from None
            raise ModelError(f"{self.name}: a task raised {exc!r}") from exc

    def pids(self) -> list[int]:
        workers = getattr(self.pool, "_processes", None) or {}
        return [os.getpid(), *workers]

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            children = self.child_pids_of(pool)
            closer = threading.Thread(target=pool.shutdown, kwargs={"wait": True}, daemon=True)
            closer.start()
            closer.join(CLOSE_WAIT_S)
            # A worker that did not leave in time is killed: no child outlives the model.
            for pid in children:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()
        super().close()

    @staticmethod
    def child_pids_of(pool: Any) -> list[int]:
        return list(getattr(pool, "_processes", None) or {})
