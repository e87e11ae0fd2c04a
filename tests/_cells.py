"""Cells as the session plans them, and prepared as a runner prepares them, for tests
of one cell kind at a time."""

from __future__ import annotations

from typing import Any

from benchmarks._groups import Cell, Session
from benchmarks.catalogue import CATALOGUE
from workloads import runner


def planned(test: str, profile: str = "quick", **params: Any) -> Cell:
    """The cell the benchmark test ``test`` measures for ``params`` (default options)."""
    session = Session(profile, settings={"start_method": "forkserver"})
    return CATALOGUE[test].cell(session, **params)


def prepared(cell: Cell, bench: runner.Bench) -> runner.Cell:
    """``cell`` ready to run rounds on ``bench``, as a runner prepares it."""
    return runner.prepare(bench, cell.kind, dict(cell.kwargs))
