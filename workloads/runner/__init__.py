"""Runners: what measures the suite's cells, apart from the session that plans them.

A cell is data, ``{"kind": "module:function", "kwargs": {...}}``: the kinds every
model cell uses are in ``cells``; a workload family's own kinds live beside it
(``workloads.netcells``, ``workloads.scale``), built from what this package exports.
A runner prepares a cell (starting its models and servers, untimed), runs one round at
a time on request, timing only the round itself (``measured``), and summarises the cell
at its end.  No pytest in here.
"""

from __future__ import annotations

from ._bench import (
    COUNT_DIR_ENV,
    VOID_LIMIT,
    Bench,
    Cell,
    CellError,
    Round,
    judged_round,
    measured,
    model_facts,
)
from ._engine import Engine, prepare
from ._hooks import slowdown_factor, stretched
from ._protocol import PROTOCOL, RunnerError, RunnerProcess
from .cells import ModelCell

__all__ = [
    "COUNT_DIR_ENV",
    "PROTOCOL",
    "VOID_LIMIT",
    "Bench",
    "Cell",
    "CellError",
    "Engine",
    "ModelCell",
    "Round",
    "RunnerError",
    "RunnerProcess",
    "judged_round",
    "measured",
    "model_facts",
    "prepare",
    "slowdown_factor",
    "stretched",
]
