"""scripts/ci-counts.sh, the count half of CI: its refusals and its fallback for a base
from before count runs (the counting itself is tests/test_count_run.py's)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ci-counts.sh"
# the last commit of the repository's first wave: no --measure option
BEFORE_COUNTS = "cab5c01"


def run(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COUNT_OUT": str(out)}, check=False,
    )  # fmt: skip


def has_commit(ref: str) -> bool:
    done = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{ref}^{{commit}}"],
                          capture_output=True, check=False)  # fmt: skip
    return done.returncode == 0


def test_an_unknown_base_is_bad_input(tmp_path: Path) -> None:
    done = run("no-such-ref-anywhere", out=tmp_path)
    assert done.returncode == 2
    assert "is not a commit of this repository" in done.stderr


def test_no_base_is_a_usage_line(tmp_path: Path) -> None:
    done = run(out=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: scripts/ci-counts.sh BASE-REF")


def test_a_base_from_before_count_runs_is_a_notice(tmp_path: Path) -> None:
    if not has_commit(BEFORE_COUNTS):
        pytest.skip(f"a shallow clone without {BEFORE_COUNTS}")
    done = run(BEFORE_COUNTS, out=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "has no count run" in done.stderr
    assert "predates count runs" in (tmp_path / "counts.md").read_text()
    # its worktrees are gone again
    listed = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "bbc." not in listed
