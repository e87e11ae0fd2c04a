"""Peak memory per task: the kernel's peak, in fresh processes, plausible and cleaned up."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests._procs import TAG_ENV, wait_gone
from workloads import make_workload, memory

ROOT = Path(__file__).resolve().parents[1]
HOLD_BYTES = 100_000


# A task that holds a known allocation while it waits: every task's buffer is alive at
# once, so the peak must show about HOLD_BYTES per task.
def _buffer() -> bytearray:
    return bytearray(b"\x01") * HOLD_BYTES  # written, so its pages are resident


def hold_sync(task_id: int, d: float = 0.05) -> tuple[int, int]:
    buf = _buffer()
    time.sleep(d)
    return task_id, len(buf)


def hold_gen(task_id: int, d: float = 0.05) -> Generator[float, None, tuple[int, int]]:
    buf = _buffer()
    yield d
    return task_id, len(buf)


async def hold_coro(task_id: int, d: float = 0.05) -> tuple[int, int]:
    buf = _buffer()
    await asyncio.sleep(d)
    return task_id, len(buf)


HOLD = make_workload("hold", hold_sync, bound="io", gen=hold_gen, coro=hold_coro)
HOLD_REF = "tests.test_memory:HOLD"


def test_the_kernel_peak_sees_an_allocation_freed_before_reading() -> None:
    def allocate() -> int:
        block = bytearray(b"\x01") * (50 * 2**20)
        return len(block)

    memory.settle()
    size, use = memory.peak_during([os.getpid()], allocate)
    assert size == 50 * 2**20
    assert use is not None
    assert 45 * 1024 < use.growth_kb < 80 * 1024, use


def test_unsupported_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.unsupported() is None, "Linux has clear_refs and VmHWM"
    monkeypatch.setattr(memory, "PROC", tmp_path)
    assert "peak memory is not measured" in (memory.unsupported() or "")
    result, use = memory.peak_during([1234], lambda: 7)
    assert (result, use) == (7, None)


@pytest.fixture
def tag(monkeypatch: pytest.MonkeyPatch) -> Generator[str, None, None]:
    """Children of the test carry this tag; none may outlive it."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, value)
    yield value
    assert wait_gone(value) == [], "a memory process outlived the test"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["generator", "asyncio", "threads"])
def test_a_known_allocation_per_task_is_seen(model: str, tag: str) -> None:
    job = memory.Job(model, HOLD_REF, (("d", 0.05),), (200,))
    (row,) = memory.measure_jobs([job], timeout=120)[job]
    assert row["skipped"] is None, row
    expected_kb = HOLD_BYTES / 1024
    # The buffer, plus the task's own cost (a few KiB), read in whole pages.
    assert 0.8 * expected_kb < row["kb_per_task"] < 1.5 * expected_kb, row
    assert row["digest"] == memory.digest([(i, HOLD_BYTES) for i in range(200)])
    if model == "threads":
        assert row["start_kb_per_task"] > 4, "starting a thread costs its stack pages"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["asyncio", "gevent"])
def test_memory_grows_with_tasks(model: str, tag: str) -> None:
    params = (("d", 0.01), ("k", 1))
    job = memory.Job(model, "io_sleep", params, (100, 1000, 10_000))
    rows = {row["tasks"]: row for row in memory.measure_jobs([job], timeout=120)[job]}
    growth = {tasks: row["peak_kb"] - row["idle_kb"] for tasks, row in rows.items()}
    assert growth[100] <= growth[1000] < growth[10_000], growth
    # Per task, a scheduler's task costs between a few hundred bytes and tens of KiB.
    assert 0.2 < rows[10_000]["kb_per_task"] < 50, rows[10_000]


def test_only_big_pools_run_alone() -> None:
    assert memory.runs_alone(memory.Job("threads", "io_sleep", (), (10, 10_000)))
    assert not memory.runs_alone(memory.Job("threads", "io_sleep", (), (10, 1000)))
    assert not memory.runs_alone(memory.Job("asyncio", "io_sleep", (), (100_000,)))


@pytest.mark.slow
def test_a_failing_job_fails_alone(tag: str) -> None:
    good = memory.Job("generator", "io_sleep", (("d", 0.01), ("k", 1)), (10,))
    bad = memory.Job("asyncio", "io_sleep", (("d", 0.0001), ("k", 1)), (10,))
    rows = memory.measure_jobs([good, bad], timeout=60)
    assert rows[good][0]["skipped"] is None
    assert rows[good][0]["kb_per_task"] is not None
    assert "below the 0.001 s minimum" in rows[bad][0]["skipped"]


@pytest.mark.slow
def test_a_job_past_its_timeout_is_killed_with_its_group(tag: str) -> None:
    job = memory.Job("asyncio", "io_sleep", (("d", 30.0), ("k", 1)), (10,))
    started = time.monotonic()
    (row,) = memory.measure_jobs([job], timeout=3)[job]
    assert time.monotonic() - started < 20
    assert row["kb_per_task"] is None
    assert "unfinished after 3" in row["skipped"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workloads.memory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_cli_prints_json() -> None:
    result = run_cli("--model", "generator", "--workload", "io_sleep", "--tasks", "10,100")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["method"] == memory.METHOD
    assert [row["tasks"] for row in data["cells"]] == [10, 100]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "fibers", "--workload", "io_sleep", "--tasks", "10"], "unknown model"),
        (["--model", "asyncio", "--workload", "nope", "--tasks", "10"], "unknown workload"),
        (["--model", "asyncio", "--workload", "io_sleep", "--tasks", "ten"], "task counts"),
        (["--model", "asyncio", "--workload", "io_sleep", "--tasks", "0"], "positive"),
        (
            ["--model", "asyncio", "--workload", "io_sleep", "--tasks", "1", "--params", "[1]"],
            "not a JSON object",
        ),
        (
            ["--model", "asyncio", "--workload", "io_sleep", "--tasks", "1", "--params", '{"q":1}'],
            "unknown parameter",
        ),
    ],
)
def test_cli_bad_input_is_one_line_not_a_traceback(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
