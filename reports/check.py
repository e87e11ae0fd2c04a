"""``python -m reports check``: is the current run slower than the baseline?

parse_args() -> select() -> compare -> render -> main().  Exit 0: no regression;
1: at least one regression; 2: bad input or usage (one line on stderr, never a
traceback, never a pass on nothing).  Inputs are only read.

A cell regresses when it is worse by at least the minimum effect (10% by default,
settable per group) *and* the rounds say so: a one-sided Mann-Whitney U test at
alpha 0.01.  With too few rounds for the test to ever reach alpha (3+3 rounds cannot
go below p = 0.05), or with summary statistics only, the threshold alone decides and
the output says so.  See docs/ci.md.

``--reference RUN`` also compares the current run with a pinned run (a creeping
slowdown never trips the pairwise check against the previous run); ``--calibrate RUN
RUN ...`` measures the noise between runs of unchanged code and prints the minimum
effects it suggests.  Runs are paired only within one machine and interpreter: the
baseline is picked from the current run's machine unless ``--any-machine`` (or named
explicitly), and runs of two interpreters (version, implementation, GIL state) are never
compared unless ``--any-python``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from . import _calibrate, _figures, _stats
from ._compare import (
    DEFAULT_MIN_EFFECT,
    MODE_TITLES,
    MODES,
    MWU,
    Comparison,
    InputError,
    Row,
    Settings,
    compare_runs,
    environment_label,
    interpreter_label,
    library_differences,
    machine_differences,
    same_interpreter,
    same_machine,
    setting_differences,
    too_few_rounds,
)
from ._runs import DEFAULT_STORAGE, Run, RunError, find_run_files, read_run

PROG = "python -m reports check"
CONFIG_TABLE = "tool.boundbench.check"
EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class Selection:
    baseline: Run
    current: Run
    warnings: list[str] = field(default_factory=list)
    reference: Run | None = None


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


# -- command line -------------------------------------------------------------------


def _fraction(text: str) -> float:
    """'0.1', '10%' -> 0.1; a minimum effect must be in [0, 10)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.1 or 10%") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 0 and 10 (1000%)")
    return value


def _group_effect(text: str) -> tuple[str, float]:
    pattern, sep, value = text.rpartition("=")
    if not sep or not pattern.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PATTERN=EFFECT, e.g. 'io_sleep*=0.2'")
    return pattern.strip(), _fraction(value)


def _run_ref(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a run number, a run file or a folder")
    return text


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 1 and 10")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Compare a current run with a baseline, cell by cell.  Exit 0: no regression;"
            " 1: regression found; 2: bad input or usage."
        ),
        epilog=(
            "RUN is a run number as pytest-benchmark saves it (0003 or 3, looked up under"
            " PATHS), a run file, or a folder (its latest run).  Default: the latest run"
            " under PATHS against the run before it (from the same machine folder if there"
            " is one)."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"where numbered runs are looked up: files or folders (default: {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--baseline", "-b", type=_run_ref, metavar="RUN", help="the run to compare against"
    )
    parser.add_argument("--current", "-c", type=_run_ref, metavar="RUN", help="the run under test")
    parser.add_argument(
        "--reference",
        "-r",
        type=_run_ref,
        metavar="RUN",
        help="also compare the current run with this pinned run: catches a slowdown that"
        " creeps in by a few percent per run, which no comparison with the previous run sees",
    )
    parser.add_argument(
        "--any-machine",
        action="store_true",
        help="when picking the baseline, accept a run from another machine (by default"
        " only runs of the current run's machine and interpreter are paired)",
    )
    parser.add_argument(
        "--any-python",
        action="store_true",
        help="compare runs of different interpreters (Python version, implementation, or"
        " GIL state: a free-threaded build with the GIL off is another interpreter); by"
        " default the check refuses, also for runs named with --baseline/--current",
    )
    parser.add_argument(
        "--calibrate",
        nargs="+",
        metavar="RUN",
        type=_run_ref,
        help="instead of a check: the noise between these runs of unchanged code (2 or"
        " more; 4 or more recommended), per group family, and the minimum effects it"
        " suggests as a [tool.boundbench.check.min-effect-group] table",
    )
    parser.add_argument(
        "--margin",
        type=_margin,
        default=None,
        metavar="M",
        help="--calibrate: suggested minimum effect = M x the 95th percentile of the noise,"
        " and at least its maximum (default 1.5)",
    )
    parser.add_argument(
        "--mode",
        choices=(*MODES, "auto"),
        default="time",
        help="time: absolute time per call (default); speedup: speedup over the serial cell"
        " of the same run; efficiency: ideal / time within the same run (both survive a"
        " change of machine); auto: time on the same machine and interpreter, else speedup",
    )
    parser.add_argument(
        "--min-effect",
        type=_fraction,
        default=None,
        metavar="E",
        help="smallest change that counts, as 0.1 or 10%% (default: the config's, else"
        f" {DEFAULT_MIN_EFFECT:g})",
    )
    parser.add_argument(
        "--min-effect-group",
        type=_group_effect,
        action="append",
        default=[],
        metavar="PATTERN=E",
        help="minimum effect for cells whose group, group and model ('echo:* nonblocking')"
        " or fullname matches the glob PATTERN; repeatable, the first match wins (these"
        " before the config's): --min-effect-group 'io_sleep*=0.2'",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"TOML file with a [{CONFIG_TABLE}] table: min-effect = 0.1 and a"
        " min-effect-group table of PATTERN = E (default: ./pyproject.toml if it has one)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=_stats.DEFAULT_ALPHA,
        metavar="A",
        help="significance level of the one-sided Mann-Whitney U test"
        f" (default {_stats.DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--markdown",
        "--summary",
        dest="markdown",
        type=Path,
        metavar="FILE",
        help="also write the result as Markdown (e.g. for $GITHUB_STEP_SUMMARY)",
    )
    return parser


def _profile_table(table: dict[str, Any], profile: str | None, path: Path) -> dict[str, Any]:
    """The ``[tool.boundbench.check.profile.NAME]`` table for the run's profile, if any.

    Each profile sizes its cells and rounds differently, so each has its own noise: a
    quick run's 20 ms cells move far more than a standard run's.
    """
    profiles = table.get("profile", {})
    if not isinstance(profiles, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}.profile] must be a table of profiles")
    chosen = profiles.get(profile) if profile else None
    if chosen is None:
        return table
    if not isinstance(chosen, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}.profile.{profile}] must be a table")
    return chosen


def read_config(
    path: Path | None, profile: str | None = None
) -> tuple[float | None, list[tuple[str, float]]]:
    """The check's settings kept with the project: (min effect, [(pattern, effect)]).

    Thresholds calibrated on the project's own machines belong in one file that CI and
    people at a terminal both read, not in each workflow's flags.
    """
    explicit = path is not None
    path = path or Path("pyproject.toml")
    if not path.is_file():
        if explicit:
            raise InputError(f"{path}: no such config file")
        return None, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config: {exc}") from exc
    table: object = data
    for key in CONFIG_TABLE.split("."):
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}] must be a table")
    table = _profile_table(table, profile, path)
    known = {"min-effect", "min-effect-group", "shift-effect-group", "profile"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"{path}: [{CONFIG_TABLE}] has unknown key(s) {', '.join(unknown)}")
    try:
        effect = _fraction(str(table["min-effect"])) if "min-effect" in table else None
        groups = table.get("min-effect-group", {})
        if not isinstance(groups, dict):
            raise argparse.ArgumentTypeError("min-effect-group must be a table PATTERN = E")
        pairs = [(str(pattern), _fraction(str(value))) for pattern, value in groups.items()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"{path}: [{CONFIG_TABLE}]: {exc}") from exc
    return effect, pairs


def read_shift_config(path: Path | None, profile: str | None = None) -> list[tuple[str, float]]:
    """``[tool.boundbench.check.shift-effect-group]``: PATTERN = E for family/model shifts."""
    path = path or Path("pyproject.toml")
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config: {exc}") from exc
    table: object = data
    for key in CONFIG_TABLE.split("."):
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if isinstance(table, dict):
        table = _profile_table(table, profile, path).get("shift-effect-group", {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: shift-effect-group must be a table PATTERN = E")
    try:
        return [(str(pattern), _fraction(str(value))) for pattern, value in table.items()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"{path}: [{CONFIG_TABLE}.shift-effect-group]: {exc}") from exc


def run_profile(run: Run) -> str | None:
    """The profile a run was made with (``machine_info["boundbench"]["profile"]``)."""
    facts = run.machine_info.get("boundbench")
    profile = facts.get("profile") if isinstance(facts, dict) else None
    return profile if isinstance(profile, str) else None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.calibrate is not None:
        clash = [
            flag
            for flag, value in (
                ("--baseline", args.baseline),
                ("--current", args.current),
                ("--reference", args.reference),
            )
            if value
        ]
        if clash:
            parser.error(f"--calibrate takes its runs itself, not {', '.join(clash)}")
    elif args.margin is not None:
        parser.error("--margin only applies to --calibrate")
    return args


# -- choosing the two runs ----------------------------------------------------------


def _is_number(ref: str) -> bool:
    return ref.isdigit() and not Path(ref).exists()


def _latest(runs: list[Run]) -> Run:
    return runs[-1]


def _load(paths: Sequence[str | Path], why: str) -> list[Run]:
    """Runs under ``paths`` in order (datetime, number).

    Any unreadable file is an error: it might be the run that should have been picked
    (the latest, or the one before it), and picking another would pass silently.
    """
    files, problems = find_run_files(paths)
    if problems:
        hint = "" if paths else " (run the benchmarks with --benchmark-autosave, or give PATHS)"
        raise InputError(problems[0] + hint)
    runs: list[Run] = []
    for path in files:
        try:
            runs.append(read_run(path))
        except RunError as exc:
            raise InputError(f"{exc}; {why}") from None
    runs.sort(key=_order)
    return runs


def _order(run: Run) -> tuple[str, int, str]:
    return (run.datetime or "", run.number or 0, str(run.path))


def _by_path(ref: str, what: str) -> Run:
    path = Path(ref)
    if path.is_dir():
        runs = _load([path], f"needed to find the latest run for --{what}")
        return _latest(runs)
    if not path.exists():
        raise InputError(f"--{what} {ref}: no such run number, file or folder")
    try:
        return read_run(path)
    except RunError as exc:
        raise InputError(f"{what}: {exc}") from None


def _by_number(ref: str, what: str, paths: Sequence[str]) -> Run:
    number = int(ref)
    files, problems = find_run_files(paths)
    if problems:
        raise InputError(f"--{what} {ref}: {problems[0]}")
    wanted = [path for path in files if path.name[:5] == f"{number:04d}_"]
    where = ", ".join(paths) if paths else str(DEFAULT_STORAGE)
    if not wanted:
        found = sorted({path.name[:4] for path in files if path.name[:4].isdigit()})
        listing = f" (found: {', '.join(found)})" if found else ""
        raise InputError(f"--{what} {ref}: no run numbered {number:04d} under {where}{listing}")
    if len(wanted) > 1:
        raise InputError(
            f"--{what} {ref}: {len(wanted)} runs are numbered {number:04d} under {where}"
            f" ({', '.join(map(str, wanted))}); give the file instead"
        )
    try:
        return read_run(wanted[0])
    except RunError as exc:
        raise InputError(f"{what}: {exc}") from None


def _resolve(ref: str, what: str, paths: Sequence[str]) -> Run:
    if _is_number(ref):
        return _by_number(ref, what, paths)
    return _by_path(ref, what)


def _previous(
    current: Run, runs: list[Run], *, any_machine: bool = False, any_python: bool = False
) -> Run | None:
    """The run saved before ``current`` on its machine (unless ``any_machine``) and
    interpreter (unless ``any_python``), preferring its machine folder (as
    pytest-benchmark)."""
    others = [run for run in runs if run.path.resolve() != current.path.resolve()]
    earlier = [run for run in others if _order(run) < _order(current)]
    if not any_machine:
        earlier = [run for run in earlier if same_machine(run, current)]
    if not any_python:
        earlier = [run for run in earlier if same_interpreter(run, current)]
    same_folder = [r for r in earlier if r.path.parent == current.path.parent]
    pool = same_folder or earlier
    return pool[-1] if pool else None


def _missing_baseline(current: Run, runs: list[Run], where: str, args: argparse.Namespace) -> str:
    """Why no baseline was found, and which option would find one."""
    lead = f"missing baseline: no run saved before {current.path} under {where}"
    flags = [
        flag
        for flag, machine, python in (
            ("--any-machine", True, args.any_python),
            ("--any-python", args.any_machine, True),
            ("--any-machine --any-python", True, True),
        )
        if _previous(current, runs, any_machine=machine, any_python=python) is not None
    ]
    if not flags:
        return f"{lead} ({len(runs)} run(s) found; give --baseline RUN)"
    return (
        f"{lead} comes from its machine and interpreter ({environment_label(current)});"
        f" name one with --baseline RUN, or pass {flags[0]}"
    )


def _check_interpreters(first: Run, second: Run, what: str, any_python: bool) -> None:
    """Refuse to compare runs of two interpreters unless asked (``--any-python``).

    A free-threaded build, another Python version or implementation changes how the
    models behave: a difference between such runs is not a regression of the code.
    """
    if any_python or same_interpreter(first, second):
        return
    raise InputError(
        f"the {what} run and the current run come from different interpreters"
        f" ({interpreter_label(first)} vs {interpreter_label(second)}): their figures say"
        " how the interpreters differ, not whether the code regressed; pass --any-python"
        " to compare them anyway (with --mode speedup)"
    )


def select(args: argparse.Namespace) -> Selection:
    paths: list[str] = list(args.paths)
    where = ", ".join(paths) if paths else str(DEFAULT_STORAGE)
    warnings: list[str] = []
    current = _resolve(args.current, "current", paths) if args.current else None
    baseline = _resolve(args.baseline, "baseline", paths) if args.baseline else None
    if current is None or baseline is None:
        runs = _load(
            paths, "a corrupt file could hide the run to compare: remove it or name both runs"
        )
        if current is None:
            pool = [
                r for r in runs if baseline is None or r.path.resolve() != baseline.path.resolve()
            ]
            if not pool:
                raise InputError(
                    f"no current run: {where} holds no run other than the baseline"
                    " (run the benchmarks with --benchmark-autosave, or give --current)"
                )
            current = _latest(pool)
        if baseline is None:
            baseline = _previous(
                current, runs, any_machine=args.any_machine, any_python=args.any_python
            )
            if baseline is None:
                raise InputError(_missing_baseline(current, runs, where, args))
    if baseline.path.resolve() == current.path.resolve():
        raise InputError(f"the baseline and the current run are the same file: {current.path}")
    _check_interpreters(baseline, current, "baseline", args.any_python)
    reference = _resolve(args.reference, "reference", paths) if args.reference else None
    if reference is not None and reference.path.resolve() == current.path.resolve():
        raise InputError(f"the reference and the current run are the same file: {current.path}")
    if reference is not None:
        _check_interpreters(reference, current, "reference", args.any_python)
    for run, what in ((baseline, "baseline"), (current, "current")):
        warnings.extend(f"{what} {run.path}: skipped {line}" for line in run.skipped)
    return Selection(baseline, current, warnings, reference)


# -- rendering ----------------------------------------------------------------------


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


def _effects(settings: Settings) -> str:
    text = f"minimum effect {settings.min_effect:.0%}"
    if settings.group_effects:
        text += " (" + ", ".join(f"{p}: {e:.0%}" for p, e in settings.group_effects) + ")"
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


def _describe(selection: Selection, comparison: Comparison, mode_note: str | None) -> list[str]:
    settings = comparison.settings
    rows = comparison.rows
    tested = sum(row.method == MWU for row in rows)
    lines = [
        f"baseline: {_run_label(selection.baseline)}",
        f"current:  {_run_label(selection.current)}",
        f"mode: {MODE_TITLES[settings.mode]}" + (f" ({mode_note})" if mode_note else ""),
    ]
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


def _warnings(selection: Selection, comparison: Comparison) -> list[str]:
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
            f"  over {_cells(len(shift.keys))}, min effect {shift.min_effect:.0%}  {verdict}"
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
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join(("---", "---:", "---:", "---:", "---", "---")) + "|")
    for cells in _table(outcome, markdown=True):
        cells[0] = f"`{cells[0]}`"
        out.append("| " + " | ".join(_md(cell) for cell in cells) + " |")
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


# -- main ---------------------------------------------------------------------------


def _mode(args: argparse.Namespace, baseline: Run, current: Run) -> tuple[str, str | None]:
    if args.mode != "auto":
        return args.mode, None
    machine, interpreter = machine_differences(baseline, current)
    facts = (baseline.machine_info.get("boundbench"), current.machine_info.get("boundbench"))
    unknown = not all(facts)
    if machine or interpreter or unknown:
        return "speedup", "auto: the runs come from different machines or interpreters"
    return "time", "auto: same machine and interpreter"


def run_check(args: argparse.Namespace) -> Outcome:
    selection = select(args)
    outcome = _compare_pair(args, selection)
    if selection.reference is not None:
        pinned = Selection(selection.reference, selection.current, [])
        outcome.reference = _compare_pair(args, pinned)
    return outcome


def _compare_pair(args: argparse.Namespace, selection: Selection) -> Outcome:
    mode, note = _mode(args, selection.baseline, selection.current)
    profile = run_profile(selection.current)
    config_effect, config_groups = read_config(args.config, profile)
    min_effect = args.min_effect
    if min_effect is None:
        min_effect = DEFAULT_MIN_EFFECT if config_effect is None else config_effect
    settings = Settings(
        mode=mode,
        alpha=args.alpha,
        min_effect=min_effect,
        group_effects=(*args.min_effect_group, *config_groups),
        shift_effects=tuple(read_shift_config(args.config, profile)),
    )
    comparison = compare_runs(selection.baseline, selection.current, settings)
    header = _describe(selection, comparison, note)
    return Outcome(selection, comparison, header, _warnings(selection, comparison))


def _write(path: Path, text: str) -> str | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def calibration_runs(args: argparse.Namespace) -> list[Run]:
    """The runs named by --calibrate: numbers and files, and every run in a folder."""
    found: dict[Path, Run] = {}
    for ref in args.calibrate:
        path = Path(ref)
        if path.is_dir():
            runs = _load([path], "every run in a folder given to --calibrate is used")
        else:
            runs = [_resolve(ref, "calibrate", list(args.paths))]
        for run in runs:
            found.setdefault(run.path.resolve(), run)
    return sorted(found.values(), key=_order)


def run_calibrate(args: argparse.Namespace) -> str:
    runs = calibration_runs(args)
    if len(runs) < 2:
        raise InputError(
            f"--calibrate needs at least 2 runs of unchanged code, got {len(runs)}"
            f" ({_calibrate.RECOMMENDED_RUNS} or more recommended)"
        )
    warnings = _calibrate.check_environments(
        runs, any_machine=args.any_machine, any_python=args.any_python
    )
    mode = args.mode
    if mode == "auto":
        mode = "speedup" if warnings else "time"
    margin = _calibrate.DEFAULT_MARGIN if args.margin is None else args.margin
    noise = _calibrate.calibrate(runs, mode=mode, margin=margin)
    for run in runs:
        busy = _figures.host_load_warning(run.machine_info)
        if busy:
            warnings.append(f"{run.path}: {busy}")
    shifts = _calibrate.shift_noise(runs, mode=mode, margin=margin)
    profiles = {run_profile(run) for run in runs}
    if len(profiles) > 1:
        warnings.append(f"the runs mix profiles ({', '.join(sorted(map(str, profiles)))})")
    profile = profiles.pop() if len(profiles) == 1 else None
    return _calibrate.render(
        runs, noise, mode=mode, margin=margin, warnings=warnings, shifts=shifts, profile=profile
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if args.calibrate is not None:
        try:
            text = run_calibrate(args)
        except InputError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        sys.stdout.write(text)
        if args.markdown:
            problem = _write(args.markdown, f"```toml\n{text}```\n")
            if problem:
                print(f"{PROG}: error: {problem}", file=sys.stderr)
                return EXIT_BAD_INPUT
        return EXIT_OK
    try:
        outcome = run_check(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        if args.markdown:
            _write(args.markdown, render_error(str(exc)))
        return EXIT_BAD_INPUT
    text = render_text(outcome)
    markdown = render_markdown(outcome)
    if outcome.reference is not None:
        text += "\n" + render_text(outcome.reference, title="against the reference run")
        markdown += "\n" + render_markdown(outcome.reference, title="against the reference run")
    sys.stdout.write(text)
    if args.markdown:
        problem = _write(args.markdown, markdown)
        if problem:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
