"""The report page, ``index.html``: self-contained (charts embedded), to mail or archive."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._ab_chart import ab_table
from ._best import best_models, interval_note, stats_by_cell
from ._cells import (
    SPECIAL_WORKLOADS,
    generic,
    latest_per_workload,
    latest_run,
    latest_sweep,
)
from ._draw import Chart
from ._models import ordered_models
from ._runs import Run
from ._tables import (
    BEST_LEAD,
    NUMERIC_HEADS,
    best_table,
    capped_lines,
    convoy_page_table,
    machine_table,
    net_table,
    result_table,
    scale_table,
    unstable_table,
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1rem 2rem 3rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.lead { color: #555; margin-top: 0; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto;
         border: 1px solid #eee; }
figcaption { font-size: .95rem; } figcaption .note { color: #777; font-size: .85rem; }
div.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f5f5f5; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.problems li { color: #a33; font-family: ui-monospace, monospace; font-size: .85rem; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px;
          margin-right: .3em; vertical-align: -0.05em; }
details > summary { cursor: pointer; margin: .5rem 0; }
"""


# Markers a headless browser can read from the DOM alone (tests/test_report_browser.py):
# errors of any kind (scripts, images that fail to load) and each image's natural width.
ERROR_WATCH = (
    "window.__reportErrors = [];"
    "window.addEventListener('error', function (e) {"
    " window.__reportErrors.push(e.message || ('failed to load ' + (e.target.src || '?')"
    ".slice(0, 60))); }, true);"
)
LOAD_MARKER = (
    "window.addEventListener('load', function () {"
    " var imgs = Array.prototype.slice.call(document.images);"
    " document.body.setAttribute('data-images', imgs.map(function (i) {"
    " return i.complete ? i.naturalWidth : 0; }).join(','));"
    " document.body.setAttribute('data-errors', window.__reportErrors.join(' | '));"
    " document.body.setAttribute('data-loaded', 'yes'); });"
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def html_table(table: pd.DataFrame, palette: dict[str, str] | None = None) -> str:
    if table.empty:
        return "<p>No rows.</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            text = _e(value)
            if palette and column in ("model", "style") and str(value) in palette:
                text = (
                    f'<span class="swatch" style="background:{palette[str(value)]}"></span>{text}'
                )
            cls = ' class="num"' if column in NUMERIC_HEADS else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _image(out: Path, chart: Chart) -> str:
    data = base64.b64encode((out / chart.png).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def write_page(
    out: Path,
    *,
    title: str,
    runs: Sequence[Run],
    frame: pd.DataFrame,
    charts: Iterable[Chart],
    problems: Sequence[str],
    palette: dict[str, str],
    warnings: Sequence[str] = (),
    best: pd.DataFrame | None = None,
    unstable: pd.DataFrame | None = None,
    ab: pd.DataFrame | None = None,
) -> Path:
    """``index.html`` with the charts embedded, so the one file can be mailed or archived."""
    charts = list(charts)
    latest = latest_run(frame)
    if best is None:
        best = best_models(latest_per_workload(frame), stats_by_cell(runs))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style>",
        f"<script>{ERROR_WATCH}</script></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="lead">{_e(overview(runs, frame))}</p>',
    ]
    if warnings:
        parts.append(f"<h2>Read with care ({len(warnings)})</h2><ul class='problems'>")
        parts.extend(f"<li>{_e(w)}</li>" for w in warnings)
        parts.append("</ul>")
    if problems:
        parts.append(f"<h2>Inputs skipped ({len(problems)})</h2><ul class='problems'>")
        parts.extend(f"<li>{_e(p)}</li>" for p in problems)
        parts.append("</ul>")
    parts.append("<h2>Charts</h2>")
    for chart in charts:
        note = f' <span class="note">From {_e(chart.run_note)}.</span>' if chart.run_note else ""
        if chart.caption:
            note += f' <span class="note">{_e(chart.caption)}</span>'
        parts.append(
            f'<figure id="{_e(chart.name)}"><img src="{_image(out, chart)}"'
            f' alt="{_e(chart.title)}: {_e(chart.sentence)}">'
            f"<figcaption><strong>{_e(chart.title)}.</strong> {_e(chart.sentence)}{note}"
            f' <a href="{_e(chart.svg)}">SVG</a></figcaption></figure>'
        )
    lead, shaky = unstable_table(latest if unstable is None else unstable)
    if not shaky.empty:
        parts.append(f'<h2 id="unstable">Unstable cells ({len(shaky)})</h2><p>{_e(lead)}</p>')
        parts.append(html_table(shaky))
    if not best.empty:
        parts.append(
            '<h2 id="best-model">Which model is fastest, per workload and task count</h2>'
            f"<p>{_e(BEST_LEAD)} {_e(interval_note(best))}</p>"
        )
        parts.append(html_table(best_table(best), palette))
    ab_lead, paired = ab_table(pd.DataFrame() if ab is None else ab)
    if not paired.empty:
        parts.append(f'<h2 id="ab-table">A against B, paired</h2><p>{_e(ab_lead)}</p>')
        parts.append(html_table(paired))
    parts.append("<h2>Machine and Python</h2>")
    parts.append(html_table(machine_table(runs, frame)))
    main = generic(latest)
    main = main[~main["workload"].isin(SPECIAL_WORKLOADS) & (main["bound"] != "net")]
    parts.append(f"<h2>Results of the latest run</h2><p>{_e(overview([], latest))}</p>")
    parts.append(html_table(result_table(main), palette))
    capped = capped_lines(main)
    if capped:
        parts.append("<p>Capped pools:</p><ul>" + "".join(f"<li>{_e(c)}</li>" for c in capped))
        parts.append("</ul>")
    for workload, heading in (("seed", "Seed experiments"), ("startup", "Start-up")):
        wanted = ("seed_cpu", "seed_io") if workload == "seed" else ("startup",)
        sub = latest[latest["workload"].isin(wanted)]
        if not sub.empty:
            parts.append(f"<h2>{heading}</h2>" + html_table(result_table(sub), palette))
    crossover = latest_sweep(frame, "crossover")
    if not crossover.empty:
        parts.append(
            "<h2>Crossover cells (CPU share)</h2><details><summary>All"
            f" {len(crossover)} cells of the crossover chart</summary>"
            + html_table(result_table(crossover), palette)
            + "</details>"
        )
    scale = scale_table(latest_sweep(frame, "scale"))
    if not scale.empty:
        parts.append("<h2>Scale</h2>" + html_table(scale, palette))
    convoy = convoy_page_table(latest_sweep(frame, "convoy"))
    if not convoy.empty:
        parts.append("<h2>GIL convoy</h2>" + html_table(convoy))
    net = net_table(generic(latest))
    if not net.empty:
        parts.append("<h2>Network (echo)</h2>" + html_table(net, palette))
    older = frame[~frame["run_id"].isin(set(latest["run_id"]))]
    if not older.empty:
        parts.append(
            f"<details><summary>All {len(frame)} rows of {frame['run_id'].nunique()} runs"
            " (also in results.csv)</summary>"
        )
        everything = result_table(frame).assign(run=frame["run_id"].reindex(frame.index))
        parts.append(html_table(everything, palette) + "</details>")
    parts.append(
        "<p><small>Generated by <code>python -m reports</code>; data in"
        ' <a href="results.csv">results.csv</a>.</small></p>'
    )
    parts.append(f"<script>{LOAD_MARKER}</script>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def overview(runs: Sequence[Run], frame: pd.DataFrame) -> str:
    if frame.empty:
        return "No benchmarks."
    machines = sorted(frame["machine"].unique())
    pythons = sorted(frame["interpreter"].unique())
    nruns = frame["run_id"].nunique()
    workloads = sorted(frame["workload"].unique())
    models = ordered_models(frame)
    return (
        f"{len(frame)} benchmarks from {nruns} run{'s' if nruns != 1 else ''}"
        f" on {', '.join(machines)} with {', '.join(pythons)}; workloads: {', '.join(workloads)};"
        f" models: {', '.join(models)}."
    )
