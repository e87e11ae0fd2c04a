"""``python -m reports check``: is the current run slower than the baseline?

parse_args() -> select() -> compare -> render -> main().  Exit 0: no regression;
1: at least one regression; 2: bad input or usage (one line on stderr, never a
traceback, never a pass on nothing).  Inputs are only read.

A cell regresses when it is worse by at least the minimum effect *and* the rounds say
so: a one-sided Mann-Whitney U test at alpha 0.01.  The minimum effects per group family
come from ``thresholds/time.json`` (the store, ``python -m reports thresholds --kind
time RUN ...`` from unchanged runs of the same profile; count runs: ``instructions.json``),
after ``--min-effect-group`` and any table a user sets on purpose in
``[tool.boundbench.check]``; else 10 %.  Cross-run wall time on a shared host sees only
large changes: the output says so and names the A/B session (``python -m reports ab``)
for small ones.  With too few rounds for the test to ever reach alpha (3+3 rounds cannot
go below p = 0.05), or with summary statistics only, the threshold alone decides and
the output says so.  See docs/ci.md.

``--reference RUN`` also compares the current run with a pinned run (a creeping
slowdown never trips the pairwise check against the previous run); ``--calibrate RUN
RUN ...`` measures the noise between runs of unchanged code and prints the minimum
effects it suggests.  Runs are paired only within one machine and interpreter: the
baseline is picked from the current run's machine unless ``--any-machine`` (or named
explicitly), and runs of two interpreters (version, implementation, GIL state) are never
compared unless ``--any-python``.

This module is the command line and the flow; the runs are chosen in ``_check_runs``,
the settings a user keeps with the project read in ``_check_config``, the cells compared in
``_compare`` and the verdict written in ``_check_output``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import _calibrate, _figures, _stats, _store
from ._check_config import CONFIG_TABLE, fraction, read_config, read_shift_config, run_profile
from ._check_output import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    Outcome,
    describe,
    render_error,
    render_markdown,
    render_text,
    warnings_of,
)
from ._check_runs import Selection, calibration_runs, select
from ._compare import (
    COUNTS,
    DEFAULT_MIN_EFFECT,
    MODES,
    InputError,
    Settings,
    compare_runs,
    machine_differences,
)
from ._runs import DEFAULT_STORAGE, Run, RunError, find_run_files, read_run

PROG = "python -m reports check"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


# -- command line -------------------------------------------------------------------


def _group_effect(text: str) -> tuple[str, float]:
    pattern, sep, value = text.rpartition("=")
    if not sep or not pattern.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PATTERN=EFFECT, e.g. 'io_sleep*=0.2'")
    return pattern.strip(), fraction(value)


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
        " suggests (the check reads stored ones: python -m reports thresholds --kind time"
        " RUN ... writes thresholds/time.json)",
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
        type=fraction,
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
        help=f"TOML file with a [{CONFIG_TABLE}] table of settings set on purpose:"
        " min-effect = 0.1, and tables of PATTERN = E that come before the stored"
        " thresholds (default: ./pyproject.toml if it has one)",
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


def _skip_sessions(args: argparse.Namespace) -> str | None:
    """When the check picks the current run itself and the latest is an A/B session (judged
    by ``python -m reports ab``, never paired), it takes the latest other run: a warning."""
    if args.current is not None:
        return None
    files, problems = find_run_files(args.paths)
    try:
        runs = [read_run(path) for path in files]
    except RunError:
        return None  # select() says what is unreadable
    if problems or not runs:
        return None
    runs.sort(key=lambda run: (run.datetime or "", run.number or 0, str(run.path)))
    if _store.run_kind(runs[-1]) != "ab":
        return None
    others = [run for run in runs if _store.run_kind(run) != "ab"]
    if args.baseline is not None:
        named = Path(args.baseline).resolve()
        number = int(args.baseline) if args.baseline.isdigit() else None
        others = [
            run
            for run in others
            if run.path.resolve() != named and (number is None or run.number != number)
        ]
    if not others:
        raise InputError(
            f"the latest run {runs[-1].path} is an A/B session and there is no other run"
            f" to check: judge it with python -m reports ab {runs[-1].path}"
        )
    args.current = str(others[-1].path)
    return (
        f"the latest run {runs[-1].path} is an A/B session, judged on its own pairs by"
        f" python -m reports ab; checked the latest other run, {others[-1].path}"
    )


def run_check(args: argparse.Namespace) -> Outcome:
    skipped = _skip_sessions(args)
    selection = select(args)
    if skipped:
        selection.warnings.insert(0, skipped)
    outcome = _compare_pair(args, selection)
    if selection.reference is not None:
        pinned = Selection(selection.reference, selection.current, [])
        outcome.reference = _compare_pair(args, pinned)
    return outcome


def _count_settings(args: argparse.Namespace) -> tuple[Settings, str]:
    """Two count runs: their instructions, judged by the stored count thresholds (the
    project's table of timed thresholds is for wall time and never applies)."""
    store = _store.load("instructions")
    if store is None:
        floor = _store.FLOOR["instructions"] * 5
        effects: tuple[tuple[str, float], ...] = ()
        shift_effects: tuple[tuple[str, float], ...] = ()
        default = floor if args.min_effect is None else args.min_effect
        said = (
            f"no stored count thresholds (thresholds/instructions.json): {default:.1%} for"
            f" every cell; make them with {_store.COMMAND.format(kind='instructions')}"
        )
    else:
        effects = tuple(store.families.items())
        shift_effects = tuple(store.shifts.items())
        default = store.default if args.min_effect is None else args.min_effect
        said = store.describe()
    settings = Settings(
        mode=COUNTS,
        alpha=args.alpha,
        min_effect=default,
        group_effects=(*args.min_effect_group, *effects),
        shift_effects=shift_effects,
        shift_effect=default,
    )
    return settings, said


def _compare_pair(args: argparse.Namespace, selection: Selection) -> Outcome:
    if _store.run_kind(selection.current) == "instructions":
        settings, counted = _count_settings(args)
        comparison = compare_runs(selection.baseline, selection.current, settings)
        header = describe(selection, comparison, counted)
        return Outcome(selection, comparison, header, warnings_of(selection, comparison))
    mode, note = _mode(args, selection.baseline, selection.current)
    profile = run_profile(selection.current)
    config_effect, config_groups = read_config(args.config, profile)
    store, stored = _time_store(profile)
    min_effect = args.min_effect
    if min_effect is None:
        min_effect = config_effect
    if min_effect is None:
        min_effect = DEFAULT_MIN_EFFECT if store is None else store.default
    settings = Settings(
        mode=mode,
        alpha=args.alpha,
        min_effect=min_effect,
        group_effects=(
            *args.min_effect_group,
            *config_groups,
            *(store.families.items() if store else ()),
        ),
        shift_effects=(
            *read_shift_config(args.config, profile),
            *(store.shifts.items() if store else ()),
        ),
    )
    comparison = compare_runs(selection.baseline, selection.current, settings)
    header = describe(selection, comparison, note, [f"thresholds: {stored}", CROSS_RUN])
    return Outcome(selection, comparison, header, warnings_of(selection, comparison))


CROSS_RUN = (
    "sees: only large changes. Runs minutes or hours apart on a shared host move between"
    " them by more than a small regression; for a small one, measure both sides in one A/B"
    " session (pytest benchmarks/ --ab-base TREE --benchmark-autosave) and judge it with"
    " python -m reports ab"
)


def _time_store(profile: str | None) -> tuple[_store.Store | None, str]:
    """The stored time thresholds that apply to a run of ``profile``, and where the
    check's thresholds come from, in words."""
    make = _store.COMMAND.format(kind="time")
    store = _store.load("time")
    if store is None:
        return None, (
            "no stored time thresholds (thresholds/time.json): the minimum effects below;"
            f" measure them from unchanged runs with {make}"
        )
    made = str(store.provenance.get("profile") or "")
    if profile and made and profile not in made.split(","):
        return None, (
            f"{store.path.name} was measured on {made} runs and this is a {profile} run, so"
            f" it does not apply: the minimum effects below; measure {profile} ones with {make}"
        )
    return store, store.describe()


def _write(path: Path, text: str) -> str | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


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
    text = _calibrate.render(
        runs, noise, mode=mode, margin=margin, warnings=warnings, shifts=shifts, profile=profile
    )
    return text + (
        "\n# Rather than pasting: the check reads thresholds stored as data, with their"
        "\n# provenance, made by one command from the same runs:"
        f"\n#   {_store.COMMAND.format(kind='time')}\n"
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
