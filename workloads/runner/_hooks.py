"""Test-only hooks, all in one place; none is active in a normal run.

- ``BOUNDBENCH_SLOWDOWN="KEY=FACTOR[,KEY=FACTOR...]"`` stretches every measured round of
  the cells named by KEY to FACTOR times its length, parameters unchanged, so that the
  regression check can be proven to catch a real slowdown end to end.  KEY is a
  workload name (``cpu_loop``) or, for echo cells, ``echo:STYLE`` (``echo:select``).
- ``BOUNDBENCH_KILL_WORKER=MODEL`` kills one of that model's worker processes during
  its first round in a runner, to prove that a dead worker fails one cell and the model
  is rebuilt.  A model that runs in its runner's own process (gevent) loses the runner:
  the session replaces it, without the hook.

A run made with one of them says so (``active()``: the session records it in the saved
results), so it is never taken for a real baseline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

SLOWDOWN_ENV = "BOUNDBENCH_SLOWDOWN"
KILL_ENV = "BOUNDBENCH_KILL_WORKER"
T = TypeVar("T")


def active() -> dict[str, str]:
    """The hooks set in this environment, by variable."""
    return {name: os.environ[name] for name in (SLOWDOWN_ENV, KILL_ENV) if os.environ.get(name)}


def slowdowns(text: str) -> dict[str, float]:
    """``KEY=FACTOR,...`` -> {KEY: FACTOR}; ValueError (one line) when malformed."""
    found = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = -1.0
        if not sep or not key.strip() or not value >= 1.0:
            raise ValueError(f"{SLOWDOWN_ENV}: {item!r} is not KEY=FACTOR with a FACTOR >= 1")
        found[key.strip()] = value
    return found


def slowdown_factor(key: str) -> float:
    """The factor ``BOUNDBENCH_SLOWDOWN`` sets for ``key`` (1.0 when none)."""
    return slowdowns(os.environ.get(SLOWDOWN_ENV, "")).get(key, 1.0)


def stretched(call: Callable[[], T], factor: float) -> Callable[[], T]:
    """``call``, then a sleep of ``factor - 1`` times as long: a round ``factor`` x slower."""
    if factor == 1.0:
        return call

    def slow() -> T:
        started = time.perf_counter()
        result = call()
        time.sleep((factor - 1.0) * (time.perf_counter() - started))
        return result

    return slow


def kill_worker_model() -> str | None:
    """The model whose worker ``BOUNDBENCH_KILL_WORKER`` asks to kill, if any."""
    return os.environ.get(KILL_ENV) or None
