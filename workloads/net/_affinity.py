"""CPU pinning for the echo benchmarks: the server and the load client on disjoint CPUs.

Unpinned, the scheduler moves the server and the client's workers between the cores
from round to round (and lets them share one), so the same cell measures a different
placement each run.  Pinned, each side always has its own CPUs and the kernel's
loopback work follows the sender.  Only the server's and the workers' processes are
pinned, by process id, never the caller: a pytest process pinned to one CPU would pass
that mask on to every pool worker its forkserver starts later.
"""

from __future__ import annotations

import contextlib
import os


def usable() -> list[int]:
    """The CPUs this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def split_cpus(cpus: list[int] | None = None) -> tuple[list[int], list[int]] | None:
    """(server CPUs, client CPUs), disjoint halves of ``cpus``; None under two CPUs.

    The server gets the first half (the larger one when odd): most styles serve on one
    thread, but ``threaded`` and ``gevent`` may use more, and the kernel's share of a
    loopback echo runs on both sides.
    """
    cpus = usable() if cpus is None else sorted(cpus)
    if len(cpus) < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    half = (len(cpus) + 1) // 2
    return cpus[:half], cpus[half:]


def pin(pid: int, cpus: list[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (threads it starts later inherit)."""
    if pid == os.getpid():
        raise ValueError("refusing to pin the calling process")
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(tid, cpus)


def affinity(pid: int) -> list[int]:
    """The CPUs ``pid`` may run on; [] where the platform cannot tell (macOS)."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(pid))
