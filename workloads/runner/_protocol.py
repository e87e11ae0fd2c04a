"""The conductor's side of a runner process, and the protocol both sides speak.

Protocol (``PROTOCOL``): JSON, one object a line.  The runner speaks first, a hello:
``{"runner": "boundbench", "protocol": N, "python": ..., "tree": ..., "pid": ...}``; a
conductor refuses a runner of another protocol, or one that says no hello, with one
line that names its tree and interpreter.  Then each request gets one reply; a reply
with ``"error"`` fails the cell, not the runner.  Bump ``PROTOCOL`` whenever a request,
a reply or a cell kind's keywords change meaning.

``RunnerProcess`` starts one (``python -m workloads.runner``), optionally under a
wrapper command (``setarch -R``, ``valgrind ...``), with another interpreter, from
another code tree (its PYTHONPATH and working directory), with more environment; in a
process group of its own.  Every wait on it is bounded, and ``close`` ends it and
everything it started (gracefully, then by SIGKILL to its group).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

PROTOCOL = 2
TREE = Path(__file__).resolve().parents[2]
# A runner patch (``Model.runner_patch``): ``module:function``, called with no argument as
# the runner's first act, before the runner's own imports (gevent's monkey.patch_all).
PATCH_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# Starting: the interpreter and the imports (seconds; far more under valgrind).
HELLO_TIMEOUT_S = 120.0
# Beyond a cell's own timeout: a model that gives up still closes its pool.
GRACE_S = 60.0
CLOSE_WAIT_S = 60.0


def hello(patched: str | None = None) -> dict[str, Any]:
    """What a runner says first: who it is, so the conductor can refuse it (``patched``:
    the patch it applied as its first act, or None)."""
    return {
        "runner": "boundbench",
        "protocol": PROTOCOL,
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "tree": str(TREE),
        "pid": os.getpid(),
        "patched": patched,
    }


class RunnerError(RuntimeError):
    """The runner cannot serve: refused, dead, or silent past its deadline."""


def _user_paths() -> list[str]:
    """This process's import path beyond the interpreter's own (users' workload modules)."""
    own = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return [
        path
        for path in sys.path
        if path and os.path.isdir(path) and "site-packages" not in path
        and not any(path.startswith(prefix) for prefix in own)
    ]  # fmt: skip


class RunnerProcess:
    """A runner started for one batch: ``prepare``, ``round``, ``finish``, ``close``."""

    def __init__(
        self,
        timeout: float,
        *,
        patch: str | None = None,
        python: str = sys.executable,
        tree: Path | str = TREE,
        wrapper: Sequence[str] = (),
        env: dict[str, str] | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        if patch is not None and not PATCH_REF.match(patch):
            raise ValueError(f"a runner patch is 'module:function', not {patch!r}")
        self.timeout = timeout
        self.grace_s = grace_s
        self.patch = patch
        self.tree = Path(tree).resolve()
        self.argv = [*wrapper, python, *self._module(patch), "--timeout", repr(timeout)]
        paths = [str(self.tree), *_user_paths(), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(filter(None, paths))),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._buffer = b""
        self._log: IO[bytes] | None = None
        # seconds each round's request and reply took outside the runner's handling
        self.handoffs: list[float] = []

    @staticmethod
    def _module(patch: str | None) -> list[str]:
        # The runner's code comes from its tree (first on PYTHONPATH) and nowhere else: an
        # editable install of another tree puts a finder at the end of sys.meta_path that
        # would serve any module the tree lacks from that other tree, mixing A and B.  The
        # patch, if any, is the first thing the interpreter runs after that (a module run
        # with -m would import its package first); the runner then says which it applied.
        boot = (
            "import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'workloads' not in"
            " getattr(sys.modules.get(getattr(f, '__module__', '')), 'MAPPING', {})]\n"
        )
        if patch is not None:
            module, _, function = patch.partition(":")
            boot += (
                f"import importlib\nimportlib.import_module({module!r}).{function}()\n"
                f"sys.argv += ['--patched', {patch!r}]\n"
            )
        run = "runpy.run_module('workloads.runner', run_name='__main__', alter_sys=True)"
        return ["-c", f"{boot}import runpy\n{run}"]

    def describe(self) -> str:
        start = self.argv[: self.argv.index("-c")]
        patch = f", patched by {self.patch}" if self.patch else ""
        return f"the runner of {self.tree} ({' '.join(start)} -m workloads.runner{patch})"

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        # Its stderr, for the last words of a runner that dies; open as long as it runs.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.tree,
            env=self.env,
            # Its own process group: a Ctrl-C in the terminal reaches this process only,
            # which ends the runner (and what it started) in order.
            start_new_session=True,
        )
        try:
            said = self._read(HELLO_TIMEOUT_S)
        except BaseException:
            self.kill()
            raise
        if said.get("runner") != "boundbench" or said.get("protocol") != PROTOCOL:
            self.kill()
            version = said.get("protocol", "none")
            raise RunnerError(
                f"{self.describe()} speaks runner protocol {version}, this session {PROTOCOL}:"
                " use a tree and a session of the same protocol"
            )
        if said.get("patched") != self.patch:
            self.kill()
            raise RunnerError(f"{self.describe()} did not apply its patch ({self.patch})")
        self.info = said
        return said

    def close(self) -> None:
        """Ask it to close what it started and leave; killed if it does not in time."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(RunnerError, OSError):
                self.request({"op": "close"}, CLOSE_WAIT_S)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(CLOSE_WAIT_S)
        self.kill()

    def kill(self) -> None:
        """End it and its process group now: SIGTERM (it closes what it started), then
        SIGKILL after a bounded wait."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, CLOSE_WAIT_S / 2), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what its group still holds
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- requests -------------------------------------------------------------------
    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        proc = self.proc
        if proc is None or proc.stdin is None:
            raise RunnerError(f"{self.describe()} is not running")
        try:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            raise RunnerError(self._gone()) from exc
        return self._read(self.timeout + self.grace_s if timeout is None else timeout)

    def prepare(self, key: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.request({"op": "prepare", "key": key, "kind": kind, "kwargs": kwargs})

    def round(self, key: str, keep: bool) -> dict[str, Any]:
        started = time.perf_counter()
        reply = self.request({"op": "round", "key": key, "keep": keep})
        if "runner_s" in reply:
            self.handoffs.append(time.perf_counter() - started - reply["runner_s"])
        return reply

    def finish(self, key: str) -> dict[str, Any]:
        return self.request({"op": "finish", "key": key})

    def _read(self, timeout: float) -> dict[str, Any]:
        """The next line from the runner, as JSON, within ``timeout`` seconds."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.kill()
                    raise RunnerError(f"{self.describe()} did not answer within {timeout:g} s")
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise RunnerError(self._gone())
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            self.kill()
            raise RunnerError(
                f"{self.describe()} is not a boundbench runner of protocol {PROTOCOL}: it said "
                f"{line[:200]!r}"
            ) from None
        return reply

    def _gone(self) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return f"{self.describe()} closed its pipe but is still running"
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"{self.describe()} (pid {self.proc.pid}) died ({how}){self._last_words()}"

    def _last_words(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""
