"""Start an echo server in its own process group, learn its port, and always end it.

Used by the benchmarks and the tests alike.  The process itself is started, stopped and
reaped by ``workloads._children`` (a group of its own, bounded waits, the whole group
killed, an ``atexit`` hook for a server its owner forgot); this module knows the
server's command line and its ``listening on`` line.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from typing import IO

import psutil

from .. import _children
from .._children import child_env, kill_group

# The longest a server may take to print its ``listening on`` line (gevent imports are
# the slowest, ~0.3 s; a loaded CI machine gets a wide margin).
STARTUP_TIMEOUT = 20.0
# How long a stopping server gets after SIGTERM before it is killed.
STOP_TIMEOUT = 2.0


class ServerStartError(RuntimeError):
    """The server did not come up: it died, or said nothing within the start-up timeout."""


class ServerProcess:
    """``python -m workloads.net serve --style STYLE`` as a managed child process."""

    def __init__(
        self,
        style: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        extra_args: tuple[str, ...] = (),
        log_path: str | os.PathLike[str] | None = None,
        exit_with_parent: bool = True,
    ) -> None:
        """``exit_with_parent``: the server ends when we die, even by SIGKILL.  Linux ties
        that to the *thread* that starts it: start servers from a thread that outlives
        them (the main thread), or pass False."""
        self.style = style
        self.host = host
        self.port = port
        self.extra_args = tuple(extra_args)
        self.log_path = log_path
        self.exit_with_parent = exit_with_parent
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def start(self, timeout: float = STARTUP_TIMEOUT) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "workloads.net",
            "serve",
            "--style",
            self.style,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        if self.exit_with_parent:
            # Our death, even by SIGKILL, ends the server: it is in a session of its own.
            command.append(f"--parent-pid={os.getpid()}")
        # Logs go to a file (or nowhere), never to a pipe nobody reads: a server that logs
        # a lot would block on a full pipe and look hung.
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in kill())
        self.proc = _children.spawn(
            command,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
        )
        try:
            line = self._first_line(timeout)
            if not line.startswith("listening on "):
                raise ServerStartError(f"{self.style}: unexpected first line {line!r}")
            host, _, port = line.removeprefix("listening on ").rpartition(":")
            self.host, self.port = host, int(port)
        except BaseException:
            self.kill()
            raise
        return self

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in data:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise ServerStartError(f"{self.style}: no 'listening on' line in {timeout} s")
                chunk = os.read(fd, 4096)
                if not chunk:
                    _children.wait_exit(self.proc, 5.0)
                    code = _children.exit_code(self.proc)
                    raise ServerStartError(
                        f"{self.style}: server exited with code {code} before listening"
                        + (f" (log: {self.log_path})" if self.log_path else "")
                    )
                data += chunk
        return data.split(b"\n", 1)[0].decode()

    def alive(self) -> bool:
        return self.proc is not None and _children.running(self.proc)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (0.0 once it is gone)."""
        if self.proc is None:
            return 0.0
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Ask the server to stop; its exit code, or None if it had to be killed."""
        if self.proc is None:
            return None
        code = _children.end(self.proc, timeout, sig)
        self.kill()
        return code

    def kill(self) -> None:
        """End the server's whole process group now, reap it, close our ends.  Idempotent."""
        if self.proc is not None:
            _children.end(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc else None
        return f"<ServerProcess {self.style} {self.host}:{self.port} pid={pid}>"


# Kept importable from here: the tests and users' scripts took them from this module.
__all__ = [
    "STARTUP_TIMEOUT",
    "STOP_TIMEOUT",
    "ServerProcess",
    "ServerStartError",
    "child_env",
    "kill_group",
]
