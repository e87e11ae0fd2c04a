"""The shape every workload has: a name, a bound, parameters and three flavours."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

FLAVOURS = ("sync", "gen", "coro")
# A workload's family (docs/contract.md).
BOUNDS = ("cpu", "io", "net", "mixed")

SyncFn = Callable[..., Any]
GenFn = Callable[..., Generator[float | None, None, Any]]
CoroFn = Callable[..., Coroutine[Any, Any, Any]]
# ``offload(fn, *args)``: run a picklable top-level ``fn(*args)`` elsewhere, await its result.
Offload = Callable[..., Awaitable[Any]]
HybridFn = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class Workload:
    """One kind of task, written once per flavour.

    Every flavour takes ``task_id`` first and the workload's parameters as keywords,
    and returns the same value for the same arguments.  Only ``sync`` is required.  A
    ``gen`` flavour yields ``None`` to give up the CPU and a float to sleep that many
    seconds.
    """

    name: str
    bound: str
    sync: SyncFn
    # ``gen`` and ``coro`` are optional: models that need a missing one skip the workload.
    gen: GenFn | None = None
    coro: CoroFn | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Seconds one task takes when nothing else runs, if known from the parameters.
    duration: Callable[..., float | None] | None = None
    # Optional: ``async def hybrid(task_id, offload, **params)``, the task split for an event
    # loop that hands its CPU slices to a process pool (``asyncio_processes``).  It awaits
    # ``offload(fn, *args)`` for each CPU slice and does its waits itself; it returns what
    # the other flavours return.  Workloads without it are refused by such models.
    hybrid: HybridFn | None = None
    # Optional: ``expected(task_id, **params)``, what every flavour returns for
    # ``task_id``, computed without the task's waits (its CPU part may still run).  The
    # harness checks each model's results against it; without it, against one serial
    # run of the cell's tasks (100 tasks of io_sleep: 5 s of sleeping).
    expected: SyncFn | None = None

    def flavour(self, flavour: str) -> Callable[..., Any]:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}; valid: {', '.join(FLAVOURS)}")
        fn: Callable[..., Any] | None = getattr(self, flavour)
        if fn is None:
            raise ValueError(f"{self.name}: no {flavour!r} flavour")
        return fn

    def flavours(self) -> tuple[str, ...]:
        """The flavours this workload has (``sync`` always)."""
        return tuple(f for f in FLAVOURS if getattr(self, f) is not None)

    def params(self, **overrides: Any) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"valid: {sorted(self.defaults)}"
            )
        return {**self.defaults, **overrides}

    def task(self, flavour: str, **params: Any) -> functools.partial[Any]:
        """A picklable callable ``f(task_id)`` for one flavour with fixed parameters."""
        return functools.partial(self.flavour(flavour), **self.params(**params))

    def expected_results(self, tasks: int, **params: Any) -> list[Any] | None:
        """What a run of ``tasks`` tasks must return, if ``expected`` is given."""
        if self.expected is None:
            return None
        fixed = self.params(**params)
        return [self.expected(task_id, **fixed) for task_id in range(tasks)]

    def task_seconds(self, **params: Any) -> float | None:
        if self.duration is None:
            return None
        return self.duration(**self.params(**params))
