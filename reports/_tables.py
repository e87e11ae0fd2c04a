"""The tables people read, formatted: results, echo, best model, scale, convoy, machines;
and the notes about cells a reader must know (unstable, void rounds, capped pools).

The page (``_page``) renders them as HTML, the summary (``_summary``) as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ._best import runner_up_text
from ._draw import fmt_ratio, fmt_seconds, fmt_sig, share_text
from ._figures import UNSTABLE_SPREAD, run_settings
from ._frame import boundbench_info, params_label
from ._models import model_rank
from ._runs import Run
from ._sweeps import convoy_table, scale_points


def _sig(value: Any) -> str:
    """A figure with its three significant digits (0.0968, 1.31, 130), "–" if none."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return fmt_sig(number)


def _num(value: Any, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return format(number, fmt)


def result_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The columns people read, formatted, in registry order."""
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(_r=model_rank(rows))
    rows = rows.sort_values(["bound", "workload", "params", "tasks", "_r", "workers"])
    table = pd.DataFrame(
        {
            "bound": rows["bound"],
            "workload": rows["workload"],
            "parameters": [
                " ".join(part for part in (params_label(p), v) if part)
                for p, v in zip(rows["params"], rows["variant"].fillna(""), strict=True)
            ]
            if "variant" in rows
            else rows["params"].map(params_label),
            "tasks": rows["tasks"].map(lambda v: _num(v, ".0f")),
            "model": rows["model"],
            "workers": rows["workers"].map(lambda v: _num(v, ".0f")),
            "median": rows["median_s"].map(fmt_seconds),
            "IQR": rows["iqr_s"].map(fmt_seconds)
            + rows["unstable"].map(lambda u: " ⚠ unstable" if u else ""),
            "rounds": rows["rounds"].map(lambda v: _num(v, ".0f")),
            "CPU": rows["cpu_s"].map(fmt_seconds),
            "ideal": rows["ideal_s"].map(fmt_seconds),
            "speedup": rows["speedup"].map(fmt_ratio),
            "efficiency": rows["efficiency"].map(
                lambda v: _num(v * 100, ".0f") + "%" if pd.notna(v) else "–"
            ),
        }
    )
    if "start_method" in rows and rows["start_method"].notna().any():
        table.insert(6, "start method", rows["start_method"].fillna(""))
    return table


def net_table(rows: pd.DataFrame) -> pd.DataFrame:
    if "throughput_rps" not in rows.columns:
        return pd.DataFrame()
    rows = rows[rows["bound"] == "net"]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.sort_values(["payload", "connections", "model"])
    return pd.DataFrame(
        {
            "style": rows["model"],
            "payload (B)": rows["payload"].map(lambda v: _num(v, ".0f")),
            "connections": rows["connections"].map(lambda v: _num(v, ".0f")),
            "requests": rows["requests"].map(lambda v: _num(v, ".0f")),
            "throughput (req/s)": rows["throughput_rps"].map(lambda v: _num(v, ",.0f")),
            "MB/s": rows["throughput_mb_s"].map(_sig),
            "p50 (ms)": rows["latency_p50_ms"].map(_sig),
            "p99 (ms)": rows["latency_p99_ms"].map(_sig),
            "p99.9 (ms)": rows["latency_p999_ms"].map(_sig),
            "errors": rows["errors"].map(lambda v: _num(v, ".0f")),
            "server CPU": rows["server_cpu_s"].map(fmt_seconds),
        }
    )


def work_label(row: Any) -> str:
    """``python CPU 13% (asked 25%)`` for a crossover cell (the share the work had, and
    the one asked for when they differ), else its parameters."""
    share = row.get("cpu_share") if hasattr(row, "get") else None
    if isinstance(share, float) and math.isfinite(share):
        kind = row.get("cpu_kind")
        asked = share_text(share * 100, "%")
        had = row.get("cpu_share_measured")
        text = (
            share_text(had * 100, "%") if isinstance(had, float) and math.isfinite(had) else asked
        )
        return f"{kind if isinstance(kind, str) else '?'} CPU {text}" + (
            f" (asked {asked})" if text != asked else ""
        )
    return params_label(row["params"])


def best_table(best: pd.DataFrame) -> pd.DataFrame:
    """``reports._best.best_models`` as people read it (with the run when several)."""
    if best.empty:
        return pd.DataFrame()
    interval = [
        f"{fmt_ratio(low)[:-1]}–{fmt_ratio(high)}"
        if math.isfinite(low) and math.isfinite(high)
        else "–"
        for low, high in zip(best["ci_low"], best["ci_high"], strict=True)
    ]
    rows = [row for _i, row in best.iterrows()]
    table = pd.DataFrame(
        {
            "workload": best["workload"],
            "work": [work_label(row) for row in rows],
            "tasks": best["tasks"].map(lambda v: _num(v, ".0f")),
            "best model": best["model"],
            "workers": best["workers"].map(lambda v: _num(v, ".0f")),
            "median": best["median_s"].map(fmt_seconds),
            "speedup": best["speedup"].map(fmt_ratio),
            "95% CI": interval,
            "runner-up": [runner_up_text(row) for row in rows],
        }
    )
    if best["run_id"].nunique() > 1:
        table.insert(0, "run", best["run_id"])
    return table


def scale_table(rows: pd.DataFrame) -> pd.DataFrame:
    points = scale_points(rows)
    if points.empty:
        return pd.DataFrame()
    points = points.assign(_r=model_rank(points))
    points = points.sort_values(["scale_variant", "_r", "model", "tasks"])

    def column(name: str, fmt: str) -> Any:
        if name not in points.columns:
            return ["–"] * len(points)
        return points[name].map(lambda v: _num(v, fmt))

    return pd.DataFrame(
        {
            "variant": points["scale_variant"],
            "model": points["model"],
            "tasks": points["tasks"].map(lambda v: _num(v, ",.0f")),
            "workers": points["workers"].map(lambda v: _num(v, ",.0f")),
            "median": points["median_s"].map(fmt_seconds),
            "ideal": points["ideal_s"].map(fmt_seconds),
            "efficiency": points["efficiency"].map(
                lambda v: _num(v * 100, ".0f") + "%" if pd.notna(v) else "–"
            ),
            "µs/task": column("us_per_task", ".3g"),
            "CPU µs/task": column("cpu_us_per_task", ".3g"),
            "KB/task": column("kb_per_task", ".3g"),
        }
    )


def convoy_page_table(rows: pd.DataFrame) -> pd.DataFrame:
    points = convoy_table(rows)
    if points.empty:
        return pd.DataFrame()

    def column(name: str, fmt: str) -> Any:
        if name not in points.columns:
            return ["–"] * len(points)
        return points[name].map(lambda v: _num(v, fmt))

    return pd.DataFrame(
        {
            "CPU work in": points["cpu_placement"],
            "switch interval": points["switch_interval_s"].map(lambda v: f"{v * 1e3:g} ms"),
            "CPU threads": points["cpu_threads"].map(lambda v: _num(v, ".0f")),
            "throughput (req/s)": column("throughput_rps", ",.0f"),
            "p50 (ms)": points["latency_p50_ms"].map(_sig)
            if "latency_p50_ms" in points
            else ["–"] * len(points),
            "p99 (ms)": points["latency_p99_ms"].map(_sig)
            if "latency_p99_ms" in points
            else ["–"] * len(points),
            "slowdown": points["slowdown"].map(
                lambda v: _num(v, ".1f") + "×" if pd.notna(v) else "–"
            ),
        }
    )


NUMERIC_HEADS = frozenset(
    {"tasks", "workers", "median", "IQR", "rounds", "CPU", "ideal", "speedup", "efficiency",
     "payload (B)", "connections", "requests", "throughput (req/s)", "MB/s", "p50 (ms)",
     "p99 (ms)", "p99.9 (ms)", "errors", "server CPU", "benchmarks", "95% CI",
     "µs/task", "CPU µs/task", "KB/task", "CPU threads", "switch interval", "slowdown",
     "IQR ÷ median"}
)  # fmt: skip


UNSTABLE_PREFIX = "unstable: "


def unstable_lines(rows: pd.DataFrame) -> list[str]:
    """One line per unstable cell (rounds spread over the limit), like pyperf's warning;
    the most spread first."""
    if rows.empty or "unstable" not in rows:
        return []
    shaky = rows[rows["unstable"]].sort_values("spread", ascending=False)
    return [
        f"{UNSTABLE_PREFIX}{row.cell} in run {row.run_id}: IQR {row.spread:.0%} of its median"
        f" ({fmt_seconds(row.median_s)}, {row.rounds} rounds), above {UNSTABLE_SPREAD:.0%};"
        " rerun it before reading much into it"
        for row in shaky.itertuples()
    ]


def unstable_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """The cells whose rounds spread over the limit, the most spread first."""
    if rows.empty or "unstable" not in rows:
        return rows.iloc[:0]
    return rows[rows["unstable"]].sort_values("spread", ascending=False, kind="stable")


def unstable_table(rows: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(one line of what the table means, one short row per unstable cell of ``rows``)."""
    shaky = unstable_cells(rows)
    if shaky.empty:
        return "", pd.DataFrame()
    runs = ", ".join(dict.fromkeys(shaky["run_id"]))
    one = len(shaky) == 1
    lead = (
        f"{len(shaky)} cell{'' if one else 's'} of run {runs}"
        f" spread{'s its' if one else ' their'} rounds by more than {UNSTABLE_SPREAD:.0%} of"
        f" {'its' if one else 'their'} median (IQR ÷ median): rerun"
        f" {'it' if one else 'them'} before reading much into"
        f" {'its figure' if one else 'their figures'}."
    )
    table = pd.DataFrame(
        {
            "cell": shaky["cell"],
            "IQR ÷ median": shaky["spread"].map(lambda v: _num(v * 100, ".0f") + "%"),
            "rounds": shaky["rounds"].map(lambda v: _num(v, ".0f")),
        }
    )
    return lead, table


def void_lines(rows: pd.DataFrame) -> list[str]:
    """Cells that threw rounds away as void (``extra_info["void_rounds"]``) and ran them
    again: their figure stands, but the reader should know the host interfered."""
    if rows.empty or "void_rounds" not in rows:
        return []
    voided = rows[rows["void_rounds"].fillna(0) > 0]
    return [
        f"{row.cell} in run {row.run_id}: {row.void_rounds} void round(s) thrown away and"
        " run again (they measured something other than the cell, such as a CPU worker"
        " the GIL never let run); the figure is from the rounds kept"
        for row in voided.itertuples()
    ]


def capped_lines(rows: pd.DataFrame) -> list[str]:
    """Pools the harness capped below the task count: say so, not the model's cost.  One
    line per model, workload, cap and task count (cells that differ only in their
    parameters, io_socket's kept and fresh connections, share it)."""
    if rows.empty or "cap_limit" not in rows:
        return []
    capped = rows[rows["cap_limit"].notna()]
    key = ["model", "workload", "workers_cap", "tasks", "cap_limit"]
    lines = []
    for (model, workload, cap, tasks, limit), cells in capped.groupby(key, sort=False):
        count = f" ({len(cells)} cells)" if len(cells) > 1 else ""
        lines.append(
            f"{model} on {workload}{count}: the harness caps this pool at {cap} workers for"
            f" {tasks} tasks, so it can reach at most {limit:.0%} efficiency; the gap to the"
            " ideal is the cap's, not the model's cost"
        )
    return lines


def machine_table(runs: Sequence[Run], frame: pd.DataFrame) -> pd.DataFrame:
    counts = frame.groupby("run_id").size() if not frame.empty else pd.Series(dtype="int64")
    rows = []
    for run in runs:
        info = run.machine_info
        bb = boundbench_info(info)
        cpu: dict[str, Any] = info["cpu"] if isinstance(info.get("cpu"), dict) else {}
        rows.append(
            {
                "run": run.run_id,
                "datetime": run.datetime or "",
                "commit": (run.commit or "")[:10],
                "machine": run.machine,
                "system": f"{info.get('system', '')} {info.get('release', '')}".strip(),
                "CPU": cpu.get("brand_raw") or info.get("processor") or "",
                "cores (usable)": f"{bb.get('cpu_count', cpu.get('count', '?'))}"
                f" ({bb.get('cpu_usable', '?')})",
                "Python": " ".join(
                    str(bb.get(key) or info.get(key) or "")
                    for key in ("python_implementation", "python_version")
                ),
                "build": bb.get("python_build") or " ".join(info.get("python_build") or []),
                "free-threaded": _yes(bb.get("free_threading_build")),
                "GIL": "on" if bb.get("gil_enabled", True) else "off",
                "switch interval": f"{bb['switch_interval'] * 1e3:g} ms"
                if isinstance(bb.get("switch_interval"), int | float)
                else "",
                "start method": run_settings(info)[1] or "",
                "benchmarks": int(counts.get(run.run_id, 0)),
            }
        )
    return pd.DataFrame(rows)


BEST_LEAD = (
    "For each workload, its parameters (for mixed work: the CPU share) and task count of"
    " the latest run: the model with the lowest median at its best worker count, its"
    " speedup over serial, and the runner-up among the other models."
)


def _yes(value: Any) -> str:
    if value is None:
        return "?"
    return "yes" if value else "no"
