"""processes: ``ProcessPoolExecutor`` with an explicit start method, warmed before timing.

forkserver is the default: fork from a threaded pytest process is unsafe (and
deprecated in 3.12), spawn re-imports everything for each worker.  The method is
recorded in the results so runs with different methods are never compared blindly.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import psutil

from .._spec import Workload
from ._base import Model, ModelTimeout, cpu_count
from .threads import collect

START_METHODS = ("forkserver", "spawn", "fork")
DEFAULT_START_METHOD = "forkserver"
# Bounds on starting and closing a pool (a wedged worker is killed after CLOSE_WAIT_S).
START_TIMEOUT_S = 60.0
CLOSE_WAIT_S = 10.0


def _bounded(action: Callable[[], object], timeout: float) -> bool:
    """Run ``action`` in a daemon thread; False if it had not returned after ``timeout``."""
    thread = threading.Thread(target=action, daemon=True, name="boundbench-bounded")
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def stop_multiprocessing_helpers() -> None:
    """Stop the forkserver and resource tracker that process pools leave running.

    They are shared by every pool of this process and normally live until it exits; a
    session stops them explicitly so no child of ours outlives it.  Every step is
    bounded: a straggler the forkserver started is killed first (it may hold the
    forkserver's pipe), and a helper that does not leave in time is killed.
    """
    for helper, pid_attr in (
        (getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid"),
        (getattr(multiprocessing.resource_tracker, "_resource_tracker", None), "_pid"),
    ):
        stop = getattr(helper, "_stop", None)
        pid = getattr(helper, pid_attr, None)
        if stop is None:
            continue
        if pid is not None and psutil.pid_exists(pid):
            with contextlib.suppress(psutil.Error):
                stragglers = psutil.Process(pid).children(recursive=True)
                for proc in stragglers:
                    proc.kill()
                psutil.wait_procs(stragglers, timeout=5)
        if not _bounded(stop, CLOSE_WAIT_S) and pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _bounded(stop, 5)


def _worker_init(barrier: Any, timeout: float) -> None:
    # Ctrl-C in a terminal signals the whole process group; a worker interrupted inside
    # the pool's queue lock would hang the parent's shutdown.  The parent alone handles
    # it and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Every worker waits here until all have started, so the first tasks cannot finish
    # early and leave the executor reusing an idle worker instead of starting the rest.
    barrier.wait(timeout)


def worker_pid() -> int:
    return os.getpid()


def _forget_barrier(pool: cf.ProcessPoolExecutor) -> None:
    """Drop the pool's references to the start barrier (its initargs, also held by each
    worker's Process object)."""
    pool._initargs = ()
    for proc in (getattr(pool, "_processes", None) or {}).values():
        proc._args = ()


class ProcessesModel(Model):
    name = "processes"
    flavour = "sync"
    colour_seed = 3
    process_scope = "multi"
    pooled = True
    settings = ("start_method",)
    # One process per task is the I/O extreme of a process pool; past this it measures fork.
    worker_cap = 32
    worker_choices = (
        ("io", ("cores", "tasks")),
        ("mixed", ("cores", "tasks")),
        ("*", ("cores",)),
    )
    startup_variants = tuple({"start_method": method} for method in START_METHODS)

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
        """Create the pool and get a first result from every worker: what a user pays."""
        assert self.workers is not None
        context = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Workers unpickle their tasks from workloads.models: import it once, in the
            # forkserver, instead of in every new worker.
            context.set_forkserver_preload(["workloads", "workloads.models"])
        self.pool = pool = cf.ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_worker_init,
            initargs=(context.Barrier(self.workers), START_TIMEOUT_S),
        )
        try:
            collect([self.pool.submit(worker_pid) for _ in range(self.workers)], START_TIMEOUT_S)
        except BaseException as exc:
            # Its workers wait at the start barrier and hold no work: no grace period
            # (Ctrl-C or SIGTERM mid-start ends the run at once, not 10 s later).
            _forget_barrier(pool)
            self.close(grace_s=0.0)
            if isinstance(exc, BrokenProcessPool | TimeoutError):
                raise self._fail(f"the pool did not start: {exc}") from exc
            raise
        finally:
            # Every worker is past the barrier (or gone): free its named semaphores now,
            # while the resource tracker that registered them still runs (a session
            # stops the tracker at its end, and a semaphore unlinked by it fails its own
            # late cleanup; an interrupted start's traceback would keep the pool alive).
            _forget_barrier(pool)
        super().start()
        return self

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
            raise self._fail(f"{exc}; the pool is retired", ModelTimeout) from exc

    def close(self, grace_s: float = CLOSE_WAIT_S) -> None:
        """Stop the pool: ask the workers, wait up to ``grace_s`` for them, then kill."""
        pool, self.pool = self.pool, None
        if pool is not None:
            children = []
            for pid in list(getattr(pool, "_processes", None) or {}):
                # A dead worker may be reaped at any moment (the executor's own thread
                # does it): gone before or while we look is the same as gone.
                with contextlib.suppress(psutil.NoSuchProcess):
                    children.append(psutil.Process(pid))
            # Never wait unbounded on a hung worker: ask, wait a while, then kill.
            pool.shutdown(wait=False, cancel_futures=True)
            _, alive = psutil.wait_procs(children, timeout=grace_s)
            for proc in alive:
                proc.kill()
            psutil.wait_procs(alive, timeout=5)
            # The executor's manager thread notices the dead workers and ends; joining it
            # is still bounded, in case it does not.
            _bounded(lambda: pool.shutdown(wait=True), CLOSE_WAIT_S)
        super().close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "start_method": self.start_method}
