"""Charts of two sweeps: the scale (task count) and the GIL convoy (CPU threads beside a
server); the third, the crossover (CPU share), has a module of its own (``_crossover``).

Each sweep varies one parameter over a wide range, so it gets a line chart of its own
instead of bars among the generic charts (``reports._frame.sweep_of`` picks its cells).
As every chart (``reports._draw``), ``chart_*`` writes ``NAME.png`` and ``NAME.svg``,
returns a :class:`Chart` whose sentence is worked out from the data, and returns None
when the frame has no cell for it.  The figures (speedup, ideal, efficiency, crossings)
come from :mod:`reports._figures`; the data behind each chart is a plain function
(``scale_points``, ``convoy_points``) the page's tables reuse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from . import _figures
from ._cells import of_sweep, run_note
from ._draw import (
    Chart,
    figure_legend,
    fmt_times,
    join_clauses,
    new_figure,
    plain_log,
    save,
    styled,
)
from ._models import ordered_models
from ._palette import colour_for

# The interpreter's default switch interval: the convoy sentence's first figure.
DEFAULT_SWITCH_INTERVAL = 0.005
SWITCH_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
SWITCH_MARKERS = ("o", "s", "^", "D")


def _count(value: float) -> str:
    """10, 1,000, 100,000: task counts as people say them."""
    return f"{int(value):,}"


# --- scale --------------------------------------------------------------------------


def _variant_name(group: str, workload: str) -> str:
    _head, sep, tail = str(group).partition(":")
    return tail if sep and tail else str(workload)


def scale_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (scale variant, model, tasks): the model's most efficient worker count.

    Adds ``variant`` (``io_sleep`` for group ``scale:io_sleep``).
    """
    cells = of_sweep(rows, "scale")
    if cells.empty:
        return cells
    cells = cells[cells["tasks"].notna()].copy()
    cells["scale_variant"] = [
        _variant_name(g, w) for g, w in zip(cells["group"], cells["workload"], strict=True)
    ]
    ranked = cells.sort_values("efficiency", ascending=False, na_position="last", kind="stable")
    return ranked.drop_duplicates(["scale_variant", "model", "tasks"])


def scale_clause(points: pd.DataFrame) -> str:
    """Where each model of one scale variant falls below ``SCALE_EFFICIENCY``."""
    limit = _figures.SCALE_EFFICIENCY
    largest = points["tasks"].max()
    parts = []
    for model in ordered_models(points):
        line = points[(points["model"] == model) & points["efficiency"].notna()]
        if line.empty:
            continue
        pairs = [
            (float(t), float(e)) for t, e in zip(line["tasks"], line["efficiency"], strict=True)
        ]
        before, after = _figures.falls_below(pairs, limit)
        top = max(t for t, _e in pairs)
        eff = dict(pairs)
        if after is None:
            clause = f"{model} stays above {limit:.0%} up to {_count(top)} tasks"
        elif before is None:
            clause = f"{model} is below {limit:.0%} from {_count(after)} tasks ({eff[after]:.0%})"
        else:
            clause = (
                f"{model} falls below {limit:.0%} between {_count(before)} and {_count(after)}"
                f" tasks ({eff[before]:.0%} → {eff[after]:.0%})"
            )
        if top < largest:
            clause += f" (measured up to {_count(top)})"
        parts.append(clause)
    return ", ".join(parts)


def _count_axis(ax: Axes, counts: Sequence[float]) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(counts)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _count(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


@styled
def chart_scale(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Efficiency and KB per task against the task count (log), a line per model."""
    points = scale_points(rows)
    if points.empty or points["efficiency"].notna().sum() == 0:
        return None
    variants = sorted(points["scale_variant"].unique())
    memory = "kb_per_task" in points.columns and bool(points["kb_per_task"].notna().any())
    ncols = 2 if memory else 1
    fig = new_figure(5.6 * ncols + 0.4, 3.6 * len(variants) + 1.2)
    axes = fig.subplots(len(variants), ncols, squeeze=False)
    counts = sorted(points["tasks"].dropna().unique())
    clauses = []
    for row_axes, variant in zip(axes, variants, strict=True):
        sub = points[points["scale_variant"] == variant]
        eff_ax = row_axes[0]
        for model in ordered_models(sub):
            line = sub[(sub["model"] == model) & sub["efficiency"].notna()].sort_values("tasks")
            eff_ax.plot(line["tasks"], line["efficiency"], color=palette[model], marker="o",
                        markersize=4, linewidth=1.6)  # fmt: skip
            if memory:
                kb = sub[(sub["model"] == model) & sub["kb_per_task"].notna()].sort_values("tasks")
                row_axes[1].plot(kb["tasks"], kb["kb_per_task"], color=palette[model],
                                 marker="o", markersize=4, linewidth=1.6)  # fmt: skip
        eff_ax.axhline(1.0, color="black", linewidth=1)
        eff_ax.axhline(_figures.SCALE_EFFICIENCY, color="grey", linewidth=1, linestyle=":")
        eff_ax.set_ylim(0, max(1.1, float(sub["efficiency"].max()) * 1.05))
        eff_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        eff_ax.set_ylabel("efficiency = ideal / measured")
        eff_ax.set_title(f"{variant}: efficiency")
        _count_axis(eff_ax, counts)
        if memory:
            kb_ax = row_axes[1]
            values = sub["kb_per_task"].dropna()
            if len(values) and float(values.min()) > 0 and float(values.max() / values.min()) > 20:
                plain_log(kb_ax)
            kb_ax.set_ylabel("memory per task (KB, peak above idle)")
            kb_ax.set_title(f"{variant}: memory per task")
            _count_axis(kb_ax, counts)
        for ax in row_axes:
            ax.set_xlabel("tasks (log)")
        clause = f"{variant}: {scale_clause(sub)}"
        if memory:
            top = sub[sub["kb_per_task"].notna()]
            if not top.empty:
                at = top["tasks"].max()
                kb = top[top["tasks"] == at].sort_values("kb_per_task")
                figures = zip(kb["model"], kb["kb_per_task"], strict=True)
                clause += f"; KB per task at {_count(at)} tasks: " + ", ".join(
                    f"{m} {v:.3g}" for m, v in figures
                )
        clauses.append(clause)
    fig.suptitle("Scale: efficiency and memory per task as the task count grows")
    models = ordered_models(points)
    handles: list[Any] = [Line2D([], [], color=palette[m], marker="o", label=m) for m in models]
    handles.append(Line2D([], [], color="grey", linestyle=":",
                          label=f"{_figures.SCALE_EFFICIENCY:.0%} efficiency"))  # fmt: skip
    figure_legend(fig, handles, "model")
    save(fig, out, "scale")
    sentence = join_clauses(clauses) + "."
    return Chart("scale", "Scale: 10 to 100,000 tasks", sentence, run_note(rows))


# --- the GIL convoy -----------------------------------------------------------------

CONVOY_VALUES = ("throughput_rps", "latency_p50_ms", "latency_p99_ms")


def convoy_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (placement, switch interval, CPU threads): the median of each figure."""
    cells = of_sweep(rows, "convoy")
    needed = ("cpu_placement", "switch_interval_s", "cpu_threads")
    if cells.empty or any(column not in cells.columns for column in needed):
        return cells.iloc[:0]
    cells = cells.dropna(subset=list(needed))
    values = [column for column in CONVOY_VALUES if column in cells.columns]
    if cells.empty or not values:
        return cells.iloc[:0]
    return cells.groupby(list(needed), as_index=False)[values].median()


def _at(points: pd.DataFrame, placement: str, switch: float, threads: float) -> float | None:
    hit = points[
        (points["cpu_placement"] == placement)
        & ((points["switch_interval_s"] - switch).abs() < 1e-12)
        & (points["cpu_threads"] == threads)
    ]
    if hit.empty or "throughput_rps" not in hit.columns:
        return None
    value = float(hit["throughput_rps"].iloc[0])
    return value if math.isfinite(value) and value > 0 else None


def convoy_slowdown(
    points: pd.DataFrame, placement: str, switch: float, threads: float = 1
) -> tuple[float, float, float] | None:
    """(throughput with no CPU thread, with ``threads``, their ratio) at one setting.

    The baseline is the cell with no CPU thread at the same switch interval, else at
    any (with no CPU work the interval hardly matters).
    """
    loaded = _at(points, placement, switch, threads)
    alone = _at(points, placement, switch, 0)
    if alone is None:
        quiet = points[(points["cpu_threads"] == 0) & points["throughput_rps"].notna()]
        alone = float(quiet["throughput_rps"].median()) if not quiet.empty else None
    ratio = _figures.ratio(alone, loaded)
    if alone is None or loaded is None or ratio is None:
        return None
    return alone, loaded, ratio


def convoy_sentence(points: pd.DataFrame) -> str:
    switches = sorted(points["switch_interval_s"].unique())
    default = (
        DEFAULT_SWITCH_INTERVAL
        if any(abs(s - DEFAULT_SWITCH_INTERVAL) < 1e-12 for s in switches)
        else max(switches)
    )
    parts = []
    main = convoy_slowdown(points, "threads", default)
    if main is not None:
        alone, loaded, ratio = main
        parts.append(
            f"With one CPU-bound thread beside the server (CPU work in threads, switch interval"
            f" {default * 1e3:g} ms), throughput falls from {alone:,.0f} to {loaded:,.0f} req/s:"
            f" {fmt_times(ratio)} slower"
        )
        for switch in sorted(switches, reverse=True):
            if switch >= default:
                continue
            other = convoy_slowdown(points, "threads", switch)
            if other is not None:
                parts.append(f"at a {switch * 1e3:g} ms switch interval {fmt_times(other[2])}")
    else:
        parts.append("No cell with CPU work in threads at 0 and 1 CPU threads")
    for placement, words in (("native", "in native code"), ("processes", "in a process pool")):
        other = convoy_slowdown(points, placement, default)
        if other is not None:
            parts.append(f"with the CPU work {words} {fmt_times(other[2])}")
    return "; ".join(parts) + "."


@styled
def chart_convoy(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Throughput and latency against the CPU threads beside the server."""
    points = convoy_points(rows)
    if points.empty:
        return None
    values = [column for column in CONVOY_VALUES if column in points.columns]
    values = [column for column in values if points[column].notna().any()]
    if not values:
        return None
    titles = {
        "throughput_rps": "throughput (req/s, log)",
        "latency_p50_ms": "p50 latency (ms, log)",
        "latency_p99_ms": "p99 latency (ms, log)",
    }
    placements = sorted(points["cpu_placement"].unique(), key=lambda p: (p != "threads", p))
    switches = sorted(points["switch_interval_s"].unique(), reverse=True)
    threads = sorted(points["cpu_threads"].unique())
    fig = new_figure(4.3 * len(values) + 0.5, 4.4)
    axes = fig.subplots(1, len(values), squeeze=False)[0]
    for ax, value in zip(axes, values, strict=True):
        for placement in placements:
            for i, switch in enumerate(switches):
                line = points[
                    (points["cpu_placement"] == placement)
                    & (points["switch_interval_s"] == switch)
                    & points[value].notna()
                ].sort_values("cpu_threads")
                if line.empty:
                    continue
                ax.plot(line["cpu_threads"], line[value], color=palette.get(placement) or
                        colour_for(placement), linestyle=SWITCH_STYLES[i % len(SWITCH_STYLES)],
                        marker=SWITCH_MARKERS[i % len(SWITCH_MARKERS)], markersize=4,
                        linewidth=1.5)  # fmt: skip
        ax.set_xticks(threads, [f"{int(t)}" for t in threads])
        ax.set_xlabel("CPU-bound threads beside the server")
        ax.set_title(titles[value])
        plain_log(ax)
    fig.suptitle("GIL convoy: the echo server's throughput and latency beside CPU work")
    handles: list[Any] = [
        Line2D([], [], color=palette.get(p) or colour_for(p), linewidth=3, label=f"CPU in {p}")
        for p in placements
    ]
    handles += [
        Line2D([], [], color="black", linestyle=SWITCH_STYLES[i % len(SWITCH_STYLES)],
               marker=SWITCH_MARKERS[i % len(SWITCH_MARKERS)], label=f"switch {s * 1e3:g} ms")
        for i, s in enumerate(switches)
    ]  # fmt: skip
    figure_legend(fig, handles, "where the CPU work runs (colour) · switch interval (line)")
    save(fig, out, "convoy")
    return Chart("convoy", "GIL convoy: I/O latency beside CPU work", convoy_sentence(points),
                 run_note(rows))  # fmt: skip


def convoy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The convoy cells with their slowdown against no CPU thread, in reading order."""
    points = convoy_points(rows)
    if points.empty:
        return points
    slow = []
    for cell in points.itertuples():
        found = convoy_slowdown(points, cell.cpu_placement, cell.switch_interval_s,
                                cell.cpu_threads)  # fmt: skip
        slow.append(found[2] if found is not None else math.nan)
    points = points.assign(slowdown=slow)
    order = points["cpu_placement"].map(lambda p: (p != "threads", p))
    return (
        points.assign(_o=order)
        .sort_values(["_o", "switch_interval_s", "cpu_threads"], ascending=[True, False, True])
        .drop(columns="_o")
    )
