"""Finding the processes a test started, wherever they were reparented to."""

from __future__ import annotations

import os
import signal
import time

import psutil

TAG_ENV = "BOUNDBENCH_TEST_TAG"


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``TAG_ENV=tag`` (children inherit it)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(TAG_ENV) == tag and is_live(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def is_live(proc: psutil.Process) -> bool:
    """Running and not a zombie; False too when it exits while we ask (a child listed a
    moment ago may be gone by the time its status is read: CI hit exactly that race)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(tag: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def live_children() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True) if is_live(child)]


def describe(procs: list[psutil.Process]) -> list[str]:
    """Command lines for an assertion message; a process gone meanwhile reads "(gone)"."""
    lines = []
    for proc in procs:
        try:
            lines.append(f"{proc.pid}: {' '.join(proc.cmdline())}")
        except psutil.Error:
            lines.append(f"{proc.pid}: (gone)")
    return lines


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a child a test sends Ctrl-C: SIGINT back to its default, as a
    terminal's shell leaves it.  A test run started in the background by a
    non-interactive shell inherits SIGINT ignored, and a child that ignores it (Python
    then installs no KeyboardInterrupt; bash cannot trap it) shows nothing of a Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
