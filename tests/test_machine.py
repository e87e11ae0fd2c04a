"""What a run records about its host: other processes' share of the cores before it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Iterator

import pytest

from workloads.machine import machine_facts, other_cpu_share

SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


@pytest.mark.slow
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


@pytest.mark.slow
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


Cores = namedtuple("Cores", "user system idle iowait")
Own = namedtuple("Own", "user system")


def test_the_share_is_others_busy_time_less_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick, in-process half, on counters made up: of 10 s of every core's time in
    the window, 3 s busy (1 s of it ours) and 7 s idle or waiting: others took 0.2."""
    import psutil

    system: Iterator[Cores] = iter([Cores(50.0, 10.0, 100.0, 5.0), Cores(52.0, 11.0, 106.0, 6.0)])
    own: Iterator[Own] = iter([Own(1.0, 0.5), Own(1.75, 0.75)])

    class Process:
        def cpu_times(self) -> Own:
            return next(own)

    monkeypatch.setattr(psutil, "cpu_times", lambda: next(system))
    monkeypatch.setattr(psutil, "Process", Process)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    assert other_cpu_share(0.5) == pytest.approx(0.2)


def test_the_facts_a_run_records_are_there() -> None:
    facts = machine_facts()
    for key in ("cpu_count", "python_version", "python_build", "gil_enabled", "switch_interval",
                "default_start_method"):  # fmt: skip
        assert key in facts, key
    assert facts["cpu_count"] >= 1
