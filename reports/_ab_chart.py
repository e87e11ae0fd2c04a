"""The report of an A/B session: its chart (each cell's median ratio B/A with its interval)
and its table (flagged cells first, then the families), from the latest A/B session.

A/B sessions are never drawn in the timed charts: their ``stats`` are side B's alone,
and their point is the pairs.  The verdict is the one ``python -m reports ab`` gives
(``_ab.judge``, the stored A/B thresholds), so the page and the command agree.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from . import _ab, _store
from ._ab_output import frame as verdict_frame
from ._ab_output import percent, verdict_word
from ._compare import InputError
from ._draw import Chart, figure_legend, new_figure, save, styled
from ._models import ordered_models
from ._runs import Run

# More cells than this: two panels side by side, families named on the axis, not cells.
NAMED_CELLS = 40
REGRESSION_COLOUR, IMPROVED_COLOUR = "#c0392b", "#1e8449"


def session_frame(sessions: Sequence[Run], problems: list[str]) -> pd.DataFrame:
    """The latest A/B session's verdict as rows (``_ab_output.frame``); a session that
    cannot be judged, or a corrupt store, is a problem line (the store's: 5 % then)."""
    if not sessions:
        return pd.DataFrame()
    run = sessions[-1]
    try:
        store = _store.load("ab")
    except InputError as exc:
        problems.append(f"A/B chart: {exc}")
        store = None
    if store is None:
        thresholds = _ab.Thresholds(said="5% (no thresholds/ab.json)")
    else:
        thresholds = _ab.Thresholds(store.families, store.shifts, store.default, store.describe())
    try:
        verdict = _ab.judge(run, thresholds)
    except InputError as exc:
        problems.append(f"A/B session: {exc}")
        return pd.DataFrame()
    rows = verdict_frame(verdict)
    rows["sessions"] = len(sessions)
    return rows


def _note(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    more = int(first.get("sessions", 1))
    latest = f", the latest of {more} A/B sessions" if more > 1 else ""
    return (
        f"A/B session {first['run_id']} ({first['environment']},"
        f" {str(first['datetime'])[:16].replace('T', ' ')}"
        f"{latest}): A = {first['label_a']}, B = {first['label_b']}"
    )


def _order(cells: pd.DataFrame) -> pd.DataFrame:
    place = {name: i for i, name in enumerate(ordered_models(cells["model"]))}
    return cells.assign(_m=cells["model"].map(place)).sort_values(["family", "_m", "name"])


def _panels(cells: pd.DataFrame) -> list[list[str]]:
    """The families of each panel: one panel, or two of about equal height."""
    families = list(dict.fromkeys(cells["family"]))
    if len(cells) <= NAMED_CELLS or len(families) < 2:
        return [families]
    sizes = cells.groupby("family", sort=False).size()
    total, run = int(sizes.sum()), 0
    left: list[str] = []
    for fam in families:
        if run >= total / 2 and left:
            break
        left.append(fam)
        run += int(sizes[fam])
    return [left, [fam for fam in families if fam not in left]]


def _colour(verdict: str, fallback: str) -> str:
    return {_ab.REGRESSION: REGRESSION_COLOUR, _ab.IMPROVED: IMPROVED_COLOUR}.get(verdict, fallback)


def _draw_panel(
    ax: Axes, cells: pd.DataFrame, shifts: pd.DataFrame, palette: dict[str, str], named: bool
) -> tuple[float, float]:
    """One panel: per family a threshold band, its shift, its cells; the x range drawn."""
    y, ticks, labels = 0.0, [], []
    low, high = 1.0, 1.0
    for fam, part in cells.groupby("family", sort=False):
        top = y
        for _, cell in part.iterrows():
            colour = palette.get(str(cell["model"]), "#777777")
            if not math.isnan(cell["low"]):
                ax.hlines(y, cell["low"], cell["high"], color=colour, linewidth=1.4)
                low, high = min(low, cell["low"]), max(high, cell["high"])
            verdict = str(cell["verdict"])
            if verdict in (_ab.REGRESSION, _ab.IMPROVED):  # flagged: a diamond of its colour
                ax.plot(cell["ratio"], y, "D", markersize=6 if named else 4.5,
                        markerfacecolor=_colour(verdict, colour), markeredgecolor="#222222",
                        markeredgewidth=0.6, zorder=4)  # fmt: skip
            else:
                ax.plot(cell["ratio"], y, "o", markersize=4 if named else 3, markeredgecolor=colour,
                        markerfacecolor="white" if verdict == _ab.UNJUDGED else colour)  # fmt: skip
            low, high = min(low, cell["ratio"]), max(high, cell["ratio"])
            if named:
                ticks.append(y)
                labels.append(str(cell["name"]))
            y += 1
        band = float(part["threshold"].iloc[0])
        ax.fill_betweenx([top - 0.5, y - 0.5], 1 - band, 1 + band, color="#888888",
                         alpha=0.15, linewidth=0)  # fmt: skip
        shift = shifts[shifts["key"] == fam]
        if not shift.empty:
            ratio, verdict = float(shift["ratio"].iloc[0]), str(shift["verdict"].iloc[0])
            ax.vlines(ratio, top - 0.5, y - 0.5, color=_colour(verdict, "#222222"),
                      linestyle="--", linewidth=1.2)  # fmt: skip
        if not named:
            ticks.append((top + y - 1) / 2)
            labels.append(f"{str(fam).removesuffix(':*')} ({len(part)})")
        ax.axhline(y, color="#dddddd", linewidth=0.6)  # the gap between families
        y += 1
    ax.axvline(1.0, color="#444444", linewidth=0.8)
    ax.set_yticks(ticks, labels, fontsize=7 if named else 9)
    ax.set_ylim(y - 1, -1)
    ax.grid(axis="y", visible=False)
    return low, high


@styled
def chart_ab(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    if rows.empty or "level" not in rows.columns:
        return None
    cells = _order(rows[rows["level"] == "cell"])
    if cells.empty:
        return None
    shifts = rows[rows["level"] == "family"]
    named = len(cells) <= NAMED_CELLS
    panels = _panels(cells)
    tallest = max(int(cells["family"].isin(p).sum()) + len(p) for p in panels)
    fig = new_figure(10.0 if len(panels) > 1 or named else 7.0,
                     tallest * (0.2 if named else 0.075) + 1.8)  # fmt: skip
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    span = 1.05
    for ax, families in zip(axes, panels, strict=True):
        low, high = _draw_panel(ax, cells[cells["family"].isin(families)], shifts, palette, named)
        threshold = float(cells["threshold"].max())
        span = max(span, 1 / max(low, 1e-3), high, (1 + threshold) * 1.02)
    span = min(span * 1.03, 4.0)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(1 / span, span)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}×"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(_ticks(span, len(panels)))
        ax.set_xlabel("B / A: median of the paired ratios (log)")
    first = rows.iloc[0]
    sides = [textwrap.fill(f"{name} = {first[f'label_{name.lower()}']}", 90) for name in "AB"]
    fig.suptitle("\n".join(["A against B in one session", *sides]))
    models = ordered_models(cells["model"])
    handles: list[Artist] = [Patch(facecolor=palette.get(m, "#777777"), label=m) for m in models]
    hollow = Line2D([], [], marker="o", color="white", markeredgecolor="#444444",
                    label="too few pairs: no interval")  # fmt: skip
    handles += [
        Line2D(
            [],
            [],
            marker="D",
            color="white",
            markerfacecolor=REGRESSION_COLOUR,
            markeredgecolor="#222222",
            label="B slower (red) / faster (green)",
        ),
        Line2D([], [], color="#222222", linestyle="--", label="family median"),
        Patch(facecolor="#888888", alpha=0.15, label="threshold band"),
        hollow,
    ]
    figure_legend(fig, handles, "model; bars: the interval of each cell's median")
    save(fig, out, "ab")
    caption = (
        f"Intervals: the distribution-free (order-statistic) interval of each cell's median"
        f" ratio, at {float(first['confidence']):.3%} (Bonferroni over the judged cells);"
        " red: a regression of B, green: an improvement."
    )
    return Chart("ab", "A against B, paired", str(first["sentence"]), _note(rows), caption)


def _ticks(span: float, panels: int) -> list[float]:
    steps = [0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0]
    if span < 1.3 or (span < 1.6 and panels == 1):
        steps += [0.95, 1.05]
    return sorted(t for t in steps if 1 / span <= t <= span) or [1.0]


def ab_table(rows: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(lead, table): the flagged cells, then the flagged models' shifts, then every family."""
    if rows.empty or "level" not in rows.columns:
        return "", pd.DataFrame()
    flagged = rows["verdict"].isin((_ab.REGRESSION, _ab.IMPROVED))
    cells = rows[(rows["level"] == "cell") & flagged]
    cells = cells.assign(_r=cells["verdict"] != _ab.REGRESSION).sort_values(["_r", "name"])
    models = rows[(rows["level"] == "model") & flagged]
    families = rows[rows["level"] == "family"]
    chosen = pd.concat([cells.drop(columns="_r"), models, families])
    interval = [
        "—" if np.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"
        for lo, hi in zip(chosen["low"], chosen["high"], strict=True)
    ]
    table = pd.DataFrame(
        {
            "cell or shift": list(chosen["name"]),
            "B/A": [f"{value:.3f}" for value in chosen["ratio"]],
            "interval": interval,
            "pairs or cells": [str(int(v)) for v in chosen["pairs"]],
            "threshold": [percent(float(v)) for v in chosen["threshold"]],
            "verdict": [verdict_word(str(v)) for v in chosen["verdict"]],
        }
    )
    first = rows.iloc[0]
    count = int((rows["level"] == "cell").sum())
    lead = (
        f"{_note(rows)}. {first['sentence']} Below: the {len(cells)} of {count} cells flagged"
        " on their own (slower first), the models that moved against their family, then"
        " every family's median; B/A below 1: B is faster."
    )
    return lead, table
