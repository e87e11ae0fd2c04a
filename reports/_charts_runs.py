"""Charts across runs: each cell's trend over runs, and environments side by side."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.patches import Patch

from ._cells import (
    SPECIAL_WORKLOADS,
    headline_cells,
    latest_run,
    shared_caption,
    short_params,
    varying_keys,
)
from ._draw import Chart, fmt_ratio, model_legend, new_figure, plain_log, save, styled, wide
from ._models import ordered_models

HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "++", "--")


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


@styled
def chart_trend(frame: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    """Each cell's median over runs, relative to its first run, for one environment."""
    rows = frame[frame["median_s"].notna() & (frame["median_s"] > 0)]
    if rows["run_id"].nunique() < 2:
        return None
    runs = run_labels(rows)
    rows = rows.merge(runs[["run_id", "order", "label"]], on="run_id")
    key = ["workload", "params", "tasks", "model", "workers", "start_method"]
    # A cell is all that tells it apart: the convoy's placement and the crossover's kind of
    # CPU work are facts beside its parameters, not in them.
    extra = ("variant", "group", "cpu_placement", "cpu_kind", "cpu_share")
    key += [column for column in extra if column in rows.columns]
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
    fig = new_figure(4.4 * ncols + 0.5, 3.2 * nrows + 1.0)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(workloads) :]:
        ax.set_visible(False)
    models = ordered_models(rows)
    for ax, workload in zip(axes, workloads, strict=False):
        sub = rows[rows["workload"] == workload]
        for _cell, line in sub.groupby(key, dropna=False, sort=False):
            model = line["model"].iloc[0]
            ax.plot(line["order"], line["rel"], color=palette[model], marker="o",
                    markersize=3, linewidth=1, alpha=0.8)  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(workload)
        ax.set_xticks(runs["order"], runs["label"], rotation=90, fontsize=8)
        ax.set_xlim(-0.3, len(runs) - 0.7)
    for ax in axes[::ncols]:
        ax.set_ylabel("median ÷ first run's median")
    if wide(rows["rel"], 4):
        for ax in axes:
            plain_log(ax)
    fig.suptitle(
        "Trend over runs: each cell's wall time relative to its first run (lower is faster)"
    )
    model_legend(fig, models, palette)
    save(fig, out, "trend")
    last = rows[rows["order"] == rows["order"].max()]
    slower = last.sort_values("rel").iloc[-1]
    faster = last.sort_values("rel").iloc[0]
    sentence = (
        f"{rows['run_id'].nunique()} runs, {len(last)} cells in the latest: the biggest slowdown"
        f" since the first run is {slower['cell']} ({slower['rel']:.2f}×), the biggest speedup"
        f" {faster['cell']} ({faster['rel']:.2f}×)."
    )
    return Chart("trend", "Trend over runs", sentence, f"{rows['run_id'].nunique()} runs")


@styled
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
    # A panel per workload and parameters (io_socket's kept and fresh connections apart).
    keys = varying_keys(cells)
    cells = cells.assign(
        panel=[
            f"{w} · {told}" if (told := short_params(p, keys.get(str(w), ()))) else str(w)
            for w, p in zip(cells["workload"], cells["params"], strict=True)
        ]
    )
    env_names = sorted(cells["env"].unique())
    panels = sorted(cells["panel"].unique())
    models = ordered_models(cells)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(max(4.6, 0.28 * len(models) * len(env_names) + 1.2) * ncols,
                     3.8 * nrows + 1.4)  # fmt: skip
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    width = 0.8 / len(env_names)
    for ax, panel in zip(axes, panels, strict=False):
        sub = cells[cells["panel"] == panel]
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
        ax.set_xticks(range(len(present)), present, rotation=90, fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_title(panel)
    for ax in axes[::ncols]:
        ax.set_ylabel("speedup over serial (×)")
    handles = [Patch(facecolor="#bbbbbb", hatch=HATCHES[i % len(HATCHES)], label=env,
                     edgecolor="white") for i, env in enumerate(env_names)]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=1,
               title="machine · Python · GIL · switch interval · start method (bar pattern);"
               " colour = model")  # fmt: skip
    fig.suptitle("Interpreters and machines side by side: speedup over serial")
    save(fig, out, "environments")
    pivot = cells.pivot_table(index=["panel", "model"], columns="env", values="speedup")
    spread = (pivot.max(axis=1) - pivot.min(axis=1)).dropna()
    if spread.empty:
        sentence = f"{len(env_names)} environments compared."
    else:
        (workload, model) = spread.idxmax()
        row = pivot.loc[(workload, model)].dropna()
        sentence = (
            f"{len(env_names)} environments; the largest difference is {model} on {workload}: "
            + ", ".join(f"{fmt_ratio(row[e])} on {e}" for e in row.index)
            + "."
        )
    return Chart("environments", "Interpreters and machines side by side", sentence, "",
                 shared_caption(cells))  # fmt: skip
