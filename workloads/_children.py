"""Child processes: each in a process group of its own, every wait bounded, the whole
group ended and the child reaped, also on failure and on Ctrl-C.

Every process the workloads start goes through here: the echo servers
(``net._launch.ServerProcess``), the load client's workers (``net.load``), the convoy
server (``convoy.ConvoyServer``) and the memory measurement (``memory.measure_jobs``,
whose forked children are reaped here too).

- ``spawn`` starts a child in a session of its own (``start_new_session``): a Ctrl-C in
  the terminal reaches only us, and we end the child ourselves; whatever it starts
  shares its group, so one signal to the group reaches all of it.
- ``end`` asks the group to stop (a signal, or nothing when the caller asked another
  way, such as closing the child's stdin), gives it a bounded grace, SIGKILLs what is
  left of the group, reaps the child and closes our ends of its pipes.
- A child is reaped by ``end`` only: ``running`` and ``exit_code`` look without
  reaping.  Until its leader is reaped a group's number cannot name another group, so
  signalling it can never reach a stranger (a leader can exit before the processes it
  started: a pool's workers).
- An ``atexit`` hook ends every child still running when the interpreter leaves (a
  normal exit, an uncaught exception, a Ctrl-C): a forgotten child does not outlive us.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# How long a SIGKILLed child may take to be reaped (one stuck in the kernel can take a
# while); past it the child stays listed and the atexit hook tries again.
REAP_TIMEOUT = 5.0
# Polling a child's exit: from 1 ms, doubling, to at most this (seconds).
_POLL_MAX = 0.05
_LIVE: dict[int, subprocess.Popen[bytes]] = {}
# The process ``_LIVE`` belongs to: a forked child inherits the list, not the children.
_owner = os.getpid()

_File = int | IO[Any] | None


def child_env() -> dict[str, str]:
    """The environment for our child interpreters: the repository importable from anywhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def spawn(
    argv: Sequence[str],
    *,
    stdin: _File = subprocess.DEVNULL,
    stdout: _File = None,
    stderr: _File = None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a process group of its own (``env``: ``child_env()`` if None).

    Ended by ``end`` (or, if forgotten, when this interpreter exits).  ``stdin`` is
    /dev/null unless given: a child must never read our terminal.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=child_env() if env is None else env,
        start_new_session=True,
    )
    _mine()[proc.pid] = proc
    return proc


def _waitid(pid: int) -> os.waitid_result | None:
    """The exit of child ``pid`` if it has exited, without reaping it; None while it runs."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)


def exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """``proc``'s exit code (negative: the signal that killed it), None while it runs.

    The child is not reaped (``end`` does that), so its group stays ours to signal.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = _waitid(proc.pid)
    except ChildProcessError:  # reaped behind our back: Popen learns its code
        return proc.poll()
    if info is None:
        return None
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return -info.si_status
    return info.si_status


def running(proc: subprocess.Popen[bytes]) -> bool:
    return exit_code(proc) is None


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait at most ``timeout`` seconds for ``proc`` to exit; whether it did.  Not reaped."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while running(proc):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, _POLL_MAX)
    return True


def kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group ``proc`` leads, unless ``proc`` is reaped already
    (its number could then name another group)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def end(
    proc: subprocess.Popen[bytes], grace: float = 0.0, sig: int | None = signal.SIGTERM
) -> int | None:
    """End ``proc`` and its whole group, reap it, close our ends of its pipes.  Idempotent.

    ``sig`` (unless None: the caller has asked already) goes to the group, which then
    has ``grace`` seconds to leave on its own; what is left is killed.  Returns the exit
    code if the child left by itself within the grace, None if it had to be killed.
    """
    code: int | None = proc.returncode
    if code is None:
        if sig is not None and grace > 0 and running(proc):
            kill_group(proc, sig)
        left = wait_exit(proc, grace)
        kill_group(proc, signal.SIGKILL)  # the child if it stayed, and whatever it left
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(REAP_TIMEOUT)
        code = proc.returncode if left else None
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    if proc.returncode is not None:
        _mine().pop(proc.pid, None)
    return code


def reap_fork(pid: int) -> int | None:
    """Reap forked child ``pid`` if it has exited (its wait status), else None; never waits."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if done else None


def kill_fork(pid: int) -> None:
    """SIGKILL forked child ``pid`` and reap it, waiting at most ``REAP_TIMEOUT``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + REAP_TIMEOUT
    while reap_fork(pid) is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _mine() -> dict[int, subprocess.Popen[bytes]]:
    global _owner
    if _owner != os.getpid():
        _owner = os.getpid()
        _LIVE.clear()
    return _LIVE


def live() -> list[subprocess.Popen[bytes]]:
    """The children this process started and has not ended yet."""
    return list(_mine().values())


@atexit.register
def _end_forgotten() -> None:
    for proc in live():
        end(proc)


__all__ = [
    "REAP_TIMEOUT",
    "ROOT",
    "child_env",
    "end",
    "exit_code",
    "kill_fork",
    "kill_group",
    "live",
    "reap_fork",
    "running",
    "spawn",
    "wait_exit",
]
