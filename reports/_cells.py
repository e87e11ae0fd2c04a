"""Which cells a chart or table shows: the latest run, the generic cells, the headline's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

SEED_WORKLOADS = ("seed_cpu", "seed_io")
SPECIAL_WORKLOADS = frozenset({"startup", *SEED_WORKLOADS})


def latest_run(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the most recent run in ``frame`` (by datetime, then run number)."""
    if frame.empty:
        return frame
    order = (
        frame[["run_id", "datetime", "run_number"]]
        .drop_duplicates("run_id")
        .sort_values(["datetime", "run_number", "run_id"], na_position="first")
    )
    return frame[frame["run_id"] == order["run_id"].iloc[-1]]


def latest_per_workload(frame: pd.DataFrame) -> pd.DataFrame:
    """For each workload, the rows of the most recent run that has it."""
    if frame.empty:
        return frame
    return pd.concat([latest_run(rows) for _w, rows in frame.groupby("workload", sort=True)])


def run_note(rows: pd.DataFrame) -> str:
    if rows.empty:
        return ""
    first = rows.iloc[0]
    when = first["datetime"]
    when_text = when.strftime("%Y-%m-%d %H:%M UTC") if isinstance(when, pd.Timestamp) else "?"
    return f"run {first['run_id']} ({first['machine']}, {first['interpreter']}, {when_text})"


def _params(params: str) -> dict[str, Any]:
    try:
        found = json.loads(params)
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def varying_keys(rows: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Per workload of ``rows``, the parameters whose value differs between its cells: the
    ones a label must show; the rest go to the caption (``shared_caption``)."""
    out = {}
    for workload, cells in rows.groupby("workload", sort=True):
        sets = [_params(p) for p in cells["params"].drop_duplicates()]
        keys = sorted({key for found in sets for key in found})
        out[str(workload)] = tuple(
            key for key in keys if len({repr(found.get(key)) for found in sets}) > 1
        )
    return out


def short_params(params: str, keys: Sequence[str]) -> str:
    """The ``keys`` of ``params`` as a label: a word by itself (``fresh``), a number
    with its name (``k=5``)."""
    found = _params(params)
    return " ".join(
        str(found[key]) if isinstance(found[key], str) else f"{key}={found[key]}"
        for key in keys
        if key in found
    )


def shared_caption(rows: pd.DataFrame) -> str:
    """``Parameters: cpu_loop n=5000000 yield_every=1000; io_socket delay=0.005 k=5``: what
    every cell of a workload in ``rows`` shares, which its labels leave out."""
    varying = varying_keys(rows)
    parts = []
    for workload, cells in rows.groupby("workload", sort=True):
        sets = [_params(p) for p in cells["params"].drop_duplicates()]
        shared = {key: value for key, value in sets[0].items() if key not in varying[workload]}
        if shared:
            parts.append(f"{workload} {' '.join(f'{k}={v}' for k, v in sorted(shared.items()))}")
    return "Parameters: " + "; ".join(parts) + "." if parts else ""


def tasks_text(tasks: Any) -> str:
    """``1 task``, ``500 tasks``."""
    return f"{int(tasks):,} task{'s' if int(tasks) != 1 else ''}"


def group_label(workload: str, params: str, tasks: Any, keys: Sequence[str] = ()) -> str:
    """``io_socket`` / ``fresh`` / ``500 tasks``: the workload, what tells its groups
    apart (``keys``), the task count, one per line."""
    lines = [str(workload), short_params(params, keys)]
    if pd.notna(tasks):
        lines.append(tasks_text(tasks))
    return "\n".join(line for line in lines if line)


def generic(rows: pd.DataFrame) -> pd.DataFrame:
    """The cells of the generic charts: not those of a sweep with a chart of its own
    (crossover, scale, convoy; see ``reports._frame.sweep_of``)."""
    if "sweep" not in rows.columns:
        return rows
    return rows[rows["sweep"].fillna("") == ""]


def headline_cells(rows: pd.DataFrame, value: str = "speedup") -> pd.DataFrame:
    """Per workload and parameters, the largest task count; per model its best workers.

    Only cells that have ``value``: the efficiency chart also shows cells measured
    without a serial cell (the tutorial's pools), which have an ideal but no speedup.
    """
    rows = generic(rows)
    rows = rows[
        rows["bound"].isin(["cpu", "io", "mixed"])
        & ~rows["workload"].isin(SPECIAL_WORKLOADS)
        & rows[value].notna()
    ]
    if rows.empty:
        return rows
    top = rows.groupby(["workload", "params"])["tasks"].transform("max")
    rows = rows[rows["tasks"] == top]
    best = rows.sort_values(value, ascending=False, kind="stable")
    return best.drop_duplicates(["workload", "params", "model"]).copy()


def latest_sweep(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The cells of one sweep in the most recent run that has it (as its chart)."""
    if frame.empty or "sweep" not in frame.columns:
        return frame.iloc[:0]
    return latest_run(frame[frame["sweep"] == name])


def of_sweep(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one sweep (``crossover``, ``scale``, ``convoy``) among ``rows``."""
    if "sweep" not in rows.columns:
        return rows.iloc[:0]
    return rows[rows["sweep"] == name]
