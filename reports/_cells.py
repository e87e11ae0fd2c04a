"""Which cells a chart or table shows: the latest run, the generic cells, the headline's."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ._frame import params_label

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


def group_label(workload: str, params: str, tasks: Any, many_params: bool) -> str:
    label = str(workload)
    if many_params:
        extra = params_label(params)
        if extra:
            label += "\n" + extra
    return f"{label}\n{int(tasks)} tasks" if pd.notna(tasks) else label


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
