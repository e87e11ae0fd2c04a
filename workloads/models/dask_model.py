"""dask: the ``sync`` flavour on a dask.distributed cluster, what work that outgrows one
machine moves to.

By default the model starts a ``LocalCluster`` (scheduler in this process, worker
processes under nannies).  ``workers`` is how many tasks run at once: split as evenly
as it divides into at most one process per core (``2 -> 2 x 1`` on 2 cores,
``32 -> 2 x 16``), so CPU cells get one single-threaded process per core and I/O cells
threads.  Given ``dask_scheduler`` ("tcp://HOST:PORT", the suite's ``--dask-scheduler``)
it connects to that cluster instead and leaves it running; its own workers and threads
then set the concurrency (``dask_threads`` in the results).

Everything started here listens on 127.0.0.1 only: the scheduler, its HTTP server (the
dashboard itself is off; its default binds every interface on :8787), the nannies and
the workers.  A task whose worker dies fails the run (no silent retry on another
worker, which would time a different cell), and close() is bounded: what the cluster
does not stop in time is killed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing.resource_tracker
import os
import re
import signal
import sys
import time
from typing import Any

import psutil

from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout, cpu_count

INSTALL_HINT = "pip install 'boundbench[dask]'"
# An unreachable scheduler is an error well within 10 s.
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0
CLOSE_WAIT_S = 10.0
LOOPBACK = "127.0.0.1"
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\[?[\w.:-]+\]?(:\d+)?$")


def _distributed() -> Any:
    """dask.distributed, imported when a model starts: the registry imports this module on
    every interpreter, with or without the optional dependency."""
    return importlib.import_module("distributed")


def check_scheduler_address(address: str) -> str:
    """``address`` if it names a scheduler ("tcp://HOST:PORT"), else a one-line ValueError."""
    if not _ADDRESS.match(address.strip()):
        raise ValueError(f"dask: {address!r} is not a scheduler address; expected tcp://HOST:PORT")
    return address.strip()


def split_workers(workers: int, cores: int) -> tuple[int, int]:
    """(processes, threads each) with exactly ``workers`` threads, at most ``cores`` processes."""
    processes = max(d for d in range(1, min(workers, cores) + 1) if workers % d == 0)
    return processes, workers // processes


def dask_setup(worker: Any) -> None:
    """Worker preload: Ctrl-C signals the whole process group; this process alone (the
    nannies live here) ends the workers, so a worker never dies half-way on its own."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class DaskModel(Model):
    name = "dask"
    flavour = "sync"
    pooled = True
    requires = ("distributed", INSTALL_HINT)
    settings = ("dask_scheduler",)
    worker_cap = 32
    # CPU: one single-threaded process per core.  I/O: one thread per task (capped);
    # a worker per core would take tasks/cores x the task time per round.
    worker_choices = (("io", ("tasks",)), ("*", ("cores",)))
    startup_variants = ({},)

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 300.0,
        dask_scheduler: str | None = None,
    ) -> None:
        super().__init__(cpu_count() if workers is None else workers, timeout)
        self.scheduler_address = (
            None if dask_scheduler is None else check_scheduler_address(dask_scheduler)
        )
        self.cluster: Any = None
        self.client: Any = None
        self.threads = 0
        self.processes = 0
        self._worker_pids: list[int] = []
        self._spawned: list[psutil.Process] = []

    # -- start ------------------------------------------------------------------------
    def start(self) -> DaskModel:
        reason = self.unavailable()
        if reason:
            raise self._fail(reason)
        client_cls = _distributed().Client
        try:
            if self.scheduler_address is None:
                self.cluster = self._local_cluster()
                self.client = client_cls(self.cluster, timeout=START_TIMEOUT_S)
            else:
                self.client = self._connect(client_cls, self.scheduler_address)
            self._learn_workers()
        except BaseException as exc:
            self.close()
            if isinstance(exc, ModelError):
                raise
            if isinstance(exc, Exception):
                raise self._fail(f"the cluster did not start: {exc}") from exc
            raise
        super().start()
        return self

    def _local_cluster(self) -> Any:
        dask: Any = importlib.import_module("dask")
        assert self.workers is not None
        processes, threads = split_workers(self.workers, cpu_count())
        before = {child.pid for child in psutil.Process().children()}
        config = {
            # A task on a worker that died fails at once instead of moving to another
            # worker: one dead worker fails one cell, as with the process pool.
            "distributed.scheduler.allowed-failures": 0,
        }
        try:
            with dask.config.set(config):
                return _distributed().LocalCluster(
                    n_workers=processes,
                    threads_per_worker=threads,
                    processes=True,
                    host=LOOPBACK,
                    scheduler_port=0,
                    # Off; the scheduler's HTTP server (health, metrics) still starts,
                    # so put it on loopback and a free port.
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard": False, "dashboard_address": f"{LOOPBACK}:0"},
                    worker_dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    preload=[__name__],
                    # No memory manager pausing or spilling workers mid-cell.
                    memory_limit=0,
                )
        finally:
            # Remember every process the cluster spawned, even one that failed to start,
            # so close() can make sure it is gone.  The resource tracker that spawning
            # started is shared by every pool of this process: the session stops it.
            tracker = getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)
            self._spawned = [
                child
                for child in psutil.Process().children()
                if child.pid not in before and child.pid != tracker
            ]

    def _connect(self, client_cls: Any, address: str) -> Any:
        started = time.monotonic()
        try:
            return client_cls(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            waited = time.monotonic() - started
            raise self._fail(
                f"cannot reach the dask scheduler at {address} (gave up after {waited:.1f} s:"
                f" {exc}); start one with `dask scheduler --host 127.0.0.1` or leave out"
                " --dask-scheduler to use a local cluster"
            ) from exc

    def _learn_workers(self) -> None:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        if not info:
            raise self._fail(f"the dask cluster at {self.client.scheduler.address} has no workers")
        self.processes = len(info)
        self.threads = sum(worker["nthreads"] for worker in info.values())
        local = self.scheduler_address is None or _is_loopback(self.scheduler_address)
        if local:
            # CPU accounting: the workers' processes (and an external scheduler's) are on
            # this machine; a remote cluster's CPU cannot be read from here.
            pids = self.client.run(os.getpid)
            self._worker_pids = [pid for pid in pids.values() if isinstance(pid, int)]
            if self.scheduler_address is not None:
                self._worker_pids.append(self.client.run_on_scheduler(os.getpid))

    # -- run --------------------------------------------------------------------------
    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.client is None or self.broken:
            raise self._fail(self.broken or "not started")
        distributed = _distributed()
        fn = workload.task(self.flavour, **params)
        futures = self.client.map(fn, range(tasks), pure=False)
        try:
            distributed.wait(futures, timeout=self.timeout)
        except TimeoutError as exc:
            self.client.cancel(futures)
            raise self._fail(
                f"tasks unfinished after {self.timeout} s; the cluster is retired", ModelTimeout
            ) from exc
        erred = [future for future in futures if future.status == "error"]
        if erred:
            error = erred[0].exception(timeout=CLOSE_WAIT_S)
            if isinstance(error, distributed.KilledWorker):
                raise self._fail(
                    f"a worker process died while running {workload.name} ({error}); the "
                    "cluster is broken and will be restarted for the next cell"
                ) from error
            # The task itself raised: this cell fails, the cluster is fine.
            raise ModelError(
                f"{self.name}: a task of {workload.name} raised {type(error).__name__}: {error}"
            ) from error
        try:
            return list(self.client.gather(futures))
        except Exception as exc:
            raise self._fail(f"lost the cluster while running {workload.name}: {exc}") from exc

    # -- close ------------------------------------------------------------------------
    def close(self) -> None:
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        spawned, self._spawned = self._spawned, []
        # Every step bounded: a worker busy in a task, or a scheduler gone, must not hang.
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=CLOSE_WAIT_S)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=CLOSE_WAIT_S)
        # What the cluster did not stop in time (or spawned before failing) is killed.
        alive = [proc for proc in spawned if proc.is_running()]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        self._worker_pids = []
        super().close()

    # -- facts ------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return [os.getpid(), *self._worker_pids]

    def child_pids(self) -> list[int]:
        # Only processes of our own local cluster: an external cluster's are not ours.
        return list(self._worker_pids) if self.scheduler_address is None else []

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "dask_scheduler": self.scheduler_address or "local",
            "dask_processes": self.processes,
            "dask_threads": self.threads,
            "dask_version": sys.modules["distributed"].__version__
            if "distributed" in sys.modules
            else None,
        }
