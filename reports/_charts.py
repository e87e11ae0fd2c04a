"""Charts from the tidy frame: PNG and SVG, one colour per model everywhere.

Every ``chart_*`` function takes the frame (or the slice it needs), the palette and
the output folder, writes ``NAME.png`` and ``NAME.svg`` and returns a :class:`Chart`
with a title and one sentence of what the chart shows, worked out from the data; it
returns ``None`` when the frame has nothing for it.  Figures are built with
``matplotlib.figure.Figure`` (no pyplot), so nothing is shown and no global state
is kept between charts.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ._frame import BOUND_ORDER, model_sort_key, params_label

matplotlib.use("Agg")
P = ParamSpec("P")
R = TypeVar("R")

# Colours of the models and server styles known today (models first, then network
# server styles).  Network styles named after a model share its colour on purpose.  Any
# other name gets a colour derived from the name itself (``colour_for``): a plugin model
# needs no entry here.
PALETTE = {
    "serial": "#4d4d4d",
    "generator": "#8c564b",
    "threads": "#1f77b4",
    "processes": "#d62728",
    "gevent": "#2ca02c",
    "asyncio": "#9467bd",
    "uvloop": "#e377c2",
    "interpreters": "#17becf",
    "dask": "#bcbd22",
    "asyncio_processes": "#7b4173",
    # Network server styles: a family shares a hue (asyncio's, threads'), no two alike.
    "threaded": "#aec7e8",
    "asyncio_protocol": "#c5b0d5",
    "nonblocking": "#7f7f7f",
    "select": "#ff7f0e",
    "selectors": "#ffbb78",
}
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "++", "--")
SEED_WORKLOADS = ("seed_cpu", "seed_io")
SPECIAL_WORKLOADS = frozenset({"startup", *SEED_WORKLOADS})
RC: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "boundbench",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9,
    "legend.frameon": False,
}
DPI = 110


@dataclass
class Chart:
    name: str
    title: str
    sentence: str
    run_note: str = ""

    @property
    def png(self) -> str:
        return f"{self.name}.png"

    @property
    def svg(self) -> str:
        return f"{self.name}.svg"


def _rgb(colour: str) -> tuple[float, float, float]:
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    """A cheap perceptual RGB distance ("redmean"): green and blue weigh as the eye does."""
    red = (a[0] + b[0]) / 2
    dr, dg, db = (a[i] - b[i] for i in range(3))
    return math.sqrt((2 + red) * dr * dr + 4 * dg * dg + (3 - red) * db * db)


def _derived_colours() -> tuple[str, ...]:
    """Colours for names not in PALETTE: 24 hues at three lightnesses, minus those close
    to a PALETTE colour (so a plugin never looks like a built-in model)."""
    known = [_rgb(colour) for colour in PALETTE.values()]
    found = []
    for lightness, offset in ((0.35, 0.0), (0.5, 0.5), (0.65, 0.0)):
        for step in range(24):
            rgb = colorsys.hls_to_rgb((step + offset) / 24, lightness, 0.7)
            if min(_distance(rgb, colour) for colour in known) >= MIN_COLOUR_DISTANCE:
                found.append("#" + "".join(f"{round(c * 255):02x}" for c in rgb))
    return tuple(found)


MIN_COLOUR_DISTANCE = 0.25
DERIVED_COLOURS = _derived_colours()


def _slot(name: str) -> int:
    # blake2b, not hash(): str hashes are salted per process, a colour must not be.
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % len(DERIVED_COLOURS)


def colour_for(name: str) -> str:
    """A model's or server style's colour: PALETTE's, else one derived from the name.

    The same name gets the same colour in every report, process and machine.
    """
    return PALETTE.get(name) or DERIVED_COLOURS[_slot(name)]


def make_palette(names: Iterable[str]) -> dict[str, str]:
    """Every name's colour for one report.

    Two names outside PALETTE whose derived colours coincide would be indistinct in
    the same chart: the later one (alphabetically) takes the next free derived colour.
    """
    palette = dict(PALETTE)
    taken = set(palette.values())
    for name in sorted({str(n) for n in names} - set(palette)):
        slot = _slot(name)
        for step in range(len(DERIVED_COLOURS)):
            colour = DERIVED_COLOURS[(slot + step) % len(DERIVED_COLOURS)]
            if colour not in taken:
                break
        palette[name] = colour
        taken.add(colour)
    return palette


def ordered_models(names: Iterable[str]) -> list[str]:
    return sorted({str(n) for n in names}, key=model_sort_key)


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Draw under boundbench's rc settings without touching the global ones."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def _save(fig: Figure, out: Path, name: str) -> None:
    fig.savefig(out / f"{name}.png", dpi=DPI, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _legend_for(
    fig: Figure, models: list[str], palette: dict[str, str], extra: Sequence[Any] = (), **kw: Any
) -> None:
    handles = [Patch(facecolor=palette[m], label=m) for m in models] + list(extra)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 9),
        title=kw.pop("title", "model"),
        **kw,
    )


def _fmt_x(value: float) -> str:
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×"


def fmt_seconds(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _seconds_axis(ax: Axes, axis: str = "y") -> None:
    formatter = FuncFormatter(lambda v, _pos: fmt_seconds(v) if v > 0 else "0")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(formatter)
    target.set_minor_formatter(NullFormatter())


def _plain_log(ax: Axes) -> None:
    """A log y axis labelled 0.2, 0.5, 1, 2, 5 ... instead of 2×10⁻¹."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.6g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _wide(values: pd.Series, ratio: float = 20.0) -> bool:
    values = values[values > 0].dropna()
    return len(values) > 1 and float(values.max() / values.min()) > ratio


def _join(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return "; ".join(parts[:-1]) + "; " + parts[-1]


# --- selections -------------------------------------------------------------------


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


def _grouped_bars(
    ax: Axes,
    cells: pd.DataFrame,
    value: str,
    palette: dict[str, str],
    models: list[str],
    *,
    label_fmt: Callable[[float], str] | None = None,
    base: float = 0.0,
) -> list[tuple[str, str, Any]]:
    """Bars of ``value``: x groups are (workload, params, tasks), bars are models."""
    groups = (
        cells[["workload", "params", "tasks"]]
        .drop_duplicates()
        .sort_values(["workload", "params", "tasks"])
        .itertuples(index=False, name=None)
    )
    groups = list(groups)
    many = cells.groupby("workload")["params"].nunique().max() > 1
    width = 0.8 / max(len(models), 1)
    for gi, (workload, params, tasks) in enumerate(groups):
        sub = cells[
            (cells["workload"] == workload)
            & (cells["params"] == params)
            & (cells["tasks"] == tasks)
        ]
        present = [m for m in models if m in set(sub["model"])]
        for mi, model in enumerate(present):
            val = float(sub.loc[sub["model"] == model, value].iloc[0])
            x = gi - 0.4 + width * (mi + 0.5) + width * (len(models) - len(present)) / 2
            ax.bar(x, val - base, width * 0.92, bottom=base, color=palette[model],
                   edgecolor="white", linewidth=0.5)  # fmt: skip
            if label_fmt is not None and len(present) * len(groups) <= 40:
                below = val < base
                ax.annotate(
                    label_fmt(val),
                    (x, val),
                    xytext=(0, -2 if below else 2),
                    textcoords="offset points",
                    ha="center",
                    va="top" if below else "bottom",
                    fontsize=7,
                    rotation=90 if len(present) > 4 else 0,
                )
    crowded = len(groups) > 6
    ax.set_xticks(
        range(len(groups)),
        [group_label(w, p, t, many) for w, p, t in groups],
        rotation=35 if crowded else 0,
        ha="right" if crowded else "center",
        fontsize=7 if crowded else None,
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)
    return groups


# --- 1 + 2: speedup and efficiency ------------------------------------------------


def _bound_panels(cells: pd.DataFrame) -> list[str]:
    return [b for b in BOUND_ORDER if b in set(cells["bound"])]


def _bars_width(widths: list[int]) -> float:
    """Figure width for grouped bars: room per group, capped so a big run stays viewable."""
    return min(16.0, max(7.0, 2.2 * sum(widths) + 1.5))


def _bound_rank(bound: str) -> int:
    return BOUND_ORDER.index(bound) if bound in BOUND_ORDER else len(BOUND_ORDER)


_BOUND_TITLE = {"cpu": "CPU-bound", "io": "I/O-bound", "mixed": "mixed", "net": "network"}


@_styled
def chart_headline(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    cells = headline_cells(rows)
    if cells.empty:
        return None
    bounds = _bound_panels(cells)
    models = ordered_models(cells["model"])
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = _figure(_bars_width(widths), 4.8)
    # Speedup is a ratio: a log axis shared by both panels, bars growing up or down from 1×,
    # so "CPU work barely moves, I/O work flies" is visible at a glance.
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths, sharey=True)[0]
    low = min(0.5, float(cells["speedup"].min()) / 1.5)
    high = max(2.0, float(cells["speedup"].max()) * 2.5)
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        ax.set_yscale("log")
        _grouped_bars(ax, sub, "speedup", palette, models, label_fmt=_fmt_x, base=1.0)
        ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_title(f"{_BOUND_TITLE.get(bound, bound)} work")
    axes[0].set_ylim(low, high)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}×"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("speedup over serial (log, higher is better)")
    fig.suptitle("Speedup over serial per model: CPU-bound vs I/O-bound")
    _legend_for(fig, models, palette)
    _save(fig, out, "headline")
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
                f" (best {best['model']} {best['speedup']:.2f}×)"
            )
        else:
            clause = (
                f"{workload} ({int(best['tasks'])} tasks): {best['model']} is fastest at"
                f" {best['speedup']:.2f}× serial"
            )
        if len(ranked) > 1:
            clause += f", {worst['model']} slowest at {worst['speedup']:.2f}×"
        clauses.append(clause)
    sentence = _join(clauses) + ". Dashed line: serial (1×); each model at its best worker count."
    return Chart("headline", "Speedup over serial", sentence, run_note(rows))


@_styled
def chart_efficiency(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    cells = headline_cells(rows, "efficiency")
    if cells.empty:
        return None
    bounds = _bound_panels(cells)
    models = ordered_models(cells["model"])
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = _figure(_bars_width(widths), 4.6)
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths, sharey=True)[0]
    top = max(1.15, float(cells["efficiency"].max()) * 1.15)
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        _grouped_bars(ax, sub, "efficiency", palette, models, label_fmt=lambda v: f"{v:.0%}")
        ax.axhline(1.0, color="black", linewidth=1.2)
        ax.set_title(f"{_BOUND_TITLE.get(bound, bound)} work")
        ax.set_ylim(0, top)
    axes[0].set_ylabel("efficiency = ideal time / measured time")
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    fig.suptitle("Efficiency vs ideal per model (1.0 is the physical limit)")
    limit = Line2D([], [], color="black", linewidth=1.2, label="ideal = 1.0 (limit)")
    _legend_for(fig, models, palette, extra=[limit])
    _save(fig, out, "efficiency")
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
    for cell in capped.itertuples():
        sentence += (
            f" {cell.model} on {cell.workload} runs at most {cell.workers_cap} workers for"
            f" {cell.tasks} tasks (a harness cap), so it can reach {cell.cap_limit:.0%} at best:"
            " that gap is the cap's, not the model's."
        )
    return Chart("efficiency", "Efficiency vs ideal", sentence, run_note(rows))


# --- 3: wall time with spread ------------------------------------------------------


@_styled
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
    many = rows.groupby("workload")["params"].nunique().max() > 1
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    models = ordered_models(rows["model"])
    fig = _figure(4.4 * ncols + 0.5, 3.4 * nrows + 0.9)
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
            key=lambda mwv: (model_sort_key(mwv[0]), -1 if pd.isna(mwv[1]) else mwv[1], mwv[2]),
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
        _seconds_axis(ax)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0), numticks=12))
        ax.set_xticks(range(len(tasks)), [f"{int(t)} tasks" for t in tasks])
        ax.set_xlim(-0.6, len(tasks) - 0.4)
        ax.grid(axis="x", visible=False)
        title = workload + (f" [{params_label(params)}]" if many else "")
        ax.set_title(title)
        ax.set_ylabel("wall time per call (log)")
    fig.suptitle("Wall time per cell: median (dot), IQR (thick bar), min–max (thin line)")
    _legend_for(fig, models, palette)
    _save(fig, out, "walltime")
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
    return Chart("walltime", "Wall time with its spread", sentence, run_note(rows))


# --- 4: CPU vs wall ----------------------------------------------------------------


@_styled
def chart_cpu_wall(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """CPU seconds per wall second for the headline cells: 1.0 is one core kept busy."""
    cells = headline_cells(rows)
    cells = cells[cells["cpu_s"].notna() & (cells["median_s"] > 0)]
    if cells.empty:
        return None
    cells = cells.assign(busy=cells["cpu_s"] / cells["median_s"])
    bounds = _bound_panels(cells)
    models = ordered_models(cells["model"])
    widths = [max(1, cells[cells["bound"] == b][["workload", "params"]].drop_duplicates().shape[0])
              for b in bounds]  # fmt: skip
    fig = _figure(_bars_width(widths), 4.6)
    axes = fig.subplots(1, len(bounds), squeeze=False, width_ratios=widths)[0]
    cores = cells["cpu_usable"].dropna()
    ncores = int(cores.max()) if len(cores) else 1
    all_cores = ncores > 1 and float(cells["busy"].max()) > 0.8 * ncores
    for ax, bound in zip(axes, bounds, strict=True):
        sub = cells[cells["bound"] == bound]
        _grouped_bars(ax, sub, "busy", palette, models, label_fmt=lambda v: f"{v:.0%}")
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
    _legend_for(fig, models, palette, extra=extra)
    _save(fig, out, "cpu_wall")
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
    return Chart("cpu_wall", "CPU time vs wall time", sentence, run_note(rows))


# --- 5: over runs and across environments -------------------------------------------


def run_labels(frame: pd.DataFrame) -> pd.DataFrame:
    runs = (
        frame[["run_id", "run_number", "datetime", "commit"]]
        .drop_duplicates("run_id")
        .sort_values(["datetime", "run_number", "run_id"], na_position="first")
        .reset_index(drop=True)
    )

    def label(r: Any) -> str:
        when = r.datetime.strftime("%m-%d %H:%M") if isinstance(r.datetime, pd.Timestamp) else ""
        commit = (r.commit or "")[:7] if isinstance(r.commit, str) else ""
        num = f"#{int(r.run_number)}" if pd.notna(r.run_number) else r.run_id[:12]
        return " ".join(p for p in (num, commit, when) if p)

    runs["label"] = [label(r) for r in runs.itertuples()]
    runs["order"] = range(len(runs))
    return runs


@_styled
def chart_trend(frame: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Each cell's median over runs, relative to its first run, for one environment."""
    rows = frame[frame["median_s"].notna() & (frame["median_s"] > 0)]
    if rows["run_id"].nunique() < 2:
        return None
    runs = run_labels(rows)
    rows = rows.merge(runs[["run_id", "order", "label"]], on="run_id")
    key = ["workload", "params", "tasks", "model", "workers", "start_method"]
    key += [column for column in ("variant", "group") if column in rows.columns]
    rows = rows.sort_values("order")
    first = rows.groupby(key, dropna=False)["median_s"].transform("first")
    rows = rows.assign(rel=rows["median_s"] / first)
    counts = rows.groupby(key, dropna=False)["run_id"].transform("nunique")
    rows = rows[counts >= 2]
    if rows.empty:
        return None
    workloads = sorted(rows["workload"].unique(), key=lambda w: (w in SPECIAL_WORKLOADS, w))
    ncols = min(3, len(workloads))
    nrows = math.ceil(len(workloads) / ncols)
    fig = _figure(4.4 * ncols + 0.5, 3.2 * nrows + 1.0)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(workloads) :]:
        ax.set_visible(False)
    models = ordered_models(rows["model"])
    for ax, workload in zip(axes, workloads, strict=False):
        sub = rows[rows["workload"] == workload]
        for _cell, line in sub.groupby(key, dropna=False, sort=False):
            model = line["model"].iloc[0]
            ax.plot(line["order"], line["rel"], color=palette[model], marker="o",
                    markersize=3, linewidth=1, alpha=0.8)  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(workload)
        ax.set_xticks(runs["order"], runs["label"], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.3, len(runs) - 0.7)
    for ax in axes[::ncols]:
        ax.set_ylabel("median ÷ first run's median")
    if _wide(rows["rel"], 4):
        for ax in axes:
            _plain_log(ax)
    fig.suptitle(
        "Trend over runs: each cell's wall time relative to its first run (lower is faster)"
    )
    _legend_for(fig, models, palette)
    _save(fig, out, "trend")
    last = rows[rows["order"] == rows["order"].max()]
    slower = last.sort_values("rel").iloc[-1]
    faster = last.sort_values("rel").iloc[0]
    sentence = (
        f"{rows['run_id'].nunique()} runs, {len(last)} cells in the latest: the biggest slowdown"
        f" since the first run is {slower['cell']} ({slower['rel']:.2f}×), the biggest speedup"
        f" {faster['cell']} ({faster['rel']:.2f}×)."
    )
    return Chart("trend", "Trend over runs", sentence, f"{rows['run_id'].nunique()} runs")


@_styled
def chart_environments(frame: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Speedup per model per workload, one bar per environment (machine + interpreter)."""
    if "environment" in frame.columns:
        envs = frame.assign(env=frame["environment"])
    else:
        envs = frame.assign(env=frame["machine"] + " · " + frame["interpreter"])
    if envs["env"].nunique() < 2:
        return None
    latest = pd.concat([latest_run(g) for _, g in envs.groupby("env", sort=True)])
    parts = [headline_cells(g) for _, g in latest.groupby("env", sort=True)]
    parts = [p for p in parts if not p.empty]
    if len(parts) < 2:
        return None
    cells = pd.concat(parts)
    if cells["env"].nunique() < 2:
        return None
    env_names = sorted(cells["env"].unique())
    workloads = sorted(cells["workload"].unique())
    models = ordered_models(cells["model"])
    ncols = min(3, len(workloads))
    nrows = math.ceil(len(workloads) / ncols)
    fig = _figure(min(16.0, max(4.6, 0.28 * len(models) * len(env_names) + 1.2) * ncols),
                  3.4 * nrows + 1.4)  # fmt: skip
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(workloads) :]:
        ax.set_visible(False)
    width = 0.8 / len(env_names)
    for ax, workload in zip(axes, workloads, strict=False):
        sub = cells[cells["workload"] == workload]
        present = [m for m in models if m in set(sub["model"])]
        for mi, model in enumerate(present):
            for ei, env in enumerate(env_names):
                val = sub[(sub["model"] == model) & (sub["env"] == env)]["speedup"]
                if val.empty:
                    continue
                ax.bar(mi - 0.4 + width * (ei + 0.5), float(val.iloc[0]), width * 0.9,
                       color=palette[model], hatch=HATCHES[ei % len(HATCHES)],
                       edgecolor="white", linewidth=0.5)  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(present)), present, rotation=30, ha="right")
        ax.grid(axis="x", visible=False)
        ax.set_title(workload)
    for ax in axes[::ncols]:
        ax.set_ylabel("speedup over serial (×)")
    handles = [Patch(facecolor="#bbbbbb", hatch=HATCHES[i % len(HATCHES)], label=env,
                     edgecolor="white") for i, env in enumerate(env_names)]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(env_names), 2),
               title="machine · Python · GIL · switch interval · start method (bar pattern);"
               " colour = model")  # fmt: skip
    fig.suptitle("Interpreters and machines side by side: speedup over serial")
    _save(fig, out, "environments")
    pivot = cells.pivot_table(index=["workload", "model"], columns="env", values="speedup")
    spread = (pivot.max(axis=1) - pivot.min(axis=1)).dropna()
    if spread.empty:
        sentence = f"{len(env_names)} environments compared."
    else:
        (workload, model) = spread.idxmax()
        row = pivot.loc[(workload, model)].dropna()
        sentence = (
            f"{len(env_names)} environments; the largest difference is {model} on {workload}: "
            + ", ".join(f"{row[e]:.2f}× on {e}" for e in row.index)
            + "."
        )
    return Chart("environments", "Interpreters and machines side by side", sentence, "")


# --- network, seed, startup ----------------------------------------------------------


@_styled
def _net_chart(
    rows: pd.DataFrame,
    palette: dict[str, str],
    out: Path,
    *,
    name: str,
    value: str,
    ylabel: str,
    title: str,
    higher_better: bool,
) -> Chart | None:
    if value not in rows.columns:
        return None
    rows = rows[(rows["bound"] == "net") & rows[value].notna()]
    if rows.empty:
        return None
    payloads = sorted(rows["payload"].dropna().unique()) or [math.nan]
    styles = ordered_models(rows["model"])
    fig = _figure(max(4.2 * len(payloads), 6.0) + 0.5, 4.4)
    axes = fig.subplots(1, len(payloads), squeeze=False, sharey=True)[0]
    width = 0.8 / len(styles)
    for ax, payload in zip(axes, payloads, strict=True):
        sub = rows if math.isnan(payload) else rows[rows["payload"] == payload]
        conns = sorted(sub["connections"].dropna().unique())
        for ci, conn in enumerate(conns):
            at = sub[sub["connections"] == conn]
            for si, style in enumerate(styles):
                val = at[at["model"] == style][value]
                if val.empty:
                    continue
                ax.bar(ci - 0.4 + width * (si + 0.5), float(val.median()), width * 0.9,
                       color=palette[style], edgecolor="white", linewidth=0.5)  # fmt: skip
        ax.set_xticks(range(len(conns)), [f"{int(c)} conn." for c in conns])
        ax.grid(axis="x", visible=False)
        ax.set_title("payload ?" if math.isnan(payload) else f"payload {int(payload)} B")
        if _wide(rows[value], 20):
            _plain_log(ax)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title)
    _legend_for(fig, styles, palette, title="server style")
    _save(fig, out, name)
    per = rows.groupby("model")[value].median().sort_values(ascending=not higher_better)
    unit = "req/s" if value == "throughput_rps" else "ms"
    sentence = (
        f"Across payloads and connection counts, {per.index[0]} has the"
        f" {'highest' if higher_better else 'lowest'} median ({per.iloc[0]:,.0f} {unit})"
        f" and {per.index[-1]} the {'lowest' if higher_better else 'highest'}"
        f" ({per.iloc[-1]:,.{0 if unit == 'req/s' else 2}f} {unit})."
    )
    return Chart(name, title, sentence, run_note(rows))


def chart_net_throughput(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    return _net_chart(rows, palette, out, name="net_throughput", value="throughput_rps",
                      ylabel="throughput (requests/s, higher is better)",
                      title="Echo server throughput per style", higher_better=True)  # fmt: skip


def chart_net_latency(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    return _net_chart(rows, palette, out, name="net_latency", value="latency_p99_ms",
                      ylabel="p99 latency (ms, lower is better)",
                      title="Echo server p99 latency per style", higher_better=False)  # fmt: skip


@_styled
def chart_seed(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = rows[rows["workload"].isin(SEED_WORKLOADS) & rows["median_s"].notna()]
    if rows.empty:
        return None
    workloads = [w for w in SEED_WORKLOADS if w in set(rows["workload"])]
    fig = _figure(3.6 * len(workloads) + 0.8, 3.8)
    axes = fig.subplots(1, len(workloads), squeeze=False)[0]
    clauses = []
    for ax, workload in zip(axes, workloads, strict=True):
        sub = rows[rows["workload"] == workload].copy()
        sub["_r"] = sub["model"].map(lambda m: model_sort_key(m)[0])
        sub = sub.sort_values("_r")
        xs = range(len(sub))
        lo = (sub["median_s"] - sub["q1_s"].fillna(sub["median_s"])).clip(lower=0)
        hi = (sub["q3_s"].fillna(sub["median_s"]) - sub["median_s"]).clip(lower=0)
        ax.bar(xs, sub["median_s"], 0.6, color=[palette[m] for m in sub["model"]],
               yerr=[lo, hi], capsize=4)  # fmt: skip
        for x, v in zip(xs, sub["median_s"], strict=True):
            ax.text(x, v / 2, fmt_seconds(v), ha="center", va="center", color="white",
                    fontsize=9, fontweight="bold")  # fmt: skip
        ax.set_xticks(list(xs), list(sub["model"]))
        ax.grid(axis="x", visible=False)
        _seconds_axis(ax)
        ax.set_ylim(0, float(sub["median_s"].max()) * 1.2)
        ax.set_title(f"{workload} ({int(sub['tasks'].iloc[0])} tasks)")
        serial = sub[sub["model"] == "serial"]
        for _, other in sub[sub["model"] != "serial"].iterrows():
            if not serial.empty:
                ratio = other["median_s"] / float(serial["median_s"].iloc[0])
                clauses.append(
                    f"{workload}: {other['model']} takes {ratio:.2f}× serial's time"
                    + (
                        " (interleaving does not make CPU work faster)"
                        if workload == "seed_cpu" and ratio >= 0.95
                        else ""
                    )
                    + (" (waits overlap)" if workload == "seed_io" and ratio < 0.8 else "")
                )
    axes[0].set_ylabel("wall time per call (median, IQR)")
    fig.suptitle("The tutorial's experiments reproduced")
    _save(fig, out, "seed")
    sentence = (_join(clauses) or "Seed cells without a serial baseline") + "."
    return Chart("seed", "The tutorial's experiments reproduced", sentence, run_note(rows))


@_styled
def chart_startup(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = rows[(rows["workload"] == "startup") & rows["median_s"].notna()].copy()
    if rows.empty:
        return None
    rows["_r"] = rows["model"].map(lambda m: model_sort_key(m)[0])
    rows = rows.sort_values(["_r", "start_method", "workers"], na_position="first")
    labels = [
        f"{m}" + (f" ({s})" if isinstance(s, str) and s else "") + f", {int(w)} workers"
        if pd.notna(w) else str(m)
        for m, s, w in zip(rows["model"], rows["start_method"], rows["workers"], strict=True)
    ]  # fmt: skip
    fig = _figure(7.0, 0.42 * len(rows) + 1.5)
    ax = fig.subplots()
    ys = range(len(rows))
    ax.barh(ys, rows["median_s"], 0.6, color=[palette[m] for m in rows["model"]])
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _seconds_axis(ax, "x")
    ax.set_xlabel("time to start a ready pool (median, log)")
    ax.grid(axis="y", visible=False)
    for y, v in zip(ys, rows["median_s"], strict=True):
        ax.annotate(fmt_seconds(v), (v, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(right=float(rows["median_s"].max()) * 4)
    fig.suptitle("Start-up cost per model")
    _save(fig, out, "startup")
    fast, slow = rows.sort_values("median_s").iloc[0], rows.sort_values("median_s").iloc[-1]
    label_of = dict(zip(rows.index, labels, strict=True))
    sentence = (
        f"Starting {label_of[slow.name]} takes {fmt_seconds(slow['median_s'])},"
        f" {slow['median_s'] / fast['median_s']:.0f}× as long as {label_of[fast.name]}"
        f" ({fmt_seconds(fast['median_s'])})."
    )
    return Chart("startup", "Start-up cost", sentence, run_note(rows))


CHART_NAMES = (
    "headline",
    "efficiency",
    "crossover",
    "walltime",
    "cpu_wall",
    "scale",
    "convoy",
    "trend",
    "environments",
    "net_throughput",
    "net_latency",
    "seed",
    "startup",
)
