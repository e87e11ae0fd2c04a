"""The report of count runs: their own chart (instructions per task, and relative to
serial on CPU work) with a sentence computed from the data; never mixed into the
timed runs' charts and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reports.report import main as report_main
from tests.fixtures.check.synth import run_data, write_run
from tests.test_check_counts import count_info, save_counts


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    storage = tmp_path / "runs"
    write_run(storage, 1, run_data(np.random.default_rng(1), n_rounds=5))  # timed
    save_counts(storage, 2, machine=count_info())
    return storage


def test_count_runs_get_the_cost_chart_and_only_it(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert report_main([str(runs), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "8 benchmarks and 8 counted cells from 2 run(s)" in said
    assert (out / "costs.png").exists()
    summary = (out / "summary.md").read_text()
    line = next(li for li in summary.splitlines() if "Cost per task, counted" in li)
    # synthetic counts (seconds x 1e9 a round): on io_sleep, 10.3 M a round over 10 tasks
    # for asyncio, 102 M for serial; on cpu_loop, threads 42 M and processes 22 M to
    # serial's 40 M
    assert "On io_sleep, asyncio spends the fewest instructions a task (1.03 M)" in line
    assert "serial the most (10.2 M, 9.9" in line
    assert "on cpu_loop, threads costs 1.05× serial's instructions" in line
    assert "the least, processes, 0.55×" in line
    # the timed charts draw the timed run alone: the headline's cells are its 8
    frame = (out / "results.csv").read_text().splitlines()
    assert len(frame) == 1 + 8


def test_a_report_of_count_runs_alone_still_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "runs"
    save_counts(storage, 1)
    out = tmp_path / "report"
    assert report_main([str(storage), "--out", str(out)]) == 0
    assert (out / "costs.png").exists()
    assert "0 benchmarks and 8 counted cells" in capsys.readouterr().out
