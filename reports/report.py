"""``python -m reports [PATHS...] [--out DIR]``: saved runs -> charts, a page and tables.

parse_args() -> load() -> build() -> plot() -> write() -> main(), like pyperf's
examples.  Problems with the inputs are one line each on stderr; whatever is usable
is still reported; exit 2 when nothing is.  Inputs are only read, and the output
folder is never inside an input folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pandas as pd

from . import _ab_chart, _best, _cells, _figures, _palette
from ._draw import Chart
from ._figures import UNSTABLE_SPREAD
from ._frame import build_frame, missing_baselines
from ._page import write_page
from ._registry import CHART_NAMES, draw_charts
from ._runs import DEFAULT_STORAGE, Run, load_runs
from ._store import run_kind
from ._summary import write_summary
from ._tables import UNSTABLE_PREFIX, unstable_cells, unstable_lines, void_lines

DEFAULT_OUT = Path("reports/out")
PROG = "python -m reports"


class UsageError(Exception):
    """A problem with the command line (exit 2)."""


@dataclass
class Report:
    runs: list[Run]
    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    # what the reader must know to trust the figures: a busy host, void rounds
    warnings: list[str] = field(default_factory=list)
    # the latest run's cells whose rounds spread too far (a table after the findings)
    unstable: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the fastest model per workload, parameters and tasks of the latest run
    best: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the count runs' cells (``--measure instructions``): their own chart, never mixed
    # with the timed runs' figures
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the latest A/B session's verdict (``--ab-base``): its own chart and table, never in
    # the timed runs' figures (its stats are side B's alone)
    ab: pd.DataFrame = field(default_factory=pd.DataFrame)


class _OneLineParser(argparse.ArgumentParser):
    """A usage error is one line on stderr (exit 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = _OneLineParser(
        prog=PROG,
        description=(
            "Turn saved pytest-benchmark runs into charts (PNG, SVG), index.html,"
            " summary.md and results.csv.  Use 'python -m reports check' to compare runs."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="saved runs: JSON files or folders, searched"
        f" recursively (default: {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output folder, created if needed (default: {DEFAULT_OUT}/)",
    )
    parser.add_argument("--title", default="boundbench report", help="page and summary title")
    parser.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    return parser.parse_args(argv)


def check_out_dir(out: Path, paths: Sequence[str | Path]) -> Path:
    """The resolved output folder; refuse one inside the inputs (or any .benchmarks/)."""
    target = out.resolve()
    if ".benchmarks" in target.parts:
        raise UsageError(f"{out}: refusing to write a report inside a .benchmarks/ folder")
    for raw in list(paths) or [DEFAULT_STORAGE]:
        path = Path(raw).resolve()
        if path.is_dir() and target.is_relative_to(path):
            raise UsageError(f"{out}: refusing to write the report inside the input folder {raw}")
        if path.is_file() and target == path.parent:
            raise UsageError(f"{out}: refusing to write the report beside the input file {raw}")
        if target == path:
            raise UsageError(f"{out}: the output folder is an input")
    if target.exists() and not target.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    return target


# More unstable cells than this are counted in one terminal line, not named one by one.
TERMINAL_UNSTABLE_LINES = 5


def load(paths: Sequence[str | Path]) -> tuple[list[Run], list[str]]:
    return load_runs(paths or None)


def build(runs: list[Run], problems: list[str]) -> Report:
    counted = [run for run in runs if run_kind(run) == "instructions"]
    sessions = [run for run in runs if run_kind(run) == "ab"]
    timed = [run for run in runs if run_kind(run) not in ("instructions", "ab")]
    frame = build_frame(timed)
    report = Report(runs=runs, frame=frame, problems=[*problems, *missing_baselines(frame)])
    report.counts = build_frame(counted)
    report.ab = _ab_chart.session_frame(sessions, report.problems)
    for run in timed:  # a count does not move with a busy host
        busy = _figures.host_load_warning(run.machine_info)
        if busy:
            report.warnings.append(f"run {run.run_id}: {busy}")
    latest = _cells.latest_run(frame)
    report.unstable = unstable_cells(latest)
    report.warnings.extend(void_lines(latest))
    report.best = _best.best_models(_cells.latest_per_workload(frame), _best.stats_by_cell(runs))
    return report


def _palette_of(report: Report) -> dict[str, str]:
    models = report.ab[report.ab["level"] == "cell"][["model"]] if len(report.ab) else None
    return _palette.make_palette(pd.concat([report.frame, report.counts, models]))


def plot(report: Report, out: Path) -> list[Chart]:
    """Write every chart the data allows; a chart that fails is a problem line, not a crash."""
    palette = _palette_of(report)
    report.charts = draw_charts(
        report.frame, palette, out, report.problems, report.counts, report.ab
    )
    return report.charts


def write(report: Report, out: Path, title: str) -> list[Path]:
    palette = _palette_of(report)
    csv = out / "results.csv"
    frame = report.frame.copy()
    frame["datetime"] = frame["datetime"].map(
        lambda t: t.isoformat() if isinstance(t, pd.Timestamp) else ""
    )
    frame.to_csv(csv, index=False)
    page = write_page(
        out,
        title=title,
        runs=report.runs,
        frame=report.frame,
        charts=report.charts,
        problems=report.problems,
        palette=palette,
        warnings=report.warnings,
        best=report.best,
        unstable=report.unstable,
        ab=report.ab,
    )
    summary = write_summary(
        out,
        title=title,
        runs=report.runs,
        frame=report.frame,
        charts=report.charts,
        problems=report.problems,
        warnings=report.warnings,
        best=report.best,
        unstable=report.unstable,
        ab=report.ab,
    )
    return [page, summary, csv]


def _clear_old_charts(out: Path) -> None:
    # Only our own file names: a chart the data no longer allows must not linger.
    for name in CHART_NAMES:
        for suffix in (".png", ".svg"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else 2
    started = time.perf_counter()
    try:
        out = check_out_dir(args.out, args.paths)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    runs, problems = load(args.paths)
    for line in problems:
        print(line, file=sys.stderr)
    if not runs:
        print(f"{PROG}: no usable runs, nothing to report", file=sys.stderr)
        return 2
    report = build(runs, problems)
    for line in report.problems[len(problems) :]:
        print(line, file=sys.stderr)
    # Unstable cells: a few are named on the terminal; past that, one line counts them
    # (a noisy host makes dozens) and the page and summary list every one.
    unstable = unstable_lines(report.unstable)
    many = len(unstable) > TERMINAL_UNSTABLE_LINES
    for line in [*report.warnings, *([] if many else unstable)]:
        print(f"warning: {line}", file=sys.stderr)
    if many:
        print(
            f"warning: {len(unstable)} cells are unstable (IQR above {UNSTABLE_SPREAD:.0%} of"
            f" their median), the worst: {unstable[0].removeprefix(UNSTABLE_PREFIX)}; every one"
            f" is listed in {args.out}/summary.md and index.html",
            file=sys.stderr,
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{PROG}: {args.out}: cannot create the output folder ({exc})", file=sys.stderr)
        return 2
    try:
        _clear_old_charts(out)
    except OSError as exc:
        print(f"{PROG}: {args.out}: cannot replace old charts ({exc})", file=sys.stderr)
        return 2
    known = len(report.problems)
    plot(report, out)
    for line in report.problems[known:]:
        print(line, file=sys.stderr)
    try:
        write(report, out, args.title)
    except OSError as exc:
        print(f"{PROG}: {args.out}: cannot write the report ({exc})", file=sys.stderr)
        return 2
    if not args.quiet:
        print(
            f"{len(report.frame)} benchmarks"
            + (f" and {len(report.counts)} counted cells" if len(report.counts) else "")
            + (f" and {_ab_cells(report.ab)} A/B cells" if len(report.ab) else "")
            + f" from {len(runs)} run(s) -> {args.out}/:"
            f" index.html, summary.md, results.csv, {len(report.charts)} charts"
            f" ({', '.join(c.name for c in report.charts)}) in"
            f" {time.perf_counter() - started:.1f} s"
        )
    return 0


def _ab_cells(rows: pd.DataFrame) -> int:
    return int((rows["level"] == "cell").sum())


if __name__ == "__main__":
    sys.exit(main())
