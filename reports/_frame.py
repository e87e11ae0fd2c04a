"""Saved runs -> one tidy DataFrame: a row per benchmark per run, speedup and efficiency.

``build_frame(runs)`` is the one place that turns :class:`reports._runs.Run` objects
into columns.  The derived columns (serial baseline, ideal, speedup, efficiency, spread)
come from :mod:`reports._figures`, which the regression check uses too; they follow
docs/contract.md:

- a cell's serial baseline is the ``serial`` cell of the same run, workload, params and
  tasks; ``speedup = serial median / median``;
- ``ideal_s`` is taken from ``extra_info`` when given, else (``bound == "cpu"`` only)
  ``serial median / min(cpu_usable, tasks)``, the same for every model;
- ``efficiency = ideal_s / median_s`` (1.0 is the physical limit);
- ``spread = IQR / median``; ``unstable`` when it is above ``UNSTABLE_SPREAD``;
- ``cap_limit``: the best efficiency a pool capped by the harness (``workers_cap``)
  can reach, when the cap is below the task count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from . import _figures
from ._figures import params_key
from ._runs import Run

# Registry order: charts and tables list models in this order, then net styles, then
# anything unknown alphabetically.
MODEL_ORDER = (
    "serial",
    "generator",
    "threads",
    "processes",
    "gevent",
    "asyncio",
    "uvloop",
    "asyncio_processes",
    "interpreters",
    "dask",
)
BOUND_ORDER = ("cpu", "io", "mixed", "net")
NET_COLUMNS = (
    "payload",
    "connections",
    "requests",
    "throughput_rps",
    "throughput_mb_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "errors",
    "server_cpu_s",
    "client_cpu_s",
    "client_processes",
)
# Workloads whose non-serial cells are expected to have a serial baseline in the run.
NO_BASELINE_EXPECTED = frozenset({"startup", "echo"})
CELL_KEYS = ("workload", "params", "tasks", "model", "workers", "start_method")
BASELINE_KEYS = ("run_id", "workload", "params", "tasks")

COLUMNS = (
    "run_id",
    "run_number",
    "datetime",
    "commit",
    "machine",
    "python",
    "interpreter",
    "gil_enabled",
    "cpu_usable",
    "group",
    "name",
    "fullname",
    "bound",
    "workload",
    "model",
    "flavour",
    "tasks",
    "workers",
    "params",
    "start_method",
    "profile",
    "cell",
    "median_s",
    "iqr_s",
    "q1_s",
    "q3_s",
    "mean_s",
    "stddev_s",
    "min_s",
    "max_s",
    "rounds",
    "cpu_s",
    "ideal_s",
    "serial_median_s",
    "speedup",
    "efficiency",
    "spread",
    "unstable",
    "workers_cap",
    "cap_limit",
    "schema_version",
    "path",
)


def _num(value: Any) -> float:
    """A float, or NaN for anything missing or not a number (never raises)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if math.isnan(number) else int(number)


def params_label(params: str) -> str:
    """``{"d":0.02,"k":2}`` -> ``d=0.02 k=2`` for titles and tables."""
    try:
        data = json.loads(params)
    except (TypeError, ValueError):
        return str(params)
    if not isinstance(data, dict) or not data:
        return ""
    return " ".join(f"{key}={value}" for key, value in data.items())


def boundbench_info(machine_info: dict[str, Any]) -> dict[str, Any]:
    """``machine_info["boundbench"]``, or ``{}`` when a run lacks it."""
    info = machine_info.get("boundbench")
    return info if isinstance(info, dict) else {}


def _interpreter(run: Run) -> tuple[str, str, bool]:
    """(python version, interpreter label, gil enabled) from the run's machine_info."""
    info = run.machine_info
    bb = boundbench_info(info)
    version = str(bb.get("python_version") or info.get("python_version") or "?")
    impl = str(bb.get("python_implementation") or info.get("python_implementation") or "Python")
    free = bool(bb.get("free_threading_build", False))
    gil = bb.get("gil_enabled")
    gil_on = True if gil is None else bool(gil)
    label = f"{impl} {version}{'t' if free else ''}"
    if free:
        label += " (GIL on)" if gil_on else " (GIL off)"
    return version, label, gil_on


def _row(
    run: Run,
    bench: dict[str, Any],
    python: tuple[str, str, bool],
    serial: dict[_figures.BaselineKey, float],
) -> dict[str, Any]:
    extra = bench.get("extra_info") or {}
    stats = bench.get("stats") or {}
    params = extra.get("params")
    if not isinstance(params, dict):
        params = {}
    start_method = extra.get("start_method") or params.get("start_method")
    q1, q3 = _num(stats.get("q1")), _num(stats.get("q3"))
    iqr = _num(stats.get("iqr"))
    if math.isnan(iqr) and not (math.isnan(q1) or math.isnan(q3)):
        iqr = q3 - q1
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "run_number": run.number,
        "datetime": run.datetime,
        "commit": run.commit,
        "machine": run.machine,
        "python": python[0],
        "interpreter": python[1],
        "gil_enabled": python[2],
        "cpu_usable": _figures.usable_cpus(run.machine_info),
        "group": bench.get("group"),
        "name": bench.get("name"),
        "fullname": bench.get("fullname") or bench.get("name"),
        "bound": str(extra.get("bound") or "?"),
        "workload": str(extra["workload"]),
        "model": str(extra["model"]),
        "flavour": extra.get("flavour"),
        "tasks": _int(extra.get("tasks")),
        "workers": _int(extra.get("workers")),
        "params": params_key(params),
        "start_method": None if start_method is None else str(start_method),
        "profile": extra.get("profile"),
        "median_s": _num(stats.get("median")),
        "iqr_s": iqr,
        "q1_s": q1,
        "q3_s": q3,
        "mean_s": _num(stats.get("mean")),
        "stddev_s": _num(stats.get("stddev")),
        "min_s": _num(stats.get("min")),
        "max_s": _num(stats.get("max")),
        "rounds": _int(stats.get("rounds")),
        "cpu_s": _num(extra.get("cpu_s")),
        "workers_cap": _int(extra.get("workers_cap")),
        "cap_limit": _none_to_nan(_figures.cap_limit(extra)),
        "schema_version": run.schema_version,
        "path": str(run.path),
    }
    median = row["median_s"] if math.isfinite(row["median_s"]) and row["median_s"] > 0 else None
    reference = serial.get(_figures.baseline_key(extra))
    ideal = _figures.ideal_time(extra, reference, row["cpu_usable"])
    spread = _figures.relative_spread(stats)
    row["ideal_s"] = _none_to_nan(ideal)
    row["serial_median_s"] = _none_to_nan(reference)
    row["speedup"] = _none_to_nan(_figures.ratio(reference, median))
    row["efficiency"] = _none_to_nan(_figures.ratio(ideal, median))
    row["spread"] = _none_to_nan(spread)
    row["unstable"] = _figures.is_unstable(spread)
    if row["bound"] == "net" or any(key in extra for key in NET_COLUMNS):
        for key in NET_COLUMNS:
            row[key] = _num(extra.get(key))
        if math.isnan(row["connections"]):
            row["connections"] = _num(row["tasks"])
        if math.isnan(row["payload"]):
            row["payload"] = _num(params.get("payload"))
    return row


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _cell_label(row: pd.Series) -> str:
    parts = [str(row["workload"])]
    label = params_label(row["params"])
    if label:
        parts.append(f"[{label}]")
    parts.append(f"tasks={_fmt_int(row['tasks'])}")
    parts.append(f"{row['model']}×{_fmt_int(row['workers'])}")
    if isinstance(row["start_method"], str) and row["start_method"]:
        parts.append(f"({row['start_method']})")
    return " ".join(parts)


def _fmt_int(value: Any) -> str:
    number = _num(value)
    return "?" if math.isnan(number) else str(int(number))


def model_sort_key(name: str) -> tuple[int, str]:
    try:
        return MODEL_ORDER.index(name), name
    except ValueError:
        return len(MODEL_ORDER), name


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS})


def build_frame(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per benchmark per run, with speedup over serial and efficiency vs ideal.

    Columns: see ``COLUMNS`` (plus the network columns in ``NET_COLUMNS`` when any run
    has network cells).  Missing numbers are NaN; ``params`` is a JSON string with
    sorted keys, so it can be grouped on and compared across runs.
    """
    rows: list[dict[str, Any]] = []
    for run in runs:
        python = _interpreter(run)
        serial = _figures.serial_medians(run.benchmarks)
        rows.extend(_row(run, bench, python, serial) for bench in run.benchmarks)
    if not rows:
        return empty_frame()
    frame = pd.DataFrame.from_records(rows)
    for column in NET_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].astype("float64")
    frame["datetime"] = pd.to_datetime(
        frame["datetime"], utc=True, errors="coerce", format="ISO8601"
    )
    for column in ("run_number", "tasks", "workers", "rounds", "cpu_usable", "workers_cap"):
        frame[column] = frame[column].astype("Int64")
    frame["gil_enabled"] = frame["gil_enabled"].astype("bool")
    frame["unstable"] = frame["unstable"].astype("bool")
    for column in ("ideal_s", "serial_median_s", "speedup", "efficiency", "spread", "cap_limit"):
        frame[column] = frame[column].astype("float64")
    frame["cell"] = frame.apply(_cell_label, axis=1) if len(frame) else []
    ordered = [c for c in COLUMNS if c in frame.columns]
    ordered += [c for c in frame.columns if c not in ordered]
    frame = frame[ordered]
    frame["_rank"] = frame["model"].map(lambda name: model_sort_key(name)[0])
    frame = frame.sort_values(
        ["datetime", "run_number", "run_id", "workload", "params", "tasks", "_rank", "model"],
        na_position="first",
        kind="stable",
    )
    return frame.drop(columns="_rank").reset_index(drop=True)


def missing_baselines(frame: pd.DataFrame) -> list[str]:
    """One line per run and workload whose cells lack the serial cell they compare with."""
    if frame.empty:
        return []
    lacking = frame[
        frame["serial_median_s"].isna()
        & (frame["model"] != "serial")
        & ~frame["workload"].isin(NO_BASELINE_EXPECTED)
        & (frame["bound"] != "net")
    ]
    problems = []
    for (path, workload), cells in lacking.groupby(["path", "workload"], sort=True):
        example = cells.iloc[0]
        what = params_label(example["params"])
        problems.append(
            f"{path}: no serial baseline for {len(cells)} {workload} cell(s)"
            f" (e.g. {what + ' ' if what else ''}tasks={_fmt_int(example['tasks'])});"
            " their speedup and efficiency are left empty"
        )
    return problems
