"""Mixed cells: a CPU share swept from 0 to 1, every model, groups ``mixed:python`` and
``mixed:native`` (the crossover chart's data).

Each task does ``task_s`` seconds of nominal work in ``steps`` CPU-then-sleep slices, a
share ``cpu_share`` of it CPU (``workloads/mixed.py``).  ``tasks`` is 4 x cores (every core
busy at every share); pools get one worker per core and one per task
(``Model.worker_counts("mixed", tasks)``).  The CPU part is a fixed iteration count per
share (``cpu_iters_for``), never re-calibrated: a run's cells have the same parameters as
the baseline's.

``extra_info`` (the report charts it; keep it as it is): ``bound`` and ``workload``
(``"mixed"``), ``cpu_share`` (float), ``cpu_kind``, ``seconds_per_iter`` (measured once
per session and kind with ``measure_seconds_per_iter``, at collection, before any round),
and ``ideal_s``, the physical limit ``max(N * cpu_s / P, cpu_s + wait_s)`` for N tasks on
P cores, ``cpu_s`` from the measured seconds per iteration and ``wait_s`` from the
parameters, the same for every model; plus the keys every model cell has.

Rounds: a cell here takes 0.1 s (waits overlapped) to 0.8 s (serial: 8 x 0.1 s), and this
host's budget for the whole group is ~45 s.  So each cell gets the rounds that fit
``round_budget_s`` at its expected length (``expected_seconds``: the cell's CPU over the
cores it can use, or its waves of tasks, whichever is longer), between ``min_rounds``
and ``max_rounds``: the 0.1 s cells get more rounds than the slow ones.  The
expectation depends only on the parameters and the core count, so the rounds, like
the cells, are the same from run to run.  A standard cell of one or two rounds feeds
the crossover chart; the regression check needs five rounds to judge a cell, which
only ``full`` gives the mixed cells.

Profiles:
- ``quick`` (~8 s): tasks = cores, Python CPU at shares 0 and 1, native at 1; 1 round.
- ``standard`` (~45 s): tasks = 4 x cores, Python CPU at 0, 0.1, 0.25, 0.5, 1; native
  at 0.5.  Cells of 0.1 s get 2 rounds, longer ones 1.
- ``full`` (~6 min): every share of 0, 0.1, 0.25, 0.5, 0.75, 0.9, 1 for both kinds, 5 to
  7 rounds a cell.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks._harness import (
    Cell,
    Trials,
    cell_builder,
    get_profile,
    measure,
    model_cell,
    parametrize_cells,
)
from workloads import mixed
from workloads.models import cpu_count


@dataclass(frozen=True)
class MixedProfile:
    # cpu_kind -> the shares swept
    shares: dict[str, tuple[float, ...]]
    # tasks = tasks_per_core x cores
    tasks_per_core: int
    task_s: float
    steps: int
    # rounds per cell: round_budget_s / expected length, within [min_rounds, max_rounds]
    round_budget_s: float
    min_rounds: int
    max_rounds: int
    warmup: int


ALL_SHARES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

MIXED_PROFILES = {
    "quick": MixedProfile(
        shares={"python": (0.0, 1.0), "native": (1.0,)},
        # One task per core keeps the smoke run to seconds; still every core busy at share 1.
        tasks_per_core=1,
        task_s=mixed.MIN_TASK_S,
        steps=4,
        round_budget_s=0.0,
        min_rounds=1,
        max_rounds=1,
        warmup=0,
    ),
    "standard": MixedProfile(
        # 0.1 and 0.25: where processes overtake on a few cores.  Native work only in the
        # middle: a share costs ~4 s here (serial alone 0.8 s a round).
        shares={"python": (0.0, 0.1, 0.25, 0.5, 1.0), "native": (0.5,)},
        tasks_per_core=4,
        # The shortest task the workload allows: at 8 tasks serial already takes 0.8 s.
        task_s=mixed.MIN_TASK_S,
        steps=4,
        round_budget_s=0.2,
        min_rounds=1,
        max_rounds=2,
        # Pools are warmed when they start.
        warmup=0,
    ),
    "full": MixedProfile(
        shares={"python": ALL_SHARES, "native": ALL_SHARES},
        tasks_per_core=4,
        # The standard cells' size, so the two profiles' common cells compare.
        task_s=mixed.MIN_TASK_S,
        steps=4,
        round_budget_s=1.0,
        # Five rounds: the fewest with which the regression check can judge a cell.
        min_rounds=5,
        max_rounds=7,
        warmup=0,
    ),
}

SECONDS_PER_ITER = pytest.StashKey[dict[str, float]]()


def mixed_profile(config: pytest.Config) -> MixedProfile:
    return MIXED_PROFILES[get_profile(config).name]


def mixed_tasks(profile: MixedProfile, cores: int | None = None) -> int:
    return profile.tasks_per_core * (cores or cpu_count())


def mixed_params(profile: MixedProfile, cpu_share: float, cpu_kind: str) -> dict[str, Any]:
    """The cell's workload parameters: the CPU part a fixed iteration count."""
    return {
        "cpu_share": cpu_share,
        "task_s": profile.task_s,
        "steps": profile.steps,
        "cpu_iters": mixed.cpu_iters_for(cpu_share, profile.task_s, cpu_kind),
        "cpu_kind": cpu_kind,
    }


def seconds_per_iter(config: pytest.Config, cpu_kind: str) -> float:
    """This session's measured seconds per iteration of ``cpu_kind`` (measured once)."""
    measured = config.stash.setdefault(SECONDS_PER_ITER, {})
    if cpu_kind not in measured:
        measured[cpu_kind] = mixed.measure_seconds_per_iter(cpu_kind)
    return measured[cpu_kind]


def ideal_seconds(
    params: dict[str, Any], tasks: int, per_iter: float, cores: int | None = None
) -> float:
    """The physical limit of a cell, from the measured CPU part and the nominal waits."""
    cpu_s, wait_s = mixed.mixed_parts(**params, seconds_per_iter=per_iter)
    return mixed.mixed_ideal_seconds(tasks, cpu_s, wait_s, cores or cpu_count())


def expected_seconds(
    model: str, workers: int, tasks: int, cpu_s: float, wait_s: float, cores: int, cpu_kind: str
) -> float:
    """A round's rough length, to size the rounds (not a figure: never reported)."""
    # How many tasks' CPU runs at once: one GIL, unless processes or GIL-free native work.
    spread = model in ("processes", "asyncio_processes") or (
        model == "threads" and cpu_kind == "native"
    )
    parallel = min(cores, workers) if spread else 1
    # How many tasks wait at once: a pool's workers; a scheduler's tasks all overlap.
    overlap = 1 if model == "serial" else workers if model in ("threads", "processes") else tasks
    return max(tasks * cpu_s / parallel, math.ceil(tasks / overlap) * (cpu_s + wait_s))


def rounds_for(profile: MixedProfile, expected_s: float) -> int:
    if profile.round_budget_s <= 0 or expected_s <= 0:
        return profile.min_rounds
    # (the small slack: 0.3 / 0.1 is 2.999... in floating point)
    fit = math.floor(profile.round_budget_s / expected_s + 1e-9)
    return max(profile.min_rounds, min(profile.max_rounds, fit))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.function.__name__ != "test_mixed":
        return
    profile = mixed_profile(metafunc.config)
    sweep = [
        pytest.param(kind, share, id=f"{kind}-{share}")
        for kind in mixed.CPU_KINDS
        for share in profile.shares.get(kind, ())
    ]
    metafunc.parametrize(("cpu_kind", "cpu_share"), sweep)
    parametrize_cells(metafunc, "mixed", (mixed_tasks(profile),))


def mixed_cell(
    config: pytest.Config, cpu_kind: str, cpu_share: float, model: str, tasks: int, workers: int
) -> Cell:
    profile = get_profile(config)
    sizes = MIXED_PROFILES[profile.name]
    params = mixed_params(sizes, cpu_share, cpu_kind)
    per_iter = seconds_per_iter(config, cpu_kind)
    cores = cpu_count()
    effective = 1 if model == "serial" else min(workers or tasks, tasks)
    # Rounds from the documented seconds per iteration, not this session's: a run's
    # rounds do not move with the host's speed.
    nominal_cpu_s, wait_s = mixed.mixed_parts(**params)
    expected = expected_seconds(model, effective, tasks, nominal_cpu_s, wait_s, cores, cpu_kind)
    cell = model_cell(
        profile,
        workload="mixed",
        model=model,
        tasks=tasks,
        workers=workers,
        params=params,
        rounds=rounds_for(sizes, expected),
        warmup=sizes.warmup,
        start_method=config.getoption("start_method"),
        group=f"mixed:{cpu_kind}",
    )
    info = {
        **cell.info,
        "cpu_share": float(cpu_share),
        "cpu_kind": cpu_kind,
        "seconds_per_iter": per_iter,
        "ideal_s": ideal_seconds(params, tasks, per_iter, cores),
    }
    return dataclasses.replace(cell, info=info)


@cell_builder(mixed_cell)
def test_mixed(
    benchmark: Any,
    trials: Trials,
    request: pytest.FixtureRequest,
    cpu_kind: str,
    cpu_share: float,
    model: str,
    tasks: int,
    workers: int,
) -> None:
    measure(benchmark, trials, request.node)
