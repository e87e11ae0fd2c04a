"""``python -m reports ab [RUN]``: is side B of an A/B session slower than side A?

An A/B session (``pytest benchmarks/ --ab-base TREE ...``) measures every cell on both
sides in one session, a round of each back to back in every pass, so the host's slow
phases hit both alike.  Per cell: the median of the paired ratios B/A with its
distribution-free (order-statistic, binomial) confidence interval, at confidence
``1 - alpha/m``, Bonferroni over the ``m`` judged cells (a family-wise false-alarm rate of
at most ``alpha``, default 0.05); families and models as shifts.  See ``reports/_ab.py``
and docs/ci.md.

RUN: an A/B session file, a run number (looked up under ``--paths``, default
``.benchmarks/``), or a folder (its latest A/B session); default: the latest A/B session
under ``--paths``.  Thresholds: ``thresholds/ab.json`` (``python -m reports thresholds
--kind ab RUN ...`` from A/A sessions), else 5 %.  Exit 0: no regression; 1: at least one
regression; 2: bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _ab, _store
from ._ab_output import EXIT_BAD_INPUT, exit_code, render_error, render_markdown, render_text
from ._check_config import fraction
from ._compare import InputError
from ._runs import DEFAULT_STORAGE, Run, RunError, find_run_files, read_run
from .check import OneLineParser, _alpha

PROG = "python -m reports ab"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Judge an A/B session: side B against side A, cell by cell, on paired"
        " rounds.  Exit 0: no regression; 1: regression found; 2: bad input or usage.",
    )
    parser.add_argument(
        "run",
        nargs="?",
        metavar="RUN",
        help="an A/B session file, a run number, or a folder (its latest A/B session);"
        " default: the latest A/B session under --paths",
    )
    parser.add_argument(
        "--paths",
        nargs="*",
        default=[],
        metavar="PATH",
        help=f"where run numbers and sessions are looked up (default: {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=_ab.DEFAULT_ALPHA,
        metavar="A",
        help="family-wise false-alarm rate over the judged cells (Bonferroni; default"
        f" {_ab.DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--threshold",
        type=fraction,
        default=None,
        metavar="E",
        help="the same threshold for every cell and shift, as 0.05 or 5%% (instead of"
        " thresholds/ab.json)",
    )
    parser.add_argument(
        "--markdown",
        "--summary",
        dest="markdown",
        type=Path,
        metavar="FILE",
        help="also write the verdict as Markdown (e.g. for $GITHUB_STEP_SUMMARY)",
    )
    return parser


def _order(run: Run) -> tuple[str, int, str]:
    return (run.datetime or "", run.number or 0, str(run.path))


def _read(path: Path) -> Run:
    try:
        return read_run(path)
    except RunError as exc:
        raise InputError(str(exc)) from None


def _latest_session(paths: Sequence[str | Path]) -> Run:
    files, problems = find_run_files(paths)
    if problems:
        raise InputError(problems[0])
    # Any unreadable file is an error: it could be the latest session.
    runs = sorted((_read(path) for path in files), key=_order)
    sessions = [run for run in runs if _ab.is_session(run)]
    where = ", ".join(map(str, paths)) or str(DEFAULT_STORAGE)
    if not sessions:
        raise InputError(
            f"no A/B session under {where} ({len(runs)} run(s), none made with"
            " pytest benchmarks/ --ab-base TREE)"
        )
    return sessions[-1]


def resolve(ref: str | None, paths: Sequence[str]) -> Run:
    """The session named by ``ref`` (a file, a number under ``paths``, a folder)."""
    if ref is None:
        return _latest_session(paths or [DEFAULT_STORAGE])
    path = Path(ref)
    if ref.isdigit() and not path.exists():
        files, problems = find_run_files(paths or [DEFAULT_STORAGE])
        if problems:
            raise InputError(f"{ref}: {problems[0]}")
        wanted = [found for found in files if found.name[:5] == f"{int(ref):04d}_"]
        if len(wanted) != 1:
            where = ", ".join(paths) or str(DEFAULT_STORAGE)
            many = f"{len(wanted)} runs are" if wanted else "no run is"
            raise InputError(f"{ref}: {many} numbered {int(ref):04d} under {where}")
        return _read(wanted[0])
    if path.is_dir():
        return _latest_session([path])
    if not path.exists():
        raise InputError(f"{ref}: no such run number, file or folder")
    return _read(path)


def thresholds(args: argparse.Namespace, run: Run) -> _ab.Thresholds:
    if args.threshold is not None:
        return _ab.Thresholds(
            default=args.threshold,
            said=f"{_percent(args.threshold)} for every cell and shift (--threshold)",
        )
    store = _store.load("ab")
    if store is None:
        return _ab.Thresholds(
            default=_ab.DEFAULT_THRESHOLD,
            said=f"no stored A/B thresholds (thresholds/ab.json):"
            f" {_percent(_ab.DEFAULT_THRESHOLD)} for every cell and shift; make them from"
            f" A/A sessions (the same tree and Python on both sides) with"
            f" {_store.COMMAND.format(kind='ab')}",
        )
    said = store.describe()
    profile = (run.machine_info.get("boundbench") or {}).get("profile")
    made = store.provenance.get("profile")
    if profile and made and str(profile) not in str(made).split(","):
        said += f"; measured on {made} sessions, this one is {profile}"
    return _ab.Thresholds(store.families, store.shifts, store.default, said)


def _percent(value: float) -> str:
    return f"{value * 100:.2g}%" if value < 0.1 else f"{value:.0%}"


def _write(path: Path, text: str) -> str | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        run = resolve(args.run, args.paths)
        verdict = _ab.judge(run, thresholds(args, run), alpha=args.alpha)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        if args.markdown:
            _write(args.markdown, render_error(str(exc)))
        return EXIT_BAD_INPUT
    sys.stdout.write(render_text(verdict))
    if args.markdown:
        problem = _write(args.markdown, render_markdown(verdict))
        if problem:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return exit_code(verdict)


if __name__ == "__main__":
    sys.exit(main())
