"""dask: the ``sync`` flavour on a dask.distributed cluster, what work that outgrows one
machine moves to.

By default the model starts a private cluster on this machine with the same commands a
user would type, ``dask scheduler`` and ``dask worker`` (nannies, worker processes),
each in a session of its own, and connects a ``Client`` to it.  The scheduler is not in
this process (as in ``LocalCluster``): it would share this process's GIL with the timed
calls, and on CPython 3.13.0 an in-process scheduler running beside subinterpreters
(the ``interpreters`` model, in the same batch) aborts the process ("free(): invalid
pointer").  ``workers`` is how many tasks run at once, split as evenly as it divides
into at most one process per core (``2 -> 2 x 1`` on 2 cores, ``32 -> 2 x 16``): CPU
cells get one single-threaded process per core, I/O cells threads.

Given ``dask_scheduler`` ("tcp://HOST:PORT", the suite's ``--dask-scheduler``) it
connects to that cluster instead and leaves it running; its own workers and threads then
set the concurrency (``dask_threads`` in the results).

Everything started here listens on 127.0.0.1 only: the scheduler, its HTTP server (the
dashboard is off; its default binds every interface on :8787), the nannies and the
workers.  A task whose worker dies fails the run (no silent retry on another worker,
which would time a different cell).  close() is bounded: SIGTERM, then SIGKILL to the
cluster's process groups.  Each process of the cluster ends itself when its parent
dies, so not even a SIGKILL of this process leaves one behind.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
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
# Set in the environment of the cluster this model starts: its processes then end when
# their parent does (see dask_setup).
PARENT_ENV = "BOUNDBENCH_DASK_OWNER"
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


def dask_setup(server: Any) -> None:
    """Preload of the cluster's scheduler, nannies and workers (``--preload``).

    Each process watches its parent and ends itself (SIGTERM: a graceful close) when the
    parent is gone, however it went: the dask CLI has no such option, and a scheduler
    left running would hold its port and a worker its CPU.  Workers also ignore SIGINT:
    the model that owns them ends them.
    """
    if PARENT_ENV not in os.environ:
        return  # someone else's cluster preloading this module: leave it alone
    if type(server).__name__ == "Worker":
        with contextlib.suppress(ValueError):  # not the main thread: nothing to do
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="boundbench-parent-watch", daemon=True).start()


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _alive_in(proc: psutil.Process, commands: list[subprocess.Popen[bytes]]) -> bool:
    """Whether ``proc`` is a live (not zombie) member of the commands' process groups."""
    try:
        return (
            os.getpgid(proc.pid) in {command.pid for command in commands}
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except (OSError, psutil.Error):
        return False


class DaskModel(Model):
    name = "dask"
    flavour = "sync"
    colour_seed = 8
    process_scope = "multi"
    uncountable = (
        "dask under Valgrind: its scheduler, nanny and workers wake on wall-time"
        " heartbeats (their counts follow the host's speed) and its start took over 60 s"
    )
    libraries = ("dask", "distributed")
    pooled = True
    requires = ("distributed", INSTALL_HINT)
    settings = ("dask_scheduler",)
    worker_cap = 32
    # CPU: one single-threaded process per core.  I/O: one thread per task (capped);
    # a worker per core would take tasks/cores x the task time per round.
    worker_choices = (("io", ("tasks",)), ("*", ("cores",)))
    startup_variants = ({},)
    # A start takes ~3.5 s here (three processes import distributed): a few rounds are
    # enough for its median, and the profile's 15 would cost a minute.
    startup_rounds = 3
    # Its cells run apart from the other models': a cluster's five processes (scheduler,
    # nannies, workers) and this process's client thread wake on their own timers
    # (heartbeats, system monitors) for as long as the cluster lives.  Interleaved with
    # the others, they took the cores from other models' rounds: io_socket's kept-alive
    # uvloop cell, 0.86 of its ideal without a cluster beside it, measured 0.70 with one.
    own_batch = True

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
        self.client: Any = None
        self.threads = 0
        self.processes = 0
        self._worker_pids: list[int] = []
        # The private cluster: its two commands (scheduler, workers) and their logs.
        self._commands: list[subprocess.Popen[bytes]] = []
        self._folder: Path | None = None

    # -- start ------------------------------------------------------------------------
    def start(self) -> DaskModel:
        reason = self.unavailable()
        if reason:
            raise self._fail(reason)
        client_cls = _distributed().Client
        try:
            if self.scheduler_address is None:
                address, processes = self._start_cluster()
                self.client = client_cls(address, timeout=START_TIMEOUT_S)
                self.client.wait_for_workers(processes, timeout=START_TIMEOUT_S)
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

    def _start_cluster(self) -> tuple[str, int]:
        """Start ``dask scheduler`` and ``dask worker`` on loopback; (address, processes)."""
        assert self.workers is not None
        processes, threads = split_workers(self.workers, cpu_count())
        self._folder = folder = Path(tempfile.mkdtemp(prefix="boundbench-dask-"))
        info_file = folder / "scheduler.json"
        env = {
            **os.environ,
            PARENT_ENV: str(os.getpid()),
            # The workers unpickle tasks from workloads (and a user's module): give them
            # this process's import path, as multiprocessing's spawn would.
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if isinstance(p, str) and p),
            # A task on a worker that died fails at once instead of moving to another
            # worker: one dead worker fails one cell, as with the process pool.
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
            # Every scratch space of the cluster's processes in its folder, removed with
            # it (by default a shared /tmp/dask-scratch-space that keeps lock files).
            "DASK_TEMPORARY_DIRECTORY": str(folder),
        }
        loopback = ["--host", LOOPBACK, "--no-dashboard", "--dashboard-address", f"{LOOPBACK}:0"]
        self._launch(
            ["scheduler", "--port", "0", *loopback, "--scheduler-file", str(info_file),
             "--preload", __name__],
            env,
            folder / "scheduler.log",
        )  # fmt: skip
        # Started at once, not after the scheduler: the workers find it through the file
        # (each command spends a second or two importing distributed).
        self._launch(
            ["worker", "--scheduler-file", str(info_file), *loopback,
             "--nworkers", str(processes), "--nthreads", str(threads), "--nanny",
             "--memory-limit", "0", "--death-timeout", str(int(START_TIMEOUT_S)),
             "--preload", __name__, "--preload-nanny", __name__],
            env,
            folder / "workers.log",
        )  # fmt: skip
        address = self._wait_for_address(info_file)
        return address, processes

    def _launch(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            self._commands.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # Its own session: a Ctrl-C in the terminal reaches only this
                    # process, which ends the cluster in order.
                    start_new_session=True,
                )
            )

    def _wait_for_address(self, info_file: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        scheduler = self._commands[0]
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                return str(json.loads(info_file.read_text())["address"])
            if scheduler.poll() is not None:
                break
            time.sleep(0.05)
        raise self._fail(f"the dask scheduler did not start: {self._log_tail('scheduler.log')}")

    def _log_tail(self, name: str) -> str:
        if self._folder is None:
            return "no log"
        try:
            lines = (self._folder / name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"

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
            # The scheduler's and the nannies' work is part of the cost too.
            self._worker_pids.append(self.client.run_on_scheduler(os.getpid))
            if self._commands:
                self._worker_pids.append(self._commands[1].pid)

    # -- run --------------------------------------------------------------------------
    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.client is None or self.broken:
            raise self._fail(self.broken or "not started")
        distributed = _distributed()
        fn = workload.task(self.flavour, **params)
        futures = self.client.map(fn, range(tasks), pure=False)
        try:
            # wait() waits on the default client's event loop: with two models (two
            # clients) in one process that is the newer one's, which sees this client's
            # futures finish only on its periodic wake-ups (runs took 1-4 s, not 40 ms).
            with self.client.as_current():
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
        commands, self._commands = self._commands, []
        folder, self._folder = self._folder, None
        # Every step bounded: a worker busy in a task, or a scheduler gone, must not hang.
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=CLOSE_WAIT_S)
        # SIGTERM to both at once (each closes in order: the nannies their workers), then
        # SIGKILL to a process group that has not left in time.
        for command in commands:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(command.pid, signal.SIGTERM)
        deadline = time.monotonic() + CLOSE_WAIT_S
        for command in commands:
            with contextlib.suppress(subprocess.TimeoutExpired):
                command.wait(max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(command.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                command.wait(5)
        # A process of the groups that outlived its leader (a worker the nanny lost).
        # Zombies are gone already: reparented, they wait for init to reap them.
        leftovers = [proc for proc in psutil.process_iter() if _alive_in(proc, commands)]
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        deadline = time.monotonic() + 5
        while any(_alive_in(p, commands) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.02)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self._worker_pids = []
        super().close()

    # -- facts ------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return [os.getpid(), *self._worker_pids]

    def child_pids(self) -> list[int]:
        # The worker processes of our own cluster: an external cluster's are not ours.
        return self._worker_pids[: self.processes] if self._commands else []

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
