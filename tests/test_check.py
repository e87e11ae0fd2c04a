"""``python -m reports check``: choosing runs, modes, output, exit codes and bad input.

Runs are synthetic (``tests/fixtures/check/synth.py``), written to ``tmp_path`` the
way ``--benchmark-autosave`` lays them out, with seeded noise.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from reports import _store
from reports.__main__ import main as reports_main
from reports.check import main
from tests.fixtures.check.synth import (
    CELLS,
    MACHINE_DIR,
    MACHINE_INFO,
    Cell,
    other_machine,
    run_data,
    write_run,
)

THREADS = CELLS[1]  # cpu_loop threads
# Runs of different machines are compared only when named (or with --any-machine).
NAMED = ("--baseline", "1", "--current", "2")
IO_THREADS = CELLS[5]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def _away_from_the_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check's own defaults: away from the repository's pyproject.toml (its settings)
    # and from any stored thresholds (thresholds/time.json).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_store, "STORE_DIR", tmp_path / "thresholds")


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


def save(storage: Path, number: int, seed: int | None = None, **kwargs: object) -> Path:
    data = run_data(rng(number if seed is None else seed), n_rounds=20, **kwargs)  # type: ignore[arg-type]
    return write_run(storage, number, data)


def check(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def row_of(out: str, cell: Cell) -> str:
    for line in out.splitlines():
        if line.startswith(cell.name + " "):
            return line
    raise AssertionError(f"no row for {cell.name} in:\n{out}")


def flagged(out: str) -> set[str]:
    """The cells the table flags (the indented shift lines below it are not cells)."""
    return {
        line.split()[0]
        for line in out.splitlines()
        if line.rstrip().endswith("REGRESSION") and not line.startswith(" ")
    }


def flagged_shifts(out: str) -> set[str]:
    return {
        line.split(" +")[0].strip()
        for line in out.splitlines()
        if line.startswith("  ") and line.rstrip().endswith("REGRESSION")
    }


# -- verdicts -----------------------------------------------------------------------


def test_unchanged_runs_pass(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2)
    code, out, err = check(capsys, storage)
    assert code == 0, out + err
    assert "no regression: 8 cells compared" in out
    assert "significance: one-sided Mann-Whitney U, alpha 0.01" in out
    assert "threshold fallback" not in out
    assert err == ""


def test_slowdown_in_one_cell_is_flagged_there_only(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.15})
    code, out, _ = check(capsys, storage)
    assert code == 1
    assert flagged(out) == {THREADS.name}
    assert flagged_shifts(out) == set(), "one cell does not move its family"
    row = row_of(out, THREADS)
    change = float(re.search(r"([+-]\d+\.\d)%", row).group(1))  # type: ignore[union-attr]
    assert 10 <= change <= 20
    assert "p=" in row
    assert f"verdict: 1 regression(s): {THREADS.name}" in out


def test_improvement_is_reported_and_passes(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={IO_THREADS.name: 0.8})
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert row_of(out, IO_THREADS).endswith("improved")
    assert "1 improved" in out


def test_a_cell_of_one_or_two_rounds_has_no_verdict_of_its_own(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One slow round is no evidence; a whole family's shift still is."""
    for number, slow in ((1, None), (2, {THREADS.name: 1.9})):
        write_run(storage, number, run_data(rng(number), n_rounds=2, slow=slow))
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.startswith(THREADS.name))
    assert "2+2 rounds: too few for a verdict of its own" in line
    assert line.rstrip().endswith("ok")
    write_run(storage, 3, run_data(rng(3), n_rounds=2, slow={"cpu_loop": 1.3}))
    code, out, _ = check(capsys, storage, "--baseline", "1", "--current", "3")
    assert code == 1, out
    assert "REGRESSION: 1 shift(s): cpu_loop:*" in out


def test_a_minimum_effect_can_name_a_groups_model(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.5})
    code, _, _ = check(capsys, storage)
    assert code == 1
    code, out, _ = check(capsys, storage, "--min-effect-group", "cpu_loop:* threads=0.6")
    assert code == 0, out
    code, out, _ = check(capsys, storage, "--min-effect-group", "cpu_loop:* serial=0.6")
    assert code == 1, out


def test_slowdown_below_minimum_effect_is_not_a_regression(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.06})
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    code, out, _ = check(capsys, storage, "--min-effect", "3%")
    assert code == 1
    assert flagged(out) == {THREADS.name}


def test_min_effect_per_group(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2, slow={"cpu_loop": 1.15, "io_sleep": 1.15})
    code, out, _ = check(capsys, storage)
    assert code == 1
    assert {"cpu_loop", "io_sleep"} == {name.split("[")[0][5:] for name in flagged(out)}
    code, out, _ = check(capsys, storage, "--min-effect-group", "io_sleep*=0.2")
    assert code == 1
    assert flagged(out)
    assert all(name.startswith("test_cpu_loop") for name in flagged(out))
    assert "minimum effect 10% (io_sleep*: 20%)" in out
    # A pattern may also name one cell by its fullname.
    pattern = f"*{THREADS.name.replace('[', '[[]')}={0.5}"
    code, out, _ = check(capsys, storage, "--min-effect-group", pattern)
    assert THREADS.name not in flagged(out)


# -- fallbacks ----------------------------------------------------------------------


def test_summary_only_runs_fall_back_to_threshold_and_say_so(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1, save_data=False)
    save(storage, 2, save_data=False, slow={THREADS.name: 1.15})
    code, out, _ = check(capsys, storage)
    assert code == 1
    assert flagged(out) == {THREADS.name}
    assert "threshold fallback for 8 of 8 cells (8 with no round data)" in out
    assert "--benchmark-save-data" in out
    assert "threshold (no round data)" in row_of(out, THREADS)


def test_too_few_rounds_fall_back_to_threshold_and_say_so(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in (1, 2):
        write_run(storage, number, run_data(rng(number), n_rounds=3))
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    assert "threshold fallback for 8 of 8 cells (8 with too few rounds)" in out
    assert "needs at least 5+5 rounds" in out
    assert "threshold (3+3 rounds, min p 0.05)" in row_of(out, THREADS)


def test_mixed_rounds_describe_both(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = (run_data(rng(n), n_rounds=10) for n in (1, 2))
    for bench in first["benchmarks"][:2]:
        del bench["stats"]["data"]
    write_run(storage, 1, first)
    write_run(storage, 2, second)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "for 6 of 8 cells" in out
    assert "threshold fallback for 2 of 8 cells (2 with no round data)" in out


# -- choosing the runs --------------------------------------------------------------


def test_default_is_latest_against_previous(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1, slow={THREADS.name: 2.0})
    save(storage, 2)
    save(storage, 3)
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "baseline: run 0002" in out
    assert "current:  run 0003" in out


def test_runs_by_number_and_by_file(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    slow = save(storage, 2, slow={THREADS.name: 1.3})
    save(storage, 3)
    code, out, _ = check(capsys, storage, "--baseline", "0001", "--current", "2")
    assert code == 1
    assert "baseline: run 0001" in out
    assert "current:  run 0002" in out
    code, out, _ = check(capsys, storage, "-b", slow, "-c", "3")
    assert code == 0
    assert "1 improved" in out
    # --current alone: the run before it is the baseline; --baseline alone: the latest.
    code, out, _ = check(capsys, storage, "--current", "2")
    assert code == 1
    assert "baseline: run 0001" in out
    code, out, _ = check(capsys, storage, "--baseline", "2")
    assert code == 0
    assert "current:  run 0003" in out


def test_folders_stand_for_their_latest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path / "baseline", 7)
    save(tmp_path / "results", 1)
    save(tmp_path / "results", 2, slow={"io_sleep": 1.5})
    code, out, _ = check(
        capsys, "--baseline", tmp_path / "baseline", "--current", tmp_path / "results"
    )
    assert code == 1
    assert "baseline: run 0007" in out
    assert "current:  run 0002" in out
    assert all(name.startswith("test_io_sleep") for name in flagged(out))


def test_previous_prefers_the_same_machine_folder(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(storage, 1, run_data(rng(1), n_rounds=20))
    write_run(storage, 2, run_data(rng(2), n_rounds=20, speed=3.0), folder="Other-Machine")
    write_run(storage, 3, run_data(rng(3), n_rounds=20))
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "baseline: run 0001" in out


def test_runs_of_other_machines_are_not_paired_unless_asked(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, machine=other_machine(cpu_count=4))
    code, out, err = check(capsys, storage)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "comes from its machine and interpreter (runner-b · CPython 3.11.7)" in err
    assert "--any-machine" in err
    code, out, _ = check(capsys, storage, "--any-machine", "--mode", "speedup")
    assert code == 0, out
    assert "baseline: run 0001" in out
    # An earlier run of the same machine is found past another machine's run.
    save(storage, 3)
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    assert "baseline: run 0001" in out


def test_reports_main_dispatches_to_check(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.3})
    assert reports_main(["check", str(storage)]) == 1
    assert "REGRESSION" in capsys.readouterr().out


# -- modes and machines -------------------------------------------------------------


def test_other_machine_warns_in_time_mode_and_speedup_mode_absorbs_it(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    # Twice as slow a machine, with one cell truly 25% worse relative to serial.
    save(storage, 2, speed=2.0, slow={THREADS.name: 1.25}, machine=other_machine(cpu_count=4))
    code, out, _ = check(capsys, storage, *NAMED)
    assert code == 1
    assert len(flagged(out)) == 8
    assert "warning: different machines: machine 'runner-a' vs 'runner-b'; CPU count 2 vs 4" in out
    assert "not comparable; consider --mode speedup" in out

    code, out, _ = check(capsys, storage, *NAMED, "--mode", "speedup")
    assert code == 1
    assert flagged(out) == {THREADS.name}
    assert "mode: machine-normalized: speedup over the serial cell of the same run" in out
    assert "2 cell(s) not compared: 2 the serial reference itself" in out
    assert "consider --mode speedup" not in out
    assert re.search(r"\d\.\d+x", row_of(out, THREADS))

    code, out, _ = check(capsys, storage, *NAMED, "--mode", "auto")
    assert code == 1
    assert flagged(out) == {THREADS.name}
    assert "auto: the runs come from different machines or interpreters" in out


def test_auto_mode_uses_time_on_the_same_machine(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2)
    code, out, _ = check(capsys, storage, "--mode", "auto")
    assert code == 0
    assert "mode: absolute time per call (auto: same machine and interpreter)" in out


def test_speedup_mode_misses_what_slows_serial_too(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The documented price of normalizing: a workload slower under every model alike.
    save(storage, 1)
    save(storage, 2, slow={"cpu_loop": 1.5})
    assert check(capsys, storage)[0] == 1
    assert check(capsys, storage, "--mode", "speedup")[0] == 0


def test_efficiency_mode(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2, slow={IO_THREADS.name: 1.3})
    code, out, _ = check(capsys, storage, "--mode", "efficiency")
    assert code == 1
    assert flagged(out) == {IO_THREADS.name}
    assert "efficiency vs ideal" in out
    # io cells carry ideal_s, so even io serial is compared; cpu serial is the reference.
    assert "1 cell(s) not compared" in out
    assert re.search(r"0\.9\d\d +0\.7\d\d", row_of(out, IO_THREADS))


def test_runs_of_two_interpreters_are_refused_unless_asked(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    machine = other_machine(python_version="3.13.1", gil_enabled=False)
    machine["node"] = MACHINE_INFO["node"]
    save(storage, 2, machine=machine)
    # Named or picked, runs of two interpreters are not compared unasked.
    for argv in (NAMED, ()):
        code, out, err = check(capsys, storage, *argv)
        assert code == 2
        assert out == ""
        assert len(err.splitlines()) == 1
        assert "different interpreters" in err or "comes from its machine and interpreter" in err
        assert "--any-python" in err
    code, out, _ = check(capsys, storage, *NAMED, "--any-python")
    assert code == 0
    assert (
        "warning: different interpreters: Python '3.11.7' vs '3.13.1'; GIL enabled True vs False"
        in out
    )
    assert "warning: different machines" not in out


def test_no_serial_cells_in_speedup_mode_is_bad_input(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = [cell for cell in CELLS if cell.model != "serial" and cell.bound == "cpu"]
    for number in (1, 2):
        write_run(storage, number, run_data(rng(number), cells=cells))
    code, _, err = check(capsys, storage, "--mode", "speedup")
    assert code == 2
    assert "none of the 3 cells in common can be compared in speedup mode" in err


def test_cells_only_on_one_side_are_warned(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(storage, 1, run_data(rng(1), cells=CELLS[:6]))
    write_run(storage, 2, run_data(rng(2), cells=CELLS[2:]))
    code, out, _ = check(capsys, storage)
    assert code == 0
    assert "4 cells compared" in out
    assert "2 cell(s) only in the baseline" in out
    assert "2 new cell(s), not in the baseline" in out


def test_cells_without_fullname_match_by_group_and_name(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number, slow in ((1, None), (2, {THREADS.name: 1.3})):
        data = run_data(rng(number), n_rounds=20, slow=slow)
        for bench in data["benchmarks"]:
            del bench["fullname"]
        write_run(storage, number, data)
    code, out, _ = check(capsys, storage)
    assert code == 1
    assert flagged(out) == {THREADS.name}


# -- output -------------------------------------------------------------------------


def test_markdown_summary(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.3}, machine=other_machine())
    summary = tmp_path / "out" / "summary.md"
    code, out, _ = check(capsys, storage, *NAMED, "--mode", "speedup", "--markdown", summary)
    assert code == 1
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## ❌ boundbench check: REGRESSION: 1 of 6 cells slower")
    assert "- mode: machine-normalized: speedup over the serial cell of the same run" in text
    assert "> ⚠️ different machines: machine 'runner-a' vs 'runner-b'" in text
    assert "| cell | baseline | current | change | significance | verdict |" in text
    assert f"| `{THREADS.name}` |" in text
    assert "❌ REGRESSION |" in text
    # the terminal table is printed as well
    assert "REGRESSION" in out


def test_summary_alias_and_passing_markdown(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2)
    summary = tmp_path / "summary.md"
    assert check(capsys, storage, "--summary", summary)[0] == 0
    assert summary.read_text(encoding="utf-8").startswith("## ✅ boundbench check: no regression")


def test_bad_input_also_writes_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.md"
    code, _, err = check(capsys, tmp_path / "nothing-here", "--markdown", summary)
    assert code == 2
    text = summary.read_text(encoding="utf-8")
    assert "bad input (exit 2)" in text
    assert "this is not a pass" in text
    assert "nothing-here" in err


def test_inputs_are_not_modified(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [save(storage, 1), save(storage, 2, slow={THREADS.name: 1.3})]
    before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    for mode in ("time", "speedup", "efficiency"):
        check(capsys, storage, "--mode", mode, "--markdown", tmp_path / "s.md")
    after = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    assert before == after
    assert sorted(p.name for p in storage.rglob("*")) == sorted(
        [MACHINE_DIR, *(p.name for p in paths)]
    )


# -- bad input: exit 2, one line, never a pass ----------------------------------------


def assert_bad(capsys: pytest.CaptureFixture[str], argv: list[str | Path], *needles: str) -> str:
    code, out, err = check(capsys, *argv)
    assert code == 2, out + err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_missing_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad(capsys, [tmp_path / "missing"], "missing: no such file or folder")


def test_empty_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert_bad(capsys, [tmp_path / "empty"], "no saved runs")


def test_missing_baseline(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    assert_bad(capsys, [storage], "missing baseline: no run saved before", "give --baseline")


def test_unknown_run_number(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2)
    assert_bad(capsys, [storage, "--baseline", "9"], "no run numbered 0009", "found: 0001, 0002")


def test_ambiguous_run_number(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    write_run(storage, 1, run_data(rng(5)), folder="Other-Machine")
    save(storage, 2)
    assert_bad(capsys, [storage, "-b", "1"], "2 runs are numbered 0001", "give the file instead")


def test_missing_baseline_file(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = save(storage, 1)
    assert_bad(
        capsys, ["-b", storage / "gone.json", "-c", current], "gone.json: no such run number"
    )


def test_same_run_twice(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(storage, 1)
    save(storage, 2)
    assert_bad(capsys, [storage, "-b", path, "-c", "1"], "are the same file")


def test_no_cells_in_common(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(storage, 1, run_data(rng(1), cells=CELLS[:4]))
    write_run(storage, 2, run_data(rng(2), cells=CELLS[4:]))
    assert_bad(capsys, [storage], "no cells in common", "baseline has 4 benchmark(s)")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty file"),
        ('{"benchmarks": [{"name": ', "not valid JSON (truncated or corrupt?)"),
        ("[1, 2, 3]", "not a pytest-benchmark run"),
        ('{"benchmarks": []}', "no benchmarks"),
        (
            '{"benchmarks": [{"name": "x", "stats": {"median": 1}}]}',
            "no benchmark has boundbench extra_info",
        ),
    ],
    ids=["empty", "truncated", "not-a-run", "no-benchmarks", "not-boundbench"],
)
def test_corrupt_current_file(
    storage: Path, capsys: pytest.CaptureFixture[str], content: str, needle: str
) -> None:
    save(storage, 1)
    bad = storage / MACHINE_DIR / "0002_bad.json"
    bad.write_text(content, encoding="utf-8")
    # Named explicitly, or hiding among the runs that "latest" would choose from.
    assert_bad(capsys, [storage, "--current", bad], "0002_bad.json", needle)
    assert_bad(capsys, [storage], "0002_bad.json", needle)
    assert_bad(capsys, [storage, "--current", "2"], "0002_bad.json", needle)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("median", "fast", "stats.median is 'fast', not a number"),
        ("median", -1.0, "stats.median is -1.0, not a positive time"),
        ("data", "1,2,3", "stats.data is not a list"),
        ("data", [0.1, None, 0.1], "a round time in stats.data is None"),
        ("data", [0.1, float("nan"), 0.1], "a round time in stats.data is nan"),
    ],
)
def test_corrupt_numbers(
    storage: Path, capsys: pytest.CaptureFixture[str], field: str, value: object, needle: str
) -> None:
    save(storage, 1)
    data = run_data(rng(2), n_rounds=20)
    data["benchmarks"][3]["stats"][field] = value
    write_run(storage, 2, data)
    assert_bad(capsys, [storage], CELLS[3].fullname, needle, "corrupt run?")


def test_duplicate_cells(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    data = run_data(rng(2), n_rounds=20)
    data["benchmarks"].append(json.loads(json.dumps(data["benchmarks"][0])))
    write_run(storage, 2, data)
    assert_bad(capsys, [storage], "appears twice")


def test_unwritable_markdown(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(storage, 1)
    save(storage, 2)
    blocker = storage / "file"
    blocker.write_text("", encoding="utf-8")
    code, _, err = check(capsys, storage / MACHINE_DIR, "--markdown", blocker / "summary.md")
    assert code == 2
    assert "cannot write" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--min-effect", "lots"], "not a number like 0.1 or 10%"),
        (["--min-effect", "-0.1"], "must be between 0 and 10"),
        (["--min-effect-group", "io_sleep*"], "expected PATTERN=EFFECT"),
        (["--alpha", "1.5"], "must be between 0 and 1"),
        (["--mode", "fastest"], "invalid choice: 'fastest'"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str | Path], needle: str
) -> None:
    code, _, err = check(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, "--help")
    assert code == 0
    assert "--min-effect-group" in out
    assert "Exit 0: no regression" in out


def test_config_file_sets_the_minimum_effects(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, 1)
    save(storage, 2, slow={THREADS.name: 1.15})
    assert check(capsys, storage)[0] == 1
    (tmp_path / "pyproject.toml").write_text(
        "[tool.boundbench.check]\nmin-effect = 0.1\n"
        "[tool.boundbench.check.min-effect-group]\n"
        f"'{THREADS.group}' = '25%'\n",
        encoding="utf-8",
    )
    code, out, _ = check(capsys, storage)
    assert code == 0, out
    assert "REGRESSION" not in row_of(out, THREADS)
    # The command line comes first: its pattern wins over the config's.
    code, out, _ = check(capsys, storage, "--min-effect-group", f"{THREADS.group}=0.1")
    assert code == 1, out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.boundbench.check]\nmin-effekt = 0.1\n", "unknown key(s) min-effekt"),
        ("[tool.boundbench.check]\nmin-effect = 'lots'\n", "is not a number"),
        ("[tool.boundbench.check\n", "cannot read the config"),
    ],
)
def test_a_bad_config_is_bad_input(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    save(storage, 1)
    save(storage, 2)
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    code, _, err = check(capsys, storage, "--config", config)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    code, _, err = check(capsys, storage, "--config", tmp_path / "missing.toml")
    assert code == 2
    assert "no such config file" in err
