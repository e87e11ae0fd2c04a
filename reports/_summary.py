"""``summary.md``: the findings and the headline tables in Markdown, for CI job summaries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ._ab_chart import ab_table
from ._best import best_models, interval_note, stats_by_cell
from ._cells import generic, headline_cells, latest_per_workload, latest_run
from ._draw import Chart
from ._page import overview
from ._runs import Run
from ._tables import (
    NUMERIC_HEADS,
    best_table,
    capped_lines,
    net_table,
    result_table,
    unstable_table,
)


def _md_table(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return []
    lines = [
        "| " + " | ".join(str(c) for c in table.columns) + " |",
        "|" + "|".join("---:" if c in NUMERIC_HEADS else "---" for c in table.columns) + "|",
    ]
    for row in table.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return lines


def write_summary(
    out: Path,
    *,
    title: str,
    runs: Sequence[Run],
    frame: pd.DataFrame,
    charts: Iterable[Chart],
    problems: Sequence[str],
    warnings: Sequence[str] = (),
    best: pd.DataFrame | None = None,
    unstable: pd.DataFrame | None = None,
    ab: pd.DataFrame | None = None,
) -> Path:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the findings, the unstable cells in one short
    table after them, and the headline tables."""
    latest = latest_run(frame)
    if best is None:
        best = best_models(latest_per_workload(frame), stats_by_cell(runs))
    lines = [f"## {title}", "", overview(runs, frame), ""]
    if warnings:
        lines += [f"> ⚠️ {w}  " for w in warnings] + [""]
    for chart in charts:
        lines.append(f"- **{chart.title}**: {chart.sentence}")
    lines.append("")
    lead, shaky = unstable_table(latest if unstable is None else unstable)
    if not shaky.empty:
        lines += [f"### Unstable cells ({len(shaky)})", "", lead, "", *_md_table(shaky), ""]
    head = headline_cells(latest)
    if not head.empty:
        lines += [f"### Speedup over serial ({latest['run_id'].iloc[0]})", ""]
        lines += _md_table(result_table(head))
        lines.append("")
        capped = capped_lines(head)
        lines += [*(f"- {c}" for c in capped), *([""] if capped else [])]
    if not best.empty:
        lines += ["### Which model is fastest", "", interval_note(best), ""]
        lines += [*_md_table(best_table(best)), ""]
    net = net_table(generic(latest))
    if not net.empty:
        lines += ["### Network (echo)", "", *_md_table(net), ""]
    ab_lead, paired = ab_table(pd.DataFrame() if ab is None else ab)
    if not paired.empty:
        lines += ["### A against B, paired", "", ab_lead, "", *_md_table(paired), ""]
    if problems:
        lines += [f"### Inputs skipped ({len(problems)})", ""]
        lines += [f"- `{p}`" for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"- … and {len(problems) - 50} more")
        lines.append("")
    lines.append("Full report: `index.html`; every row: `results.csv`.")
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
