"""Runs of several interpreters in one storage: the check and the history pair per
machine *and* interpreter (implementation, version, GIL state), never across unasked.

No free-threaded build can be installed on the project's machine, so its runs are
synthetic here: 3.13t with the GIL off (and on) beside 3.11 on the same node.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reports import _store
from reports.check import main as check_main
from reports.history import main as history_main
from tests.fixtures.check.synth import MACHINE_INFO, run_data, write_run


@pytest.fixture(autouse=True)
def _away_from_the_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Away from the project's config and any stored thresholds (thresholds/time.json).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_store, "STORE_DIR", tmp_path / "thresholds")


def interpreter(version: str, *, free: bool = False, gil: bool = True) -> dict[str, Any]:
    """MACHINE_INFO of the same machine with another interpreter."""
    info = copy.deepcopy(MACHINE_INFO)
    info["python_version"] = version
    info["boundbench"].update(python_version=version, free_threading_build=free, gil_enabled=gil)
    return info


PY311 = MACHINE_INFO
PY313T = interpreter("3.13.1", free=True, gil=False)
PY313T_GIL = interpreter("3.13.1", free=True, gil=True)


def save(storage: Path, number: int, machine: dict[str, Any], **kwargs: Any) -> Path:
    data = run_data(np.random.default_rng(number), n_rounds=20, machine=machine, **kwargs)
    # Free-threaded runs save under their own machine id, as pytest-benchmark does.
    folder = "Linux-CPython-3.13-64bit" if machine is not PY311 else "Linux-CPython-3.11-64bit"
    return write_run(storage, number, data, folder=folder)


def run(fn: Any, capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = fn([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_baseline_is_the_previous_run_of_the_same_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, 1, PY311)
    save(tmp_path, 2, PY313T)
    save(tmp_path, 3, PY311)
    code, out, _ = run(check_main, capsys, tmp_path)
    assert code == 0, out
    assert "baseline: run 0001" in out
    assert "current:  run 0003" in out
    assert "different interpreters" not in out


def test_a_free_threaded_run_has_no_baseline_among_gil_runs_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, 1, PY311)
    save(tmp_path, 2, PY313T)
    code, out, err = run(check_main, capsys, tmp_path)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "runner-a · CPython 3.13.1t (GIL off)" in err
    assert "--any-python" in err
    assert "Traceback" not in err
    code, out, _ = run(check_main, capsys, tmp_path, "--any-python", "--mode", "auto")
    assert code == 0, out
    assert "baseline: run 0001" in out
    assert "auto: the runs come from different machines or interpreters" in out
    assert "warning: different interpreters" in out


def test_the_gil_state_alone_makes_another_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, 1, PY313T_GIL)
    save(tmp_path, 2, PY313T)
    code, _, err = run(check_main, capsys, tmp_path, "--baseline", "1", "--current", "2")
    assert code == 2
    assert "CPython 3.13.1t (GIL on) vs CPython 3.13.1t (GIL off)" in err
    code, out, _ = run(check_main, capsys, tmp_path, "-b", "1", "-c", "2", "--any-python")
    assert code == 0, out


def test_a_reference_run_of_another_interpreter_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, 1, PY313T)
    save(tmp_path, 2, PY311)
    save(tmp_path, 3, PY311)
    code, _, err = run(check_main, capsys, tmp_path, "--reference", "1")
    assert code == 2
    assert "reference run and the current run come from different interpreters" in err
    code, out, _ = run(check_main, capsys, tmp_path, "--reference", "1", "--any-python",
                       "--mode", "speedup")  # fmt: skip
    assert code == 0, out
    assert "against the reference run" in out


def test_another_machine_is_not_another_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --any-machine lifts the machine rule only: the interpreter must still match.
    other = copy.deepcopy(PY313T)
    other["node"] = "runner-b"
    save(tmp_path, 1, PY311)
    save(tmp_path, 2, other)
    code, _, err = run(check_main, capsys, tmp_path)
    assert code == 2
    assert err.rstrip().endswith("or pass --any-machine --any-python")
    code, _, err = run(check_main, capsys, tmp_path, "--any-machine")
    assert code == 2
    assert err.rstrip().endswith("or pass --any-python")
    code, out, _ = run(check_main, capsys, tmp_path, "--any-machine", "--any-python",
                       "--mode", "speedup")  # fmt: skip
    assert code == 0, out


def test_calibrate_keeps_interpreters_apart_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number, machine in enumerate((PY311, PY313T, PY311), start=1):
        save(tmp_path, number, machine)
    code, _, err = run(check_main, capsys, "--calibrate", tmp_path)
    assert code == 2
    assert "another machine or interpreter" in err
    assert "--any-python" in err
    assert "--any-machine" not in err
    code, _, err = run(check_main, capsys, "--calibrate", tmp_path, "--any-machine")
    assert code == 2
    code, out, _ = run(check_main, capsys, "--calibrate", tmp_path, "--any-python",
                       "--mode", "speedup")  # fmt: skip
    assert code == 0, out


def test_history_keeps_a_series_per_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Free-threaded runs are twice as fast on threads-heavy cells: merged with the GIL
    # runs they would look like steps every other run.
    for number in range(1, 11):
        free = number % 2 == 0
        save(tmp_path, number, PY313T if free else PY311, speed=0.5 if free else 1.0)
    code, out, _ = run(history_main, capsys, tmp_path)
    assert code == 0, out
    assert "series runner-a · CPython 3.11.7: 5 runs" in out
    assert "series runner-a · CPython 3.13.1t (GIL off): 5 runs" in out
    code, out, _ = run(history_main, capsys, tmp_path, "--any-python", "--mode", "speedup")
    assert "series runner-a · every interpreter: 10 runs" in out
    code, out, _ = run(history_main, capsys, tmp_path, "--any-python", "--any-machine",
                       "--mode", "speedup")  # fmt: skip
    assert "series every machine and interpreter: 10 runs" in out


def test_a_changed_switch_interval_stays_in_its_series_and_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tuned = copy.deepcopy(PY311)
    tuned["boundbench"]["switch_interval"] = 0.001
    save(tmp_path, 1, PY311)
    data = run_data(np.random.default_rng(2), n_rounds=20, machine=tuned)
    write_run(tmp_path, 2, data, folder="Linux-CPython-3.11-64bit")
    code, out, _ = run(check_main, capsys, tmp_path)
    assert code == 0, out
    assert "warning: different settings: switch interval 0.005 vs 0.001" in out
    assert "different interpreters" not in out
