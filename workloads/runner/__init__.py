"""Runners: what measures the suite's cells, apart from the session that plans them.

A cell is data, ``{"kind": "module:function", "kwargs": {...}}`` (``cells``,
``netcells``, ``scale``); a runner prepares it (starting its models and servers,
untimed), runs one round at a time on request, timing only the round itself
(``measured``), and summarises the cell at its end.  No pytest in here.
"""

from __future__ import annotations

from ._bench import VOID_LIMIT, Bench, Cell, CellError, Round, judged_round, measured
from ._engine import Engine, prepare
from ._protocol import PROTOCOL, RunnerError, RunnerProcess

__all__ = [
    "PROTOCOL",
    "VOID_LIMIT",
    "Bench",
    "Cell",
    "CellError",
    "Engine",
    "Round",
    "RunnerError",
    "RunnerProcess",
    "judged_round",
    "measured",
    "prepare",
]
