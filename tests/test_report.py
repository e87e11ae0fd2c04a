"""``python -m reports``: the tidy frame, the charts, the page, and bad input.

The fixtures under ``tests/fixtures/reports/`` are small pytest-benchmark runs made by
``tests/_report_fixtures.py``: two runs of one machine and interpreter, one of a
free-threaded interpreter, and broken files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import reports
from reports import _charts, _palette, _registry
from reports._frame import COLUMNS, NET_COLUMNS, build_frame, missing_baselines
from reports._runs import load_runs
from reports.report import main
from tests._report_fixtures import FIXTURES, run_document, synthetic_run, write
from tests.conftest import digest

RUNS = FIXTURES / "runs"
BAD = FIXTURES / "bad"
GOOD_311 = sorted((RUNS / "Linux-CPython-3.11-64bit").glob("*.json"))
PRODUCTS = ("index.html", "summary.md", "results.csv")
# The fixture runs are timed runs: every chart of timed runs (count runs' own chart is
# tests/test_report_costs.py's).
TIMED_CHARTS = tuple(spec.name for spec in _registry.CHARTS if spec.measure == "time")


# --- the frame -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    runs, problems = load_runs([RUNS])
    assert problems == []
    return build_frame(runs)


def test_frame_has_a_row_per_benchmark_per_run_and_the_contract_columns(
    frame: pd.DataFrame,
) -> None:
    expected = sum(len(json.loads(p.read_text())["benchmarks"]) for p in RUNS.rglob("*.json"))
    assert len(frame) == expected
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert set(NET_COLUMNS) <= set(frame.columns)
    assert frame["run_id"].nunique() == 3
    assert frame.duplicated(["run_id", "fullname"]).sum() == 0


def test_params_is_sorted_json_and_python_facts_come_from_machine_info(
    frame: pd.DataFrame,
) -> None:
    io_rows = frame[(frame["workload"] == "io_sleep") & (frame["sweep"] == "")]
    assert set(io_rows["params"]) == {'{"d":0.02,"k":2}'}
    assert set(frame["python"]) == {"3.11.7", "3.13.1"}
    free = frame[frame["python"] == "3.13.1"]
    assert not free["gil_enabled"].any()
    assert free["interpreter"].iloc[0] == "CPython 3.13.1t (GIL off)"
    assert frame.loc[frame["python"] == "3.11.7", "gil_enabled"].all()


def test_speedup_and_efficiency_follow_the_contract(frame: pd.DataFrame) -> None:
    run = frame[frame["run_id"] == frame["run_id"].iloc[0]]
    serial = run[(run["workload"] == "cpu_loop") & (run["model"] == "serial")].iloc[0]
    procs = run[(run["workload"] == "cpu_loop") & (run["model"] == "processes")].iloc[0]
    assert serial["speedup"] == pytest.approx(1.0)
    assert procs["speedup"] == pytest.approx(serial["median_s"] / procs["median_s"])
    # CPU ideal without ideal_s: serial median / min(cpu_usable, tasks), for every model
    width = min(int(procs["cpu_usable"]), int(procs["tasks"]))
    assert procs["ideal_s"] == pytest.approx(serial["median_s"] / width)
    assert procs["efficiency"] == pytest.approx(procs["ideal_s"] / procs["median_s"])
    cpu = run[run["workload"] == "cpu_loop"]
    assert cpu["ideal_s"].nunique() == 1
    # serial on 4 tasks on 2 cores reaches half the physical limit, not 100%
    assert serial["efficiency"] == pytest.approx(0.5)
    asyncio = cpu[cpu["model"] == "asyncio"].iloc[0]
    assert int(asyncio["workers"]) == 1
    assert asyncio["efficiency"] < 0.5
    # I/O ideal comes from extra_info
    uv = run[(run["workload"] == "io_sleep") & (run["model"] == "uvloop")].iloc[0]
    assert uv["ideal_s"] == pytest.approx(0.04)
    assert uv["efficiency"] == pytest.approx(0.04 / uv["median_s"])
    # no serial cell to compare with: left empty, not made up
    startup = run[run["workload"] == "startup"]
    assert startup["speedup"].isna().all()


def test_net_cells_keep_their_figures(frame: pd.DataFrame) -> None:
    net = frame[(frame["bound"] == "net") & (frame["sweep"] == "")]
    assert not net.empty
    assert (net["throughput_rps"] > 0).all()
    assert set(net["payload"]) == {64.0, 4096.0}
    assert set(net["connections"]) == {1.0, 16.0}
    assert net["speedup"].isna().all()


def test_build_frame_of_nothing_is_an_empty_frame_with_the_columns() -> None:
    empty = build_frame([])
    assert empty.empty
    assert list(empty.columns) == list(COLUMNS)


def test_a_run_without_serial_cells_is_named_in_one_line_per_workload() -> None:
    runs, _ = load_runs([BAD / "no_serial.json"])
    lines = missing_baselines(build_frame(runs))
    assert len(lines) == 2
    assert all(line.startswith(str((BAD / "no_serial.json").resolve())) for line in lines)
    assert all("no serial baseline" in line and "\n" not in line for line in lines)


# --- the whole report -------------------------------------------------------------------


@pytest.mark.slow
def test_report_writes_page_tables_and_every_chart(full_report: dict[str, object]) -> None:
    out = full_report["out"]
    assert isinstance(out, Path)
    assert full_report["code"] == 0
    for name in PRODUCTS:
        assert (out / name).stat().st_size > 0
    for name in TIMED_CHARTS:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert b"<svg" in (out / f"{name}.svg").read_bytes()[:2000], name
    assert "chart " not in str(full_report["stderr"]), "a chart failed to draw"


@pytest.mark.slow
def test_one_registry_names_every_chart_and_the_page_follows_its_order(
    full_report: dict[str, object],
) -> None:
    names = TIMED_CHARTS
    assert len(set(names)) == len(names)
    out = full_report["out"]
    assert isinstance(out, Path)
    page = (out / "index.html").read_text(encoding="utf-8")
    shown = [name for name in names if f'<figure id="{name}">' in page]
    assert shown == list(names)  # every fixture chart is drawn, in the registry's order
    assert [page.index(f'<figure id="{name}">') for name in shown] == sorted(
        page.index(f'<figure id="{name}">') for name in shown
    )


@pytest.mark.slow
def test_results_csv_is_the_tidy_frame(full_report: dict[str, object]) -> None:
    out = full_report["out"]
    assert isinstance(out, Path)
    csv = pd.read_csv(out / "results.csv")
    runs, _ = load_runs([RUNS, BAD])
    assert len(csv) == len(build_frame(runs))
    for column in ("run_id", "datetime", "machine", "python", "gil_enabled", "median_s",
                   "iqr_s", "rounds", "cpu_s", "ideal_s", "speedup", "efficiency"):  # fmt: skip
        assert column in csv.columns


@pytest.mark.slow
def test_page_is_self_contained_with_a_sentence_per_chart(full_report: dict[str, object]) -> None:
    out = full_report["out"]
    assert isinstance(out, Path)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("<img ") == len(TIMED_CHARTS)
    assert page.count('src="data:image/png;base64,') == len(TIMED_CHARTS)
    assert "http://" not in page
    assert "https://" not in page
    assert page.count("<figcaption>") == len(TIMED_CHARTS)
    assert "CPython 3.13.1t (GIL off)" in page
    assert "not valid JSON" in page  # what was skipped is on the page too
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## ")
    assert "| model |" in summary or "| model" in summary


@pytest.mark.slow
def test_bad_inputs_get_one_line_each_and_the_rest_is_reported(
    full_report: dict[str, object],
) -> None:
    lines = str(full_report["stderr"]).splitlines()
    expectations = {
        "truncated.json": "not valid JSON",
        "not_json.json": "not valid JSON",
        "plain_pytest_benchmark.json": "no benchmark has boundbench extra_info",
        "no_serial.json": "no serial baseline",
    }
    for name, what in expectations.items():
        hits = [line for line in lines if name in line]
        assert hits, f"no message for {name}"
        assert all(what in line for line in hits), hits
    assert "Traceback" not in str(full_report["stderr"])


@pytest.mark.slow
def test_inputs_are_never_modified(full_report: dict[str, object]) -> None:
    assert full_report["before"] == full_report["after"]


@pytest.mark.slow
def test_sentences_come_from_the_data(tmp_path: Path) -> None:
    """Make uvloop the slowest I/O model and the headline sentence must say so."""
    benches = synthetic_run(seed=1, net=False, extras=False)
    for bench in benches:
        extra = bench["extra_info"]
        if extra["workload"] == "io_sleep" and extra["model"] == "uvloop":
            for key in ("min", "max", "mean", "median", "q1", "q3"):
                bench["stats"][key] *= 10
    document = run_document(benches, node="n", when="2025-01-01T00:00:00+00:00", commit="c")
    src = write(tmp_path / "in" / "0001_x.json", document)
    runs, _ = load_runs([src])
    rows = build_frame(runs)
    out = tmp_path / "out"
    out.mkdir()
    chart = _charts.chart_headline(rows, _palette.make_palette(rows["model"]), out)
    assert chart is not None
    assert "io_sleep (4 tasks)" in chart.sentence
    assert "uvloop slowest" in chart.sentence.split("io_sleep (4 tasks)")[1]


def test_one_colour_per_model_in_every_chart() -> None:
    from workloads.models import MODELS

    palette = _palette.make_palette(["threads", "zeta_style", "alpha_style", "serial"])
    # threads' own colour: the base colour its class declares (Model.colour_seed)
    assert palette["threads"] == _palette.BASE_COLOURS[MODELS["threads"].colour_seed or 0]
    assert palette["alpha_style"] != palette["zeta_style"]
    again = _palette.make_palette(["zeta_style", "alpha_style"])
    assert again["alpha_style"] == palette["alpha_style"]
    models = ("serial", "generator", "threads", "processes", "gevent", "asyncio", "uvloop")
    every = _palette.make_palette(models)
    assert len({every[m] for m in models}) == len(models)


# --- bad input and usage -------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"truncated.json": "truncated"}, "not valid JSON"),
        ({"not_json.json": "not_json"}, "not valid JSON"),
        ({"plain_pytest_benchmark.json": "plain"}, "no benchmark has boundbench extra_info"),
        ({}, "no saved runs (*.json) in this folder"),
    ],
    ids=["truncated", "not-json", "no-extra-info", "empty-folder"],
)
def test_nothing_usable_exits_2_with_a_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], message: str
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in files:
        shutil.copy(BAD / name, folder / name)
    code = main([str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    named = next(iter(files), None)
    assert (named or str(folder)) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_runs_found_by_default_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert ".benchmarks: no such file or folder" in err
    assert "no usable runs" in err


def test_output_inside_the_inputs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(RUNS, runs)
    before = digest(runs)
    assert main([str(runs), "--out", str(runs / "report")]) == 2
    assert main([str(GOOD_311[0]), "--out", str(GOOD_311[0].parent)]) == 2
    assert main([str(runs), "--out", str(tmp_path / ".benchmarks" / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("refusing to write") == 3
    assert digest(runs) == before


@pytest.mark.slow
def test_single_run_report_has_no_trend_and_stale_charts_are_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "trend.png").write_bytes(b"stale")
    (out / "keep.txt").write_text("not ours")
    assert main([str(GOOD_311[0]), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert not (out / "trend.png").exists()
    assert not (out / "environments.png").exists()
    assert (out / "keep.txt").exists()
    assert (out / "headline.png").exists()


def test_public_face() -> None:
    assert set(reports.__all__) >= {"build_frame", "load_runs", "main"}


@pytest.mark.slow
def test_500_benchmarks_are_reported(tmp_path: Path) -> None:
    # Correctness at scale only: the speed target (under 20 s) is measured in the notes,
    # never asserted in a test that a noisy machine would make flaky.
    benches = synthetic_run(seed=1, task_counts=(2, 4, 8, 16, 32), repeat=6)
    assert len(benches) >= 500
    src = write(tmp_path / "in" / "0001_big.json",
                run_document(benches, node="big", when="2025-02-01T00:00:00+00:00",
                             commit="a" * 40))  # fmt: skip
    assert main([str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == len(benches)


def test_every_model_and_server_style_has_its_own_colour() -> None:
    # No list to keep up to date: every model and server style gets a colour of its own.
    from workloads.models import MODELS
    from workloads.net import STYLES

    names = [*MODELS, *(style for style in STYLES if style not in MODELS)]
    palette = _palette.make_palette(names)
    colours = [palette[name] for name in names]
    assert len(set(colours)) == len(colours), dict(zip(names, colours, strict=True))


@pytest.mark.parametrize(
    "argv", [["--out"], ["--bogus"], ["--title"], ["-q", "--out", "a", "--out"]]
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("python -m reports: error: ")


@pytest.mark.slow
def test_an_unwritable_output_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").mkdir()  # the page cannot be written over a folder
    # A run of two cells: a chart or two to draw before the page, not every chart.
    document = json.loads(GOOD_311[0].read_text())
    document["benchmarks"] = document["benchmarks"][:2]
    run = write(tmp_path / "in" / GOOD_311[0].name, document)
    assert main([str(run), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"python -m reports: {out}: cannot write the report")
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("name", ["efficiency", "trend", "startup"])
def test_a_chart_of_each_drawing_module_is_drawn_with_its_sentence(
    frame: pd.DataFrame, tmp_path: Path, name: str
) -> None:
    """The quick, in-process half of the whole report (slow, above): one chart of each
    module that draws them (``_charts``, ``_charts_runs``, ``_charts_special``), from
    the fixture runs, as the report draws it; then the summary over it."""
    from reports._summary import write_summary

    spec = {spec.name: spec for spec in _registry.CHARTS}[name]
    chart = spec.draw(spec.cells(frame), _palette.make_palette(frame), tmp_path)
    assert chart is not None
    assert chart.name == name
    assert chart.sentence
    assert (tmp_path / chart.png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs, _ = load_runs([RUNS])
    summary = write_summary(tmp_path, title="t", runs=runs, frame=frame, charts=[chart],
                            problems=[])  # fmt: skip
    assert chart.sentence.split()[0] in summary.read_text(encoding="utf-8")
