"""``python -m reports check``: every bad option value is one line and exit 2; --reference,
--calibrate, library and load warnings, unstable cells.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from reports import _store
from reports._check_output import rounds_needed
from reports.check import main
from tests.fixtures.check.synth import CELLS, MACHINE_INFO, run_data, write_run

THREADS = CELLS[1]


@pytest.fixture(autouse=True)
def _away_from_the_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Away from the project's config and any stored thresholds (thresholds/time.json).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_store, "STORE_DIR", tmp_path / "thresholds")


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


def save(storage: Path, number: int, **kwargs: object) -> Path:
    kwargs.setdefault("n_rounds", 20)
    data = run_data(np.random.default_rng(number), **kwargs)  # type: ignore[arg-type]
    return write_run(storage, number, data)


def check(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tiny_alpha_with_threshold_fallback_is_no_traceback(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: StopIteration and exit 1 (read by CI as a regression).
    for number in (1, 2):
        save(storage, number, n_rounds=3)
    code, out, err = check(capsys, storage, "--alpha", "1e-60")
    assert code == 0, err
    assert "needs at least 102+102 rounds" in out
    assert rounds_needed(0.01) == 5
    assert rounds_needed(0.05) == 3
    assert rounds_needed(5e-324) > 500


BAD_OPTIONS = [
    ["--alpha", "0"],
    ["--alpha", "1"],
    ["--alpha", "nan"],
    ["--alpha", "x"],
    ["--alpha", "-1e-9"],
    ["--min-effect", "nan"],
    ["--min-effect", "-5%"],
    ["--min-effect", "inf"],
    ["--min-effect", "ten"],
    ["--min-effect-group", "=0.1"],
    ["--min-effect-group", "io_sleep"],
    ["--min-effect-group", "io=lots"],
    ["--mode", "fast"],
    ["--baseline", ""],
    ["--current", " "],
    ["--reference", ""],
    ["--baseline", "0099"],
    ["--reference", "0099"],
    ["--config", "missing.toml"],
    ["--calibrate"],
    ["--calibrate", "1"],
    ["--calibrate", "1", "2", "--baseline", "1"],
    ["--margin", "2"],
    ["--calibrate", "1", "2", "--margin", "0.5"],
    ["--calibrate", "1", "2", "--margin", "x"],
    ["--no-such-option"],
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=[" ".join(a) or "empty" for a in BAD_OPTIONS])
def test_every_bad_option_value_is_one_line_and_exit_2(
    argv: list[str], storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2)
    code, out, err = check(capsys, storage, *argv)
    assert code == 2, out + err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("python -m reports check: error: ")
    assert "Traceback" not in err


def test_reference_catches_a_creeping_slowdown(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 4% slower per run: never 10% against the previous run, 22% against the first.
    for number in range(1, 7):
        save(storage, number, slow={THREADS.name: 1.04 ** (number - 1)})
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    code, out, _ = check(capsys, storage, "--reference", "1")
    assert code == 1, out
    pairwise, _, pinned = out.partition("boundbench check against the reference run:")
    assert "no regression" in pairwise
    assert "REGRESSION: 1 of 8 cells slower" in pinned
    assert "baseline: run 0001" in pinned
    assert re.search(rf"{re.escape(THREADS.name)} .*\+2\d\.\d%.*REGRESSION", pinned)


def test_reference_is_in_the_markdown_too(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2)
    save(storage, 3)
    summary = tmp_path / "summary.md"
    code, _, _ = check(capsys, storage, "-r", "1", "--markdown", summary)
    assert code == 0
    text = summary.read_text(encoding="utf-8")
    assert text.count("## ✅ boundbench check") == 2
    assert "against the reference run" in text


def test_calibrate_prints_noise_per_family_and_a_toml_table(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomllib

    for number in range(1, 5):
        save(storage, number, speed=1.0 + 0.02 * (number % 2))
    code, out, err = check(capsys, storage, "--calibrate", "1", "2", "3", "4")
    assert code == 0, err
    assert "4 runs of unchanged code" in out
    assert "6 pairs" in out
    # The fixture's runs are of the quick profile: the tables go under its name.
    toml = out[out.index("[tool.boundbench.check.profile.quick.min-effect-group]") :]
    check_table = tomllib.loads(toml)["tool"]["boundbench"]["check"]
    table = check_table["profile"]["quick"]["min-effect-group"]
    assert set(table) == {"cpu_loop:*", "io_sleep:*"}
    # Every change seen is under the suggestion: none of the calibration pairs would fail.
    assert all(0.02 <= value <= 0.2 for value in table.values())
    # A folder stands for every run in it.
    code, folder_out, _ = check(capsys, "--calibrate", storage)
    assert code == 0
    assert folder_out == out


def test_calibrate_keeps_machines_apart_unless_asked(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    other = copy.deepcopy(MACHINE_INFO)
    other["node"] = "runner-b"
    save(storage, 2, machine=other)
    save(storage, 3)
    code, _, err = check(capsys, "--calibrate", storage)
    assert code == 2
    assert "another machine or interpreter" in err
    code, out, _ = check(capsys, "--calibrate", storage, "--any-machine", "--mode", "auto")
    assert code == 0
    assert "mode speedup" in out


def test_library_versions_and_a_busy_host_are_warned(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = copy.deepcopy(MACHINE_INFO)
    machine["boundbench"].update(
        schema_version=2,
        libraries={"gevent": "24.2.1", "pytest-benchmark": "5.1.0"},
        load_avg_start=[0.1, 0.1, 0.1],
        load_avg_end=[1.0, 1.0, 1.0],
    )
    save(storage, 1, machine=machine)
    busy = copy.deepcopy(machine)
    busy["boundbench"]["libraries"] = {"gevent": "24.11.1", "pytest-benchmark": "5.1.0"}
    busy["boundbench"]["load_avg_start"] = [1.7, 0.9, 0.5]
    save(storage, 2, machine=busy)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "warning: different library versions: gevent 24.2.1 vs 24.11.1" in out
    assert "warning: current run: host busy: load average 1.70 before the run started" in out
    assert "baseline run: host busy" not in out


def test_only_libraries_both_runs_record_are_compared_and_their_models_named(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = copy.deepcopy(MACHINE_INFO)
    machine["boundbench"].update(
        schema_version=2, libraries={"greenlet": "3.0.3", "pytest-benchmark": "5.1.0"}
    )
    save(storage, 1, machine=machine)
    newer = copy.deepcopy(machine)
    # The suite now records each model's libraries: dask's are new, not a difference.
    newer["boundbench"]["libraries"] = {
        "greenlet": "3.1.0",
        "pytest-benchmark": "5.1.0",
        "dask": "2026.1.0",
        "uvloop": None,
    }
    save(storage, 2, machine=newer)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "warning: different library versions: greenlet 3.0.3 vs 3.1.0 (for gevent)\n" in out
    assert "dask" not in out.split("different library versions")[1].splitlines()[0]
    assert "None" not in out


def test_a_busy_host_is_judged_by_what_else_used_the_cores(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs that measured other processes' CPU: a high load average left by the run
    before (back to back) is no warning; other work on the cores is."""
    machine = copy.deepcopy(MACHINE_INFO)
    machine["boundbench"].update(
        schema_version=3, load_avg_start=[1.8, 0.9, 0.5], other_cpu_start=0.04
    )
    save(storage, 1, machine=machine)
    busy = copy.deepcopy(machine)
    busy["boundbench"].update(load_avg_start=[0.2, 0.1, 0.1], other_cpu_start=0.41)
    save(storage, 2, machine=busy)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "baseline run: host busy" not in out
    assert (
        "warning: current run: host busy: other processes used 41% of 2 cores just before"
        " the run started (above 25%)" in out
    )


def test_unstable_cells_are_named(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2, sigma=0.03)
    _, out, _ = check(capsys, storage)
    assert "unstable cell" not in out
    assert ", unstable" not in out
    shaky = run_data(np.random.default_rng(3), n_rounds=20)
    for bench in shaky["benchmarks"]:
        if bench["name"] == THREADS.name:
            bench["stats"]["iqr"] = 0.25 * bench["stats"]["median"]
    write_run(storage, 3, shaky)
    _, out, _ = check(capsys, storage)
    assert "warning: 1 unstable cell(s), rounds spread (IQR) over 10% of the median:" in out
    assert f"{THREADS.name} (IQR baseline " in out
    row = next(line for line in out.splitlines() if line.startswith(THREADS.name + " "))
    assert ", unstable" in row


def test_a_run_made_with_a_test_hook_is_named_as_such(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run made with BOUNDBENCH_SLOWDOWN is altered on purpose: as a baseline, it says so."""
    hooked = run_data(np.random.default_rng(1), n_rounds=20)
    hooked["boundbench_host"] = {"test_hooks": {"BOUNDBENCH_SLOWDOWN": "cpu_loop=1.15"}}
    write_run(storage, 1, hooked)
    save(storage, 2)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert (
        "warning: baseline run was made with test hooks on (BOUNDBENCH_SLOWDOWN=cpu_loop=1.15):"
        " its figures are altered on purpose; it is no baseline for real changes"
    ) in out
    assert "current run was made with test hooks" not in out
