"""The helpers every cleanup test leans on must not crash on the races they watch."""

from __future__ import annotations

import select
import subprocess
import sys
import time

import psutil

from tests._procs import describe, is_live, live_children


def test_is_live_follows_a_child_from_running_to_zombie_to_reaped() -> None:
    # The child says so once it runs: right after Popen its command line can still be
    # empty (forked, not yet exec'd), and describe() would read "PID: ".
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    proc = psutil.Process(child.pid)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 10)
        assert ready, "the child did not start within 10 s"
        assert child.stdout.readline() == b"up\n"
        assert is_live(proc)
        assert "time.sleep(30)" in describe([proc])[0]
        assert proc.pid in {p.pid for p in live_children()}
        child.kill()
        deadline = time.monotonic() + 5
        while proc.status() != psutil.STATUS_ZOMBIE:  # not yet reaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not is_live(proc)
        assert proc.pid not in {p.pid for p in live_children()}
    finally:
        child.kill()
        child.wait(timeout=5)
        if child.stdout is not None:
            child.stdout.close()
    # Reaped: the pid is gone, and asking must answer False, not raise NoSuchProcess
    # (CI's teardown failed on exactly that when a pool worker exited mid-listing).
    assert not is_live(proc)
    assert describe([proc]) == [f"{proc.pid}: (gone)"]
