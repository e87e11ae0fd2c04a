"""The crossover chart: which model as the CPU share of the work grows.

One panel per kind of CPU work (pure Python, holding the GIL; native, releasing it) and
task count; a line per model at its best worker count, speedup over serial against the
CPU share each task had.  That share is measured, not the one asked for
(``reports._figures.measured_share``): a fixed iteration count is a smaller share on a
faster host, and users read their own measured share off this chart.  The sentence says
where the best multi-process model overtakes the best single-process one (each model's
side comes from its run: ``reports._models``), and which model is best where.

It claims only the leads the data supports, by the best-model table's rule
(``reports._best.holding``): a lead holds at a share where the two cells' rounds show it,
or where the same side (model) leads at a neighbouring share too; elsewhere the two are
level "within noise", and no interval is drawn through such a share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter

from . import _best, _figures
from ._cells import of_sweep, run_note
from ._draw import (
    Chart,
    figure_legend,
    fmt_times,
    join_clauses,
    new_figure,
    plain_log,
    save,
    share_text,
    styled,
)
from ._models import ordered_models, sides

KIND_TITLE = {"python": "Python CPU work", "native": "native CPU work (GIL released)"}
# Speedups within this share of each other at every share are level, not a lead.
LEVEL_WITHIN = _figures.LEVEL_WITHIN
# The share axis's ticks (%): the same on every host, the points fall where they fall.
SHARE_TICKS = (0, 20, 40, 60, 80, 100)


def crossover_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (cpu_kind, tasks, model, cpu_share): the model's best worker count.

    Columns of the frame plus ``share_pct``, the share (%) the work had on the host
    (``cpu_share_measured``; the share asked for in a frame without it), and
    ``asked_pct``; a pool measured with one worker per core and one per task is one line
    at its best, as in the headline chart.
    """
    cells = of_sweep(rows, "crossover")
    if cells.empty or "cpu_share" not in cells.columns:
        return cells.iloc[:0]
    cells = cells[cells["speedup"].notna() & cells["cpu_share"].notna()].copy()
    kinds = cells["cpu_kind"] if "cpu_kind" in cells.columns else pd.Series("?", cells.index)
    cells["cpu_kind"] = kinds.fillna("?").astype(str)
    measured = (
        cells["cpu_share_measured"]
        if "cpu_share_measured" in cells.columns
        else pd.Series(float("nan"), cells.index)
    )
    cells["asked_pct"] = cells["cpu_share"] * 100.0
    cells["share_pct"] = measured.fillna(cells["cpu_share"]) * 100.0
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


def _winner_runs(points: pd.DataFrame) -> str:
    """``uvloop at 0–10 %, processes from 90 %``: consecutive shares won by one model;
    ``asyncio and uvloop level within noise at 0–10 %`` where the best model's lead over the
    next does not hold (the best-model table's rule: ``_best.next_best_lead``,
    ``_best.holding``)."""
    shares = sorted(set(points["share_pct"]))
    at = [points[points["share_pct"] == x].sort_values("median_s", kind="stable") for x in shares]
    holds = _best.holding([_best.next_best_lead(cells) for cells in at])
    order = ordered_models(points)
    spans: list[tuple[frozenset[str], str, list[int]]] = []
    for i, cells in enumerate(at):
        names = list(dict.fromkeys(cells["model"]))[:2]
        key, label = frozenset(names[:1]), names[0]
        if len(names) == 2 and not holds[i]:
            names.sort(key=order.index)  # whichever is ahead by a hair: the same words
            key, label = frozenset(names), f"{names[0]} and {names[1]} level within noise"
        if spans and spans[-1][0] == key:
            spans[-1][2].append(i)
        else:
            spans.append((key, label, [i]))
    parts = []
    for _key, label, run in spans:
        start, end = shares[run[0]], shares[run[-1]]
        if start == end:
            parts.append(f"{label} at {share_text(start)}")
        elif run[-1] == len(shares) - 1 and run[0] > 0:
            parts.append(f"{label} from {share_text(start)}")
        else:
            parts.append(f"{label} at {share_text(start, '')}–{share_text(end)}")
    return ", ".join(parts)


def _side(points: pd.DataFrame, side: str) -> pd.DataFrame:
    """The points of the models on one side, "single" or "multi", as their runs say."""
    return points[points["model"].map(sides(points)) == side]


def crossover_clause(points: pd.DataFrame) -> str:
    """Where the multi-process models overtake the best single-process model, in words.

    ``points`` are one panel's ``crossover_points`` (one cpu_kind and task count).  At each
    share the best single-process speedup (serial included: at least 1×) and the best
    multi-process speedup are compared: level within ``LEVEL_WITHIN`` at every share, else
    each share's lead holds or is level within noise (``_verdicts``); a crossing between
    two shares where the leads hold is interpolated linearly (``guarded_leads``).  Which
    side a model is on comes from its run (``Model.process_scope``); a model whose run does
    not say is named.
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
    if not tops:
        return "no share has both a single-process and a multi-process cell"
    both = [x for x, _s, _m in tops]
    low, high = both[0], both[-1]
    measured = (
        f"the one measured share ({share_text(low)})"
        if low == high
        else f"every measured share ({share_text(low, '')}–{share_text(high)})"
    )

    def at(share: float) -> str:
        best_single = single[single["share_pct"] == share].sort_values("speedup").iloc[-1]
        best_multi = multi[multi["share_pct"] == share].sort_values("speedup").iloc[-1]
        return (
            f"at {share_text(share)}: {best_single['model']} {fmt_times(best_single['speedup'])},"
            f" {best_multi['model']} {fmt_times(best_multi['speedup'])}"
        )

    if _level(tops):
        return (
            f"the best single-process model keeps up with processes at {measured}, within"
            f" {LEVEL_WITHIN:.0%} ({at(high)})"
        )
    verdicts = _verdicts(points)
    level = [i for i, v in enumerate(verdicts) if v == 0]
    if 1 not in verdicts:
        if -1 not in verdicts:
            return (
                "the best single-process model and processes are level at"
                f" {measured}, within noise ({at(high)})"
            )
        ahead = [i for i, v in enumerate(verdicts) if v == -1]
        where = (
            f"{_where(ahead, both)} and is level with processes within noise {_where(level, both)}"
            if level
            else f"at {measured}"
        )
        return (
            "no crossing in the measured range: the best single-process model stays ahead"
            f" {where} ({at(high)})"
        )
    leads = guarded_leads(points)
    also = f", and are level with it within noise {_where(level, both)}" if level else ""
    if len(leads) == 1:
        (start, start_how), (_end_share, end_how) = leads[0]
        if start_how == end_how == "edge":
            return f"processes are ahead of the best single-process model at {measured}"
        if end_how == "edge" and start_how == "crossing":
            below = max(x for x in both if x <= start)
            above = min(x for x in both if x >= start)
            return (
                "on this machine, processes overtake the best single-process model from a"
                f" CPU share of about {share_text(start)} (between the measured"
                f" {share_text(below)} and {share_text(above)}){also}"
            )
    spans = _join([span_text(*lead) for lead in leads])
    return f"processes are ahead of the best single-process model {spans}{also}"


# How an end of a lead was found: the first or last share measured ("edge"), a crossing
# interpolated between two shares where the sides' leads hold ("crossing"), or the last
# share where the lead holds, next to one where the sides are level ("measured").
End = tuple[float, str]


def _verdicts(points: pd.DataFrame) -> list[int]:
    """Per share both sides measured (in order): 1 where the multi-process side's lead
    holds, -1 where the single-process side's does, 0 where they are level within noise
    (``_best.holding``).  Level shares between two leads of one side are that side's:
    adjacent intervals merge."""
    leads = []
    for _x, one, many in _pairs(points):
        if float(many["speedup"]) > float(one["speedup"]):
            leads.append(_best.cell_lead("multi", many, one))
        else:
            leads.append(_best.cell_lead("single", one, many))
    holds = _best.holding(leads)
    verdicts = [
        (1 if lead.leader == "multi" else -1) if held else 0
        for lead, held in zip(leads, holds, strict=True)
    ]
    i = 0
    while i < len(verdicts):
        j = i
        while j < len(verdicts) and verdicts[j] == 0:
            j += 1
        if 0 < i < j < len(verdicts) and verdicts[i - 1] == verdicts[j]:
            verdicts[i:j] = [verdicts[j]] * (j - i)
        i = max(j, i + 1)
    return verdicts


def guarded_leads(points: pd.DataFrame) -> list[tuple[End, End]]:
    """Where the multi-process side's lead holds (``_verdicts``), as (start, end) shares
    with how each was found (``End``).  Between a share where one side's lead holds and
    the next, where the other's does, the crossing is interpolated linearly
    (``_figures.lead_intervals``); next to a level share the lead starts (or ends) at the
    share where it holds: no interval is drawn through noise."""
    tops = _tops(points)
    verdicts = _verdicts(points)
    out: list[tuple[End, End]] = []
    for i, verdict in enumerate(verdicts):
        if verdict != 1 or (i > 0 and verdicts[i - 1] == 1):
            continue
        j = i
        while j + 1 < len(verdicts) and verdicts[j + 1] == 1:
            j += 1
        out.append((_end(tops, verdicts, i, i - 1), _end(tops, verdicts, j, j + 1)))
    return out


def _end(tops: list[tuple[float, float, float]], verdicts: list[int], inside: int, out: int) -> End:
    """One end of a lead that holds at share ``inside``, next to share ``out``."""
    if not 0 <= out < len(verdicts):
        return tops[inside][0], "edge"
    if verdicts[out] == 0:
        return tops[inside][0], "measured"
    pair = [(tops[k][0], tops[k][2] - tops[k][1]) for k in sorted((inside, out))]
    [(start, end)] = _figures.lead_intervals(pair)
    return (start if out < inside else end), "crossing"


def span_text(start: End, end: End) -> str:
    """``up to about 5.3 %``, ``from 25 %``, ``between about 12 % and 40 %``."""
    about = "about " if "crossing" in (start[1], end[1]) else ""
    if start[1] == "edge":
        return f"up to {about}{share_text(end[0])}"
    if end[1] == "edge":
        return f"from {about}{share_text(start[0])}"
    if share_text(start[0]) == share_text(end[0]):
        return f"at {about}{share_text(start[0])}"
    return f"between {about}{share_text(start[0])} and {share_text(end[0])}"


def _where(indices: list[int], shares: list[float]) -> str:
    """``up to 25 %``, ``from 50 %``, ``at 0.62 %``, ``between 10 % and 25 %``: the
    measured shares at ``indices``, a run of neighbours as one span."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    last = len(shares) - 1
    parts = []
    for run in runs:
        start, end = shares[run[0]], shares[run[-1]]
        if len(run) == 1:
            parts.append(f"at {share_text(start)}")
        elif run[0] == 0:
            parts.append(f"up to {share_text(end)}")
        elif run[-1] == last:
            parts.append(f"from {share_text(start)}")
        else:
            parts.append(f"between {share_text(start)} and {share_text(end)}")
    return _join(parts)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _share_label(points: pd.DataFrame) -> str:
    """The x axis's name: how the panel's shares were found."""
    sources = set(points["cpu_share_source"].dropna()) if "cpu_share_source" in points else set()
    if sources == {"serial"}:
        return "CPU share of each task: serial's CPU time ÷ wall time"
    if sources <= {"serial", "per_iter"} and sources:
        return "CPU share of each task, from the CPU time measured"
    return "CPU share of each task, as asked (no CPU time measured)"


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
        # A dotted line where the sides cross, as the sentence says (none where level).
        leads = [] if _level(_tops(sub)) else guarded_leads(sub)
        for x, how in (end for lead in leads for end in lead):
            if how == "crossing":
                ax.axvline(x, color="#555555", linestyle=":", linewidth=1)
                ax.annotate(f"≈ {share_text(x)}", (x, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -12), textcoords="offset points", fontsize=8)  # fmt: skip
        note = asked_note(sub)
        clauses.append(
            f"{_panel_title(kind, tasks)}: {clause}; best model: {_winner_runs(sub)}"
            + (f" ({note})" if note else "")
        )
        # The axis is the share the work had: fixed ticks, whatever shares were asked for.
        ax.xaxis.set_major_locator(FixedLocator(SHARE_TICKS))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}%"))
        ax.set_xlim(-4, 104)
        ax.set_xlabel(_share_label(sub))
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
    figure_legend(fig, handles, "model")
    save(fig, out, "crossover")
    sentence = join_clauses(clauses) + ". Each model at its best worker count; dashed: the ideals."
    return Chart("crossover", "Which model as the CPU share grows", sentence, run_note(rows))


def _pairs(points: pd.DataFrame) -> list[tuple[float, pd.Series, pd.Series]]:
    """Per share measured by both sides, in order: (share, the best single-process cell,
    the best multi-process cell)."""
    best = points.sort_values("speedup", ascending=False, kind="stable")
    single = _side(best, "single").drop_duplicates("share_pct").set_index("share_pct")
    multi = _side(best, "multi").drop_duplicates("share_pct").set_index("share_pct")
    both = sorted(set(single.index) & set(multi.index))
    return [(float(x), single.loc[x], multi.loc[x]) for x in both]


def _tops(points: pd.DataFrame) -> list[tuple[float, float, float]]:
    """Per share measured by both kinds: (share, best single-process, best multi-process)."""
    return [(x, float(one["speedup"]), float(many["speedup"])) for x, one, many in _pairs(points)]


def _level(tops: list[tuple[float, float, float]]) -> bool:
    """Whether the two sides are level at every share both measured (``LEVEL_WITHIN``)."""
    return all(abs(m / s - 1) <= LEVEL_WITHIN for _x, s, m in tops if s > 0)


def asked_note(points: pd.DataFrame) -> str:
    """``asked for 10, 25, 50 %, the work had 4.6, 13, 31 %``: the shares that came out
    other than asked (by a point or more), or "" when every one came out as asked."""
    shares = points[["asked_pct", "share_pct"]].drop_duplicates("asked_pct")
    moved = shares[(shares["share_pct"] - shares["asked_pct"]).abs() >= 1.0]
    if moved.empty:
        return ""
    asked = ", ".join(share_text(a, "") for a in moved["asked_pct"])
    had = ", ".join(share_text(h, "") for h in moved["share_pct"])
    return f"asked for {asked} %, the work had {had} %"
