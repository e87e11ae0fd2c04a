"""Child processes: a group of their own, bounded waits, the whole group ended, reaped,
also when their owner fails or gets a Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests._procs import TAG_ENV, as_from_a_terminal, describe, is_live, tagged, wait_gone
from workloads import _children

# A child that starts a grandchild in its group, says so, then does what argv[1] says.
FAMILY = """
import signal, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(grandchild.pid, flush=True)
if sys.argv[1] == "leave":
    sys.exit(3)
time.sleep(60)
"""


@pytest.fixture
def tag() -> Iterator[str]:
    tag = f"children-{uuid.uuid4().hex[:8]}"
    yield tag
    for proc in wait_gone(tag, timeout=0.1):  # never leave one behind, even when failing
        proc.kill()


def family(tag: str, mode: str) -> tuple[subprocess.Popen[bytes], int]:
    env = _children.child_env()
    env[TAG_ENV] = tag
    proc = _children.spawn([sys.executable, "-c", FAMILY, mode], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    return proc, grandchild


def test_a_child_leads_a_group_of_its_own_with_the_repository_importable(tag: str) -> None:
    proc, grandchild = family(tag, "sleep")
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert os.getpgid(grandchild) == proc.pid
        assert os.getsid(proc.pid) == proc.pid
        assert proc in _children.live()
    finally:
        _children.end(proc)
    assert str(_children.ROOT) in _children.child_env()["PYTHONPATH"].split(os.pathsep)


def test_end_asks_the_group_then_reaps_and_returns_the_exit_code(tag: str) -> None:
    proc, _ = family(tag, "sleep")
    started = time.monotonic()
    # No SIGTERM handler: the child dies of it, within the grace.
    assert _children.end(proc, grace=5.0) == -signal.SIGTERM
    assert time.monotonic() - started < 2
    assert proc.returncode == -signal.SIGTERM, "reaped"
    assert not wait_gone(tag, timeout=5), "the grandchild went with it"
    assert proc not in _children.live()
    assert proc.stdout is not None
    assert proc.stdout.closed
    assert _children.end(proc) == -signal.SIGTERM, "idempotent"


@pytest.mark.slow
def test_a_child_that_ignores_the_request_is_killed_after_the_grace(tag: str) -> None:
    proc, _ = family(tag, "stubborn")
    started = time.monotonic()
    assert _children.end(proc, grace=0.3) is None
    assert 0.3 <= time.monotonic() - started < 3
    assert proc.returncode == -signal.SIGKILL
    assert not wait_gone(tag, timeout=5)


def test_what_a_child_left_behind_goes_with_it(tag: str) -> None:
    """The child exits first; its grandchild is still in the group, and is killed."""
    proc, grandchild = family(tag, "leave")
    assert _children.wait_exit(proc, 10.0)
    # Looked at, not reaped: the group is still ours to signal.
    assert _children.exit_code(proc) == 3
    assert not _children.running(proc)
    assert proc.returncode is None
    assert is_live(psutil.Process(grandchild))
    assert _children.end(proc, grace=5.0) == 3
    assert not wait_gone(tag, timeout=5), describe(tagged(tag))


@pytest.mark.slow
def test_waits_are_bounded(tag: str) -> None:
    proc, _ = family(tag, "sleep")
    try:
        started = time.monotonic()
        assert not _children.wait_exit(proc, 0.2)
        assert 0.2 <= time.monotonic() - started < 1
        assert _children.running(proc)
    finally:
        _children.end(proc)


def test_a_fork_is_killed_and_reaped() -> None:
    pid = os.fork()
    if pid == 0:  # the child: sleep, leave without any of the parent's cleanup
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    assert _children.reap_fork(pid) is None
    started = time.monotonic()
    _children.kill_fork(pid)
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# What an owner of every kind of child does before it is interrupted: an echo server, a
# load client, a loaded convoy server, and a memory measurement that runs on.
OWNER = """
import sys
from workloads import memory
from workloads.convoy import ConvoyServer
from workloads.net import LoadClient, ServerProcess

server = ServerProcess("selectors").start()
client = LoadClient(1).start()
convoy = ConvoyServer().start()
convoy.load("processes", 2, 0.005)
print("ready", flush=True)
if sys.argv[1] == "raise":
    raise RuntimeError("the owner failed")
job = memory.Job("asyncio", "io_sleep", (("d", 30.0), ("k", 1)), (10,))
memory.measure_jobs([job], timeout=60)
"""


def _memory_children(tag: str) -> int:
    count = 0
    for proc in tagged(tag):
        try:
            count += "workloads.memory" in " ".join(proc.cmdline())
        except psutil.Error:
            continue
    return count


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["ctrl-c", "raise"])
def test_every_child_goes_when_its_owner_fails_or_gets_a_ctrl_c(
    tag: str, ending: str, tmp_path: Path
) -> None:
    env = _children.child_env()
    env[TAG_ENV] = tag
    # Killed pool workers cannot remove multiprocessing's temporary folders: this test's.
    env["TMPDIR"] = str(tmp_path)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, ending],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        if ending == "ctrl-c":
            # The memory process and its forked child are up: the owner waits on them.
            deadline = time.monotonic() + 30
            while _memory_children(tag) < 2:
                assert time.monotonic() < deadline, describe(tagged(tag))
                time.sleep(0.1)
            os.killpg(owner.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        _, err = owner.communicate(timeout=30)
        assert owner.returncode != 0
        assert ("KeyboardInterrupt" if ending == "ctrl-c" else "the owner failed") in err
        left = wait_gone(tag, timeout=10)
        assert not left, describe(left)
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait(10)
