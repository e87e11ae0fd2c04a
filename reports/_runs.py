"""Finding and reading saved pytest-benchmark runs, with one-line complaints.

Everything in ``reports/`` reads runs through here: a run is one pytest-benchmark
JSON file; a benchmark in it is usable by boundbench when its ``extra_info`` names
at least the workload and the model.  Inputs are only ever read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STORAGE = Path(".benchmarks")
REQUIRED_EXTRA = ("workload", "model")
# pytest-benchmark names saved runs NNNN_<name>.json
_RUN_NUMBER = re.compile(r"^(\d{4})_")


class RunError(ValueError):
    """A file that cannot be used as a run; the message names the file and the problem."""


@dataclass
class Run:
    path: Path
    number: int | None
    datetime: str | None
    commit: str | None
    machine_info: dict[str, Any]
    benchmarks: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.path.stem

    @property
    def machine(self) -> str:
        info = self.machine_info
        return str(info.get("node") or info.get("machine") or "unknown")


def find_run_files(paths: Iterable[str | Path] | None = None) -> tuple[list[Path], list[str]]:
    """Expand files and folders into run files; returns (files, problems)."""
    problems: list[str] = []
    files: list[Path] = []
    for raw in list(paths or []) or [DEFAULT_STORAGE]:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("*.json"))
            if not found:
                problems.append(f"{path}: no saved runs (*.json) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    # One file given twice is read once.
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


def read_run(path: Path) -> Run:
    """Parse one saved run; raise RunError with a one-line message if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    if not text.strip():
        raise RunError(f"{path}: empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"{path}: not valid JSON (truncated or corrupt?) at line {exc.lineno}: {exc.msg}"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise RunError(f"{path}: not a pytest-benchmark run (no 'benchmarks' list)")
    usable: list[dict[str, Any]] = []
    skipped: list[str] = []
    for bench in data["benchmarks"]:
        name = bench.get("fullname") or bench.get("name") or "?"
        extra = bench.get("extra_info") or {}
        missing = [key for key in REQUIRED_EXTRA if key not in extra]
        if missing:
            skipped.append(f"{name}: no boundbench extra_info ({', '.join(missing)} missing)")
        elif not isinstance(bench.get("stats"), dict) or "median" not in bench["stats"]:
            skipped.append(f"{name}: no stats")
        else:
            usable.append(bench)
    if not usable:
        why = "no benchmark has boundbench extra_info" if data["benchmarks"] else "no benchmarks"
        raise RunError(f"{path}: {why} (is it a boundbench run?)")
    match = _RUN_NUMBER.match(path.name)
    commit = (data.get("commit_info") or {}).get("id")
    return Run(
        path=path,
        number=int(match.group(1)) if match else None,
        datetime=data.get("datetime"),
        commit=commit,
        machine_info=data.get("machine_info") or {},
        benchmarks=usable,
        skipped=skipped,
    )


def load_runs(paths: Iterable[str | Path] | None = None) -> tuple[list[Run], list[str]]:
    """Every usable run under ``paths`` (default ``.benchmarks/``) and a problem per line.

    Runs are ordered by datetime, then number.  Partly usable runs are kept, with a
    problem line per skipped benchmark.
    """
    files, problems = find_run_files(paths)
    runs: list[Run] = []
    for path in files:
        try:
            run = read_run(path)
        except RunError as exc:
            problems.append(str(exc))
            continue
        problems.extend(f"{path}: skipped {line}" for line in run.skipped)
        runs.append(run)
    runs.sort(key=lambda r: (r.datetime or "", r.number or 0, str(r.path)))
    return runs, problems


def iter_benchmarks(runs: Iterable[Run]) -> Iterator[tuple[Run, dict[str, Any]]]:
    for run in runs:
        for bench in run.benchmarks:
            yield run, bench
