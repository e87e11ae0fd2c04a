"""gevent: the plain ``sync`` flavour made cooperative by ``monkey.patch_all()``.

That is how people really use gevent, and the patch must happen first thing in a fresh
interpreter: the suite's runner for gevent cells patches on its first line
(``runner_patch``), and there the model spawns its greenlets in-process.  In a process
that is not patched (a test, the memory probe), the model runs a worker process of its
own that patches itself and serves run requests over a pipe, timing each run itself
(the pipe's round trip is not gevent's: ``Model.last_run_s``); its CPU time is counted
with ours.  A process that also runs threads, processes or asyncio is never patched.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout

HEADER_SIZE = 4
_ROOT = Path(__file__).resolve().parents[2]


def patched() -> bool:
    """Whether gevent has patched this process (it is a gevent runner)."""
    return "gevent.monkey" in sys.modules and bool(sys.modules["gevent.monkey"].saved)


def run_greenlets(fn: Any, tasks: int, workers: int | None, timeout: float | None) -> list[Any]:
    """``fn(task_id)`` for every task, each in a greenlet; None if ``timeout`` passed."""
    import gevent
    import gevent.pool

    # A greenlet per task needs no pool's semaphore and bookkeeping: ~0.5 ms of a
    # 100-task round here (io_socket, 100 greenlets: efficiency 0.81 -> 0.83).
    spawn = gevent.spawn if workers is None or workers >= tasks else gevent.pool.Pool(workers).spawn
    greenlets = [spawn(fn, task_id) for task_id in range(tasks)]
    done = gevent.joinall(greenlets, timeout=timeout, raise_error=True)
    if len(done) < tasks:
        gevent.killall(greenlets, timeout=5)
        raise TimeoutError(f"{tasks - len(done)} of {tasks} tasks unfinished after {timeout} s")
    return [greenlet.value for greenlet in greenlets]


class GeventModel(Model):
    name = "gevent"
    flavour = "sync"
    colour_seed = 4
    process_scope = "single"
    descriptors = 4
    libraries = ("gevent", "greenlet")
    requires = ("gevent", "pip install gevent")
    startup_variants = ({},)
    runner_patch = "gevent.monkey:patch_all"

    def __init__(self, workers: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(workers, timeout)
        self.proc: subprocess.Popen[bytes] | None = None
        # In a patched process (the suite's gevent runner) the greenlets run here.
        self.local = False

    def start(self) -> GeventModel:
        if patched():
            self.local = True
            super().start()
            return self
        env = dict(os.environ)
        # The worker imports what this process can: the project, and the modules of
        # users' workloads found on this process's path.
        paths = [str(_ROOT), *(p for p in sys.path if p and os.path.isdir(p))]
        env["PYTHONPATH"] = os.pathsep.join(
            dict.fromkeys(filter(None, [*paths, env.get("PYTHONPATH")]))
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workloads.models._gevent_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own process group: a Ctrl-C in the terminal reaches pytest, and pytest's
            # teardown decides how the worker ends (it also exits when its stdin closes).
            start_new_session=True,
        )
        try:
            # The worker's start: imports and the patch (seconds; minutes under Valgrind).
            hello = self.request(("ping",), timeout=self.timeout)
        except BaseException:
            self.close()
            raise
        if not hello["patched"]:
            self.close()
            raise self._fail("the worker did not monkey-patch")
        super().start()
        return self

    def pids(self) -> list[int]:
        return [os.getpid()] + ([self.proc.pid] if self.proc else [])

    def request(self, message: tuple[Any, ...], timeout: float | None = None) -> Any:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise self._fail("not started")
        if self.broken:
            raise self._fail(self.broken)
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            proc.stdin.write(len(body).to_bytes(HEADER_SIZE, "big") + body)
            proc.stdin.flush()
        except BrokenPipeError as exc:
            raise self._fail(self._death_note()) from exc
        header = self._read_exactly(HEADER_SIZE, timeout or self.timeout)
        reply = pickle.loads(self._read_exactly(int.from_bytes(header, "big"), 60))
        if reply[0] == "error":
            # A task that raised leaves the worker healthy: fail the cell, not the model.
            raise ModelError(f"gevent: a task failed in the worker: {reply[1]}\n{reply[2]}")
        return reply[1]

    def _read_exactly(self, size: int, timeout: float) -> bytes:
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise self._fail(f"no answer from the worker within {timeout} s", ModelTimeout)
                chunk = os.read(fd, size)
                if not chunk:
                    raise self._fail(self._death_note())
                chunks.append(chunk)
                size -= len(chunk)
        return b"".join(chunks)

    def _death_note(self) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker closed its pipe but is still running"
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"the gevent worker process (pid {self.proc.pid}) died ({how})"

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.local:
            if not self.started or self.broken:
                raise self._fail(self.broken or "not started")
            try:
                return run_greenlets(workload.task("sync", **params), tasks, self.workers,
                                     self.timeout)  # fmt: skip
            except TimeoutError as exc:
                raise self._fail(f"{exc}; the model is retired", ModelTimeout) from exc
        # The task itself crosses the pipe (a pickled partial of a module-level function,
        # as for process pools), so users' workloads reach the worker too.
        task = pickle.dumps(workload.task("sync", **params), protocol=pickle.HIGHEST_PROTOCOL)
        reply = self.request(("run", task, tasks, self.workers))
        self.last_run_s = reply["seconds"]
        result: list[Any] = reply["results"]
        return result

    def info(self) -> dict[str, Any]:
        # Rounds are timed where the greenlets ran: what a program that patches itself
        # pays, without a pipe (the runner's round trip, or the worker's).
        return {**super().info(), "timed_in": "runner" if self.local else "worker"}

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            try:
                proc.wait(timeout=5)  # EOF on stdin makes it leave on its own
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        super().close()
