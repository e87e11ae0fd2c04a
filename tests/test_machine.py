"""What a run records about its host: other processes' share of the cores before it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from workloads.machine import other_cpu_share

SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts CPU time via /proc")
def test_another_process_spinning_is_seen() -> None:
    """One of the machine's cores kept busy by another process: about 1/cores of it."""
    cores = os.cpu_count() or 1
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.2)  # running
        share = other_cpu_share(0.5)
    finally:
        spinner.kill()
        spinner.wait(10)
    assert share is not None
    # Generous: others may add to it, a shared host may give the spinner less.
    assert 0.5 / cores <= share <= 1.0, share


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts CPU time via /proc")
def test_this_process_is_not_counted_as_other_work() -> None:
    """A thread of ours spinning through the window: our own CPU is taken out."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        share = other_cpu_share(0.5)
    finally:
        stop.set()
        spinner.join(10)
    assert share is not None
    # Without taking ours out: at least 1/cores.  Others on a noisy host get room.
    assert share < 0.9 / (os.cpu_count() or 1), share
