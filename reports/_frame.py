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
from ._models import FACT_COLUMNS, ModelFacts, fact_columns, run_facts
from ._runs import Run

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
# Cells measured without a serial cell by design (start-up, echo servers, the scale and
# convoy groups, the tutorial's pools): no "no serial baseline" line for them.
NO_BASELINE_EXPECTED = frozenset({"startup", "echo"})
NO_BASELINE_FAMILIES = frozenset({"startup", "seed", "scale:*", "convoy"})
# Facts of the sweeps that have a chart of their own (docs/contract.md), as columns when
# a run has them: numbers, then words.
SWEEP_NUMBERS = (
    "cpu_share",
    "seconds_per_iter",
    "us_per_task",
    "cpu_us_per_task",
    "kb_per_task",
    "cpu_threads",
    "switch_interval_s",
)
SWEEP_WORDS = ("cpu_kind", "cpu_placement")
# The crossover cells also get ``cpu_share_measured`` (0-1), the share the work had on the
# host (serial's CPU time ÷ wall time, ``_figures.measured_share``), and
# ``cpu_share_source`` (one of ``_figures.SHARE_SOURCES``): ``cpu_share`` is what was asked.
# extra_info (or params) facts that tell apart cells of one workload, parameters, tasks,
# model and workers (the tutorial's pools gathered by callback, result() or
# as_completed): the frame keeps them in ``variant``, out of ``params``.
VARIANT_KEYS = ("collect",)

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
    "void_rounds",
    "cap_limit",
    "schema_version",
    "path",
    "environment",
    "variant",
    "sweep",
    # The model's facts from its run (``reports._models``): its place in charts and
    # tables, single- or multi-process, its colour seed.
    *FACT_COLUMNS,
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
    _impl, version, _free, gil = _figures.interpreter(run.machine_info)
    return version, _figures.interpreter_label(run.machine_info), gil


def sweep_of(group: Any, extra: dict[str, Any]) -> str:
    """The chart of its own a cell belongs to: ``crossover``, ``scale``, ``convoy`` or "".

    Those cells sweep one parameter over a wide range; the generic charts (headline,
    efficiency, wall time, CPU) would drown in them, so they are drawn there instead.
    """
    family = _figures.family(str(group or ""))
    if family == "convoy" or "cpu_placement" in extra:
        return "convoy"
    if family == "scale:*":
        return "scale"
    params = extra.get("params")
    share = extra.get("cpu_share", params.get("cpu_share") if isinstance(params, dict) else None)
    if extra.get("bound") == "mixed" and not math.isnan(_num(share)):
        return "crossover"
    return ""


def _variant(extra: dict[str, Any], params: dict[str, Any]) -> str:
    found = {key: extra.get(key, params.get(key)) for key in VARIANT_KEYS}
    return " ".join(f"{key}={value}" for key, value in found.items() if value is not None)


def _row(
    run: Run,
    bench: dict[str, Any],
    python: tuple[str, str, bool],
    serial: dict[_figures.BaselineKey, float],
    models: dict[str, ModelFacts],
    shares: dict[_figures.BaselineKey, float],
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
        # A variant (how the tutorial's pools gather results) is its own column, so the
        # cells that differ only by it share a panel and a bar group.
        "params": params_key({k: v for k, v in params.items() if k not in VARIANT_KEYS}),
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
        "void_rounds": _int(extra.get("void_rounds")),
        "cap_limit": _none_to_nan(_figures.cap_limit(extra)),
        "schema_version": run.schema_version,
        "path": str(run.path),
        "environment": _figures.environment_label(run.machine, run.machine_info),
        "variant": _variant(extra, params),
        "sweep": sweep_of(bench.get("group"), extra),
        **fact_columns(str(extra["model"]), models),
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
    for key in (*SWEEP_NUMBERS, *SWEEP_WORDS):
        value = extra.get(key, params.get(key))
        if value is not None:
            row[key] = _num(value) if key in SWEEP_NUMBERS else str(value)
    if row["sweep"] == "crossover":
        found = _figures.measured_share(extra, shares.get(_figures.baseline_key(extra)))
        if found is not None:
            row["cpu_share_measured"], row["cpu_share_source"] = found
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
    if row["variant"]:
        parts.append(f"[{row['variant']}]")
    return " ".join(parts)


def _fmt_int(value: Any) -> str:
    number = _num(value)
    return "?" if math.isnan(number) else str(int(number))


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
        models = run_facts(run.machine_info)
        shares = _figures.serial_shares(run.benchmarks)
        rows.extend(_row(run, bench, python, serial, models, shares) for bench in run.benchmarks)
    if not rows:
        return empty_frame()
    frame = pd.DataFrame.from_records(rows)
    for column in (*NET_COLUMNS, *SWEEP_NUMBERS, "cpu_share_measured"):
        if column in frame.columns:
            frame[column] = frame[column].astype("float64")
    frame["datetime"] = pd.to_datetime(
        frame["datetime"], utc=True, errors="coerce", format="ISO8601"
    )
    integers = (
        "run_number",
        "tasks",
        "workers",
        "rounds",
        "cpu_usable",
        "workers_cap",
        "void_rounds",
    )
    for column in integers:
        frame[column] = frame[column].astype("Int64")
    frame["gil_enabled"] = frame["gil_enabled"].astype("bool")
    frame["unstable"] = frame["unstable"].astype("bool")
    for column in ("ideal_s", "serial_median_s", "speedup", "efficiency", "spread", "cap_limit"):
        frame[column] = frame[column].astype("float64")
    frame["cell"] = frame.apply(_cell_label, axis=1) if len(frame) else []
    ordered = [c for c in COLUMNS if c in frame.columns]
    ordered += [c for c in frame.columns if c not in ordered]
    frame = frame[ordered]
    frame["model_order"] = frame["model_order"].astype("float64")
    frame["colour_seed"] = frame["colour_seed"].astype("Int64")
    frame["_rank"] = frame["model_order"].fillna(math.inf)
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
        & ~frame["group"].map(lambda g: _figures.family(str(g)) in NO_BASELINE_FAMILIES)
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
