"""Runs of every schema of the saved results stay readable by the report and the check.

``tests/fixtures/schema/`` keeps one small run per schema (``python -m
tests._report_fixtures schema`` rewrites them): schema 1, before ``schema_version``,
whose echo cells put the load client's process count in ``workers``; schema 2, with
``client_processes``, library versions, load averages and ``workers_cap``.  Schema 3
names io_socket's connect mode; its tests build old and new io_socket cells here.
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
from pathlib import Path
from typing import Any

import pytest

from reports._frame import build_frame
from reports._runs import SCHEMA_VERSION, RunError, load_runs, read_run, upgrade_benchmark
from reports.check import main as check_main
from reports.report import main as report_main
from tests._report_fixtures import SCHEMA_FIXTURES, newer_cells, schema_run, write

SCHEMA1 = SCHEMA_FIXTURES / "schema1" / "0001_schema1.json"
SCHEMA2 = SCHEMA_FIXTURES / "schema2" / "0002_schema2.json"


@pytest.mark.parametrize(("path", "version"), [(SCHEMA1, 1), (SCHEMA2, 2)])
def test_every_schema_reads_as_the_current_one(path: Path, version: int) -> None:
    run = read_run(path)
    assert run.schema_version == version
    assert SCHEMA_VERSION == 3
    frame = build_frame([run])
    echo = frame[frame["bound"] == "net"]
    assert not echo.empty
    # workers is the connections in both; the client's processes have their own column
    assert (echo["workers"].astype(float) == echo["connections"]).all()
    assert set(echo["client_processes"]) == {2.0}
    cpu = frame[frame["workload"] == "cpu_loop"]
    assert cpu["efficiency"].notna().all()


def test_the_fixtures_are_what_the_schemas_wrote() -> None:
    # The committed files are the generator's output (regenerate, don't hand-edit).
    import json

    for version, path in ((1, SCHEMA1), (2, SCHEMA2)):
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(
            json.dumps(schema_run(version))
        )


def test_upgrading_leaves_the_input_alone() -> None:
    bench = {"extra_info": {"bound": "net", "workload": "echo", "workers": 4, "tasks": 16}}
    upgraded = upgrade_benchmark(bench, 1)
    assert upgraded["extra_info"]["workers"] == 16
    assert upgraded["extra_info"]["client_processes"] == 4
    assert bench["extra_info"]["workers"] == 4
    assert upgrade_benchmark(bench, 2) is bench


def test_a_bad_or_newer_schema_version(tmp_path: Path) -> None:
    document = schema_run(2)
    document["machine_info"]["boundbench"]["schema_version"] = "two"
    with pytest.raises(RunError, match="schema_version is 'two'"):
        read_run(write(tmp_path / "bad.json", document))
    document["machine_info"]["boundbench"]["schema_version"] = 4
    runs, problems = load_runs([write(tmp_path / "new.json", document)])
    assert len(runs) == 1
    assert any("schema_version 4 is newer" in line for line in problems)


def test_check_compares_an_old_baseline_with_a_new_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = check_main(["--baseline", str(SCHEMA1), "--current", str(SCHEMA2)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "no cells in common" not in err
    assert "only in the baseline" not in out
    assert "new cell(s)" not in out


def io_socket_cell(connect: str | None = None, seed: int = 0) -> dict[str, Any]:
    """io_socket's threads cell of 100 tasks as the suite names it; no connect: before 3."""
    (bench,) = (
        b
        for b in newer_cells(random.Random(seed))
        if b["extra_info"]["workload"] == "io_socket" and b["extra_info"]["model"] == "threads"
    )
    mode = f"{connect}-" if connect else ""
    bench["name"] = f"test_io_socket[{mode}threads-100-100]"
    bench["fullname"] = f"benchmarks/test_io_socket.py::{bench['name']}"
    bench["group"] = f"io_socket:{connect}:tasks=100" if connect else "io_socket:tasks=100"
    params = {"k": 5, "size": 1024, "delay": 0.005}
    bench["extra_info"]["params"] = {**params, "connect": connect} if connect else params
    return bench


def with_cells(version: int, *cells: dict[str, Any]) -> dict[str, Any]:
    document = schema_run(version)
    document["benchmarks"] += cells
    return document


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_io_socket_cell_is_read_as_fresh(tmp_path: Path, version: int) -> None:
    document = with_cells(version, io_socket_cell())
    run = read_run(write(tmp_path / "old.json", document))
    (bench,) = (b for b in run.benchmarks if b["extra_info"]["workload"] == "io_socket")
    params = {"k": 5, "size": 1024, "delay": 0.005, "connect": "fresh"}
    assert bench["extra_info"]["params"] == params
    assert bench["name"] == "test_io_socket[fresh-threads-100-100]"
    assert bench["fullname"] == "benchmarks/test_io_socket.py::" + bench["name"]
    assert bench["group"] == "io_socket:fresh:tasks=100"
    old = io_socket_cell()
    assert upgrade_benchmark(old, version) != old
    assert old == io_socket_cell(), "the input is left alone"


def test_a_schema3_runs_io_socket_cells_are_left_alone(tmp_path: Path) -> None:
    cells = [io_socket_cell("keep"), io_socket_cell("fresh")]
    document = with_cells(3, *copy.deepcopy(cells))
    runs, problems = load_runs([write(tmp_path / "new.json", document)])
    (run,) = runs
    assert run.schema_version == 3
    assert not any("newer" in line for line in problems), problems
    read = [b for b in run.benchmarks if b["extra_info"]["workload"] == "io_socket"]
    assert read == cells
    # a cell that names its mode already is not renamed, even in an older run
    assert all(upgrade_benchmark(bench, 2) is bench for bench in cells)


def test_only_io_socket_cells_named_by_the_suite_are_renamed(tmp_path: Path) -> None:
    # A user's test of the io_socket workload keeps its id; its params still gain connect.
    own = io_socket_cell()
    own["name"] = "test_my_socket[threads-100-100]"
    own["fullname"] = "benchmarks/test_mine.py::test_my_socket[threads-100-100]"
    own["group"] = "mine"
    document = with_cells(2, own)
    run = read_run(write(tmp_path / "old.json", document))
    others = [b for b in document["benchmarks"] if b["extra_info"]["workload"] != "io_socket"]
    assert [b for b in run.benchmarks if b["extra_info"]["workload"] != "io_socket"] == others
    assert all(upgrade_benchmark(bench, 2) is bench for bench in others)
    (mine,) = (b for b in run.benchmarks if b["extra_info"]["workload"] == "io_socket")
    assert mine["extra_info"]["params"]["connect"] == "fresh"
    for key in ("name", "fullname", "group"):
        assert mine[key] == own[key]


def test_check_matches_an_old_io_socket_cell_with_a_new_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    old = write(tmp_path / "0001_old.json", with_cells(2, io_socket_cell()))
    new = write(tmp_path / "0002_new.json", with_cells(3, io_socket_cell("fresh")))
    code = check_main(["--baseline", str(old), "--current", str(new)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "only in the baseline" not in out
    assert "new cell(s)" not in out
    rows = [line for line in out.splitlines() if line.startswith("test_io_socket[")]
    assert [row.split()[0] for row in rows] == ["test_io_socket[fresh-threads-100-100]"]


@pytest.mark.slow
def test_report_over_both_schemas_warns_of_the_busy_host_and_the_cap(tmp_path: Path) -> None:
    busy = schema_run(2, seed=12)
    # Where the suite writes it: beside machine_info, which must not change run to run.
    busy["machine_info"]["boundbench"].pop("load_avg_start", None)
    busy["machine_info"]["boundbench"].pop("load_avg_end", None)
    busy["boundbench_host"] = {"load_avg_start": [1.5, 1.0, 0.8], "load_avg_end": None}
    busy["datetime"] = "2025-03-01T09:00:00.000001+00:00"
    busy_path = write(tmp_path / "runs" / "0003_busy.json", busy)
    out = tmp_path / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = report_main([str(SCHEMA1), str(SCHEMA2), str(busy_path), "--out", str(out)])
    assert code == 0, err.getvalue()
    page = (out / "index.html").read_text(encoding="utf-8")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    warning = "host busy: load average 1.50 before the run started"
    assert warning in page
    assert warning in summary
    assert warning in err.getvalue()
    assert "run 0002_schema2: host busy" not in page
    assert "the harness caps this pool at 2 workers for 4 tasks" in page
    assert "at most 50% efficiency" in page


@pytest.mark.slow
def test_many_unstable_cells_are_counted_on_the_terminal_and_listed_on_the_page(
    tmp_path: Path,
) -> None:
    document = schema_run(2)
    for index, bench in enumerate(document["benchmarks"]):
        bench["stats"]["iqr"] = (0.2 + index / 100) * bench["stats"]["median"]
    shaky = len(document["benchmarks"])
    assert shaky > 5
    path = write(tmp_path / "runs" / "0001_shaky.json", document)
    out = tmp_path / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert report_main([str(path), "--out", str(out), "--quiet"]) == 0
    lines = [line for line in err.getvalue().splitlines() if "unstable" in line]
    assert len(lines) == 1, lines
    assert f"{shaky} cells are unstable" in lines[0]
    assert f"IQR {0.2 + (shaky - 1) / 100:.0%} of its median" in lines[0], "the worst is named"
    summary = (out / "summary.md").read_text(encoding="utf-8")
    # Every one in one short table after the findings (issue 23), the run named once.
    rows = unstable_rows(summary)
    assert len(rows) == shaky
    assert summary.index("### Unstable cells") > summary.index("- **Speedup over serial**")
    assert summary.count("0001_shaky") == 2  # the headline table's heading and the lead


def unstable_rows(summary: str) -> list[str]:
    """The rows of summary.md's unstable-cells table."""
    section = summary.split("### Unstable cells (")[1].split("###")[0]
    return [line for line in section.splitlines() if line.startswith("| ")][1:]


@pytest.mark.slow
def test_unstable_cells_are_named_in_page_and_summary(tmp_path: Path) -> None:
    document = schema_run(2)
    shaky = next(b for b in document["benchmarks"] if b["extra_info"]["model"] == "threads")
    shaky["stats"]["iqr"] = 0.3 * shaky["stats"]["median"]
    path = write(tmp_path / "runs" / "0001_shaky.json", document)
    out = tmp_path / "out"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert report_main([str(path), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    # One row naming the cell with its IQR ÷ median and rounds, on the page and in the summary.
    [row] = unstable_rows(summary)
    assert " threads×" in row
    assert "| 30% |" in row
    assert page.count('<h2 id="unstable">Unstable cells (1)</h2>') == 1
    assert '<td class="num">30%</td>' in page
    assert "⚠ unstable" in page


@pytest.mark.slow
def test_cells_with_void_rounds_are_named_in_page_and_summary(tmp_path: Path) -> None:
    document = schema_run(2)
    retried = next(b for b in document["benchmarks"] if b["extra_info"]["model"] == "threads")
    retried["extra_info"]["void_rounds"] = 2
    path = write(tmp_path / "runs" / "0001_void.json", document)
    out = tmp_path / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert report_main([str(path), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    for text in (page, summary, err.getvalue()):
        assert text.count("void round(s) thrown away") == 1
        assert "2 void round(s)" in text
