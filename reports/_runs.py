"""Finding and reading saved pytest-benchmark runs, with one-line complaints.

Everything in ``reports/`` reads runs through here: a run is one pytest-benchmark
JSON file; a benchmark in it is usable by boundbench when its ``extra_info`` names
at least the workload and the model.  Inputs are only ever read.

Runs saved before a key changed meaning stay readable: ``read_run`` brings every run
to the current schema (``SCHEMA_VERSION``), so nothing downstream knows about old ones.

- schema 1 (no ``machine_info["boundbench"]["schema_version"]``): network (echo) cells
  put the load client's process count in ``workers``; read as ``client_processes``,
  with ``workers`` = connections, as schema 2 writes them.
- schema 2: ``schema_version``, ``libraries`` and ``cpu_count`` in
  ``machine_info["boundbench"]``, ``load_avg_start`` / ``load_avg_end`` in the run's
  top-level ``boundbench_host`` (merged into the facts when read); echo cells carry
  ``client_processes``; capped pools carry ``workers_cap``.
- schema 3: ``io_socket`` cells carry ``connect`` (``keep`` or ``fresh``) in
  ``params``, as the prefix of their id (``test_io_socket[fresh-threads-100-100]``) and
  in their group (``io_socket:fresh:tasks=100``).  Older io_socket cells opened a
  connection per task: read as ``fresh`` cells, so a new run's fresh cells match them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STORAGE = Path(".benchmarks")
REQUIRED_EXTRA = ("workload", "model")
SCHEMA_VERSION = 3
# pytest-benchmark names saved runs NNNN_<name>.json
_RUN_NUMBER = re.compile(r"^(\d{4})_")
# The bracketed id of an io_socket test that does not name its connect mode yet
_IO_SOCKET_ID = re.compile(r"((?:^|::)test_io_socket\[)(?!keep-|fresh-)")


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
    schema_version: int = SCHEMA_VERSION
    # facts about the run worth a line (an unknown newer schema, ...)
    notes: list[str] = field(default_factory=list)

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
    machine_info = data.get("machine_info") or {}
    if not isinstance(machine_info, dict):
        raise RunError(f"{path}: machine_info is not an object (corrupt run?)")
    host = data.get("boundbench_host")
    facts = machine_info.get("boundbench")
    if isinstance(host, dict) and isinstance(facts, dict):
        # Run-level facts that change every run live beside machine_info (pytest-benchmark
        # warns when machine_info differs); the readers find them with the other facts.
        machine_info = {**machine_info, "boundbench": {**host, **facts}}
    version = schema_version(machine_info, path)
    notes = []
    if version > SCHEMA_VERSION:
        notes.append(
            f"{path}: schema_version {version} is newer than this report knows"
            f" ({SCHEMA_VERSION}); read as {SCHEMA_VERSION}"
        )
    return Run(
        path=path,
        number=int(match.group(1)) if match else None,
        datetime=data.get("datetime"),
        commit=commit,
        machine_info=machine_info,
        benchmarks=[upgrade_benchmark(bench, version) for bench in usable],
        skipped=skipped,
        schema_version=version,
        notes=notes,
    )


def schema_version(machine_info: dict[str, Any], path: Path | str = "run") -> int:
    """The run's schema: ``machine_info["boundbench"]["schema_version"]``, 1 when absent."""
    facts = machine_info.get("boundbench")
    if not isinstance(facts, dict) or "schema_version" not in facts:
        return 1
    value = facts["schema_version"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RunError(f"{path}: schema_version is {value!r}, not a positive integer")
    return value


def upgrade_benchmark(bench: dict[str, Any], version: int) -> dict[str, Any]:
    """One benchmark as the current schema writes it (a copy when anything changes)."""
    if version < 2:
        bench = _upgrade_echo(bench)
    if version < 3:
        bench = _upgrade_io_socket(bench)
    return bench


def _upgrade_echo(bench: dict[str, Any]) -> dict[str, Any]:
    extra = bench.get("extra_info") or {}
    if not _is_echo(extra) or "client_processes" in extra:
        return bench
    # Schema 1: an echo cell's `workers` was the load client's process count.
    upgraded = dict(extra)
    upgraded["client_processes"] = extra.get("workers")
    connections = extra.get("connections", extra.get("tasks"))
    if connections is not None:
        upgraded["workers"] = connections
    return {**bench, "extra_info": upgraded}


def _upgrade_io_socket(bench: dict[str, Any]) -> dict[str, Any]:
    extra = bench.get("extra_info") or {}
    params = extra.get("params")
    if extra.get("workload") != "io_socket" or not isinstance(params, dict) or "connect" in params:
        return bench
    # Before schema 3 every io_socket task opened its own connection: a `fresh` cell.
    upgraded = {**bench, "extra_info": {**extra, "params": {**params, "connect": "fresh"}}}
    for key in ("fullname", "name"):
        if isinstance(bench.get(key), str):
            upgraded[key] = _IO_SOCKET_ID.sub(r"\1fresh-", bench[key], count=1)
    group = bench.get("group")
    if isinstance(group, str) and group.startswith("io_socket:tasks="):
        upgraded["group"] = "io_socket:fresh:" + group.removeprefix("io_socket:")
    return upgraded


def _is_echo(extra: dict[str, Any]) -> bool:
    return extra.get("bound") == "net" or extra.get("workload") == "echo"


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
        problems.extend(run.notes)
        runs.append(run)
    runs.sort(key=lambda r: (r.datetime or "", r.number or 0, str(r.path)))
    return runs, problems
