"""Every chart of the report, once: its name, the cells it draws, and the function that draws it.

The page shows the charts in this order, ``CHART_NAMES`` (the files the report owns and
replaces) comes from it, and a chart added here is drawn, embedded and cleaned up with
no other list to update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import _ab_chart, _charts, _charts_runs, _charts_special, _costs, _crossover, _sweeps
from ._cells import SEED_WORKLOADS, generic, latest_run, latest_sweep
from ._draw import Chart

Draw = Callable[[pd.DataFrame, dict[str, str], Path], Chart | None]


@dataclass(frozen=True)
class ChartSpec:
    name: str
    # From every row of the report, the rows the chart draws.
    cells: Callable[[pd.DataFrame], pd.DataFrame]
    draw: Draw
    # the runs it draws from: timed runs, count runs ("instructions") or the latest A/B
    # session's verdict ("ab"), as ``_store.run_kind`` tells them apart
    measure: str = "time"


def _sweep(name: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def cells(frame: pd.DataFrame) -> pd.DataFrame:
        return latest_sweep(frame, name)

    return cells


def _environment(frame: pd.DataFrame) -> pd.Series:
    return frame["machine"].astype(str) + " · " + frame["interpreter"].astype(str)


def trend_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs of the environment with the most runs (ties: the latest run's)."""
    if frame.empty:
        return frame
    env = _environment(frame)
    runs_per_env = frame.assign(env=env).groupby("env")["run_id"].nunique()
    latest = latest_run(frame)
    latest_env = env[latest.index[0]]
    chosen = max(runs_per_env.index, key=lambda e: (runs_per_env[e], e == latest_env))
    return frame[env == chosen]


def _echo_cells(frame: pd.DataFrame) -> pd.DataFrame:
    mine = frame.index.isin(generic(frame).index) & (frame["bound"] == "net")
    return latest_run(frame[mine])


def _seed_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return latest_run(frame[frame["workload"].isin(SEED_WORKLOADS)])


def _startup_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return latest_run(frame[frame["workload"] == "startup"])


def _everything(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


CHARTS = (
    ChartSpec("headline", latest_run, _charts.chart_headline),
    ChartSpec("efficiency", latest_run, _charts.chart_efficiency),
    ChartSpec("crossover", _sweep("crossover"), _crossover.chart_crossover),
    ChartSpec("walltime", latest_run, _charts.chart_walltime),
    ChartSpec("cpu_wall", latest_run, _charts.chart_cpu_wall),
    ChartSpec("scale", _sweep("scale"), _sweeps.chart_scale),
    ChartSpec("convoy", _sweep("convoy"), _sweeps.chart_convoy),
    ChartSpec("trend", trend_cells, _charts_runs.chart_trend),
    ChartSpec("environments", _everything, _charts_runs.chart_environments),
    ChartSpec("net_throughput", _echo_cells, _charts_special.chart_net_throughput),
    ChartSpec("net_latency", _echo_cells, _charts_special.chart_net_latency),
    ChartSpec("seed", _seed_cells, _charts_special.chart_seed),
    ChartSpec("startup", _startup_cells, _charts_special.chart_startup),
    ChartSpec("costs", _everything, _costs.chart_costs, measure="instructions"),
    ChartSpec("ab", _everything, _ab_chart.chart_ab, measure="ab"),
)
CHART_NAMES = tuple(spec.name for spec in CHARTS)


def draw_charts(
    frame: pd.DataFrame,
    palette: dict[str, str],
    out: Path,
    problems: list[str],
    counts: pd.DataFrame | None = None,
    ab: pd.DataFrame | None = None,
) -> list[Chart]:
    """Every chart the data allows, in page order; one that fails is a problem line.
    ``frame``: the timed runs' cells; ``counts``: the count runs'; ``ab``: the latest A/B
    session's verdict (``_ab_chart.session_frame``)."""
    charts = []
    frames = {
        "time": frame,
        "instructions": counts if counts is not None else frame.iloc[0:0],
        "ab": ab if ab is not None else pd.DataFrame(),
    }
    for spec in CHARTS:
        try:
            chart = spec.draw(spec.cells(frames[spec.measure]), palette, out)
        except Exception as exc:  # one bad chart must not cost the rest of the report
            problems.append(f"chart {spec.name}: not drawn ({type(exc).__name__}: {exc})")
            continue
        if chart is not None:
            charts.append(chart)
    return charts
