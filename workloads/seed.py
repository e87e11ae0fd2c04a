"""The tutorial's two experiments, at their own shape.

- CPU: two loops of ``n`` additions (``n += i``, 10,000,000 in the tutorial), run one
  after the other (``two_loops_serial``) or ping-ponged by generators, one ``next()``
  per iteration (``two_loops_pingpong``); the tutorial saw 1.16 s vs 2.07 s.
- I/O: two tasks of three 2 s sleeps, serial (12 s) vs under gevent (6 s); that one
  is an ``io_sleep`` cell (``k=3``) run by the serial and gevent models.
- Pools: ``task(name)`` sleeps 3 s and returns ``name + 10``; 4 of them are submitted
  to a ``ThreadPoolExecutor(2)`` (results by ``result()`` in order) and to a
  ``ProcessPoolExecutor(2)`` (results by ``add_done_callback``): two waves, 6 s.
  ``pool_experiment`` runs either pool with the results gathered any of three ways
  (``COLLECT_WAYS``): by callback, by ``result()`` in submission order, by
  ``as_completed``; each way returns the results in task order, so they compare equal.

The tutorial makes its pool once per program, at module level, and lets the
interpreter's exit shut it down; ``pool_experiment`` is one such program run: it makes
the pool, submits, gathers, and shuts the pool down (as ``with`` would, but every wait
bounded), all inside the call.  Its tasks do not print.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import psutil

SEED_N = 10_000_000
SEED_SLEEPS = 3
SEED_SLEEP_S = 2.0
SEED_TASKS = 2

# The pools' experiments: ``for i in range(4): pool.submit(task, i)`` on 2 workers.
POOL_TASKS = 4
POOL_WORKERS = 2
POOL_SLEEP_S = 3.0
POOLS = ("threads", "processes")
COLLECT_WAYS = ("callback", "result", "as_completed")
# Every wait of an experiment gives up after this long (its tasks are sleeps).
POOL_TIMEOUT_S = 60.0
# How long a shutdown may take before the workers are killed.
POOL_CLOSE_WAIT_S = 10.0
# As the processes model sets it (workloads/models/processes.py).
FORKSERVER_PRELOAD = ["workloads", "workloads.models"]
MIN_SLEEP_S = 0.001  # Linux oversleeps by ~50-80 µs: shorter sleeps measure the kernel


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


# -- the tutorial's pools ----------------------------------------------------------------


def pool_task(name: int, sleep_s: float = POOL_SLEEP_S) -> int:
    """The tutorial's ``task(name)``, without its print: sleep, then ``name + 10``."""
    time.sleep(sleep_s)
    return name + 10


@dataclass
class WorkerCPU:
    """User + system CPU seconds of process-pool workers, added up over experiments.

    Read just before each pool shuts down (once its workers are gone their CPU cannot
    be read, and forkserver workers are not this process's children).
    """

    seconds: float = 0.0


Submit = Callable[[int], "cf.Future[Any]"]


def _by_callback(submit: Submit, tasks: int, timeout: float) -> list[Any]:
    """The tutorial's ``pool.submit(task, i).add_done_callback(done_cb)``."""
    lock = threading.Lock()
    all_in = threading.Event()
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def done_cb(index: int, future: cf.Future[Any]) -> None:
        # Never ``future.result()`` here, as the tutorial's callback does: what a
        # callback raises, concurrent.futures only logs, and that task's result is lost.
        with lock:
            if future.cancelled():
                errors[index] = cf.CancelledError(f"task {index} was cancelled")
            elif (error := future.exception()) is not None:
                errors[index] = error
            else:
                results[index] = future.result()
            if len(results) + len(errors) == tasks:
                all_in.set()

    for index in range(tasks):
        # Runs done_cb at once, here, if the task has already finished.
        submit(index).add_done_callback(functools.partial(done_cb, index))
    # Not ``cf.wait``: it returns when the futures are done, which may be before their
    # callbacks have run.
    if not all_in.wait(timeout):
        with lock:
            missing = tasks - len(results) - len(errors)
        raise TimeoutError(f"{missing} of {tasks} callbacks not called after {timeout} s")
    if errors:
        raise errors[min(errors)]
    return [results[index] for index in range(tasks)]


def _by_result(submit: Submit, tasks: int, timeout: float) -> list[Any]:
    """The tutorial's thread pool: ``f.result()`` for each future, in submission order."""
    futures = [submit(index) for index in range(tasks)]
    deadline = time.monotonic() + timeout
    return [future.result(max(0.0, deadline - time.monotonic())) for future in futures]


def _by_as_completed(submit: Submit, tasks: int, timeout: float) -> list[Any]:
    """Each result as soon as its task finishes, put in its task's place."""
    index_of = {submit(index): index for index in range(tasks)}
    results: dict[int, Any] = {}
    for future in cf.as_completed(index_of, timeout=timeout):
        results[index_of[future]] = future.result()
    return [results[index] for index in range(tasks)]


_COLLECTORS: dict[str, Callable[[Submit, int, float], list[Any]]] = {
    "callback": _by_callback,
    "result": _by_result,
    "as_completed": _by_as_completed,
}


def _worker_processes(pool: cf.Executor) -> list[psutil.Process]:
    found = []
    for pid in getattr(pool, "_processes", None) or {}:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _worker_cpu_seconds(pool: cf.Executor) -> float:
    total = 0.0
    for proc in _worker_processes(pool):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _shut_down(pool: cf.Executor, hung: bool = False) -> None:
    """``with``'s ``shutdown(wait=True)``, bounded: a worker that will not stop is killed.

    After a failure the queued tasks are cancelled first; after a timeout (``hung``) a
    process pool's workers, stuck in their tasks, are killed at once.
    """
    workers = _worker_processes(pool)
    if hung:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    closer = threading.Thread(target=pool.shutdown, daemon=True, name="boundbench-seed-close")
    closer.start()
    closer.join(POOL_CLOSE_WAIT_S)
    if closer.is_alive():
        # A thread cannot be killed: a thread pool's stuck task is left to end on its own.
        for proc in workers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(workers, timeout=5)
        closer.join(5)


def pool_experiment(
    pool: str,
    collect: str,
    tasks: int = POOL_TASKS,
    workers: int = POOL_WORKERS,
    sleep_s: float = POOL_SLEEP_S,
    *,
    start_method: str = "forkserver",
    timeout: float = POOL_TIMEOUT_S,
    task: Callable[[int], Any] | None = None,
    worker_cpu: WorkerCPU | None = None,
) -> list[Any]:
    """One run of the tutorial's pool program; the results in task order.

    ``pool``: ``threads`` or ``processes`` (with ``start_method``).  ``collect``: one of
    ``COLLECT_WAYS``.  ``task`` replaces ``pool_task(i, sleep_s)`` by ``task(i)`` (a
    top-level, picklable callable for processes).  A task's exception is raised here
    whichever the way (the lowest task's, by callback); ``TimeoutError`` if the results
    are not all in after ``timeout`` s.  The pool is gone when this returns or raises.
    """
    if pool not in POOLS:
        raise ValueError(f"seed pools: unknown pool {pool!r}; valid: {', '.join(POOLS)}")
    if collect not in _COLLECTORS:
        raise ValueError(
            f"seed pools: unknown way to collect {collect!r}; valid: {', '.join(COLLECT_WAYS)}"
        )
    if tasks < 1 or workers < 1:
        raise ValueError(f"seed pools: tasks={tasks} and workers={workers} must be at least 1")
    if task is None and sleep_s < MIN_SLEEP_S:
        raise ValueError(f"seed pools: sleep_s={sleep_s} s is below the {MIN_SLEEP_S} s minimum")
    if timeout <= 0:
        raise ValueError(f"seed pools: timeout={timeout} must be positive")
    fn = task if task is not None else functools.partial(pool_task, sleep_s=sleep_s)
    executor: cf.Executor
    if pool == "threads":
        executor = cf.ThreadPoolExecutor(workers, thread_name_prefix="boundbench-seed")
    else:
        context = mp.get_context(start_method)
        if start_method == "forkserver":
            # The forkserver is shared with the processes model: the same preload whoever
            # starts it, so a worker's start costs the same in any order of the cells.
            context.set_forkserver_preload(FORKSERVER_PRELOAD)
        executor = cf.ProcessPoolExecutor(workers, mp_context=context)

    def submit(index: int) -> cf.Future[Any]:
        return executor.submit(fn, index)

    try:
        results = _COLLECTORS[collect](submit, tasks, timeout)
    except TimeoutError:
        _shut_down(executor, hung=True)
        raise
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        _shut_down(executor)
        raise
    if worker_cpu is not None:
        worker_cpu.seconds += _worker_cpu_seconds(executor)
    _shut_down(executor)
    return results
