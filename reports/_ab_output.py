"""The A/B verdict as people read it: a text table, Markdown, one sentence, a frame.

The header names the session and its sides, the statistics (median of the paired
ratios, its order-statistic interval, the Bonferroni level) and where the thresholds come
from; then a row per cell (cell, median ratio B/A, interval, pairs, threshold, verdict),
the families' and models' shifts, the cells not judged or measured on one side, and the
verdict with its exit code.
"""

from __future__ import annotations

import pandas as pd

from ._ab import (
    IMPROVED,
    REGRESSION,
    UNJUDGED,
    CellVerdict,
    ShiftVerdict,
    Verdict,
    aa_difference,
    label,
)
from ._check_output import _md, markdown_table
from ._compare import environment_label

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2
COLUMNS = ("cell", "B/A median", "interval", "pairs", "threshold", "verdict")


def percent(value: float) -> str:
    return f"{value * 100:.2g}%" if value < 0.1 else f"{value:.0%}"


def _ratio(value: float) -> str:
    return f"{value:.3f}"


def _interval(cell: CellVerdict) -> str:
    if cell.interval is None:
        return "—"
    return f"[{cell.interval[0]:.3f}, {cell.interval[1]:.3f}]"


def verdict_word(verdict: str, *, markdown: bool = False, pairs: int = 0) -> str:
    if verdict == REGRESSION:
        return "❌ REGRESSION" if markdown else "REGRESSION"
    if verdict == IMPROVED:
        return "✅ improved" if markdown else "improved"
    if verdict == UNJUDGED:
        return "not judged (too few pairs)"
    return "ok"


def exit_code(verdict: Verdict) -> int:
    return EXIT_REGRESSION if verdict.failed else EXIT_OK


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def headline(verdict: Verdict) -> str:
    bad, shifted = verdict.regressions, verdict.shift_regressions
    if bad or shifted:
        parts = [f"{len(bad)} of {_cells(len(verdict.judged))} slower on B"] if bad else []
        if shifted:
            parts.append(f"{len(shifted)} shift(s): {', '.join(s.label for s in shifted)}")
        return "REGRESSION: " + "; ".join(parts)
    better = verdict.improvements
    extra = f", {len(better)} faster on B" if better else ""
    return f"no regression: {_cells(len(verdict.judged))} judged{extra}"


def header(verdict: Verdict) -> list[str]:
    run = verdict.run
    number = f"{run.number:04d}" if run.number is not None else "-"
    commit = f", commit {run.commit[:10]}" if run.commit else ""
    lines = [
        f"session: run {number}: {run.path}{commit}, {environment_label(run)}",
        f"A: {label(run, 'a')}",
        f"B: {label(run, 'b')}",
        "figure: the median of the paired ratios B/A (pair i = A round i, B round i);"
        " interval: the distribution-free interval of that median from the ratios' order"
        " statistics (binomial, the sign test's)",
        f"confidence {verdict.confidence:.3%} a cell: Bonferroni over the {verdict.m} judged"
        f" cell(s), family-wise false-alarm rate at most alpha {verdict.alpha:g}; a cell"
        f" needs {verdict.needed} pairs for an interval at that level",
        "regression: the interval's lower bound above 1 + threshold; improved: its upper"
        " bound below 1 - threshold; shifts: the median of a family's cells (a model's"
        " against its family's) against its threshold",
        f"thresholds: {verdict.thresholds.said}",
    ]
    return lines


def notes(verdict: Verdict) -> list[str]:
    out = []
    unjudged = verdict.unjudged
    if unjudged:
        most = max(cell.pairs for cell in unjudged)
        out.append(
            f"{len(unjudged)} cell(s) not judged (too few pairs: at most {most}, an interval"
            f" at {verdict.confidence:.3%} needs {verdict.needed}); they count in their"
            f" family's and model's shifts: {_some([c.name for c in unjudged])}"
        )
    if verdict.one_sided:
        listed = [f"{key} ({why})" for key, why in sorted(verdict.one_sided.items())]
        out.append(f"{len(listed)} cell(s) measured on one side only, not judged: {_some(listed)}")
    return out


def _some(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def table(verdict: Verdict, *, markdown: bool = False) -> list[list[str]]:
    return [
        [
            cell.name,
            _ratio(cell.ratio),
            _interval(cell),
            str(cell.pairs),
            percent(cell.threshold),
            verdict_word(cell.verdict, markdown=markdown),
        ]
        for cell in verdict.cells
    ]


def shift_lines(verdict: Verdict) -> list[str]:
    if not verdict.shifts:
        return []
    names = {cell.key: cell.name for cell in verdict.cells}
    lines = ["shifts (median of the cells' median ratios B/A; a model's against its family's):"]
    for shift in verdict.shifts:
        word = verdict_word(shift.verdict)
        lines.append(
            f"  {shift.label:32s} {shift.ratio:6.3f}  over {_cells(len(shift.keys))},"
            f" threshold {percent(shift.threshold)}  {word}"
        )
        if shift.verdict == REGRESSION:
            lines.append(f"    cells: {_some([names[key] for key in shift.keys])}")
    return [*lines, ""]


def footer(verdict: Verdict) -> str:
    bad, shifted = verdict.regressions, verdict.shift_regressions
    if not bad and not shifted:
        return f"verdict: no regression (exit {EXIT_OK})"
    parts = [f"{cell.name} {cell.ratio:.3f}" for cell in bad]
    parts += [f"{shift.label} {shift.ratio:.3f}" for shift in shifted]
    return (
        f"verdict: {len(parts)} regression(s) of B against A: {', '.join(parts)}"
        f" (exit {EXIT_REGRESSION})"
    )


def render_text(verdict: Verdict) -> str:
    cells = [list(COLUMNS), *table(verdict)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    right = {1, 2, 3, 4}

    def line(row: list[str]) -> str:
        parts = [
            text.rjust(width) if i in right else text.ljust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [f"boundbench ab: {headline(verdict)}", *header(verdict)]
    out.extend(f"note: {text}" for text in notes(verdict))
    out += ["", line(cells[0]), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells[1:])
    out.append("")
    out.extend(shift_lines(verdict))
    out.append(sentence(verdict))
    out.append(footer(verdict))
    return "\n".join(out) + "\n"


def render_markdown(verdict: Verdict) -> str:
    icon = "❌" if verdict.failed else "✅"
    out = [f"## {icon} boundbench ab: {headline(verdict)}", ""]
    out.extend(f"- {_md(line)}" for line in header(verdict))
    out.extend(f"> {_md(text)}  " for text in notes(verdict))
    out += ["", f"{_md(sentence(verdict))}", ""]
    aligns = ("---", "---:", "---:", "---:", "---:", "---")
    out += markdown_table(COLUMNS, aligns, table(verdict, markdown=True))
    out.append("")
    lines = shift_lines(verdict)
    if lines:
        out += ["```", *(line for line in lines if line), "```", ""]
    out.append(_md(footer(verdict)))
    return "\n".join(out) + "\n"


def render_error(message: str) -> str:
    return (
        "## ⚠️ boundbench ab: bad input (exit 2)\n\n"
        f"{_md(message)}\n\nNo verdict was made; this is not a pass.\n"
    )


# -- the sentence ------------------------------------------------------------------


def _work(shift: ShiftVerdict) -> str:
    return shift.label.removesuffix(":*")


def sentence(verdict: Verdict) -> str:
    """Which side is faster on which work, from the families' verdicts: "B (python
    3.13.0) is faster on cpu_loop (median 0.87×) and slower on io_socket (1.06×)"."""
    b = label(verdict.run, "b")
    families = verdict.families
    faster = sorted((s for s in families if s.verdict == IMPROVED), key=lambda s: s.ratio)
    slower = sorted((s for s in families if s.verdict == REGRESSION), key=lambda s: -s.ratio)
    parts: list[str] = []
    for word, found in (("faster", faster), ("slower", slower)):
        if found:
            listed = [
                f"{_work(s)} ({'median ' if i == 0 and not parts else ''}{s.ratio:.2f}×)"
                for i, s in enumerate(found)
            ]
            parts.append(f"{word} on {_join(listed)}")
    flagged = len(verdict.regressions) + len(verdict.improvements)
    cells = f"; {_cells(flagged)} flagged on their own" if flagged else ""
    moved = [
        f"{s.label.split(' ', 1)[1]} is {'slower' if s.verdict == REGRESSION else 'faster'}"
        f" than the rest of {s.label.split(' ', 1)[0].removesuffix(':*')} ({s.ratio:.2f}×)"
        for s in verdict.shifts
        if s.level == "model" and s.verdict in (REGRESSION, IMPROVED)
    ]
    if moved:
        cells = f"; {_join(moved)}{cells}"
    if parts:
        level = [s for s in families if s.verdict not in (IMPROVED, REGRESSION)]
        others = "the other family" if len(level) == 1 else f"the other {len(level)} families"
        rest = f", level on {others}" if level else ""
        return f"B ({b}) is {' and '.join(parts)}{rest}{cells}."
    if not families:
        return f"B ({b}) against A ({label(verdict.run, 'a')}): no family of 3 cells{cells}."
    low, high = min(s.ratio for s in families), max(s.ratio for s in families)
    who = f"B ({b}) and A ({label(verdict.run, 'a')})"
    if aa_difference(verdict.run) is None:
        who = "B and A, alike (an A/A session),"
    return (
        f"{who} are level on every family: their median ratios lie within their"
        f" thresholds ({low:.2f}× to {high:.2f}×){cells}."
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- the report's frame --------------------------------------------------------------


def frame(verdict: Verdict) -> pd.DataFrame:
    """One row per cell and per shift (``level``: cell, family, model), for the report's
    A/B chart and table."""
    run = verdict.run
    common = {
        "run_id": run.run_id,
        "label_a": label(run, "a"),
        "label_b": label(run, "b"),
        "environment": environment_label(run),
        "datetime": run.datetime or "",
        "confidence": verdict.confidence,
        "sentence": sentence(verdict),
    }
    rows = [
        {
            **common,
            "level": "cell",
            "key": cell.key,
            "name": cell.name,
            "family": cell.family,
            "model": cell.model,
            "ratio": cell.ratio,
            "low": cell.interval[0] if cell.interval else float("nan"),
            "high": cell.interval[1] if cell.interval else float("nan"),
            "pairs": cell.pairs,
            "threshold": cell.threshold,
            "verdict": cell.verdict,
        }
        for cell in verdict.cells
    ]
    for shift in verdict.shifts:
        family, _, model = shift.label.partition(" ")
        rows.append(
            {
                **common,
                "level": shift.level,
                "key": shift.label,
                "name": shift.label,
                "family": family,
                "model": model,
                "ratio": shift.ratio,
                "low": float("nan"),
                "high": float("nan"),
                "pairs": len(shift.keys),
                "threshold": shift.threshold,
                "verdict": shift.verdict,
            }
        )
    return pd.DataFrame(rows)
