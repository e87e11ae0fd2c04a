"""The check's verdict as people read it: a text table for the terminal, Markdown for CI.

The header says which runs were compared and how (mode, significance test, thresholds);
the warnings what may make a figure less certain (other machines, interpreters,
library versions, a busy host, unstable cells); then a row per cell, the shifts of the
families and models, and the verdict with its exit code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import _figures, _stats
from ._check_runs import Selection
from ._compare import (
    COUNTS,
    MODE_TITLES,
    MWU,
    Comparison,
    Row,
    Settings,
    library_differences,
    machine_differences,
    setting_differences,
    too_few_rounds,
)
from ._runs import Run

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


def _run_label(run: Run) -> str:
    number = f"{run.number:04d}" if run.number is not None else "-"
    commit = f", commit {run.commit[:10]}" if run.commit else ""
    when = f", {run.datetime}" if run.datetime else ""
    return f"run {number}: {run.path}{commit}{when}, machine {run.machine}"


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def _value(mode: str, value: float) -> str:
    if mode == COUNTS:
        return f"{value / 1e6:.5g} M"
    if mode == "time":
        return _duration(value)
    if mode == "speedup":
        return f"{value:.3g}x"
    return f"{value:.3f}"


def _significance(row: Row) -> str:
    if row.method == MWU and row.p is not None:
        text = f"p={row.p:.2g} ({row.rounds[0]}+{row.rounds[1]} rounds)"
    else:
        text = f"threshold ({row.fallback})"
    return text + ", unstable" if row.unstable else text


def _verdict(row: Row, *, markdown: bool) -> str:
    if row.verdict == "regression":
        return "❌ REGRESSION" if markdown else "REGRESSION"
    if row.verdict == "improved":
        return "✅ improved" if markdown else "improved"
    if row.method == MWU and abs(row.worse_by - 1) >= row.min_effect:
        return "ok (not significant)"
    return "ok"


def percent(value: float) -> str:
    """A fraction as a percentage with the digits it has: 10%, 1.5%, 0.2%."""
    return f"{value * 100:.2g}%" if value < 0.1 else f"{value:.0%}"


def _effects(settings: Settings) -> str:
    text = f"minimum effect {percent(settings.min_effect)}"
    if settings.group_effects:
        parts = ", ".join(f"{p}: {percent(e)}" for p, e in settings.group_effects)
        text += f" ({parts})"
    return text


@dataclass
class Outcome:
    selection: Selection
    comparison: Comparison
    header: list[str]
    warnings: list[str]
    # the current run against the pinned --reference run, when one was given
    reference: Outcome | None = None

    @property
    def exit_code(self) -> int:
        if self.comparison.regressions or self.comparison.shift_regressions:
            return EXIT_REGRESSION
        return self.reference.exit_code if self.reference is not None else EXIT_OK


def _headline(comparison: Comparison) -> str:
    rows, bad = comparison.rows, comparison.regressions
    better = comparison.improvements
    shifted = comparison.shift_regressions
    if bad or shifted:
        parts = [f"{len(bad)} of {_cells(len(rows))} slower"] if bad else []
        if shifted:
            parts.append(f"{len(shifted)} shift(s): {', '.join(s.label for s in shifted)}")
        return "REGRESSION: " + "; ".join(parts)
    extra = f", {len(better)} improved" if better else ""
    return f"no regression: {_cells(len(rows))} compared{extra}"


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def describe(
    selection: Selection,
    comparison: Comparison,
    mode_note: str | None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The header: the runs, the mode, the test and thresholds (``extra``: where the
    thresholds come from, what the comparison can see), every fallback."""
    settings = comparison.settings
    rows = comparison.rows
    tested = sum(row.method == MWU for row in rows)
    lines = [
        f"baseline: {_run_label(selection.baseline)}",
        f"current:  {_run_label(selection.current)}",
        f"mode: {MODE_TITLES[settings.mode]}" + (f" ({mode_note})" if mode_note else ""),
    ]
    lines.extend(extra)
    test = f"one-sided Mann-Whitney U, alpha {settings.alpha:g}, and {_effects(settings)}"
    if tested == len(rows):
        lines.append(f"significance: {test}")
    else:
        fallbacks: dict[str, int] = {}
        unjudged = 0
        for row in rows:
            if row.method == MWU:
                continue
            if too_few_rounds(row.rounds, settings):
                unjudged += 1
                continue
            reason = "no round data" if row.fallback == "no round data" else "too few rounds"
            fallbacks[reason] = fallbacks.get(reason, 0) + 1
        why = ", ".join(f"{count} with {reason}" for reason, count in fallbacks.items())
        if tested:
            lines.append(f"significance: {test}, for {tested} of {len(rows)} cells")
        if fallbacks:
            lines.append(
                f"threshold fallback for {sum(fallbacks.values())} of {len(rows)} cells"
                f" ({why}): {_effects(settings)} decides alone, without a significance test"
            )

        if "no round data" in fallbacks:
            lines.append("  (raw rounds are kept by --benchmark-save-data; the profiles set it)")
        if "too few rounds" in fallbacks:
            need = rounds_needed(settings.alpha)
            lines.append(
                f"  (the test needs at least {need}+{need} rounds to reach alpha"
                f" {settings.alpha:g}; use a profile with more rounds)"
            )
        if unjudged:
            lines.append(
                f"no verdict of their own for {unjudged} of {len(rows)} cells, with fewer"
                f" than {settings.cell_min_rounds} rounds in a run: their changes count in"
                " the shifts"
            )
    return lines


def rounds_needed(alpha: float) -> int:
    """The fewest rounds per side (n+n) with which the rank test can reach ``alpha``."""
    # C(2n, n) >= 4^n / (2 sqrt(n)): start near the answer and count up; any alpha > 0 ends.
    n = max(1, int(-math.log(alpha) / math.log(4)))
    while not _stats.can_test(n, n, alpha):
        n += 1
    while n > 1 and _stats.can_test(n - 1, n - 1, alpha):
        n -= 1
    return n


def warnings_of(selection: Selection, comparison: Comparison) -> list[str]:
    out = list(selection.warnings)
    base, cur = selection.baseline, selection.current
    machine, interpreter = machine_differences(base, cur)
    pythons, settings = setting_differences(base, cur)
    for run, what in ((base, "baseline"), (cur, "current")):
        if not run.machine_info.get("boundbench"):
            out.append(f"{what} run has no boundbench machine info: cannot tell if machines match")
    if machine:
        out.append("different machines: " + "; ".join(machine))
    if pythons:
        out.append("different interpreters: " + "; ".join(pythons))
    if settings:
        out.append("different settings: " + "; ".join(settings))
    libs = library_differences(base, cur)
    if libs:
        out.append("different library versions: " + "; ".join(libs))
    for run, what in ((base, "baseline"), (cur, "current")):
        hooks = (run.machine_info.get("boundbench") or {}).get("test_hooks")
        if hooks:
            hooked = ", ".join(f"{name}={value}" for name, value in sorted(hooks.items()))
            out.append(
                f"{what} run was made with test hooks on ({hooked}): its figures are altered"
                " on purpose"
                + ("; it is no baseline for real changes" if what == "baseline" else "")
            )
        busy = _figures.host_load_warning(run.machine_info)
        if busy:
            out.append(f"{what} run: {busy}")
        out.extend(f"{what}: {note}" for note in run.notes)
    unstable = [row for row in comparison.rows if row.unstable]
    if unstable:
        shown = [f"{row.name} ({_spreads(row)})" for row in unstable]
        out.append(
            f"{len(unstable)} unstable cell(s), rounds spread (IQR) over"
            f" {_figures.UNSTABLE_SPREAD:.0%} of the median: {_some(shown)}; their"
            " verdicts are less certain, rerun them (see docs/ci.md)"
        )
    if (machine or interpreter) and comparison.settings.mode == "time":
        out.append(
            "absolute times from different machines or interpreters are not comparable;"
            " consider --mode speedup"
        )
    if comparison.only_baseline:
        out.append(
            f"{len(comparison.only_baseline)} cell(s) only in the baseline (not run this"
            f" time?): {_some(comparison.only_baseline)}"
        )
    if comparison.only_current:
        out.append(
            f"{len(comparison.only_current)} new cell(s), not in the baseline:"
            f" {_some(comparison.only_current)}"
        )
    if comparison.not_compared:
        reasons: dict[str, int] = {}
        for reason in comparison.not_compared.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        detail = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        out.append(f"{len(comparison.not_compared)} cell(s) not compared: {detail}")
    return out


def _spreads(row: Row) -> str:
    parts = [
        f"{what} {value:.0%}"
        for what, value in zip(("baseline", "current"), row.spread, strict=True)
        if value is not None
    ]
    return "IQR " + ", ".join(parts)


def _some(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _names(rows: list[Row]) -> list[str]:
    names = [row.name for row in rows]
    return names if len(set(names)) == len(names) else [row.key for row in rows]


def _table(outcome: Outcome, *, markdown: bool) -> list[list[str]]:
    mode = outcome.comparison.settings.mode
    rows = outcome.comparison.rows
    return [
        [
            name,
            _value(mode, row.baseline),
            _value(mode, row.current),
            f"{row.change:+.1%}",
            _significance(row),
            _verdict(row, markdown=markdown),
        ]
        for name, row in zip(_names(rows), rows, strict=True)
    ]


COLUMNS = ("cell", "baseline", "current", "change", "significance", "verdict")


def render_text(outcome: Outcome, title: str = "") -> str:
    cells = [list(COLUMNS), *_table(outcome, markdown=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    right = {1, 2, 3}

    def line(row: list[str]) -> str:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    what = f"boundbench check {title}" if title else "boundbench check"
    out = [f"{what}: {_headline(outcome.comparison)}", *outcome.header]
    out.extend(f"warning: {text}" for text in outcome.warnings)
    out.append("")
    out.append(line(cells[0]))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(row) for row in cells[1:])
    out.append("")
    out.extend(_shift_lines(outcome))
    out.append(_footer(outcome))
    return "\n".join(out) + "\n"


def _shift_lines(outcome: Outcome) -> list[str]:
    """The families' and models' median changes: where one cell's noise averages out."""
    found = outcome.comparison.shifts
    if not found:
        return []
    names = dict(
        zip([r.key for r in outcome.comparison.rows], _names(outcome.comparison.rows), strict=True)
    )
    lines = ["shifts (median change of the cells; a model's against its family's):"]
    for shift in found:
        verdict = {"regression": "REGRESSION", "improved": "improved"}.get(shift.verdict, "ok")
        lines.append(
            f"  {shift.label:32s} {shift.worse_by - 1:+6.1%} slower"
            f"  over {_cells(len(shift.keys))}, min effect {percent(shift.min_effect)}  {verdict}"
        )
        if shift.verdict == "regression":
            lines.append(f"    cells: {_some([names[key] for key in shift.keys], limit=6)}")
    lines.append("")
    return lines


def _footer(outcome: Outcome) -> str:
    bad = outcome.comparison.regressions
    shifted = outcome.comparison.shift_regressions
    if not bad and not shifted:
        return "verdict: no regression (exit 0)"
    names = dict(
        zip([r.key for r in outcome.comparison.rows], _names(outcome.comparison.rows), strict=True)
    )
    parts = [f"{names[row.key]} {row.change:+.1%}" for row in bad]
    parts += [f"{shift.label} {shift.worse_by - 1:+.1%}" for shift in shifted]
    return f"verdict: {len(bad) + len(shifted)} regression(s): {', '.join(parts)} (exit 1)"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(
    columns: Sequence[str], aligns: Sequence[str], rows: list[list[str]]
) -> list[str]:
    """A Markdown table: ``aligns`` per column ("---" or "---:"), the first cell of a row
    as code, every cell's pipes escaped."""
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        cells = [f"`{row[0]}`", *row[1:]]
        out.append("| " + " | ".join(_md(text) for text in cells) + " |")
    return out


def render_markdown(outcome: Outcome, title: str = "") -> str:
    comparison = outcome.comparison
    icon = "❌" if comparison.regressions or comparison.shift_regressions else "✅"
    what = f"boundbench check {title}" if title else "boundbench check"
    out = [f"## {icon} {what}: {_headline(outcome.comparison)}", ""]
    out.extend(
        f"  - {_md(line.strip())}" if line.startswith("  ") else f"- {_md(line)}"
        for line in outcome.header
    )
    if outcome.warnings:
        out.append("")
        out.extend(f"> ⚠️ {_md(text)}  " for text in outcome.warnings)
    out.append("")
    aligns = ("---", "---:", "---:", "---:", "---", "---")
    out += markdown_table(COLUMNS, aligns, _table(outcome, markdown=True))
    out.append("")
    shift_lines = _shift_lines(outcome)
    if shift_lines:
        out.append("```")
        out.extend(line for line in shift_lines if line)
        out.append("```")
        out.append("")
    out.append(_md(_footer(outcome)))
    return "\n".join(out) + "\n"


def render_error(message: str) -> str:
    return (
        "## ⚠️ boundbench check: bad input (exit 2)\n\n"
        f"{_md(message)}\n\nNo comparison was made; this is not a pass.\n"
    )
