"""The report page (``index.html``, self-contained) and ``summary.md`` for CI job summaries."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._best import best_models, interval_note, runner_up_text, stats_by_cell
from ._cells import (
    SPECIAL_WORKLOADS,
    generic,
    headline_cells,
    latest_per_workload,
    latest_run,
    latest_sweep,
)
from ._draw import Chart, fmt_seconds, share_text
from ._figures import UNSTABLE_SPREAD, run_settings
from ._frame import boundbench_info, params_label
from ._models import model_rank, ordered_models
from ._runs import Run
from ._sweeps import convoy_table, scale_points

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


def _num(value: Any, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return format(number, fmt)


def result_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The columns people read, formatted, in registry order."""
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(_r=model_rank(rows))
    rows = rows.sort_values(["bound", "workload", "params", "tasks", "_r", "workers"])
    table = pd.DataFrame(
        {
            "bound": rows["bound"],
            "workload": rows["workload"],
            "parameters": [
                " ".join(part for part in (params_label(p), v) if part)
                for p, v in zip(rows["params"], rows["variant"].fillna(""), strict=True)
            ]
            if "variant" in rows
            else rows["params"].map(params_label),
            "tasks": rows["tasks"].map(lambda v: _num(v, ".0f")),
            "model": rows["model"],
            "workers": rows["workers"].map(lambda v: _num(v, ".0f")),
            "median": rows["median_s"].map(fmt_seconds),
            "IQR": rows["iqr_s"].map(fmt_seconds)
            + rows["unstable"].map(lambda u: " ⚠ unstable" if u else ""),
            "rounds": rows["rounds"].map(lambda v: _num(v, ".0f")),
            "CPU": rows["cpu_s"].map(fmt_seconds),
            "ideal": rows["ideal_s"].map(fmt_seconds),
            "speedup": rows["speedup"].map(lambda v: _num(v, ".2f") + "×" if pd.notna(v) else "–"),
            "efficiency": rows["efficiency"].map(
                lambda v: _num(v * 100, ".0f") + "%" if pd.notna(v) else "–"
            ),
        }
    )
    if "start_method" in rows and rows["start_method"].notna().any():
        table.insert(6, "start method", rows["start_method"].fillna(""))
    return table


def net_table(rows: pd.DataFrame) -> pd.DataFrame:
    if "throughput_rps" not in rows.columns:
        return pd.DataFrame()
    rows = rows[rows["bound"] == "net"]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.sort_values(["payload", "connections", "model"])
    return pd.DataFrame(
        {
            "style": rows["model"],
            "payload (B)": rows["payload"].map(lambda v: _num(v, ".0f")),
            "connections": rows["connections"].map(lambda v: _num(v, ".0f")),
            "requests": rows["requests"].map(lambda v: _num(v, ".0f")),
            "throughput (req/s)": rows["throughput_rps"].map(lambda v: _num(v, ",.0f")),
            "MB/s": rows["throughput_mb_s"].map(lambda v: _num(v, ".2f")),
            "p50 (ms)": rows["latency_p50_ms"].map(lambda v: _num(v, ".3f")),
            "p99 (ms)": rows["latency_p99_ms"].map(lambda v: _num(v, ".3f")),
            "p99.9 (ms)": rows["latency_p999_ms"].map(lambda v: _num(v, ".3f")),
            "errors": rows["errors"].map(lambda v: _num(v, ".0f")),
            "server CPU": rows["server_cpu_s"].map(fmt_seconds),
        }
    )


def work_label(row: Any) -> str:
    """``python CPU 13% (asked 25%)`` for a crossover cell (the share the work had, and
    the one asked for when they differ), else its parameters."""
    share = row.get("cpu_share") if hasattr(row, "get") else None
    if isinstance(share, float) and math.isfinite(share):
        kind = row.get("cpu_kind")
        asked = share_text(share * 100, "%")
        had = row.get("cpu_share_measured")
        text = (
            share_text(had * 100, "%") if isinstance(had, float) and math.isfinite(had) else asked
        )
        return f"{kind if isinstance(kind, str) else '?'} CPU {text}" + (
            f" (asked {asked})" if text != asked else ""
        )
    return params_label(row["params"])


def best_table(best: pd.DataFrame) -> pd.DataFrame:
    """``reports._best.best_models`` as people read it (with the run when several)."""
    if best.empty:
        return pd.DataFrame()
    interval = [
        f"{low:.2f}–{high:.2f}×" if math.isfinite(low) and math.isfinite(high) else "–"
        for low, high in zip(best["ci_low"], best["ci_high"], strict=True)
    ]
    rows = [row for _i, row in best.iterrows()]
    table = pd.DataFrame(
        {
            "workload": best["workload"],
            "work": [work_label(row) for row in rows],
            "tasks": best["tasks"].map(lambda v: _num(v, ".0f")),
            "best model": best["model"],
            "workers": best["workers"].map(lambda v: _num(v, ".0f")),
            "median": best["median_s"].map(fmt_seconds),
            "speedup": best["speedup"].map(lambda v: _num(v, ".2f") + "×" if pd.notna(v) else "–"),
            "95% CI": interval,
            "runner-up": [runner_up_text(row) for row in rows],
        }
    )
    if best["run_id"].nunique() > 1:
        table.insert(0, "run", best["run_id"])
    return table


def scale_table(rows: pd.DataFrame) -> pd.DataFrame:
    points = scale_points(rows)
    if points.empty:
        return pd.DataFrame()
    points = points.assign(_r=model_rank(points))
    points = points.sort_values(["scale_variant", "_r", "model", "tasks"])

    def column(name: str, fmt: str) -> Any:
        if name not in points.columns:
            return ["–"] * len(points)
        return points[name].map(lambda v: _num(v, fmt))

    return pd.DataFrame(
        {
            "variant": points["scale_variant"],
            "model": points["model"],
            "tasks": points["tasks"].map(lambda v: _num(v, ",.0f")),
            "workers": points["workers"].map(lambda v: _num(v, ",.0f")),
            "median": points["median_s"].map(fmt_seconds),
            "ideal": points["ideal_s"].map(fmt_seconds),
            "efficiency": points["efficiency"].map(
                lambda v: _num(v * 100, ".0f") + "%" if pd.notna(v) else "–"
            ),
            "µs/task": column("us_per_task", ".3g"),
            "CPU µs/task": column("cpu_us_per_task", ".3g"),
            "KB/task": column("kb_per_task", ".3g"),
        }
    )


def convoy_page_table(rows: pd.DataFrame) -> pd.DataFrame:
    points = convoy_table(rows)
    if points.empty:
        return pd.DataFrame()

    def column(name: str, fmt: str) -> Any:
        if name not in points.columns:
            return ["–"] * len(points)
        return points[name].map(lambda v: _num(v, fmt))

    return pd.DataFrame(
        {
            "CPU work in": points["cpu_placement"],
            "switch interval": points["switch_interval_s"].map(lambda v: f"{v * 1e3:g} ms"),
            "CPU threads": points["cpu_threads"].map(lambda v: _num(v, ".0f")),
            "throughput (req/s)": column("throughput_rps", ",.0f"),
            "p50 (ms)": column("latency_p50_ms", ".3g"),
            "p99 (ms)": column("latency_p99_ms", ".3g"),
            "slowdown": points["slowdown"].map(
                lambda v: _num(v, ".1f") + "×" if pd.notna(v) else "–"
            ),
        }
    )


NUMERIC_HEADS = frozenset(
    {"tasks", "workers", "median", "IQR", "rounds", "CPU", "ideal", "speedup", "efficiency",
     "payload (B)", "connections", "requests", "throughput (req/s)", "MB/s", "p50 (ms)",
     "p99 (ms)", "p99.9 (ms)", "errors", "server CPU", "benchmarks", "95% CI",
     "µs/task", "CPU µs/task", "KB/task", "CPU threads", "switch interval", "slowdown"}
)  # fmt: skip


UNSTABLE_PREFIX = "unstable: "


def unstable_lines(rows: pd.DataFrame) -> list[str]:
    """One line per unstable cell (rounds spread over the limit), like pyperf's warning;
    the most spread first."""
    if rows.empty or "unstable" not in rows:
        return []
    shaky = rows[rows["unstable"]].sort_values("spread", ascending=False)
    return [
        f"{UNSTABLE_PREFIX}{row.cell} in run {row.run_id}: IQR {row.spread:.0%} of its median"
        f" ({fmt_seconds(row.median_s)}, {row.rounds} rounds), above {UNSTABLE_SPREAD:.0%};"
        " rerun it before reading much into it"
        for row in shaky.itertuples()
    ]


def void_lines(rows: pd.DataFrame) -> list[str]:
    """Cells that threw rounds away as void (``extra_info["void_rounds"]``) and ran them
    again: their figure stands, but the reader should know the host interfered."""
    if rows.empty or "void_rounds" not in rows:
        return []
    voided = rows[rows["void_rounds"].fillna(0) > 0]
    return [
        f"{row.cell} in run {row.run_id}: {row.void_rounds} void round(s) thrown away and"
        " run again (they measured something other than the cell, such as a CPU worker"
        " the GIL never let run); the figure is from the rounds kept"
        for row in voided.itertuples()
    ]


def capped_lines(rows: pd.DataFrame) -> list[str]:
    """Cells whose pool the harness capped below the task count: say so, not the model's cost."""
    if rows.empty or "cap_limit" not in rows:
        return []
    capped = rows[rows["cap_limit"].notna()]
    return [
        f"{row.cell}: the harness caps this pool at {row.workers_cap} workers for"
        f" {row.tasks} tasks, so it can reach at most {row.cap_limit:.0%} efficiency;"
        " the gap to the ideal is the cap's, not the model's cost"
        for row in capped.itertuples()
    ]


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


def machine_table(runs: Sequence[Run], frame: pd.DataFrame) -> pd.DataFrame:
    counts = frame.groupby("run_id").size() if not frame.empty else pd.Series(dtype="int64")
    rows = []
    for run in runs:
        info = run.machine_info
        bb = boundbench_info(info)
        cpu: dict[str, Any] = info["cpu"] if isinstance(info.get("cpu"), dict) else {}
        rows.append(
            {
                "run": run.run_id,
                "datetime": run.datetime or "",
                "commit": (run.commit or "")[:10],
                "machine": run.machine,
                "system": f"{info.get('system', '')} {info.get('release', '')}".strip(),
                "CPU": cpu.get("brand_raw") or info.get("processor") or "",
                "cores (usable)": f"{bb.get('cpu_count', cpu.get('count', '?'))}"
                f" ({bb.get('cpu_usable', '?')})",
                "Python": " ".join(
                    str(bb.get(key) or info.get(key) or "")
                    for key in ("python_implementation", "python_version")
                ),
                "build": bb.get("python_build") or " ".join(info.get("python_build") or []),
                "free-threaded": _yes(bb.get("free_threading_build")),
                "GIL": "on" if bb.get("gil_enabled", True) else "off",
                "switch interval": f"{bb['switch_interval'] * 1e3:g} ms"
                if isinstance(bb.get("switch_interval"), int | float)
                else "",
                "start method": run_settings(info)[1] or "",
                "benchmarks": int(counts.get(run.run_id, 0)),
            }
        )
    return pd.DataFrame(rows)


BEST_LEAD = (
    "For each workload, its parameters (for mixed work: the CPU share) and task count of"
    " the latest run: the model with the lowest median at its best worker count, its"
    " speedup over serial, and the runner-up among the other models."
)


def _yes(value: Any) -> str:
    if value is None:
        return "?"
    return "yes" if value else "no"


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
        parts.append(
            f'<figure id="{_e(chart.name)}"><img src="{_image(out, chart)}"'
            f' alt="{_e(chart.title)}: {_e(chart.sentence)}">'
            f"<figcaption><strong>{_e(chart.title)}.</strong> {_e(chart.sentence)}{note}"
            f' <a href="{_e(chart.svg)}">SVG</a></figcaption></figure>'
        )
    if not best.empty:
        parts.append(
            '<h2 id="best-model">Which model is fastest, per workload and task count</h2>'
            f"<p>{_e(BEST_LEAD)} {_e(interval_note(best))}</p>"
        )
        parts.append(html_table(best_table(best), palette))
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
) -> Path:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the findings and the headline table, short."""
    latest = latest_run(frame)
    if best is None:
        best = best_models(latest_per_workload(frame), stats_by_cell(runs))
    lines = [f"## {title}", "", overview(runs, frame), ""]
    if warnings:
        lines += [f"> ⚠️ {w}  " for w in warnings] + [""]
    for chart in charts:
        lines.append(f"- **{chart.title}**: {chart.sentence}")
    lines.append("")
    head = headline_cells(latest)
    if not head.empty:
        lines += [f"### Speedup over serial ({latest['run_id'].iloc[0]})", ""]
        lines += _md_table(result_table(head))
        lines.append("")
        lines += [f"- {c}" for c in capped_lines(head)]
    if not best.empty:
        lines += ["### Which model is fastest", "", interval_note(best), ""]
        lines += [*_md_table(best_table(best)), ""]
    net = net_table(generic(latest))
    if not net.empty:
        lines += ["### Network (echo)", "", *_md_table(net), ""]
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
