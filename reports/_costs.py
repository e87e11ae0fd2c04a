"""The cost chart of a count run: what a model's own machinery costs, in instructions.

A count run (``pytest benchmarks/ --measure instructions``) saves the instructions every
process of a cell executed per round.  Per task, on I/O work, that is the model's own
overhead of scheduling, waking and collecting a task (the work itself is a sleep or a
socket wait, nearly free); on CPU work, each model's count relative to serial's is what
it adds to the same loop (pickling, queues, hand-offs).  Deterministic figures: they
repeat to a fraction of a percent on any host, busy or not.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._cells import latest_run, run_note
from ._draw import Chart, join_clauses, new_figure, save
from ._models import model_rank

IO_WORKLOADS = ("io_sleep", "io_socket")
CPU_WORKLOADS = ("cpu_loop", "cpu_native")


def fmt_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


def per_task(rows: pd.DataFrame) -> pd.DataFrame:
    """One figure per workload and model: instructions per task in its largest task
    count (the median over its pool sizes and parameters)."""
    rows = rows[rows["median_s"].notna() & (rows["tasks"] > 0)].copy()
    if rows.empty:
        return rows
    rows["per_task"] = rows["median_s"] / rows["tasks"]
    most = rows.groupby("workload")["tasks"].transform("max")
    rows = rows[rows["tasks"] == most]
    out = rows.groupby(["workload", "model"], as_index=False).agg(
        per_task=("per_task", "median"), tasks=("tasks", "first")
    )
    return out


def relative_to_serial(table: pd.DataFrame) -> pd.DataFrame:
    serial = table[table["model"] == "serial"].set_index("workload")["per_task"]
    table = table[table["workload"].isin(serial.index)].copy()
    table["vs_serial"] = table["per_task"] / table["workload"].map(serial)
    return table


def chart_costs(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = latest_run(rows)
    table = per_task(rows)
    if table.empty:
        return None
    io = table[table["workload"].isin(IO_WORKLOADS)]
    cpu = relative_to_serial(table[table["workload"].isin(CPU_WORKLOADS)])
    panels = [(name, part) for name, part in (("io", io), ("cpu", cpu)) if not part.empty]
    if not panels:
        return None
    height = max(len(part) for _, part in panels) * 0.32 + 1.8
    fig = new_figure(6.0 * len(panels), height)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    clauses = []
    for ax, (name, part) in zip(axes, panels, strict=True):
        part = part.assign(_r=model_rank(part)).sort_values(["workload", "_r"])
        labels = [f"{w}: {m}" for w, m in zip(part["workload"], part["model"], strict=True)]
        value = part["per_task"] if name == "io" else part["vs_serial"]
        ys = range(len(part))
        ax.barh(ys, value, 0.6, color=[palette.get(m, "#777777") for m in part["model"]])
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()
        for y, v in zip(ys, value, strict=True):
            text = fmt_count(v) if name == "io" else f"{v:.3g}×"
            ax.annotate(text, (v, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7)  # fmt: skip
        if name == "io":
            ax.set_xscale("log")
            ax.set_xlim(right=float(value.max()) * 5)
            ax.set_xlabel("instructions per task (median of rounds, log)")
            ax.set_title("I/O work: a model's own cost per task", fontsize=10)
            clauses += [_io_clause(w, g) for w, g in part.groupby("workload", sort=False)]
        else:
            ax.axvline(1.0, color="#444444", linewidth=0.8)
            ax.set_xlim(0, float(value.max()) * 1.25)
            ax.set_xlabel("instructions relative to serial's on the same work")
            ax.set_title("CPU work: what a model adds to the loop", fontsize=10)
            clauses += [_cpu_clause(w, g) for w, g in part.groupby("workload", sort=False)]
    fig.suptitle("What each model costs, counted (instructions under Valgrind)")
    save(fig, out, "costs")
    text = join_clauses([c for c in clauses if c])
    sentence = text[:1].upper() + text[1:] + "."
    return Chart("costs", "Cost per task, counted", sentence, run_note(rows))


def _io_clause(workload: str, part: pd.DataFrame) -> str:
    ordered = part.sort_values("per_task")
    low, high = ordered.iloc[0], ordered.iloc[-1]
    if len(ordered) < 2:
        return f"on {workload}, {low['model']} spends {fmt_count(low['per_task'])} a task"
    return (
        f"on {workload}, {low['model']} spends the fewest instructions a task"
        f" ({fmt_count(low['per_task'])}), {high['model']} the most"
        f" ({fmt_count(high['per_task'])}, {high['per_task'] / low['per_task']:.3g}×)"
    )


def _cpu_clause(workload: str, part: pd.DataFrame) -> str:
    others = part[part["model"] != "serial"].sort_values("vs_serial")
    if others.empty:
        return ""
    top = others.iloc[-1]
    return (
        f"on {workload}, {top['model']} costs {top['vs_serial']:.3g}× serial's instructions"
        f" (the most of {len(others)} models; the least, {others.iloc[0]['model']}, "
        f"{others.iloc[0]['vs_serial']:.3g}×)"
    )
