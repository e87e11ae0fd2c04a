"""``python -m reports check --calibrate RUN RUN ...``: minimum effects from measured noise.

Given runs of *unchanged* code, every change of a cell's median between two of them is
noise.  Per group family (``cpu_loop:*``, ``seed``, ...; see ``_figures.family``) this
takes the changes of every cell between every pair of runs and suggests a minimum effect
of ``margin`` x their 95th percentile, and never less than the largest change seen: a
threshold any of the calibration pairs would have crossed would flag a no-op change.

The check's rank test sees only the noise within a run (all rounds of a cell come from
one process within seconds); the noise between runs, which the host's slow phases make,
is what the minimum effect must cover.  That is why it is measured here, between runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import _figures
from ._compare import (
    DEFAULT_SHIFT_EFFECT,
    InputError,
    Settings,
    compare_runs,
    environment_label,
    measures,
    same_interpreter,
    same_machine,
)
from ._runs import Run

DEFAULT_MARGIN = 1.5
RECOMMENDED_RUNS = 4


@dataclass(frozen=True)
class FamilyNoise:
    family: str
    cells: int
    changes: int
    p95: float
    largest: float
    # (cell name, change) of the largest change
    worst: tuple[str, float]
    suggested: float


@dataclass(frozen=True)
class ShiftNoise:
    # "cpu_loop:*" (the family) or "echo:* select" (a model within its family)
    pattern: str
    largest: float
    suggested: float


def shift_noise(runs: Sequence[Run], *, mode: str, margin: float) -> list[ShiftNoise]:
    """The largest shift of each family and model between any two runs, and its effect.

    A shift is a median over many cells, so it is far steadier than one cell; what moves
    it between unchanged runs is the host as a whole (a slower minute for one batch).
    Each family and each model gets its own line: one model may run in a batch of its
    own (the spinning echo server) and move more than the others.  The suggestion is
    never below the check's default shift effect, since a few pairs see few phases.
    """
    largest: dict[str, float] = {}
    # Both orders: a shift is a median of ratios, and the median of the inverses is not
    # the inverse of the median when a family has an even number of cells.
    for first, second in itertools.permutations(runs, 2):
        try:
            found = compare_runs(first, second, Settings(mode=mode, min_effect=0.0)).shifts
        except InputError:
            continue
        for shift in found:
            change = max(shift.worse_by, 1 / shift.worse_by) - 1.0
            largest[shift.label] = max(largest.get(shift.label, 0.0), change)
    # Models first: the family's pattern "echo:*" also matches "echo:* select".
    order = sorted(largest, key=lambda label: (" " not in label, label))
    return [
        ShiftNoise(
            label,
            largest[label],
            max(DEFAULT_SHIFT_EFFECT, _round_up_percent(margin * largest[label])),
        )
        for label in order
    ]


def _round_up_percent(value: float) -> float:
    return max(0.01, math.ceil(value * 100 - 1e-9) / 100)


def calibrate(
    runs: Sequence[Run], *, mode: str = "time", margin: float = DEFAULT_MARGIN
) -> list[FamilyNoise]:
    """The noise per group family over every pair of ``runs`` (InputError if none)."""
    if len(runs) < 2:
        raise InputError(
            f"--calibrate needs at least 2 runs of unchanged code, got {len(runs)}"
            f" ({RECOMMENDED_RUNS} or more recommended)"
        )
    measured = [measures(run, mode)[0] for run in runs]
    changes: dict[str, list[tuple[str, float]]] = {}
    cells: dict[str, set[str]] = {}
    for first, second in itertools.combinations(measured, 2):
        for key in sorted(set(first) & set(second)):
            a, b = first[key].value, second[key].value
            change = max(a, b) / min(a, b) - 1.0
            fam = _figures.family(first[key].group)
            changes.setdefault(fam, []).append((first[key].name, change))
            cells.setdefault(fam, set()).add(key)
    if not changes:
        raise InputError(
            f"--calibrate: the {len(runs)} runs have no cells in common that can be"
            f" measured in {mode} mode"
        )
    out = []
    for fam in sorted(changes):
        values = np.array([change for _name, change in changes[fam]])
        p95 = float(np.percentile(values, 95))
        worst = max(changes[fam], key=lambda item: item[1])
        out.append(
            FamilyNoise(
                family=fam,
                cells=len(cells[fam]),
                changes=len(values),
                p95=p95,
                largest=worst[1],
                worst=worst,
                suggested=_round_up_percent(max(margin * p95, worst[1])),
            )
        )
    return out


def check_environments(
    runs: Sequence[Run], *, any_machine: bool, any_python: bool = False
) -> list[str]:
    """Warnings, or InputError when runs of different machines or interpreters would be
    mixed unasked (``--any-machine``, ``--any-python``)."""
    machines = [run for run in runs[1:] if not same_machine(runs[0], run)]
    pythons = [run for run in runs[1:] if not same_interpreter(runs[0], run)]
    others = [*machines, *(run for run in pythons if all(run is not m for m in machines))]
    if not others:
        return []
    message = (
        f"--calibrate: {len(others)} of the {len(runs)} runs come from another machine or"
        f" interpreter than {runs[0].path} ({environment_label(runs[0])}), e.g."
        f" {others[0].path} ({environment_label(others[0])})"
    )
    missing = [
        flag
        for flag, needed, given in (
            ("--any-machine", machines, any_machine),
            ("--any-python", pythons, any_python),
        )
        if needed and not given
    ]
    if missing:
        raise InputError(
            message + f"; calibrate per machine and interpreter, or pass {' '.join(missing)}"
        )
    return [message + " (mixed as asked)"]


def render(
    runs: Sequence[Run],
    noise: Sequence[FamilyNoise],
    *,
    mode: str,
    margin: float,
    warnings: Sequence[str] = (),
    shifts: Sequence[ShiftNoise] = (),
    profile: str | None = None,
) -> str:
    # Tables for a profile other than the default go under its own name.
    prefix = f"profile.{profile}." if profile and profile != "standard" else ""
    pairs = len(runs) * (len(runs) - 1) // 2
    lines = [
        f"boundbench check --calibrate: {len(runs)} runs of unchanged code"
        f" ({environment_label(runs[0])}), {pairs} pairs, mode {mode}",
        "noise = change of a cell's median between two runs, over every cell and pair;"
        f" suggested minimum effect = {margin:g} x its 95th percentile, at least its maximum",
    ]
    if len(runs) < RECOMMENDED_RUNS:
        warnings = [
            *warnings,
            f"only {len(runs)} runs: {RECOMMENDED_RUNS} or more give a steadier estimate",
        ]
    lines.extend(f"warning: {text}" for text in warnings)
    lines.append("")
    head = ("family", "cells", "changes", "p95", "max", "suggested", "largest change in")
    table = [
        (
            item.family,
            str(item.cells),
            str(item.changes),
            f"{item.p95:.1%}",
            f"{item.largest:.1%}",
            f"{item.suggested:.0%}",
            item.worst[0],
        )
        for item in noise
    ]
    widths = [max(len(row[i]) for row in (head, *table)) for i in range(len(head))]
    for row in (head, *table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines += [
        "",
        "# Paste into pyproject.toml (replaces the table of the same name):",
        f"# measured on {environment_label(runs[0])}, {len(runs)} runs, mode {mode},"
        f" margin {margin:g}",
        f"[tool.boundbench.check.{prefix}min-effect-group]",
    ]
    for item in noise:
        lines.append(
            f'"{item.family}" = {item.suggested:.2f}  # p95 {item.p95:.1%}, max'
            f" {item.largest:.1%} ({item.cells} cells, {item.changes} changes)"
        )
    if shifts:
        lines += [
            "",
            "# Shifts: the median change of a family, and of each model against its family;",
            f"# suggested = {margin:g} x the largest seen between two runs, at least"
            f" {DEFAULT_SHIFT_EFFECT:.0%}.",
            f"[tool.boundbench.check.{prefix}shift-effect-group]",
        ]
        lines.extend(
            f'"{item.pattern}" = {item.suggested:.2f}  # max {item.largest:.1%}' for item in shifts
        )
    return "\n".join(lines) + "\n"
