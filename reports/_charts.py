"""The charts of one run's generic cells: speedup, efficiency, wall time, CPU vs wall.

Bars grouped by (workload, parameters, tasks), one bar per model at its best worker
count; the sweeps (crossover, scale, convoy) have charts of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ._cells import (
    SPECIAL_WORKLOADS,
    generic,
    group_label,
    headline_cells,
    run_note,
    shared_caption,
    short_params,
    tasks_text,
    varying_keys,
)
from ._draw import (
    PAGE_WIDTH_IN,
    Chart,
    fmt_ratio,
    fmt_seconds,
    join_clauses,
    model_legend,
    new_figure,
    save,
    seconds_axis,
    styled,
)
from ._frame import BOUND_ORDER
from ._models import ordered_models


def _fmt_x(value: float) -> str:
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×"  # short: over a bar


def _grouped_bars(
    ax: Axes,
    cells: pd.DataFrame,
    value: str,
    palette: dict[str, str],
    models: list[str],
    *,
    group_in: float,
    label_fmt: Callable[[float], str] | None = None,
    base: float = 0.0,
) -> list[tuple[str, str, Any]]:
    """Bars of ``value``: x groups are (workload, params, tasks), bars are models.

    ``group_in``: the inches a group gets on the page; a bar's value is written over it
    only when the bar is wide enough for the label (turned upright past four bars).
    """
    groups = (
        cells[["workload", "params", "tasks"]]
        .drop_duplicates()
        .sort_values(["workload", "params", "tasks"])
        .itertuples(index=False, name=None)
    )
    groups = list(groups)
    keys = varying_keys(cells)
    width = 0.8 / max(len(models), 1)
    bar_pt = group_in * width * 72
    for gi, (workload, params, tasks) in enumerate(groups):
        sub = cells[
            (cells["workload"] == workload)
            & (cells["params"] == params)
            & (cells["tasks"] == tasks)
        ]
        present = [m for m in models if m in set(sub["model"])]
        upright = len(present) > 4
        for mi, model in enumerate(present):
            val = float(sub.loc[sub["model"] == model, value].iloc[0])
            x = gi - 0.4 + width * (mi + 0.5) + width * (len(models) - len(present)) / 2
            ax.bar(x, val - base, width * 0.92, bottom=base, color=palette[model],
                   edgecolor="white", linewidth=0.5)  # fmt: skip
            if label_fmt is not None and bar_pt >= (VALUE_PT + 1 if upright else 22):
                below = val < base
                ax.annotate(
                    label_fmt(val),
                    (x, val),
                    xytext=(0, -2 if below else 2),
                    textcoords="offset points",
                    ha="center",
                    va="top" if below else "bottom",
                    fontsize=VALUE_PT,
                    rotation=90 if upright else 0,
                )
    ax.set_xticks(
        range(len(groups)),
        [group_label(w, p, t, keys.get(str(w), ())) for w, p, t in groups],
        fontsize=8 if group_in < 1.6 else None,
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)
    return groups


# The bars' value labels (points).
VALUE_PT = 7


# --- 1 + 2: speedup and efficiency ------------------------------------------------


def _bound_panels(cells: pd.DataFrame) -> list[str]:
    return [b for b in BOUND_ORDER if b in set(cells["bound"])]


def _bars_width(widths: list[int]) -> float:
    """Figure width for grouped bars: room per group, at most the page's width."""
    return min(PAGE_WIDTH_IN, max(7.0, 2.2 * sum(widths) + 1.5))


def _group_in(widths: list[int]) -> float:
    """The inches one group of bars gets (the axis labels take about an inch)."""
    return (_bars_width(widths) - 1.0) / max(1, sum(widths))


def _bound_rank(bound: str) -> int:
    return BOUND_ORDER.index(bound) if bound in BOUND_ORDER else len(BOUND_ORDER)


_BOUND_TITLE = {"cpu": "CPU-bound", "io": "I/O-bound", "mixed": "mixed", "net": "network"}


@styled
def chart_headline(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    cells = headline_cells(rows)
    if cells.empty:
        return None
    bounds = _bound_panels(cells)
    models = ordered_models(cells)
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = new_figure(_bars_width(widths), 4.8)
    # Speedup is a ratio: a log axis shared by both panels, bars growing up or down from 1×,
    # so "CPU work barely moves, I/O work flies" is visible at a glance.
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths, sharey=True)[0]
    # Room under the lowest bar for its value label, which hangs down from it.
    low = min(0.5, float(cells["speedup"].min()) / (4.0 if cells["speedup"].min() < 1 else 1.5))
    high = max(2.0, float(cells["speedup"].max()) * 2.5)
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        ax.set_yscale("log")
        _grouped_bars(ax, sub, "speedup", palette, models, group_in=_group_in(widths),
                      label_fmt=_fmt_x, base=1.0)  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_title(f"{_BOUND_TITLE.get(bound, bound)} work")
    axes[0].set_ylim(low, high)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}×"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("speedup over serial (log, higher is better)")
    fig.suptitle("Speedup over serial per model: CPU-bound vs I/O-bound")
    model_legend(fig, models, palette)
    save(fig, out, "headline")
    clauses = []
    cells = cells.assign(_b=cells["bound"].map(_bound_rank)).sort_values(["_b", "workload"])
    for workload, sub in cells.groupby("workload", sort=False):
        ranked = sub[sub["model"] != "serial"].sort_values("speedup", ascending=False)
        if ranked.empty:
            continue
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        if best["speedup"] < 1.1:
            clause = (
                f"{workload} ({int(best['tasks'])} tasks): no model is 10% faster than serial"
                f" (best {best['model']} {fmt_ratio(best['speedup'])})"
            )
        else:
            clause = (
                f"{workload} ({int(best['tasks'])} tasks): {best['model']} is fastest at"
                f" {fmt_ratio(best['speedup'])} serial"
            )
        if len(ranked) > 1:
            clause += f", {worst['model']} slowest at {fmt_ratio(worst['speedup'])}"
        clauses.append(clause)
    sentence = (
        join_clauses(clauses) + ". Dashed line: serial (1×); each model at its best worker count."
    )
    return Chart("headline", "Speedup over serial", sentence, run_note(rows),
                 shared_caption(cells))  # fmt: skip


@styled
def chart_efficiency(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    cells = headline_cells(rows, "efficiency")
    if cells.empty:
        return None
    bounds = _bound_panels(cells)
    models = ordered_models(cells)
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = new_figure(_bars_width(widths), 4.6)
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths, sharey=True)[0]
    top = max(1.15, float(cells["efficiency"].max()) * 1.15)
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        _grouped_bars(ax, sub, "efficiency", palette, models, group_in=_group_in(widths),
                      label_fmt=lambda v: f"{v:.0%}")  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=1.2)
        ax.set_title(f"{_BOUND_TITLE.get(bound, bound)} work")
        ax.set_ylim(0, top)
    axes[0].set_ylabel("efficiency = ideal time / measured time")
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    fig.suptitle("Efficiency vs ideal per model (1.0 is the physical limit)")
    limit = Line2D([], [], color="black", linewidth=1.2, label="ideal = 1.0 (limit)")
    model_legend(fig, models, palette, extra=[limit])
    save(fig, out, "efficiency")
    # serial is the reference of speedups: rank the others.
    others = cells[cells["model"] != "serial"]
    ranked = (others if not others.empty else cells).sort_values("efficiency", ascending=False)
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    near = ranked[ranked["efficiency"] >= 0.9]
    sentence = (
        f"{len(near)} of {len(ranked)} non-serial cells reach at least 90% of the ideal; best is"
        f" {best['model']} on {best['workload']} ({best['efficiency']:.0%}), worst"
        f" {worst['model']} on {worst['workload']} ({worst['efficiency']:.0%})."
    )
    capped = cells[cells["cap_limit"].notna()] if "cap_limit" in cells else cells.iloc[:0]
    # Once per model and workload: io_socket's kept and fresh connections share a cap.
    notes = dict.fromkeys(
        f" {cell.model} on {cell.workload} runs at most {cell.workers_cap} workers for"
        f" {cell.tasks} tasks (a harness cap), so it can reach {cell.cap_limit:.0%} at best:"
        " that gap is the cap's, not the model's."
        for cell in capped.itertuples()
    )
    sentence += "".join(notes)
    return Chart("efficiency", "Efficiency vs ideal", sentence, run_note(rows),
                 shared_caption(cells))  # fmt: skip


# --- 3: wall time with spread ------------------------------------------------------


@styled
def chart_walltime(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = generic(rows)
    rows = rows[
        (rows["bound"] != "net")
        & ~rows["workload"].isin(SPECIAL_WORKLOADS)
        & rows["median_s"].notna()
    ]
    if rows.empty:
        return None
    panels = list(
        rows[["workload", "params"]].drop_duplicates().sort_values(["workload", "params"])
        .itertuples(index=False, name=None)
    )  # fmt: skip
    keys = varying_keys(rows)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    models = ordered_models(rows)
    rank = {model: i for i, model in enumerate(models)}
    fig = new_figure(4.4 * ncols + 0.5, 3.4 * nrows + 1.2)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (workload, params) in zip(axes, panels, strict=False):
        sub = rows[(rows["workload"] == workload) & (rows["params"] == params)]
        tasks = sorted(sub["tasks"].dropna().unique())
        variants = sub["variant"].fillna("") if "variant" in sub else pd.Series("", sub.index)
        sub = sub.assign(_v=variants)
        slots = sorted(
            set(zip(sub["model"], sub["workers"], sub["_v"], strict=True)),
            key=lambda mwv: (rank[mwv[0]], -1 if pd.isna(mwv[1]) else mwv[1], mwv[2]),
        )
        width = 0.8 / max(len(slots), 1)
        # One collection per kind of mark, not one artist per cell: 500 cells draw fast.
        slot_of = {slot: i for i, slot in enumerate(slots)}
        task_of = {t: i for i, t in enumerate(tasks)}
        cells = sub.dropna(subset=["tasks"]).drop_duplicates(["tasks", "model", "workers", "_v"])
        xs = [
            task_of[t] - 0.4 + width * (slot_of[(m, w, v)] + 0.5)
            for t, m, w, v in zip(
                cells["tasks"], cells["model"], cells["workers"], cells["_v"], strict=True
            )
        ]
        colours = [palette[m] for m in cells["model"]]
        med = cells["median_s"]
        spread = cells["min_s"].notna() & cells["max_s"].notna()
        ax.vlines([x for x, ok in zip(xs, spread, strict=True) if ok],
                  cells["min_s"][spread], cells["max_s"][spread],
                  colors=[c for c, ok in zip(colours, spread, strict=True) if ok],
                  linewidth=0.8, alpha=0.6)  # fmt: skip
        ax.vlines(xs, cells["q1_s"].fillna(med), cells["q3_s"].fillna(med), colors=colours,
                  linewidth=5, alpha=0.45)  # fmt: skip
        ax.scatter(xs, med, s=24, c=colours, edgecolors="white", linewidths=0.6, zorder=3)
        # Which of a model's variants each mark is (collect=callback ...), under the axis.
        names = [v.partition("=")[2] or v for v in cells["_v"]]
        for x, name in zip(xs, names, strict=True):
            if name:
                ax.annotate(name, (x, 0.0), xytext=(0, -3), xycoords=("data", "axes fraction"),
                            textcoords="offset points", ha="center", va="top", rotation=90,
                            fontsize=7)  # fmt: skip
        if any(names):
            ax.tick_params(axis="x", pad=6 + 4.4 * max(len(n) for n in names))
        ax.set_yscale("log")
        seconds_axis(ax)
        ax.yaxis.set_major_locator(LogLocator(subs=_log_subs(cells), numticks=12))
        ax.set_xticks(range(len(tasks)), [tasks_text(t) for t in tasks])
        ax.set_xlim(-0.6, len(tasks) - 0.4)
        ax.grid(axis="x", visible=False)
        told = short_params(params, keys.get(str(workload), ()))
        ax.set_title(f"{workload} · {told}" if told else str(workload))
        ax.set_ylabel("wall time per call (log)")
    fig.suptitle("Wall time per cell: median (dot), IQR (thick bar), min–max (thin line)")
    model_legend(fig, models, palette)
    save(fig, out, "walltime")
    rel = rows.assign(rel_iqr=rows["iqr_s"] / rows["median_s"]).dropna(subset=["rel_iqr"])
    if rel.empty:
        sentence = f"{len(rows)} cells; the runs carry no interquartile range."
    else:
        noisy = rel.sort_values("rel_iqr").iloc[-1]
        steady = (rel["rel_iqr"] <= 0.05).sum()
        sentence = (
            f"{steady} of {len(rel)} cells have an IQR within 5% of their median; the noisiest"
            f" is {noisy['cell']} (IQR {noisy['rel_iqr']:.0%} of {fmt_seconds(noisy['median_s'])})."
        )
    return Chart("walltime", "Wall time with its spread", sentence, run_note(rows),
                 shared_caption(rows))  # fmt: skip


def _log_subs(cells: pd.DataFrame) -> tuple[float, ...]:
    """Tick marks within a decade of a log time axis: more the fewer decades it spans,
    so every label has room (1, 2, 5 over a couple of decades; 1 only beyond)."""
    values = pd.concat([cells["min_s"], cells["max_s"], cells["median_s"]]).dropna()
    values = values[values > 0]
    decades = math.log10(float(values.max() / values.min())) if len(values) else 0.0
    if decades < 0.5:
        return (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    if decades < 1.2:
        return (1.0, 2.0, 3.0, 5.0)
    if decades < 2.5:
        return (1.0, 2.0, 5.0)
    return (1.0,)


# --- 4: CPU vs wall ----------------------------------------------------------------


@styled
def chart_cpu_wall(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """CPU seconds per wall second for the headline cells: 1.0 is one core kept busy."""
    cells = headline_cells(rows)
    cells = cells[cells["cpu_s"].notna() & (cells["median_s"] > 0)]
    if cells.empty:
        return None
    cells = cells.assign(busy=cells["cpu_s"] / cells["median_s"])
    bounds = _bound_panels(cells)
    models = ordered_models(cells)
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = new_figure(_bars_width(widths), 4.6)
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths)[0]
    cores = cells["cpu_usable"].dropna()
    ncores = int(cores.max()) if len(cores) else 1
    all_cores = ncores > 1 and float(cells["busy"].max()) > 0.8 * ncores
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        _grouped_bars(ax, sub, "busy", palette, models, group_in=_group_in(widths),
                      label_fmt=lambda v: f"{v:.0%}")  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        if all_cores:
            ax.axhline(ncores, color="grey", linewidth=1, linestyle=":")
        ax.set_title(f"{_BOUND_TITLE.get(bound, bound)} work")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        ax.set_ylim(0, max(float(sub["busy"].max()) * 1.25, 0.05))
    axes[0].set_ylabel("CPU time ÷ wall time (all processes)")
    fig.suptitle("CPU time vs wall time: who burns CPU while waiting")
    extra = [Line2D([], [], color="black", linestyle="--", label="100% = one core busy")]
    if all_cores:
        extra.append(Line2D([], [], color="grey", linestyle=":", label=f"all {ncores} cores"))
    model_legend(fig, models, palette, extra=extra)
    save(fig, out, "cpu_wall")
    waiting = cells[cells["bound"] == "io"]
    if not waiting.empty:
        ranked = waiting.sort_values("busy")
        top, low = ranked.iloc[-1], ranked.iloc[0]
        sentence = (
            f"While waiting on I/O ({top['workload']}, {int(top['tasks'])} tasks),"
            f" {top['model']} keeps the CPU busiest ({fmt_seconds(top['cpu_s'])} of CPU in"
            f" {fmt_seconds(top['median_s'])}, {top['busy']:.0%}) and {low['model']} the least"
            f" ({low['busy']:.0%})."
        )
    else:
        ranked = cells.sort_values("busy")
        top, low = ranked.iloc[-1], ranked.iloc[0]
        sentence = (
            f"{top['model']} on {top['workload']} uses the most CPU per second of wall time"
            f" ({top['busy']:.0%}), {low['model']} on {low['workload']} the least"
            f" ({low['busy']:.0%})."
        )
    return Chart("cpu_wall", "CPU time vs wall time", sentence, run_note(rows),
                 shared_caption(cells))  # fmt: skip
