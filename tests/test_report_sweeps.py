"""The sweeps' charts (crossover, scale, convoy), the best-model table, model colours,
and the newer cells (io_socket, the tutorial's pools, interpreters, dask) in the
generic charts: every sentence is checked against figures the fixture fixes exactly.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports import (
    _best,
    _cells,
    _charts,
    _charts_runs,
    _charts_special,
    _crossover,
    _figures,
    _models,
    _palette,
    _registry,
    _sweeps,
)
from reports._frame import build_frame, missing_baselines
from reports._runs import load_runs
from reports.report import main
from tests._report_fixtures import (
    FIXTURES,
    convoy_sweep,
    mixed_cell,
    mixed_sweep,
    newer_cells,
    run_document,
    scale_sweep,
    synthetic_run,
    write,
)

ROOT = Path(__file__).resolve().parents[1]
FIRST_311 = sorted((FIXTURES / "runs" / "Linux-CPython-3.11-64bit").glob("*.json"))[0]
OLD_CHARTS = {
    "headline",
    "efficiency",
    "walltime",
    "cpu_wall",
    "net_throughput",
    "net_latency",
    "seed",
    "startup",
}


def frame_of(tmp_path: Path, benchmarks: list[dict[str, Any]], name: str = "0001_x") -> Any:
    document = run_document(benchmarks, node="n", when="2025-03-01T00:00:00+00:00", commit="c" * 40)
    src = write(tmp_path / "in" / f"{name}.json", document)
    runs, problems = load_runs([src])
    assert problems == []
    return runs, build_frame(runs)


def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return out


# --- the crossover ------------------------------------------------------------------

# Speedups over serial (serial takes its 8 tasks x 0.2 s, CPU and waits, at every share,
# so the share it measures is the one asked for): asyncio leads up to 25%,
# processes from 50%; the difference goes from -0.5 at 25% to +1.0 at 50%, so the lines
# cross at 25 + 25 * 0.5 / 1.5 = 33.3%.
CROSSING = {
    "asyncio": {0.0: 4.0, 0.25: 2.0, 0.5: 1.5, 1.0: 1.0},
    "processes": {0.0: 1.8, 0.25: 1.5, 0.5: 2.5, 1.0: 1.9},
}
NO_CROSSING = {
    "threads": {0.0: 4.0, 0.25: 3.0, 0.5: 2.0, 1.0: 1.9},
    "processes": {0.0: 1.8, 0.25: 1.5, 0.5: 1.9, 1.0: 1.8},
}


SERIAL_S = 8 * 0.2


def sweep(table: dict[str, dict[float, float]], kind: str = "python") -> list[dict[str, Any]]:
    rng = random.Random(0)
    cells = []
    for share in sorted(next(iter(table.values()))):
        cells.append(mixed_cell(rng, model="serial", share=share, wall=SERIAL_S, kind=kind,
                                spread=0.0, exact_cpu=True))  # fmt: skip
        for model, speedups in table.items():
            workers = 1 if model == "asyncio" else 2
            cells.append(mixed_cell(rng, model=model, share=share,
                                    wall=SERIAL_S / speedups[share], kind=kind,
                                    workers=workers, spread=0.0))  # fmt: skip
    return cells


def test_crossover_sentence_interpolates_the_crossing(tmp_path: Path) -> None:
    _, frame = frame_of(tmp_path, [*sweep(CROSSING), *sweep(NO_CROSSING, kind="native")])
    chart = _crossover.chart_crossover(
        frame, _palette.make_palette(frame["model"]), out_dir(tmp_path)
    )
    assert chart is not None
    python, native = chart.sentence.split("; Native CPU work")
    assert python.startswith("Python CPU work, 8 tasks: on this machine, processes overtake")
    assert "from a CPU share of about 33 % (between the measured 25 % and 50 %)" in python
    assert "best model: asyncio at 0–25 %, processes from 50 %" in python
    assert "no crossing in the measured range: the best single-process model stays ahead" in native
    assert "at every measured share (0–100 %)" in native
    assert "at 100 %: threads 1.9×, processes 1.8×" in native
    for suffix in (".png", ".svg"):
        assert (tmp_path / "out" / f"crossover{suffix}").stat().st_size > 0


def test_crossover_clause_per_panel_and_the_best_worker_count(tmp_path: Path) -> None:
    cells = sweep(CROSSING)
    rng = random.Random(1)
    # A second, slower worker count of processes: the line keeps the best of the two.
    cells += [mixed_cell(rng, model="processes", share=share, wall=5.0, workers=8, spread=0.0)
              for share in (0.0, 0.25, 0.5, 1.0)]  # fmt: skip
    _, frame = frame_of(tmp_path, cells)
    points = _crossover.crossover_points(frame)
    procs = points[points["model"] == "processes"]
    assert len(procs) == 4
    assert set(procs["workers"]) == {2}
    assert _crossover.crossover_clause(points).endswith(
        "about 33 % (between the measured 25 % and 50 %)"
    )


# The standard profile's native panel: one share, where six unchanged runs here put
# processes from 9.3 % behind threads to 6.2 % ahead (this one: 3.31x against 3.64x).
LEVEL = {"threads": {0.5: 3.64}, "processes": {0.5: 3.31}}


def test_a_lead_within_ten_percent_is_level_not_an_overtaking(tmp_path: Path) -> None:
    _, frame = frame_of(tmp_path, sweep(LEVEL, kind="native"))
    clause = _crossover.crossover_clause(_crossover.crossover_points(frame))
    assert clause == (
        "the best single-process model keeps up with processes at the one measured share"
        " (50 %), within 10% (at 50 %: threads 3.6×, processes 3.3×)"
    )
    # 18 % ahead is a lead, said with the same one-share wording.
    _, frame = frame_of(tmp_path, sweep({"threads": {0.5: 3.0}, "processes": {0.5: 3.53}}))
    clause = _crossover.crossover_clause(_crossover.crossover_points(frame))
    assert clause == (
        "processes are ahead of the best single-process model at the one measured share (50 %)"
    )


def test_crossover_ideals_and_one_process_ideal() -> None:
    extra = {"tasks": 8, "cpu_share": 0.5, "seconds_per_iter": 50e-9,
             "params": {"cpu_iters": 2_000_000, "task_s": 0.2}}  # fmt: skip
    # c = 0.1 s of CPU per task, w = 0.1 s of waiting: one GIL needs 8 * 0.1 s.
    assert _figures.mixed_one_process_ideal(extra) == pytest.approx(0.8)
    assert _figures.mixed_one_process_ideal({"tasks": 8}) is None


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, -1.0), (50, 1.0), (100, 2.0)], [(25.0, 100.0)]),
        ([(0, 1.0), (50, 2.0)], [(0.0, 50.0)]),
        ([(0, -1.0), (50, -2.0)], []),
        ([(0, -1.0), (10, 1.0), (20, -1.0), (30, 3.0)], [(5.0, 15.0), (22.5, 30.0)]),
        ([(0, 0.0), (10, 1.0)], [(0.0, 10.0)]),
        ([(0, 1.0), (10, 0.0)], [(0.0, 10.0)]),
    ],
)
def test_lead_intervals(points: list[tuple[float, float]], expected: list[Any]) -> None:
    # pytest.approx compares flat sequences only (pytest 9 refuses nested ones).
    found = _figures.lead_intervals(points)
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        assert got == pytest.approx(want)


def test_a_plausible_sweep_reads_as_the_issue_expects(tmp_path: Path) -> None:
    _, frame = frame_of(tmp_path, mixed_sweep(random.Random(3)))
    chart = _crossover.chart_crossover(
        frame, _palette.make_palette(frame["model"]), out_dir(tmp_path)
    )
    assert chart is not None
    python, native = chart.sentence.split("; Native CPU work")
    assert "processes overtake the best single-process model from a CPU share of about" in python
    assert "between the measured 10 % and 25 %" in python
    assert "the best single-process model keeps up with processes" in native
    assert "threads" in native


# --- scale --------------------------------------------------------------------------


@pytest.mark.slow
def test_scale_sentence_names_where_each_model_falls_below_80_percent(tmp_path: Path) -> None:
    table = {
        "generator": (0.99, 0.98, 0.97, 0.95, 0.9),
        "asyncio": (0.99, 0.93, 0.87, 0.37, 0.12),
        "threads": (0.97, 0.85, 0.36, None, None),
        "gevent": (0.7, 0.6, 0.5, None, None),
    }
    _, frame = frame_of(tmp_path, scale_sweep(random.Random(0), efficiency=table, spread=0.0))
    chart = _sweeps.chart_scale(frame, _palette.make_palette(frame["model"]), out_dir(tmp_path))
    assert chart is not None
    sleep = chart.sentence.split("; io_spin: ")[0]
    assert sleep.startswith("io_sleep: ")
    assert "generator stays above 80% up to 100,000 tasks" in sleep
    assert "asyncio falls below 80% between 1,000 and 10,000 tasks (87% → 37%)" in sleep
    assert "threads falls below 80% between 100 and 1,000 tasks (85% → 36%)" in sleep
    assert "(measured up to 1,000)" in sleep
    assert "gevent is below 80% from 10 tasks (70%)" in sleep
    assert "KB per task at 100,000 tasks: generator 0.9" in sleep
    assert (tmp_path / "out" / "scale.svg").stat().st_size > 0


def test_scale_without_memory_figures_draws_efficiency_only(tmp_path: Path) -> None:
    cells = scale_sweep(random.Random(0), spread=0.0)
    for cell in cells:
        cell["extra_info"].pop("kb_per_task")
    _, frame = frame_of(tmp_path, cells)
    chart = _sweeps.chart_scale(frame, _palette.make_palette(frame["model"]), out_dir(tmp_path))
    assert chart is not None
    assert "KB per task" not in chart.sentence
    assert missing_baselines(frame) == []  # no serial in the scale group, by design


# --- the convoy ---------------------------------------------------------------------


@pytest.mark.slow
def test_convoy_sentence_states_the_slowdown_with_one_cpu_thread(tmp_path: Path) -> None:
    _, frame = frame_of(tmp_path, convoy_sweep(random.Random(0)))
    out = out_dir(tmp_path)
    chart = _sweeps.chart_convoy(frame, _palette.make_palette(frame["model"]), out)
    assert chart is not None
    assert chart.sentence == (
        "With one CPU-bound thread beside the server (CPU work in threads, switch interval"
        " 5 ms), throughput falls from 30,000 to 100 req/s: 300× slower; at a 1 ms switch"
        " interval 62×; at a 0.1 ms switch interval 9.4×; with the CPU work in native code"
        " 1.2×; with the CPU work in a process pool 1.1×."
    )
    table = _sweeps.convoy_table(frame)
    assert len(table) == 36
    first = table.iloc[1]
    assert (first["cpu_placement"], first["switch_interval_s"], first["cpu_threads"]) == (
        "threads",
        0.005,
        1,
    )
    assert first["slowdown"] == pytest.approx(300.0)
    # Convoy cells are echo cells too (bound "net"): they stay out of the echo charts.
    assert _charts_special.chart_net_throughput(_cells.generic(frame), {}, out) is None


@pytest.mark.slow
def test_convoy_without_the_default_interval_or_threads_still_reads(tmp_path: Path) -> None:
    _, frame = frame_of(tmp_path, convoy_sweep(random.Random(0), one_thread={
        ("native", 0.001): 20_000.0, ("processes", 0.001): 25_000.0}))  # fmt: skip
    chart = _sweeps.chart_convoy(frame, _palette.make_palette(frame["model"]), out_dir(tmp_path))
    assert chart is not None
    assert chart.sentence.startswith("No cell with CPU work in threads at 0 and 1 CPU threads")
    assert "with the CPU work in native code 1.5×" in chart.sentence


# --- the best model -----------------------------------------------------------------


def test_best_model_table_bootstraps_saved_rounds_else_uses_the_iqr(tmp_path: Path) -> None:
    benches = [*synthetic_run(seed=2, net=False, extras=False), *sweep(CROSSING)]
    runs, frame = frame_of(tmp_path, benches)
    best = _best.best_models(frame, _best.stats_by_cell(runs))
    mixed = best[best["workload"] == "mixed"].set_index("cpu_share")
    assert list(mixed["model"]) == ["asyncio", "asyncio", "processes", "processes"]
    assert set(mixed["ci_method"]) == {"bootstrap"}
    # Equal rounds on both sides: the bootstrap has nothing to vary.
    assert mixed.loc[0.5, "ci_low"] == pytest.approx(2.5)
    assert mixed.loc[0.5, "ci_high"] == pytest.approx(2.5)
    assert mixed.loc[0.5, "runner_up"] == "asyncio"
    io = best[best["workload"] == "io_sleep"].iloc[0]
    assert io["ci_method"] == "iqr"  # the older fixture cells keep no rounds
    assert io["ci_low"] < io["speedup"] < io["ci_high"]
    # The same interval every time: the bootstrap is seeded.
    again = _best.best_models(frame, _best.stats_by_cell(runs))
    pd.testing.assert_frame_equal(best, again)
    note = _best.interval_note(best)
    assert "bootstrap over the saved rounds" in note
    assert "interquartile ranges" in note


def test_speedup_interval_from_rounds_and_from_quartiles() -> None:
    rng = random.Random(5)
    serial = [1.0 * (1 + rng.gauss(0, 0.02)) for _ in range(15)]
    cell = [0.5 * (1 + rng.gauss(0, 0.02)) for _ in range(15)]

    def stats(data: list[float], keep: bool) -> dict[str, Any]:
        ordered = sorted(data)
        out: dict[str, Any] = {"median": ordered[7], "q1": ordered[3], "q3": ordered[11],
                               "rounds": len(data)}  # fmt: skip
        return out | ({"data": data} if keep else {})

    for keep, expected in ((True, "bootstrap"), (False, "iqr")):
        found = _figures.speedup_interval(stats(serial, keep), stats(cell, keep))
        assert found is not None
        low, high, method = found
        assert method == expected
        assert 1.9 < low < 2.0 < high < 2.1
    assert _figures.speedup_interval({"median": 1.0}, {"median": 0.5}) is None


def test_serial_as_the_best_model_has_no_interval(tmp_path: Path) -> None:
    table = {"asyncio": {0.0: 0.9, 1.0: 0.8}}
    runs, frame = frame_of(tmp_path, sweep(table))
    best = _best.best_models(frame, _best.stats_by_cell(runs))
    assert list(best["model"]) == ["serial", "serial"]
    assert best["ci_method"].isna().all()
    assert list(best["runner_up"]) == ["asyncio", "asyncio"]


# --- colours ------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unknown_model_gets_a_stable_colour_of_its_own() -> None:
    name = "trio_via_anyio"
    colour = _palette.colour_for(name)
    assert colour not in _palette.RESERVED  # no base or server-style colour
    code = f"from reports._palette import colour_for; print(colour_for({name!r}))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=60, check=True)  # fmt: skip
        assert done.stdout.strip() == colour
    # Two unknown names whose derived colours coincide are told apart within a report.
    slots: dict[str, str] = {}
    for i in range(500):
        other = f"plugin{i}"
        if _palette.colour_for(other) in slots:
            first = slots[_palette.colour_for(other)]
            palette = _palette.make_palette([first, other])
            assert palette[first] != palette[other]
            break
        slots[_palette.colour_for(other)] = other
    else:
        pytest.fail("no two names share a derived colour in 500 tries")


def test_unknown_models_sort_after_the_built_in_ones() -> None:
    names = ["zeta_plugin", "threads", "alpha_plugin", "serial", "dask"]
    assert _models.ordered_models(names) == [
        "serial", "threads", "dask", "alpha_plugin", "zeta_plugin"]  # fmt: skip


# --- the generic charts with the newer cells ----------------------------------------


@pytest.mark.slow
def test_newer_cells_appear_in_the_generic_charts(tmp_path: Path) -> None:
    benches = [*synthetic_run(seed=4, net=False), *newer_cells(random.Random(4))]
    _runs, frame = frame_of(tmp_path, benches)
    assert missing_baselines(frame) == []  # the tutorial's pools have no serial by design
    pools = frame[frame["workload"] == "seed_pool_threads"]
    assert pools["cell"].nunique() == 3
    assert all("collect=" in label for label in pools["cell"])
    out = out_dir(tmp_path)
    palette = _palette.make_palette(frame["model"])
    head = _charts.chart_headline(frame, palette, out)
    assert head is not None
    assert "io_socket (100 tasks)" in head.sentence
    cells = _cells.headline_cells(frame)
    assert {"interpreters", "dask"} <= set(cells[cells["workload"] == "io_socket"]["model"])
    for make in (_charts.chart_efficiency, _charts.chart_walltime, _charts.chart_cpu_wall):
        assert make(frame, palette, out) is not None
    seed = _charts_special.chart_seed(frame, palette, out)
    assert seed is not None  # the pools go to the generic charts, not the seed chart
    assert _crossover.chart_crossover(frame, palette, out) is None
    assert _sweeps.chart_scale(frame, palette, out) is None
    assert _sweeps.chart_convoy(frame, palette, out) is None


@pytest.mark.slow
def test_a_run_without_the_newer_cells_renders_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(FIRST_311), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "chart " not in err
    drawn = {path.stem for path in out.glob("*.png")}
    assert drawn == OLD_CHARTS
    page = (out / "index.html").read_text(encoding="utf-8")
    for heading in ("Crossover cells", "<h2>Scale", "GIL convoy"):
        assert heading not in page


@pytest.mark.slow
def test_the_whole_report_with_every_kind_of_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    benches = [*synthetic_run(seed=6), *sweep_cells_all()]
    document = run_document(benches, node="n", when="2025-03-01T00:00:00+00:00", commit="d" * 40)
    src = write(tmp_path / "in" / "0001_all.json", document)
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    drawn = {path.stem for path in out.glob("*.png")}
    # every chart of timed runs (count runs' own is tests/test_report_costs.py's, A/B
    # sessions' tests/test_ab_verdict.py's)
    assert drawn == set(_registry.CHART_NAMES) - {"trend", "environments", "costs", "ab"}
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Which model is fastest" in page
    assert "processes overtake the best single-process model" in page
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "### Which model is fastest" in summary
    assert "| python CPU 50% |" in summary.replace("| mixed | python CPU 50%", "| python CPU 50%")
    assert "**Which model as the CPU share grows**" in summary


def sweep_cells_all() -> list[dict[str, Any]]:
    rng = random.Random(9)
    return [*mixed_sweep(rng), *scale_sweep(rng), *convoy_sweep(rng), *newer_cells(rng)]


@pytest.mark.slow
def test_environments_legend_names_gil_switch_interval_and_start_method(tmp_path: Path) -> None:
    runs, _ = load_runs([FIXTURES / "runs"])
    frame = build_frame(runs)
    assert "bench-a · CPython 3.13.1t · GIL off · switch 5 ms · forkserver" in set(
        frame["environment"]
    )
    chart = _charts_runs.chart_environments(frame, _palette.make_palette(frame["model"]),
                                       out_dir(tmp_path))  # fmt: skip
    assert chart is not None
    assert "GIL off · switch 5 ms · forkserver" in chart.sentence
