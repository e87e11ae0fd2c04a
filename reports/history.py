"""``python -m reports history [PATHS]``: steps and creeping trends over a series of runs.

parse_args() -> load() -> series per machine and interpreter (implementation, version,
GIL state; ``--any-machine`` / ``--any-python`` merge them) -> findings -> render ->
main().  Exit 0: no step or trend for the worse; 1: at least one; 2: bad input or usage
(one line on stderr).  Inputs are only read.  See ``reports._history`` for the method
and docs/ci.md for how to read it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _history
from ._check_config import fraction, read_config
from ._check_output import EXIT_BAD_INPUT, EXIT_OK, EXIT_REGRESSION
from ._compare import (
    DEFAULT_MIN_EFFECT,
    HIGHER_IS_BETTER,
    MODES,
    InputError,
    Measure,
    Settings,
    environment,
    interpreter_label,
    measures,
)
from ._runs import DEFAULT_STORAGE, Run, load_runs
from .check import OneLineParser, _alpha, _group_effect, _write

PROG = "python -m reports history"
DEFAULT_LAST = 20
MIN_RUNS = 4


@dataclass(frozen=True)
class Finding:
    series: str
    key: str
    name: str
    kind: str  # "step" or "trend"
    change: float  # in the mode's unit: a time +20%, a speedup -17%
    worse: bool
    detail: str


@dataclass
class History:
    mode: str
    series: list[tuple[str, list[Run]]]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.worse]


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: must be between {low} and {high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Look over the series of runs of each machine and interpreter for steps"
            " (e-divisive change points) and creeping trends, cell by cell.  Exit 0: none"
            " for the worse; 1: at least one; 2: bad input or usage."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"saved runs: files or folders (default: {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="time",
        help="time: absolute time per call (default); speedup or efficiency: normalized"
        " within each run",
    )
    parser.add_argument(
        "--last",
        type=_positive_int(MIN_RUNS, 10_000),
        default=DEFAULT_LAST,
        metavar="N",
        help=f"look at the last N runs of each series (default {DEFAULT_LAST}): an old,"
        " accepted step drops out of the window",
    )
    parser.add_argument(
        "--min-effect",
        type=fraction,
        default=None,
        metavar="E",
        help="smallest step or total drift that counts (default: the config's, else"
        f" {DEFAULT_MIN_EFFECT:g})",
    )
    parser.add_argument(
        "--min-effect-group",
        type=_group_effect,
        action="append",
        default=[],
        metavar="PATTERN=E",
        help="as for the check: per group glob, repeatable, the first match wins",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML with a [tool.boundbench.check] table (default: ./pyproject.toml)",
    )
    parser.add_argument(
        "--pvalue",
        type=_alpha,
        default=_history.DEFAULT_PVALUE,
        metavar="P",
        help="significance of a change point (permutation test) and of a trend (Kendall"
        f" tau, one-sided) (default {_history.DEFAULT_PVALUE:g})",
    )
    parser.add_argument(
        "--permutations",
        type=_positive_int(19, 100_000),
        default=_history.DEFAULT_PERMUTATIONS,
        metavar="N",
        help=f"permutations per change-point test (default {_history.DEFAULT_PERMUTATIONS})",
    )
    parser.add_argument(
        "--any-machine",
        action="store_true",
        help="one series per interpreter, whatever the machine (use a normalized --mode then)",
    )
    parser.add_argument(
        "--any-python",
        action="store_true",
        help="one series per machine, whatever the interpreter (Python version,"
        " implementation, GIL state); with --any-machine, one series of every run",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the result as Markdown",
    )
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def series_of(
    runs: Sequence[Run], *, any_machine: bool, any_python: bool = False
) -> list[tuple[str, list[Run]]]:
    """Runs grouped per machine (unless ``any_machine``) and interpreter (unless
    ``any_python``), each in order, labelled."""
    groups: dict[tuple[object, ...], list[Run]] = {}
    for run in runs:
        key = environment(run, machine=not any_machine, interpreter=not any_python)
        groups.setdefault(key, []).append(run)
    out = []
    for group in groups.values():
        machine = "every machine" if any_machine else group[0].machine
        python = "every interpreter" if any_python else interpreter_label(group[0])
        both = any_machine and any_python
        out.append(("every machine and interpreter" if both else f"{machine} · {python}", group))
    return out


def _run_name(run: Run) -> str:
    return f"{run.number:04d}" if run.number is not None else run.run_id


def examine(
    label: str,
    runs: Sequence[Run],
    settings: Settings,
    *,
    pvalue: float,
    permutations: int,
) -> list[Finding]:
    per_run = [measures(run, settings.mode)[0] for run in runs]
    keys = sorted({key for measured in per_run for key in measured})
    higher = HIGHER_IS_BETTER[settings.mode]
    findings = []
    for key in keys:
        points: list[tuple[Run, Measure]] = [
            (run, measured[key]) for run, measured in zip(runs, per_run, strict=True)
            if key in measured
        ]  # fmt: skip
        if len(points) < MIN_RUNS:
            continue
        values = [measure.value for _run, measure in points]
        last = points[-1][1]
        effect = settings.effect_for(last)
        for step in _history.steps(values, pvalue=pvalue, permutations=permutations):
            if abs(step.change) < effect * (1 - 1e-9):
                continue
            worse = step.change < 0 if higher else step.change > 0
            where = _run_name(points[step.index][0])
            findings.append(
                Finding(
                    label, key, last.name, "step", step.change, worse,
                    f"from run {where} on (e-divisive, p={step.p:.2g})",
                )
            )  # fmt: skip
        drift = _history.trend(values, alternative="less" if higher else "greater")
        if drift is not None and drift.p <= pvalue and abs(drift.change) >= effect:
            first, end = _run_name(points[0][0]), _run_name(points[-1][0])
            findings.append(
                Finding(
                    label, key, last.name, "trend", drift.change, True,
                    f"over {len(values)} runs {first}..{end}, {drift.per_run:+.1%} per run"
                    f" (Kendall p={drift.p:.2g})",
                )
            )  # fmt: skip
    return findings


def run_history(args: argparse.Namespace) -> History:
    runs, problems = load_runs(args.paths or None)
    if not runs:
        first = problems[0] if problems else "no runs found"
        raise InputError(f"no usable runs: {first}")
    config_effect, config_groups = read_config(args.config)
    min_effect = args.min_effect
    if min_effect is None:
        min_effect = DEFAULT_MIN_EFFECT if config_effect is None else config_effect
    settings = Settings(
        mode=args.mode,
        min_effect=min_effect,
        group_effects=(*args.min_effect_group, *config_groups),
    )
    history = History(mode=args.mode, series=[], notes=list(problems))
    long_enough = 0
    for label, series in series_of(runs, any_machine=args.any_machine, any_python=args.any_python):
        window = series[-args.last :]
        history.series.append((label, window))
        if len(window) < MIN_RUNS:
            history.notes.append(
                f"series {label}: {len(window)} run(s), fewer than {MIN_RUNS}: not examined"
            )
            continue
        long_enough += 1
        history.findings.extend(
            examine(label, window, settings, pvalue=args.pvalue, permutations=args.permutations)
        )
    if not long_enough:
        raise InputError(
            f"no series of at least {MIN_RUNS} runs of one machine and interpreter"
            f" ({len(runs)} run(s) in {len(history.series)} series)"
        )
    return history


def render(history: History, *, markdown: bool = False) -> str:
    bad = history.regressions
    head = (
        f"{len(bad)} step(s) or trend(s) for the worse" if bad else "no step or trend for the worse"
    )
    lines = [f"## boundbench history: {head}" if markdown else f"boundbench history: {head}"]
    bullet = "- " if markdown else ""
    for label, runs in history.series:
        names = f"{_run_name(runs[0])}..{_run_name(runs[-1])}" if runs else "-"
        lines.append(f"{bullet}series {label}: {len(runs)} runs ({names}), mode {history.mode}")
    lines.extend(f"{bullet}note: {note}" for note in history.notes)
    lines.append("")
    if history.findings:
        rows = [
            (f.name, f.kind, f"{f.change:+.1%}", "worse" if f.worse else "better", f.detail)
            for f in sorted(history.findings, key=lambda f: (not f.worse, f.series, f.name))
        ]
        head_row = ("cell", "finding", "change", "", "where")
        if markdown:
            lines.append("| " + " | ".join(head_row) + " |")
            lines.append("|---|---|---:|---|---|")
            lines.extend("| " + " | ".join(row) + " |" for row in rows)
        else:
            widths = [max(len(r[i]) for r in (head_row, *rows)) for i in range(len(head_row))]
            for row in (head_row, *rows):
                cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
                lines.append("  ".join(cells).rstrip())
        lines.append("")
    code = EXIT_REGRESSION if bad else EXIT_OK
    lines.append(f"verdict: {head} (exit {code})")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        history = run_history(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(render(history))
    if args.markdown:
        problem = _write(args.markdown, render(history, markdown=True))
        if problem:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return EXIT_REGRESSION if history.regressions else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
