"""The best model per workload, parameters (CPU share) and task count, with an interval.

For each (workload, parameters, tasks) of one run that has a serial baseline, the model
with the lowest median wins (at its best worker count); its speedup over serial gets a
95% confidence interval (``reports._figures.speedup_interval``): a bootstrap over the
rounds both cells saved (``stats.data``; the profiles save them), else an approximation
from each cell's interquartile range.  The runner-up is the fastest *other* model, marked
"within noise" where the winner's lead over it does not hold (``holding``): the rule the
crossover chart's sentence says its leads with, so the two never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from . import _figures
from ._cells import SPECIAL_WORKLOADS
from ._draw import fmt_ratio
from ._frame import BOUND_ORDER
from ._runs import Run

KEY = ["workload", "params", "tasks"]


def stats_by_cell(runs: Sequence[Run]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(run id, fullname) -> the benchmark's pytest-benchmark ``stats``."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for run in runs:
        for bench in run.benchmarks:
            name = bench.get("fullname") or bench.get("name")
            if isinstance(name, str) and isinstance(bench.get("stats"), dict):
                found[(run.run_id, name)] = bench["stats"]
    return found


def _stats(stats: Mapping[tuple[str, str], Mapping[str, Any]], row: Any) -> Mapping[str, Any]:
    return stats.get((str(row["run_id"]), str(row["fullname"])), {})


def best_models(
    rows: pd.DataFrame, stats: Mapping[tuple[str, str], Mapping[str, Any]]
) -> pd.DataFrame:
    """One row per (workload, parameters, tasks) of ``rows``: the fastest model.

    ``rows`` hold one run per workload (``_cells.latest_per_workload``): cells of one
    workload are only ever compared within one run.

    Columns: the frame's of the winning cell, plus ``ci_low``, ``ci_high``, ``ci_method``
    ("bootstrap", "iqr" or None), ``runner_up``, ``runner_up_speedup`` and ``lead_holds``
    (whether the lead over the runner-up holds: ``holding``).  Cells without a
    serial baseline (no speedup to state), network, start-up, seed and the scale and
    convoy sweeps are left out; the crossover's mixed cells are in, one row per share.
    """
    empty = pd.DataFrame()
    if rows.empty:
        return empty
    sweep = rows["sweep"] if "sweep" in rows.columns else pd.Series("", rows.index)
    cells = rows[
        sweep.fillna("").isin(["", "crossover"])
        & rows["bound"].isin(["cpu", "io", "mixed"])
        & ~rows["workload"].isin(SPECIAL_WORKLOADS)
        & rows["serial_median_s"].notna()
        & rows["median_s"].notna()
    ]
    if cells.empty:
        return empty
    out = []
    for _key, group in cells.groupby(["run_id", *KEY], sort=False, dropna=False):
        ranked = group.sort_values("median_s", kind="stable")
        best = ranked.iloc[0]
        others = ranked[ranked["model"] != best["model"]]
        serial = group[group["model"] == "serial"]
        record = best.to_dict()
        record.update(ci_low=math.nan, ci_high=math.nan, ci_method=None)
        if best["model"] != "serial" and not serial.empty:
            # The serial cell nearest the baseline median (one in practice).
            base = serial.iloc[(serial["median_s"] - best["serial_median_s"]).abs().argmin()]
            found = _figures.speedup_interval(_stats(stats, base), _stats(stats, best))
            if found is not None:
                record.update(ci_low=found[0], ci_high=found[1], ci_method=found[2])
        record["runner_up"] = others.iloc[0]["model"] if not others.empty else None
        record["runner_up_speedup"] = others.iloc[0]["speedup"] if not others.empty else math.nan
        record["_lead"] = next_best_lead(group)
        out.append(record)
    table = pd.DataFrame.from_records(out)
    table["lead_holds"] = _holds(table)
    table = table.drop(columns="_lead")
    bound_rank = table["bound"].map(
        lambda b: BOUND_ORDER.index(b) if b in BOUND_ORDER else len(BOUND_ORDER)
    )
    share = table["cpu_share"] if "cpu_share" in table.columns else pd.Series(0.0, table.index)
    kind = table["cpu_kind"] if "cpu_kind" in table.columns else pd.Series("", table.index)
    table = table.assign(_b=bound_rank, _k=kind.fillna(""), _s=share.fillna(0.0))
    table = table.sort_values(["_b", "workload", "_k", "_s", "params", "tasks"], kind="stable")
    return table.drop(columns=["_b", "_k", "_s"]).reset_index(drop=True)


def next_best_lead(cells: pd.DataFrame) -> _figures.Lead | None:
    """The fastest model's lead over the fastest *other* model among ``cells`` (one
    workload, parameters and task count of one run), or None with one model only."""
    ranked = cells.sort_values("median_s", kind="stable")
    best = ranked.iloc[0]
    others = ranked[ranked["model"] != best["model"]]
    if others.empty:
        return None
    return cell_lead(str(best["model"]), best, others.iloc[0])


def cell_lead(leader: str, faster: Any, slower: Any) -> _figures.Lead:
    """How far the cell ``faster`` (a frame row) leads ``slower``, and whether their rounds
    show it (``_figures.lead_between`` on the quartiles every run saves): the rule of the
    best-model table and of the crossover's sentence."""
    stats = _figures.cell_stats
    return _figures.lead_between(leader, stats(faster), stats(slower))


def holding(leads: Sequence[_figures.Lead | None]) -> list[bool]:
    """Per point of one sweep, in order: whether its lead holds
    (``_figures.leads_that_hold``); None, one model only, is no lead."""
    missing = _figures.Lead("", 0.0, False)
    return _figures.leads_that_hold(
        [lead if isinstance(lead, _figures.Lead) else missing for lead in leads]
    )


def _holds(table: pd.DataFrame) -> pd.Series:
    """Per row: whether the best model's lead over the runner-up holds.  The crossover's
    rows of one run, kind of CPU work and task count are one sweep, in share order (as the
    chart's sentence reads them); any other row stands alone."""
    holds = pd.Series(False, index=table.index)
    sweep = table["sweep"] if "sweep" in table.columns else pd.Series("", table.index)
    crossover = sweep.fillna("") == "crossover"
    for i in table.index[~crossover]:
        holds[i] = holding([table.at[i, "_lead"]])[0]
    if crossover.any():
        cells = table[crossover]
        share = _column(cells, "cpu_share_measured").fillna(_column(cells, "cpu_share"))
        kind = _column(cells, "cpu_kind").fillna("")
        keys = [cells["run_id"], cells["workload"], kind, cells["tasks"].fillna(-1)]
        for _key, panel in cells.assign(_share=share).groupby(keys, sort=False):
            panel = panel.sort_values("_share", kind="stable")
            holds[panel.index] = holding(list(panel["_lead"]))
    return holds


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table.columns else pd.Series(math.nan, table.index)


def interval_note(best: pd.DataFrame) -> str:
    """How the intervals of ``best_models`` were made, for the line above the table."""
    if best.empty or "ci_method" not in best.columns:
        return ""
    counts = best["ci_method"].value_counts()
    parts = []
    if counts.get("bootstrap"):
        parts.append(
            f"a bootstrap over the saved rounds of the cell and of serial"
            f" ({_figures.BOOTSTRAP_RESAMPLES} resamples) for {_rows(counts['bootstrap'])}"
        )
    if counts.get("iqr"):
        parts.append(
            f"the interquartile ranges for {_rows(counts['iqr'])} whose run kept no rounds"
            " (each median's standard error taken as 0.93 × IQR / √rounds)"
        )
    note = f"The speedup's {_figures.CONFIDENCE:.0%} confidence interval comes from "
    note = note + "; ".join(parts) + "." if parts else "No row has a confidence interval."
    missing = int(best["ci_method"].isna().sum())
    if missing:
        note += f" {_rows(missing).capitalize()} without one: serial itself won, or too few rounds."
    if "lead_holds" in best.columns and not best["lead_holds"].all():
        note += (
            ' A runner-up "within noise" cannot be told from the best model here: the'
            f" {_figures.CONFIDENCE:.0%} interval on the ratio of their medians (from their"
            f" quartiles) reaches 1 (with fewer than {_figures.MIN_ROUNDS_FOR_SPREAD} rounds:"
            f" the lead is within {_figures.LEVEL_WITHIN:.0%}), and on the crossover's shares"
            " the same model does not lead at a neighbouring share either."
        )
    return note


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def runner_up_text(row: Any) -> str:
    """``asyncio 1.92×``, with ``(within noise)`` where the best model's lead over it does
    not hold (``holding``: the rule of the crossover's sentence)."""
    model = row.get("runner_up")
    if not isinstance(model, str):
        return "–"
    speedup = row.get("runner_up_speedup")
    text = model
    if isinstance(speedup, float) and math.isfinite(speedup):
        text = f"{model} {fmt_ratio(speedup)}"
    if not row.get("lead_holds", True):
        text += " (within noise)"
    return text
