"""Test-only hooks, all in one place.  Nothing here changes a normal run.

- ``BOUNDBENCH_SLOWDOWN="KEY=FACTOR[,KEY=FACTOR...]"`` makes every timed call of the
  cells named by KEY take FACTOR times as long, with their recorded parameters
  unchanged, so the regression check can be proven to catch a real slowdown end to
  end.  KEY is a workload name (``cpu_loop``) or, for echo cells, ``echo:STYLE``
  (``echo:select``).
- ``BOUNDBENCH_KILL_WORKER=MODEL`` kills one of that model's worker processes during
  its first cell, to prove a dead worker fails one cell and the model is rebuilt.
"""

from __future__ import annotations

import os

SLOWDOWN_ENV = "BOUNDBENCH_SLOWDOWN"
KILL_ENV = "BOUNDBENCH_KILL_WORKER"


def slowdown_factor(key: str) -> float:
    """The factor ``BOUNDBENCH_SLOWDOWN`` sets for ``key`` (1.0 when none)."""
    for item in filter(None, os.environ.get(SLOWDOWN_ENV, "").split(",")):
        name, _, factor = item.partition("=")
        if name.strip() == key:
            return float(factor)
    return 1.0


def kill_worker_model() -> str | None:
    """The model whose worker ``BOUNDBENCH_KILL_WORKER`` asks to kill, if any."""
    return os.environ.get(KILL_ENV) or None
