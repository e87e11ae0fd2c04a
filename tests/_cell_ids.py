"""A pytest plugin (``-p tests._cell_ids``) that writes every collected benchmark cell.

For the test that keeps cell names and parameters stable (``tests/test_cell_ids.py``):
with ``BOUNDBENCH_CELL_IDS=FILE`` it pins the core count to ``PINNED_CORES`` (the
affinity every part of the suite reads) and writes, after collection and planning, each
item's node id, pytest parameters, its batch and, for a cell, its group, rounds, warm-up rounds
and the planned ``extra_info`` without the values a run measures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

OUT_ENV = "BOUNDBENCH_CELL_IDS"
PINNED_CORES = 4
# Planned extra_info values measured at collection (their keys are kept).
MEASURED = {"seconds_per_iter"}
MEASURED_BY_GROUP = {"mixed:": {"ideal_s"}}

if os.environ.get(OUT_ENV):
    os.sched_getaffinity = lambda pid: set(range(PINNED_CORES))  # type: ignore[assignment]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def describe_cell(cell: Any) -> dict[str, Any]:
    measured = set(MEASURED)
    for prefix, keys in MEASURED_BY_GROUP.items():
        if cell.group.startswith(prefix):
            measured |= keys
    info = {k: (None if k in measured else v) for k, v in cell.info.items()}
    return _plain({"group": cell.group, "rounds": cell.rounds, "warmup": cell.warmup, "info": info})


def build_cell(item: pytest.Item) -> Any:
    """The cell an item measures, built even when the item is skipped (None: cannot)."""
    from benchmarks._harness import group_of
    from conftest import SESSION

    group = group_of(item)
    if group is None:
        return None
    callspec = getattr(item, "callspec", None)
    try:
        return group.cell(item.config.stash[SESSION], **(dict(callspec.params) if callspec else {}))
    except LookupError:  # a model this interpreter cannot run
        return None


def batch_of(config: pytest.Config, nodeid: str) -> str | None:
    """The batch a planned cell's rounds interleave in (None: not planned, skipped)."""
    from conftest import TRIALS

    return config.stash[TRIALS].batch_of.get(nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    rows = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        row: dict[str, Any] = {
            "id": item.nodeid,
            "params": _plain(dict(callspec.params)) if callspec else None,
        }
        cell = build_cell(item)
        if cell is not None:
            row["cell"] = describe_cell(cell)
        row["batch"] = batch_of(session.config, item.nodeid)
        rows.append(row)
    # One cell a line: a change shows as a one-line diff.
    Path(out).write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
