"""How every chart is drawn: the Chart record, the style, the file names, shared axes.

Every ``chart_*`` function (``_charts``, ``_charts_runs``, ``_charts_special``,
``_sweeps``) takes the frame (or the slice it needs), the palette and the
output folder, writes ``NAME.png`` and ``NAME.svg`` and returns a :class:`Chart` with a
title and one sentence of what the chart shows, worked out from the data; it returns
``None`` when the frame has nothing for it.  Figures are built with
``matplotlib.figure.Figure`` (no pyplot), so nothing is shown and no global state is
kept between charts.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

matplotlib.use("Agg")
P = ParamSpec("P")
R = TypeVar("R")

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
    # What the chart's labels leave out (the parameters its cells share), for the caption.
    caption: str = ""

    @property
    def png(self) -> str:
        return f"{self.name}.png"

    @property
    def svg(self) -> str:
        return f"{self.name}.svg"


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Draw under boundbench's rc settings without touching the global ones."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


_KEPT: ContextVar[list[tuple[str, Figure]] | None] = ContextVar("kept_figures", default=None)


@contextlib.contextmanager
def keep_figures() -> Iterator[list[tuple[str, Figure]]]:
    """Every figure saved inside the block, as (chart name, figure), for whoever wants to
    look at what was drawn (its text boxes, its colours) rather than at the files."""
    kept: list[tuple[str, Figure]] = []
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


def save(fig: Figure, out: Path, name: str) -> None:
    fig.savefig(out / f"{name}.png", dpi=DPI, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    kept = _KEPT.get()
    if kept is not None:
        kept.append((name, fig))


# The page shows a chart in a column 1136 px wide (index.html); at DPI a figure this wide
# (with the margin bbox_inches="tight" keeps) fills it, so a chart is never shrunk there
# and its labels stay the size they were drawn.
PAGE_WIDTH_IN = 10.0


def new_figure(width: float, height: float) -> Figure:
    """A figure at most the page's width: panels share ``PAGE_WIDTH_IN``."""
    return Figure(figsize=(min(width, PAGE_WIDTH_IN), height), layout="constrained")


def legend_columns(labels: Sequence[str], fontsize: float = 9.0) -> int:
    """How many legend entries fit side by side across the page: each takes its handle,
    the padding and its longest label (a character is about 0.6 em wide)."""
    longest = max((len(label) for label in labels), default=1)
    entry_in = 0.55 + longest * 0.6 * fontsize / 72
    return max(1, min(len(labels), int((PAGE_WIDTH_IN - 0.3) // entry_in)))


def figure_legend(fig: Figure, handles: Sequence[Any], title: str) -> None:
    """The legend under the panels, as many entries a row as fit the page."""
    labels = [str(handle.get_label()) for handle in handles]
    fig.legend(handles=list(handles), loc="outside lower center", title=title,
               ncols=legend_columns(labels))  # fmt: skip


def model_legend(
    fig: Figure, models: list[str], palette: dict[str, str], extra: Sequence[Any] = (), **kw: Any
) -> None:
    handles = [Patch(facecolor=palette[m], label=m) for m in models] + list(extra)
    figure_legend(fig, handles, kw.pop("title", "model"))


def fmt_ratio(value: float) -> str:
    """A speedup or ratio with three significant digits: 0.90×, 7.89×, 99.1×, 493×."""
    if value is None or not math.isfinite(value):
        return "–"
    return (f"{value:.2f}" if value < 10 else fmt_sig(value)) + "×"


def fmt_times(value: float) -> str:
    """A ratio as people say it: 300×, 9.4×."""
    return f"{value:.0f}×" if value >= 10 else f"{value:.1f}×"


def share_text(percent: float, unit: str = " %") -> str:
    """A CPU share in percent with the digits it has: 0 %, 0.05 %, 4.6 %, 13 %, 100 %."""
    if percent == 0 or percent >= 10:
        return f"{percent:.0f}{unit}"
    return f"{percent:.2g}{unit}"


def fmt_sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, trailing zeros kept (80.0, 0.130,
    3.33); the integer part is never rounded away (13,242)."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    # Rounding may carry into another digit (9.996 -> 10.00): one decimal fewer then.
    if decimals and len(text.replace(",", "").replace(".", "").lstrip("-0")) > digits:
        text = f"{value:,.{decimals - 1}f}"
    return text


_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def fmt_seconds(value: float, *, digits: int = 3, compact: bool = False) -> str:
    """A duration in the unit that fits, with its significant digits: 2.58 s, 80.0 ms,
    130 µs (never "0 ms" for 0.13 ms).  ``compact``: without trailing zeros (axis ticks)."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0 s"
    for unit, scale in _UNITS:
        scaled = abs(value) / scale
        # 999.7 µs reads 1.00 ms, not 1,000 µs.
        if float(f"{scaled:.{digits}g}") >= 1 or unit == "ns":
            text = f"{value / scale:.{digits}g}" if compact else fmt_sig(value / scale, digits)
            return f"{text} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def seconds_axis(ax: Axes, axis: str = "y") -> None:
    formatter = FuncFormatter(lambda v, _pos: fmt_seconds(v, compact=True) if v > 0 else "0")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(formatter)
    target.set_minor_formatter(NullFormatter())


def plain_log(ax: Axes) -> None:
    """A log y axis labelled 0.2, 0.5, 1, 2, 5 ... instead of 2×10⁻¹."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.6g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def wide(values: pd.Series, ratio: float = 20.0) -> bool:
    values = values[values > 0].dropna()
    return len(values) > 1 and float(values.max() / values.min()) > ratio


def join_clauses(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return "; ".join(parts[:-1]) + "; " + parts[-1]
