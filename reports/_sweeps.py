"""Charts of the sweeps: the crossover (CPU share), the scale (task count), the convoy.

Each sweep varies one parameter over a wide range, so it gets a line chart of its own
instead of bars among the generic charts (``reports._frame.sweep_of`` picks its cells).
As every chart (``reports._draw``), ``chart_*`` writes ``NAME.png`` and ``NAME.svg``,
returns a :class:`Chart` whose sentence is worked out from the data, and returns None
when the frame has no cell for it.  The figures (speedup, ideal, efficiency, crossings)
come from :mod:`reports._figures`; the data behind each chart is a plain function
(``crossover_points``, ``scale_points``, ``convoy_points``) the page's tables reuse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from . import _figures
from ._cells import run_note
from ._draw import Chart, join_clauses, new_figure, plain_log, save, styled
from ._models import ordered_models, sides
from ._palette import colour_for

KIND_TITLE = {"python": "Python CPU work", "native": "native CPU work (GIL released)"}
# The interpreter's default switch interval: the convoy sentence's first figure.
DEFAULT_SWITCH_INTERVAL = 0.005
SWITCH_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
SWITCH_MARKERS = ("o", "s", "^", "D")
# Speedups within this share of each other are level, not a lead: over six unchanged
# standard runs here, processes' lead over threads on native work at 50 % ranged from
# -9.3 % to +6.2 % (a cpu_native cell moves 13-18 % p95 between runs).
LEVEL_WITHIN = 0.10


def _sweep(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if "sweep" not in rows.columns:
        return rows.iloc[:0]
    return rows[rows["sweep"] == name]


def _count(value: float) -> str:
    """10, 1,000, 100,000: task counts as people say them."""
    return f"{int(value):,}"


def _times(value: float) -> str:
    return f"{value:.0f}×" if value >= 10 else f"{value:.1f}×"


# --- the crossover ------------------------------------------------------------------


def crossover_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (cpu_kind, tasks, model, cpu_share): the model's best worker count.

    Columns of the frame plus ``share_pct``; a pool measured with one worker per core and
    one per task is one line at its best, as in the headline chart.
    """
    cells = _sweep(rows, "crossover")
    if cells.empty or "cpu_share" not in cells.columns:
        return cells.iloc[:0]
    cells = cells[cells["speedup"].notna() & cells["cpu_share"].notna()].copy()
    kinds = cells["cpu_kind"] if "cpu_kind" in cells.columns else pd.Series("?", cells.index)
    cells["cpu_kind"] = kinds.fillna("?").astype(str)
    cells["share_pct"] = cells["cpu_share"] * 100.0
    best = cells.sort_values("speedup", ascending=False, kind="stable")
    return best.drop_duplicates(["cpu_kind", "tasks", "model", "cpu_share"])


def _ideal_speedups(points: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per share (%): the ideal speedup on every core, and in one process (one GIL)."""
    cores = (points["serial_median_s"] / points["ideal_s"]).groupby(points["share_pct"]).median()
    one: dict[float, float] = {}
    for share, cell in zip(points["share_pct"], points.itertuples(), strict=True):
        try:
            params = json.loads(cell.params)
        except (TypeError, ValueError):
            params = {}
        per_iter = getattr(cell, "seconds_per_iter", None)
        extra = {
            "tasks": None if pd.isna(cell.tasks) else int(cell.tasks),
            "params": params,
            "cpu_share": float(cell.cpu_share),
            "seconds_per_iter": None if per_iter is None or pd.isna(per_iter) else float(per_iter),
        }
        ideal = _figures.mixed_one_process_ideal(extra)
        speedup = _figures.ratio(cell.serial_median_s, ideal)
        if speedup is not None:
            one.setdefault(share, speedup)
    return cores.dropna(), pd.Series(one, dtype="float64").sort_index()


def _winners(points: pd.DataFrame) -> pd.DataFrame:
    """The best model at each share (highest speedup)."""
    ranked = points.sort_values(["share_pct", "speedup"], ascending=[True, False])
    return ranked.drop_duplicates("share_pct")


def _winner_runs(winners: pd.DataFrame) -> str:
    """``uvloop at 0–10 %, processes from 90 %``: consecutive shares won by one model."""
    spans: list[tuple[str, float, float]] = []
    for model, share in zip(winners["model"], winners["share_pct"], strict=True):
        if spans and spans[-1][0] == model:
            spans[-1] = (model, spans[-1][1], share)
        else:
            spans.append((model, share, share))
    last = float(winners["share_pct"].max())
    parts = []
    for model, start, end in spans:
        if start == end:
            parts.append(f"{model} at {start:.0f} %")
        elif end == last and start > float(winners["share_pct"].min()):
            parts.append(f"{model} from {start:.0f} %")
        else:
            parts.append(f"{model} at {start:.0f}–{end:.0f} %")
    return ", ".join(parts)


def _side(points: pd.DataFrame, side: str) -> pd.DataFrame:
    """The points of the models on one side, "single" or "multi", as their runs say."""
    return points[points["model"].map(sides(points)) == side]


def crossover_clause(points: pd.DataFrame) -> str:
    """Where the multi-process models overtake the best single-process model, in words.

    ``points`` are one panel's ``crossover_points`` (one cpu_kind and task count).  At each
    share the best single-process speedup (serial included: at least 1×) and the best
    multi-process speedup are compared; a crossing between two measured shares is
    interpolated linearly (``_figures.lead_intervals``).  Which side a model is on comes
    from its run (``Model.process_scope``); a model whose run does not say is named.
    """
    clause = _compare_sides(points)
    undeclared = [model for model, side in sides(points).items() if side is None]
    if undeclared:
        clause += (
            f" ({', '.join(ordered_models(undeclared))} take{'s' if len(undeclared) == 1 else ''}"
            " no side: not declared single- or multi-process)"
        )
    return clause


def _compare_sides(points: pd.DataFrame) -> str:
    single, multi = _side(points, "single"), _side(points, "multi")
    if multi.empty:
        return "no multi-process model was measured"
    if single.empty:
        return "no single-process model was measured"
    tops = _tops(points)
    differences = _differences(tops)
    if not differences:
        return "no share has both a single-process and a multi-process cell"
    both = [x for x, _d in differences]
    low, high = both[0], both[-1]
    measured = (
        f"the one measured share ({low:.0f} %)"
        if low == high
        else f"every measured share ({low:.0f}–{high:.0f} %)"
    )

    def at(share: float) -> str:
        best_single = single[single["share_pct"] == share].sort_values("speedup").iloc[-1]
        best_multi = multi[multi["share_pct"] == share].sort_values("speedup").iloc[-1]
        return (
            f"at {share:.0f} %: {best_single['model']} {_times(best_single['speedup'])},"
            f" {best_multi['model']} {_times(best_multi['speedup'])}"
        )

    if all(abs(m / s - 1) <= LEVEL_WITHIN for _x, s, m in tops if s > 0):
        return (
            f"the best single-process model keeps up with processes at {measured}, within"
            f" {LEVEL_WITHIN:.0%} ({at(high)})"
        )
    leads = _figures.lead_intervals(differences)
    if not leads:
        return (
            f"no crossing in the measured range: the best single-process model stays"
            f" ahead at {measured} ({at(high)})"
        )
    if len(leads) == 1:
        start, end = leads[0]
        if start <= low and end >= high:
            return f"processes are ahead of the best single-process model at {measured}"
        if end >= high:
            below = max(x for x in both if x <= start)
            above = min(x for x in both if x >= start)
            return (
                "on this machine, processes overtake the best single-process model from a"
                f" CPU share of about {start:.0f} % (between the measured {below:.0f} % and"
                f" {above:.0f} %)"
            )
    spans = ", ".join(f"{start:.0f}–{end:.0f} %" for start, end in leads)
    return f"processes are ahead of the best single-process model only at about {spans}"


def _panel_title(kind: str, tasks: Any) -> str:
    title = KIND_TITLE.get(kind, f"{kind} CPU work")
    return f"{title[0].upper()}{title[1:]}" + (f", {int(tasks)} tasks" if pd.notna(tasks) else "")


def _panels(points: pd.DataFrame) -> list[tuple[str, Any]]:
    order = {kind: i for i, kind in enumerate(KIND_TITLE)}
    found = points[["cpu_kind", "tasks"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted(found, key=lambda kt: (order.get(kt[0], len(order)), kt[0], kt[1]))


@styled
def chart_crossover(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Speedup over serial against the CPU share, a line per model, a panel per kind."""
    points = crossover_points(rows)
    if points.empty:
        return None
    panels = _panels(points)
    fig = new_figure(6.2 * len(panels) + 0.4, 5.0)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    clauses = []
    top = float(points["speedup"].max())
    low = float(points["speedup"].min())
    for ax, (kind, tasks) in zip(axes, panels, strict=True):
        sub = points[(points["cpu_kind"] == kind) & (points["tasks"] == tasks)]
        for model in ordered_models(sub):
            line = sub[sub["model"] == model].sort_values("share_pct")
            ax.plot(line["share_pct"], line["speedup"], color=palette[model], marker="o",
                    markersize=4, linewidth=1.6, label=model)  # fmt: skip
        cores, one = _ideal_speedups(sub)
        if not cores.empty:
            ax.plot(cores.index, cores.values, color="black", linestyle="--", linewidth=1.1)
            top = max(top, float(cores.max()))
        if kind == "python" and not one.empty:
            ax.plot(one.index, one.values, color="grey", linestyle="--", linewidth=1.0)
        winners = _winners(sub)
        ax.scatter(winners["share_pct"], winners["speedup"], marker="*", s=170, zorder=5,
                   c=[palette[m] for m in winners["model"]], edgecolors="black",
                   linewidths=0.8)  # fmt: skip
        clause = crossover_clause(sub)
        for start, _end in _figures.lead_intervals(_differences(_tops(sub))):
            if float(sub["share_pct"].min()) < start < float(sub["share_pct"].max()):
                ax.axvline(start, color="#555555", linestyle=":", linewidth=1)
                ax.annotate(f"≈ {start:.0f} %", (start, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -12), textcoords="offset points", fontsize=8)  # fmt: skip
        clauses.append(
            f"{_panel_title(kind, tasks)}: {clause}; best model: {_winner_runs(winners)}"
        )
        shares = sorted(sub["share_pct"].unique())
        ax.xaxis.set_major_locator(FixedLocator(shares))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
        ax.set_xlim(-4, 104)
        ax.set_xlabel("CPU share of each task")
        ax.set_title(_panel_title(kind, tasks))
    for ax in axes:
        ax.set_ylim(max(low / 1.4, 0.05), top * 1.4)
        plain_log(ax)
    axes[0].set_ylabel("speedup over serial (log, higher is better)")
    fig.suptitle("Crossover: speedup over serial as the CPU share of the work grows")
    models = ordered_models(points)
    handles: list[Any] = [
        Line2D([], [], color=palette[m], marker="o", markersize=4, label=m) for m in models
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="ideal, all cores"))
    if "python" in set(points["cpu_kind"]):
        handles.append(
            Line2D([], [], color="grey", linestyle="--", label="ideal in one process (one GIL)")
        )
    handles.append(Line2D([], [], color="white", marker="*", markersize=12,
                          markeredgecolor="black", label="best at that share"))  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7),
               title="model")  # fmt: skip
    save(fig, out, "crossover")
    sentence = join_clauses(clauses) + ". Each model at its best worker count; dashed: the ideals."
    return Chart("crossover", "Which model as the CPU share grows", sentence, run_note(rows))


def _tops(points: pd.DataFrame) -> list[tuple[float, float, float]]:
    """Per share measured by both kinds: (share, best single-process, best multi-process)."""
    single, multi = _side(points, "single"), _side(points, "multi")
    top_single = single.groupby("share_pct")["speedup"].max()
    top_multi = multi.groupby("share_pct")["speedup"].max()
    both = sorted(set(top_single.index) & set(top_multi.index))
    return [(float(x), float(top_single[x]), float(top_multi[x])) for x in both]


def _differences(tops: list[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """Per share: how far the best multi-process model leads the best single-process one."""
    return [(x, multi - single) for x, single, multi in tops]


# --- scale --------------------------------------------------------------------------


def _variant_name(group: str, workload: str) -> str:
    _head, sep, tail = str(group).partition(":")
    return tail if sep and tail else str(workload)


def scale_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (scale variant, model, tasks): the model's most efficient worker count.

    Adds ``variant`` (``io_sleep`` for group ``scale:io_sleep``).
    """
    cells = _sweep(rows, "scale")
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
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8),
               title="model")  # fmt: skip
    save(fig, out, "scale")
    sentence = join_clauses(clauses) + "."
    return Chart("scale", "Scale: 10 to 100,000 tasks", sentence, run_note(rows))


# --- the GIL convoy -----------------------------------------------------------------

CONVOY_VALUES = ("throughput_rps", "latency_p50_ms", "latency_p99_ms")


def convoy_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (placement, switch interval, CPU threads): the median of each figure."""
    cells = _sweep(rows, "convoy")
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
            f" {_times(ratio)} slower"
        )
        for switch in sorted(switches, reverse=True):
            if switch >= default:
                continue
            other = convoy_slowdown(points, "threads", switch)
            if other is not None:
                parts.append(f"at a {switch * 1e3:g} ms switch interval {_times(other[2])}")
    else:
        parts.append("No cell with CPU work in threads at 0 and 1 CPU threads")
    for placement, words in (("native", "in native code"), ("processes", "in a process pool")):
        other = convoy_slowdown(points, placement, default)
        if other is not None:
            parts.append(f"with the CPU work {words} {_times(other[2])}")
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
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               title="where the CPU work runs (colour) · switch interval (line)")  # fmt: skip
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
