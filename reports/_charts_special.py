"""Charts of the cells that answer their own question: echo servers, the seed, start-up."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ._cells import SEED_WORKLOADS, run_note
from ._draw import (
    Chart,
    fmt_seconds,
    join_clauses,
    model_legend,
    new_figure,
    plain_log,
    save,
    seconds_axis,
    styled,
    wide,
)
from ._models import model_rank, ordered_models


@styled
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
    styles = ordered_models(rows)
    fig = new_figure(max(4.2 * len(payloads), 6.0) + 0.5, 4.4)
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
        if wide(rows[value], 20):
            plain_log(ax)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title)
    model_legend(fig, styles, palette, title="server style")
    save(fig, out, name)
    per = rows.groupby("model")[value].median().sort_values(ascending=not higher_better)

    def figure(number: float) -> str:
        if value == "throughput_rps":
            return f"{number:,.0f} req/s"
        return fmt_seconds(number / 1e3)  # a latency in ms: 0.13 ms is 130 µs, not "0 ms"

    sentence = (
        f"Across payloads and connection counts, {per.index[0]} has the"
        f" {'highest' if higher_better else 'lowest'} median ({figure(per.iloc[0])})"
        f" and {per.index[-1]} the {'lowest' if higher_better else 'highest'}"
        f" ({figure(per.iloc[-1])})."
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


@styled
def chart_seed(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = rows[rows["workload"].isin(SEED_WORKLOADS) & rows["median_s"].notna()]
    if rows.empty:
        return None
    workloads = [w for w in SEED_WORKLOADS if w in set(rows["workload"])]
    fig = new_figure(3.6 * len(workloads) + 0.8, 3.8)
    axes = fig.subplots(1, len(workloads), squeeze=False)[0]
    clauses = []
    for ax, workload in zip(axes, workloads, strict=True):
        sub = rows[rows["workload"] == workload].copy()
        sub["_r"] = model_rank(sub)
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
        seconds_axis(ax)
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
    save(fig, out, "seed")
    sentence = (join_clauses(clauses) or "Seed cells without a serial baseline") + "."
    return Chart("seed", "The tutorial's experiments reproduced", sentence, run_note(rows))


@styled
def chart_startup(rows: pd.DataFrame, palette: dict[str, str], out: Path) -> Chart | None:
    rows = rows[(rows["workload"] == "startup") & rows["median_s"].notna()].copy()
    if rows.empty:
        return None
    rows["_r"] = model_rank(rows)
    rows = rows.sort_values(["_r", "start_method", "workers"], na_position="first")
    labels = [
        f"{m}" + (f" ({s})" if isinstance(s, str) and s else "") + f", {int(w)} workers"
        if pd.notna(w) else str(m)
        for m, s, w in zip(rows["model"], rows["start_method"], rows["workers"], strict=True)
    ]  # fmt: skip
    fig = new_figure(7.0, 0.42 * len(rows) + 1.5)
    ax = fig.subplots()
    ys = range(len(rows))
    ax.barh(ys, rows["median_s"], 0.6, color=[palette[m] for m in rows["model"]])
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    seconds_axis(ax, "x")
    ax.set_xlabel("time to start a ready pool (median, log)")
    ax.grid(axis="y", visible=False)
    for y, v in zip(ys, rows["median_s"], strict=True):
        ax.annotate(fmt_seconds(v), (v, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(right=float(rows["median_s"].max()) * 4)
    fig.suptitle("Start-up cost per model")
    save(fig, out, "startup")
    fast, slow = rows.sort_values("median_s").iloc[0], rows.sort_values("median_s").iloc[-1]
    label_of = dict(zip(rows.index, labels, strict=True))
    sentence = (
        f"Starting {label_of[slow.name]} takes {fmt_seconds(slow['median_s'])},"
        f" {slow['median_s'] / fast['median_s']:.0f}× as long as {label_of[fast.name]}"
        f" ({fmt_seconds(fast['median_s'])})."
    )
    return Chart("startup", "Start-up cost", sentence, run_note(rows))
