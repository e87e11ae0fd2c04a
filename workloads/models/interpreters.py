"""interpreters: a pool of subinterpreters, one GIL each, running the ``sync`` flavour.

Each worker is a thread of this process driving an isolated interpreter with its own
GIL (PEP 684/734), so pure-Python CPU work runs in parallel without new processes.
Tasks and results cross by pickle, as for processes.  The pool is
``InterpreterPoolExecutor`` on 3.14+, its PyPI backport on 3.13, or a small pool over
the stdlib's low-level module (3.12, 3.13 without the backport); the one used is
recorded as ``interpreter_pool``.  Older Pythons skip the model with that reason.

A workload whose module cannot be imported in a subinterpreter (a C extension that
refuses them, like psutil's or numpy's, or crashes, like gevent's) is skipped with the
reason; the check runs in a separate process, so a crash cannot take the suite down.
"""

from __future__ import annotations

import concurrent.futures as cf
import sys
import time
from typing import Any

from .._spec import Workload
from . import _interp_pool
from ._base import Model, ModelError, ModelTimeout, cpu_count
from .threads import collect, shutdown_bounded

START_TIMEOUT_S = 60.0
CLOSE_WAIT_S = 10.0
# Warm-up rounds: every worker must answer one, each round a little longer so that
# workers still starting get a turn (the first round is not padded).
WARM_ROUNDS = 50


# Workloads seen to hang in a subinterpreter pool here, and why they are left out.
HANGS = {
    "mixed": "its native CPU slices never returned from two subinterpreters on CPython "
    "3.13.0 (a quick run, 2026-11-29: the cell timed out after 300 s; cause not found)",
}


class InterpretersModel(Model):
    name = "interpreters"
    flavour = "sync"
    colour_seed = 7
    process_scope = "multi"
    libraries = ("interpreters-pep-734",)
    pooled = True
    # Like processes: one worker per task is the I/O extreme; past this it measures start-up.
    worker_cap = 32
    worker_choices = (
        ("io", ("cores", "tasks")),
        ("mixed", ("cores", "tasks")),
        ("*", ("cores",)),
    )
    startup_variants = ({},)
    # Its cells run apart from every other model's: forking a process (the processes
    # model's fork start-up cell) while subinterpreters live kills the child on 3.13.0.
    own_batch = True

    def __init__(self, workers: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(cpu_count() if workers is None else workers, timeout)
        self.pool: Any = None
        self.backend: str | None = None

    @classmethod
    def unavailable(cls) -> str | None:
        reason = _interp_pool.unavailable_reason()
        if reason is None:
            # 3.12.1 imports hashlib and asyncio in an isolated interpreter but then
            # aborts at exit ("free(): invalid pointer"): ask a separate process first.
            problem = _interp_pool.import_problem("workloads")
            if problem:
                reason = (
                    f"Model {cls.name!r} is not available on Python "
                    f"{sys.version.split()[0]}: {problem}"
                )
        return reason or super().unavailable()

    @classmethod
    def unsupported(cls, workload: Workload) -> str | None:
        reason = super().unsupported(workload)
        if reason is None and workload.name in HANGS:
            return f"{cls.name} cannot run {workload.name}: {HANGS[workload.name]}"
        if reason is None and cls.unavailable() is None:
            module = getattr(workload.sync, "__module__", None)
            if module and module != "__main__":
                problem = _interp_pool.import_problem(module)
                if problem:
                    reason = f"{cls.name} cannot run {workload.name}: {problem}"
        return reason

    def start(self) -> InterpretersModel:
        """Create the pool and get an answer from every worker: what a user pays."""
        reason = self.unavailable()
        if reason:
            raise self._fail(reason)
        assert self.workers is not None
        self.backend = _interp_pool.pool_backend()
        paths = [path for path in sys.path if isinstance(path, str)]
        try:
            if self.backend in ("_interpreters", "_xxsubinterpreters"):
                self.pool = _interp_pool.SubinterpreterPool(self.workers, paths, START_TIMEOUT_S)
            else:
                executor = _interp_pool.executor_class(self.backend)
                # exec is a builtin, so the executor can hand it to a subinterpreter that
                # cannot import this package (see _interp_pool's docstring).
                self.pool = executor(
                    self.workers,
                    thread_name_prefix="boundbench-interp",
                    initializer=exec,
                    initargs=(_interp_pool.boot_source(paths), {}),
                )
                self._warm(self.pool)
        except (TimeoutError, RuntimeError, cf.BrokenExecutor) as exc:
            self.close()
            raise self._fail(f"the pool did not start: {exc}") from exc
        except BaseException:
            self.close()
            raise
        super().start()
        return self

    def _warm(self, pool: Any) -> None:
        """Until every worker's interpreter has answered once (bounded)."""
        assert self.workers is not None
        seen: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT_S
        for attempt in range(WARM_ROUNDS):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            expr = _interp_pool.WARM_EXPR.format(nap=0.002 * attempt)
            futures = [pool.submit(eval, expr) for _ in range(self.workers)]
            seen.update(collect(futures, left))
            if len(seen) >= self.workers:
                return
        raise TimeoutError(f"{self.workers - len(seen)} of {self.workers} interpreters idle")

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.pool is None or self.broken:
            raise self._fail(self.broken or "not started")
        fn = workload.task(self.flavour, **params)
        try:
            return collect([self.pool.submit(fn, i) for i in range(tasks)], self.timeout)
        except TimeoutError as exc:
            # An interpreter cannot be stopped mid-task: the pool is never reused.
            raise self._fail(f"{exc}; the pool is retired", ModelTimeout) from exc
        except cf.BrokenExecutor as exc:
            raise self._fail(f"the pool broke while running {workload.name}: {exc}") from exc
        except Exception as exc:
            # The task raised inside its interpreter: that cell fails, the pool is fine.
            raise ModelError(
                f"{self.name}: a task of {workload.name} raised {type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            # A worker stuck in a task is left to finish on its own (its interpreter is
            # destroyed when the task returns).
            shutdown_bounded(pool, CLOSE_WAIT_S)
        super().close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "interpreter_pool": self.backend}
