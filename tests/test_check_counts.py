"""The check on count runs: counts against counts made the same way, never against a timed
run, judged by thresholds stored as data (``reports/_store.py``), made by one command."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reports import _store
from reports.__main__ import main as reports_main
from reports.check import main as check_main
from tests.fixtures.check.synth import MACHINE_INFO, run_data, write_run

COUNTS = {
    "kind": "instructions",
    "tool": "callgrind",
    "valgrind": "valgrind-3.19.0",
    "flags": ["--tool=callgrind"],
    "cpu_model": "Synthetic CPU",
    "python": "3.11.7",
}


def count_info(**changes: Any) -> dict[str, Any]:
    info = copy.deepcopy(MACHINE_INFO)
    info["boundbench"]["measure"] = {**COUNTS, **changes}
    return info


def save_counts(storage: Path, number: int, sigma: float = 0.0005, **kwargs: Any) -> Path:
    """A count run: 'seconds' are instruction counts, nearly deterministic (sigma)."""
    data = run_data(np.random.default_rng(number), n_rounds=5, sigma=sigma,
                    machine=kwargs.pop("machine", count_info()), **kwargs)  # fmt: skip
    for bench in data["benchmarks"]:  # counts, not seconds: scale to millions
        stats = bench["stats"]
        stats["data"] = [value * 1e9 for value in stats["data"]]
        for key in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev"):
            if key in stats:
                stats[key] *= 1e9
    return write_run(storage, number, data)


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_store, "STORE_DIR", tmp_path / "thresholds")
    return tmp_path / "storage"


def test_a_count_run_is_never_compared_with_a_timed_run(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timed = write_run(storage, 1, run_data(np.random.default_rng(1), n_rounds=5))
    counted = save_counts(storage, 2)
    code = check_main(["--baseline", str(timed), "--current", str(counted)])
    err = capsys.readouterr().err
    assert code == 2
    assert "never compared with a timed run" in err
    assert len(err.strip().splitlines()) == 1


def test_latest_against_previous_picks_a_run_of_the_same_kind(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_counts(storage, 1)
    write_run(storage, 2, run_data(np.random.default_rng(2), n_rounds=5))  # timed, between
    save_counts(storage, 3)
    code = check_main([str(storage)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0001" in out
    assert "0002" not in out
    assert "mode: instructions executed per round" in out


def test_counts_of_another_valgrind_are_not_paired(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = save_counts(storage, 1)
    two = save_counts(storage, 2, machine=count_info(valgrind="valgrind-3.22.0"))
    assert check_main(["--baseline", str(one), "--current", str(two)]) == 2
    assert "not counted the same way (valgrind" in capsys.readouterr().err


def test_a_small_count_change_is_caught_with_stored_thresholds(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [save_counts(storage / "calib", n) for n in range(1, 5)]
    assert reports_main(["thresholds", "--kind", "instructions", *map(str, runs)]) == 0
    store = _store.load("instructions")
    assert store is not None
    assert store.kind == "instructions"
    assert store.provenance["runs_count"] == 4
    assert all(0.002 <= value < 0.02 for value in store.families.values()), store.families
    capsys.readouterr()
    base = save_counts(storage / "ci", 10)
    head = save_counts(storage / "ci", 11, slow={"cpu_loop": 1.03})  # 3 % more work
    assert check_main(["--baseline", str(base), "--current", str(head)]) == 1
    out = capsys.readouterr().out
    flagged = {line.split()[0] for line in out.splitlines()
               if line.rstrip().endswith("REGRESSION") and not line.startswith(" ")}  # fmt: skip
    assert flagged, out
    assert all(name.startswith("test_cpu_loop[") for name in flagged), out
    assert "thresholds from instructions.json (4 unchanged runs" in out
    # unchanged: passes
    again = save_counts(storage / "ci", 12)
    assert check_main(["--baseline", str(base), "--current", str(again)]) == 0


def test_the_store_is_refused_when_corrupt_and_kept_when_a_build_fails(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [save_counts(storage, n) for n in (1, 2)]
    assert reports_main(["thresholds", "--kind", "instructions", *map(str, runs)]) == 0
    path = _store.store_path("instructions")
    before = path.read_text()
    assert json.loads(before)["generated_by"].startswith("python -m reports thresholds")
    timed = write_run(storage, 3, run_data(np.random.default_rng(3), n_rounds=5))
    code = reports_main(["thresholds", "--kind", "instructions", str(runs[0]), str(timed)])
    assert code == 2
    assert "is a time run, not instructions" in capsys.readouterr().err
    assert path.read_text() == before
    path.write_text("{not json")
    save_counts(storage / "x", 1)
    save_counts(storage / "x", 2)
    assert check_main([str(storage / "x")]) == 2
    err = capsys.readouterr().err
    assert "not a threshold store" in err
    assert len(err.strip().splitlines()) == 1
