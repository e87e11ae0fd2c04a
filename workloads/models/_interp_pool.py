"""Subinterpreter plumbing for the ``interpreters`` model: which pool, and a pool of our own.

Backends, the first that this interpreter has wins (``pool_backend()``):

- ``concurrent.futures``: ``InterpreterPoolExecutor`` of Python 3.14+.
- ``interpreters-pep-734``: the same executor from the PyPI backport, on 3.13
  (``pip install 'boundbench[interpreters]'``).
- ``_interpreters`` (3.13) / ``_xxsubinterpreters`` (3.12): the stdlib's low-level
  modules through ``SubinterpreterPool`` below, one thread per isolated interpreter
  (its own GIL).  On 3.12 this is the only way: the backport's compiled modules for
  3.12 (``interpreters-3-12``) crash 3.12.1 at import, so they are never imported.

Nothing here imports a subinterpreter module at import time, so the registry imports
this on every Python.  Code run inside a subinterpreter must not import
``workloads.models`` (psutil's C module refuses subinterpreters), which is why the
scripts below are source text and the executor's helpers are builtins (``exec``,
``eval``) rather than functions of this package.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import importlib.util
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

MIN_VERSION = (3, 12)
BACKPORT = "interpreters_backport"
INSTALL_HINT = "pip install 'boundbench[interpreters]'"
# A probe (a fresh interpreter importing one module in a subinterpreter) gives up then.
PROBE_TIMEOUT_S = 60.0


def unavailable_reason(version: tuple[int, ...] = sys.version_info[:3]) -> str | None:
    """Why this Python cannot run a subinterpreter pool with one GIL each, or None."""
    if tuple(version[:2]) < MIN_VERSION:
        return (
            "Model 'interpreters' is not available: subinterpreters with their own GIL "
            f"need Python 3.12+, this is {'.'.join(map(str, version[:3]))}"
        )
    return None


def pool_backend() -> str:
    """The pool this interpreter uses (see the module docstring); call only on 3.12+."""
    if sys.version_info >= (3, 14):
        return "concurrent.futures"
    if sys.version_info >= (3, 13):
        if importlib.util.find_spec(BACKPORT) is not None:
            return "interpreters-pep-734"
        return "_interpreters"
    return "_xxsubinterpreters"


def executor_class(backend: str) -> Any:
    """``InterpreterPoolExecutor`` of the stdlib or of the backport."""
    if backend == "concurrent.futures":
        return cf.InterpreterPoolExecutor  # type: ignore[attr-defined]
    module = importlib.import_module(f"{BACKPORT}.concurrent.futures")
    return module.InterpreterPoolExecutor


def boot_source(paths: list[str]) -> str:
    """What every new subinterpreter runs first: this process's sys.path, the package.

    A subinterpreter starts with the default sys.path, not this process's (pytest's
    rootdir, a user's workload module beside the suite); importing ``workloads`` there
    once makes the first timed task not pay for it, like the forkserver's preload.
    """
    return (
        f"import sys\nsys.path[:] = {paths!r}\n"
        "try:\n    import workloads\nexcept ImportError:\n    pass\n"
    )


# A warm-up task for the executor: which interpreter ran it (each has its own modules
# dict), after an optional short nap so that idle workers get a turn.
WARM_EXPR = "__import__('time').sleep({nap}) or id(__import__('sys').modules)"


# -- the low-level pool (3.12, and 3.13 without the backport) ---------------------------

# Defined once in each subinterpreter: runs one task, ``data`` the pickled (fn, args),
# and sends the pickled (ok, value) back on channel ``cid``.  Every exception is caught
# and sent back, so the worker thread always gets exactly one answer per task.
_RUNNER_SOURCE = """\
def _run_task(data, cid):
    import pickle
    try:
        fn, args = pickle.loads(data)
        answer = (True, fn(*args))
    except BaseException as exc:
        answer = (False, exc)
    try:
        payload = pickle.dumps(answer)
    except Exception as exc:
        payload = pickle.dumps((False, RuntimeError(f"result not picklable: {exc!r}")))
    _reply(cid, payload)
"""
_TASK_SCRIPT = "_run_task(_data, _cid)"


class _LowLevel:
    """The two stdlib spellings (3.12, 3.13) of create / run / channel, behind one face."""

    def __init__(self) -> None:
        # Typed as Any: which modules exist depends on the running Python, not mypy's.
        self.new = sys.version_info >= (3, 13)
        names = (
            ("_interpreters", "_interpchannels")
            if self.new
            else ("_xxsubinterpreters", "_xxinterpchannels")
        )
        self.interp: Any = importlib.import_module(names[0])
        self.channels: Any = importlib.import_module(names[1])
        # Defined in each subinterpreter: send one reply.  On 3.13 a send waits for the
        # receiver unless told not to (the receiver is this very thread, later), and
        # unboundop 2 makes an item whose sender is gone an error (never happens here:
        # every reply is received before its interpreter is destroyed).
        send = "send(cid, data, 2, blocking=False)" if self.new else "send(cid, data)"
        self.reply_source = f"import {names[1]}\ndef _reply(cid, data):\n    {names[1]}.{send}\n"

    def create(self) -> Any:
        # isolated: a GIL of its own (PEP 684), refusing single-phase C modules.
        return self.interp.create("isolated") if self.new else self.interp.create(isolated=True)

    def new_channel(self) -> Any:
        return self.channels.create(2) if self.new else self.channels.create()

    def receive(self, cid: Any) -> Any:
        answer = self.channels.recv(cid)
        return answer[0] if self.new else answer

    def run(self, interp_id: Any, script: str, shared: dict[str, Any] | None = None) -> None:
        """Run ``script``; an exception that escapes it becomes a RuntimeError here."""
        if self.new:
            failure = self.interp.exec(interp_id, script, shared)
            if failure is not None:
                raise RuntimeError(
                    f"{failure.type.__name__}: {failure.msg}"
                    if failure.type
                    else str(failure.formatted)
                )
        else:
            try:
                self.interp.run_string(interp_id, script, shared)
            except self.interp.RunFailedError as exc:
                raise RuntimeError(str(exc)) from None

    def destroy(self, interp_id: Any, cid: Any) -> None:
        # Best effort, by the worker thread after its last task (a task that outlived
        # close() keeps its interpreter until it returns).
        with contextlib.suppress(Exception):
            self.channels.destroy(cid)
        with contextlib.suppress(Exception):
            self.interp.destroy(interp_id)


class SubinterpreterPool:
    """``workers`` threads, each running tasks in an isolated subinterpreter of its own.

    The face is the part of ``concurrent.futures.Executor`` the model uses:
    ``submit(fn, *args)``, ``shutdown(wait, cancel_futures)`` and ``_threads``.
    Functions and arguments are pickled (top-level callables, as for processes).
    """

    def __init__(self, workers: int, paths: list[str], start_timeout: float) -> None:
        self._api = _LowLevel()
        self._queue: queue.SimpleQueue[tuple[cf.Future[Any], bytes] | None] = queue.SimpleQueue()
        self._boot = boot_source(paths)
        self._ready = threading.Semaphore(0)
        self._boot_errors: list[str] = []
        self._shutdown = False
        self._threads = [
            threading.Thread(target=self._work, name=f"boundbench-interp-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        # Every interpreter exists and has run its boot script before start() returns.
        for _ in self._threads:
            if not self._ready.acquire(timeout=start_timeout):
                self.shutdown(wait=False, cancel_futures=True)
                raise TimeoutError(f"a subinterpreter did not start in {start_timeout} s")
        if self._boot_errors:
            self.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"a subinterpreter failed to start: {self._boot_errors[0]}")

    def _work(self) -> None:
        api = self._api
        try:
            interp_id = api.create()
            cid = api.new_channel()
            api.run(interp_id, api.reply_source + _RUNNER_SOURCE + self._boot)
        except BaseException as exc:
            self._boot_errors.append(f"{type(exc).__name__}: {exc}")
            self._ready.release()
            return
        self._ready.release()
        try:
            while (item := self._queue.get()) is not None:
                future, data = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    api.run(interp_id, _TASK_SCRIPT, {"_data": data, "_cid": cid})
                    ok, value = pickle.loads(api.receive(cid))
                except BaseException as exc:
                    future.set_exception(exc)
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            api.destroy(interp_id, cid)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        future: cf.Future[Any] = cf.Future()
        self._queue.put((future, pickle.dumps((fn, args))))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


# -- does a module import inside a subinterpreter? ---------------------------------------

# Run by a fresh interpreter (argv: module, sys.path joined by os.pathsep): some C
# modules refuse subinterpreters (an ImportError), some crash the process (gevent's
# did here, with "free(): invalid size") -- so the probe never runs in this process.
_PROBE = """\
import sys
module, paths = sys.argv[1], sys.argv[2]
code = (
    f"import sys\\nsys.path[:] = {paths.split(__import__('os').pathsep)!r}\\n"
    f"import importlib\\nimportlib.import_module({module!r})\\n"
)
if sys.version_info >= (3, 13):
    import _interpreters as I
    interp = I.create("isolated")
    failure = I.exec(interp, code)
    if failure is not None:
        sys.exit(f"{failure.type.__name__}: {failure.msg}")
else:
    import _xxsubinterpreters as I
    interp = I.create(isolated=True)
    try:
        I.run_string(interp, code)
    except I.RunFailedError as exc:
        sys.exit(str(exc))
I.destroy(interp)
"""


@functools.cache
def import_problem(module: str, paths: tuple[str, ...] | None = None) -> str | None:
    """Why ``module`` cannot be imported in a subinterpreter (a skip reason), or None."""
    search = list(sys.path if paths is None else paths)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, module, os.pathsep.join(search)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"importing {module} in a subinterpreter did not finish in {PROBE_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        signal_number = -done.returncode
        return f"importing {module} in a subinterpreter crashes Python (signal {signal_number})"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"{module} does not import in a subinterpreter: {lines[-1] if lines else 'failed'}"
