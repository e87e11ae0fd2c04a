"""Cell names and parameters stay exactly as recorded, so saved runs stay comparable.

``tests/fixtures/cells/*.jsonl`` holds every collected benchmark item of each profile
(and of two ``--workload`` cells), written by ``tests/_cell_ids.py`` with the core count
pinned, on CPython 3.11 with every extra installed: node id (pytest-benchmark's
``name`` and ``fullname``), pytest parameters (its ``params``), group, rounds, warm-up
rounds, the planned ``extra_info`` (values measured at collection left out, keys kept)
and which cells interleave in one batch.  Regenerate only for a deliberate change of
cells: ``BOUNDBENCH_CELL_IDS=FILE pytest benchmarks/ -p tests._cell_ids --profile P
--collect-only``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._cell_ids import OUT_ENV

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "cells"
USER = ["--workload", "io_sleep,k=1,d=0.002", "--workload", "cpu_loop"]
RUNS = {
    "quick": ["benchmarks/", "--profile", "quick"],
    "standard": ["benchmarks/", "--profile", "standard"],
    "full": ["benchmarks/", "--profile", "full"],
    "user": ["benchmarks/test_user.py", *USER],
}

if sys.version_info[:2] != (3, 11):
    pytest.skip("the cells were recorded on CPython 3.11", allow_module_level=True)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every run's cells as collected now (the four collections side by side)."""
    tmp = tmp_path_factory.mktemp("cells")
    procs = {}
    for name, args in RUNS.items():
        env = {**os.environ, OUT_ENV: str(tmp / f"{name}.jsonl"), "PYTHONPATH": str(ROOT)}
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, "-p", "tests._cell_ids", "--collect-only",
             "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, out.decode()[-3000:])
    return {name: read(tmp / f"{name}.jsonl") for name in RUNS}


def batches(rows: list[dict[str, Any]], ids: set[str]) -> set[frozenset[str]]:
    """Which of ``ids`` interleave together (the batches' names may change)."""
    found: dict[str, set[str]] = {}
    for row in rows:
        if row["id"] in ids:
            found.setdefault(row["batch"], set()).add(row["id"])
    return {frozenset(members) for members in found.values()}


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_cells_are_as_recorded(run: str, collected: dict[str, list[dict[str, Any]]]) -> None:
    recorded, now = read(FIXTURES / f"{run}.jsonl"), collected[run]
    assert [row["id"] for row in now] == [row["id"] for row in recorded]
    for old, new in zip(recorded, now, strict=True):
        assert new["params"] == old["params"], old["id"]
        assert new.get("cell") == old.get("cell"), old["id"]
    # Cells skipped here (a model this Python lacks, an OS limit) have no batch.
    planned = {r["id"] for r in recorded if r["batch"]} & {r["id"] for r in now if r["batch"]}
    assert batches(now, planned) == batches(recorded, planned)


@pytest.mark.parametrize("profile", ["quick", "standard", "full"])
def test_planned_cells_are_as_recorded(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick, in-process half of the check: every recorded cell of a profile, built
    here from its test's catalogue entry and recorded parameters (with the recorded core
    count), plans the same group, rounds, warm-up rounds and ``extra_info``.  The node
    ids, their order and the batches come from a real collection
    (``test_cells_are_as_recorded``, slow)."""
    from benchmarks._groups import Session
    from benchmarks.catalogue import CATALOGUE
    from tests._cell_ids import PINNED_CORES, describe_cell

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(PINNED_CORES)))
    session = Session(profile, settings={"start_method": "forkserver"})
    rows = [row for row in read(FIXTURES / f"{profile}.jsonl") if "cell" in row]
    assert len(rows) > 100
    for row in rows:
        test = row["id"].split("::")[1].split("[")[0]
        cell = CATALOGUE[test].cell(session, **(row["params"] or {}))
        assert describe_cell(cell) == row["cell"], row["id"]
