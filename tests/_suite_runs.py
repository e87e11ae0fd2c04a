"""The benchmark suite run in a pytest subprocess, as a user runs it, and the two runs of
every core cell that several test modules read (``tests/conftest.py``'s session fixtures):
each costs a minute or more, so it is made once per session, not once per module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests._procs import TAG_ENV, wait_gone

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def core_args() -> list[str]:
    # The network benchmarks have their own tests; these are about the core cells.
    return ["benchmarks/", "--ignore=benchmarks/test_net.py"]


def quick_run(storage: Path) -> dict[str, Any]:
    """One quick-profile run of every core cell, saved as a user would save it; nothing
    it started may outlive it."""
    tag = uuid.uuid4().hex
    result = run_pytest(
        *core_args(),
        "--profile",
        "quick",
        "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}",
        env={TAG_ENV: tag},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert wait_gone(tag) == [], "children outlived the session"
    (saved,) = storage.rglob("*.json")
    data: dict[str, Any] = json.loads(saved.read_text())
    return data


@dataclass
class DisabledRun:
    """A quick-profile run of every core cell with ``--benchmark-disable`` (each cell
    once): its output, and each benchmark module's outcomes."""

    returncode: int
    stdout: str
    stderr: str
    # "benchmarks/test_x.py" -> Counter of "passed", "skipped", "failed"
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    # processes of the run still alive 10 s after it ended (describe()d by the caller)
    left: list[Any] = field(default_factory=list)

    def module(self, path: str) -> Counter[str]:
        return self.outcomes.get(path, Counter())


def disabled_run(scratch: Path) -> DisabledRun:
    tag = uuid.uuid4().hex
    report = scratch / "junit.xml"
    result = run_pytest(
        *core_args(), "--profile", "quick", "--benchmark-disable", "-q",
        f"--junitxml={report}", env={TAG_ENV: tag},
    )  # fmt: skip
    run = DisabledRun(result.returncode, result.stdout, result.stderr, left=wait_gone(tag))
    if report.is_file():
        for case in ET.parse(report).iter("testcase"):
            module = case.get("classname", "").replace(".", "/") + ".py"
            kinds = {child.tag for child in case}
            outcome = (
                "failed" if kinds & {"failure", "error"} else
                "skipped" if "skipped" in kinds else "passed"
            )  # fmt: skip
            run.outcomes.setdefault(module, Counter())[outcome] += 1
    return run
