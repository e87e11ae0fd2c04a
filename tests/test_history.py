"""``python -m reports history``: steps and creeping trends on synthetic series of runs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from reports._history import e_divisive, steps, trend
from reports.history import main
from tests.fixtures.check.synth import CELLS, MACHINE_INFO, run_data, write_run

THREADS = CELLS[1]
IO_THREADS = CELLS[5]


@pytest.fixture(autouse=True)
def _away_from_the_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def series(storage: Path, factors: list[dict[str, float]], sigma: float = 0.02) -> None:
    for number, slow in enumerate(factors, start=1):
        data = run_data(np.random.default_rng(number), n_rounds=10, sigma=sigma, slow=slow)
        write_run(storage, number, data)


def history(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_e_divisive_finds_a_step_where_it_is() -> None:
    rng = np.random.default_rng(1)
    values = [float(np.exp(rng.normal(0, 0.015))) * (1.2 if i >= 6 else 1.0) for i in range(12)]
    found = steps(values)
    assert [step.index for step in found] == [6]
    assert found[0].change == pytest.approx(0.2, abs=0.03)
    assert found[0].p <= 0.05


@pytest.mark.slow
def test_flat_noise_gives_no_step_and_no_trend() -> None:
    false_alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        values = [float(np.exp(rng.normal(0, 0.03))) for _ in range(12)]
        big_steps = [s for s in steps(values, seed=seed) if abs(s.change) >= 0.1]
        drift = trend(values, alternative="greater")
        if big_steps or (drift is not None and drift.p <= 0.05 and drift.change >= 0.1):
            false_alarms += 1
    assert false_alarms == 0


def test_e_divisive_of_a_constant_or_short_series_is_nothing() -> None:
    assert e_divisive([1.0] * 10) == []
    assert e_divisive([1.0, 2.0, 3.0]) == []
    assert trend([1.0, 1.0, 1.0, 1.0], alternative="greater") is None
    assert trend([1.0, 2.0, 3.0], alternative="greater") is None


def test_history_finds_the_step_at_the_right_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factors = [{THREADS.name: 1.25} if n >= 7 else {} for n in range(1, 13)]
    series(tmp_path, factors)
    code, out, err = history(capsys, tmp_path)
    assert code == 1, out + err
    findings = [line for line in out.splitlines() if line.startswith("test_")]
    assert len(findings) >= 1
    assert all(line.startswith(THREADS.name) for line in findings)
    step = next(line for line in findings if " step " in line)
    assert "from run 0007 on" in step
    assert "worse" in step


def test_history_catches_a_4_percent_per_run_creep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factors = [{IO_THREADS.name: 1.04 ** (n - 1)} for n in range(1, 7)]
    series(tmp_path, factors, sigma=0.01)
    code, out, _ = history(capsys, tmp_path)
    assert code == 1, out
    trend_line = next(line for line in out.splitlines() if " trend " in line)
    assert trend_line.startswith(IO_THREADS.name)
    assert "over 6 runs 0001..0006" in trend_line
    assert "+4." in trend_line or "+3.9" in trend_line


@pytest.mark.slow
def test_history_of_flat_runs_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series(tmp_path, [{} for _ in range(10)])
    code, out, _ = history(capsys, tmp_path)
    assert code == 0, out
    assert "no step or trend for the worse" in out
    assert "(exit 0)" in out


@pytest.mark.slow
def test_an_improvement_is_reported_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series(tmp_path, [{THREADS.name: 0.7} if n >= 6 else {} for n in range(1, 11)])
    code, out, _ = history(capsys, tmp_path)
    assert code == 0, out
    assert "better" in out


@pytest.mark.slow
def test_series_are_kept_per_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every other run on a machine twice as slow: one series each, both flat.
    other = copy.deepcopy(MACHINE_INFO)
    other["node"] = "runner-b"
    for number in range(1, 11):
        fast = number % 2
        data = run_data(
            np.random.default_rng(number),
            n_rounds=10,
            sigma=0.02,
            speed=1.0 if fast else 2.0,
            machine=MACHINE_INFO if fast else other,
        )
        write_run(tmp_path, number, data)
    code, out, _ = history(capsys, tmp_path)
    assert code == 0, out
    assert "series runner-a · CPython 3.11.7: 5 runs" in out
    assert "series runner-b · CPython 3.11.7: 5 runs" in out
    # Asked for, one series of both machines (a normalized mode then makes sense).
    code, out, _ = history(capsys, tmp_path, "--any-machine", "--mode", "speedup")
    assert "series every machine · CPython 3.11.7: 10 runs" in out


@pytest.mark.slow
def test_the_window_drops_old_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series(tmp_path, [{THREADS.name: 1.3} if n >= 4 else {} for n in range(1, 15)])
    assert history(capsys, tmp_path)[0] == 1
    assert history(capsys, tmp_path, "--last", "8")[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--last", "2"],
        ["--last", "x"],
        ["--pvalue", "0"],
        ["--permutations", "5"],
        ["--min-effect", "nan"],
        ["--mode", "auto"],
        ["--bogus"],
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series(tmp_path, [{} for _ in range(4)])
    code, out, err = history(capsys, tmp_path, *argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("python -m reports history: error: ")


def test_too_few_runs_or_none_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = history(capsys, tmp_path / "nothing")
    assert code == 2
    assert "no usable runs" in err
    series(tmp_path / "short", [{}, {}, {}])
    code, _, err = history(capsys, tmp_path / "short")
    assert code == 2
    assert "no series of at least 4 runs" in err


def test_reports_main_dispatches_to_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reports.__main__ import main as reports_main

    series(tmp_path, [{} for _ in range(5)])
    assert reports_main(["history", str(tmp_path)]) == 0
    assert "boundbench history" in capsys.readouterr().out
