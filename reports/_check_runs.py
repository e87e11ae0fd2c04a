"""Choosing the runs the check compares: the current run, its baseline, a pinned reference.

A run is named by number (looked up under PATHS), by file, or by folder (its latest
run); by default the latest run is compared with the one saved before it on the same
machine and interpreter.  Any unreadable file is an error, never a silent pick of
another run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _store
from ._compare import (
    InputError,
    environment_label,
    interpreter_label,
    same_interpreter,
    same_machine,
)
from ._runs import DEFAULT_STORAGE, Run, RunError, find_run_files, read_run


@dataclass
class Selection:
    """The runs to compare, and what choosing them found worth a warning."""

    baseline: Run
    current: Run
    warnings: list[str] = field(default_factory=list)
    reference: Run | None = None


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
    # A count run against counts made the same way, a timed run against a timed one.
    earlier = [run for run in earlier if _store.pairing_problem(run, current) is None]
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


def _check_kinds(first: Run, second: Run) -> None:
    problem = _store.pairing_problem(first, second)
    if problem:
        raise InputError(problem)


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
    _check_kinds(baseline, current)
    reference = _resolve(args.reference, "reference", paths) if args.reference else None
    if reference is not None and reference.path.resolve() == current.path.resolve():
        raise InputError(f"the reference and the current run are the same file: {current.path}")
    if reference is not None:
        _check_interpreters(reference, current, "reference", args.any_python)
        _check_kinds(reference, current)
    for run, what in ((baseline, "baseline"), (current, "current")):
        warnings.extend(f"{what} {run.path}: skipped {line}" for line in run.skipped)
    return Selection(baseline, current, warnings, reference)


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
