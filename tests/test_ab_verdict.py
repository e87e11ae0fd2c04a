"""``python -m reports ab``: the verdict of an A/B session, from synthetic sessions.

A session (``pytest benchmarks/ --ab-base TREE``) is one pytest-benchmark file: side B's
rounds in ``stats``, both sides' rounds paired by index in ``extra_info["ab"]``, the sides
in ``machine_info.boundbench.measure``.  Each pair of rounds here shares the host's phase
(a lognormal factor on both sides: what the pairing cancels), then each round has its
own noise and, rarely, a slow outlier.  Everything is seeded.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reports import _ab, _store
from reports.__main__ import main as reports_main
from reports.ab import main as ab_main
from reports.check import main as check_main
from reports.report import main as report_main
from tests.fixtures.check.synth import (
    CPU_LOOP,
    IO_SLEEP,
    MACHINE_INFO,
    Cell,
    as_run,
    bench,
    run_data,
    write_run,
)

ROOT = Path(__file__).resolve().parents[1]
FASTER_SLOWER = "B (python 3.13.0) is faster on cpu_loop (median 0.87×) and slower on echo (1.06×)"
ECHO_STYLES = ("asyncio", "select", "selectors", "threaded", "uvloop")


def ab_cells() -> tuple[Cell, ...]:
    """cpu_loop (8 cells), io_sleep (8) and echo (5 styles x 3 connection counts)."""
    cells = []
    for tasks in (2, 4):
        for model, median in (("serial", 0.04), ("threads", 0.042), ("processes", 0.022),
                              ("asyncio", 0.041)):  # fmt: skip
            cells.append(Cell("cpu_loop", "cpu", model, tasks, 1, median * tasks / 2, CPU_LOOP))
    for tasks in (10, 20):
        for model, median in (("serial", 0.1), ("threads", 0.0105), ("asyncio", 0.0103),
                              ("generator", 0.0104)):  # fmt: skip
            cells.append(Cell("io_sleep", "io", model, tasks, tasks, median * tasks / 10,
                              IO_SLEEP, 0.01))  # fmt: skip
    for style in ECHO_STYLES:
        for conns in (1, 10, 100):
            cells.append(Cell("echo", "net", style, conns, conns, 0.002 * (1 + conns / 20)))
    return tuple(cells)


def sides(b_python: str | None = None) -> dict[str, Any]:
    """``measure`` of a session: A/A (the same tree and Python on both sides) unless side
    B runs another Python."""
    a = {"label": "A", "tree": "/work/base", "commit": "1a2b3c4d5e",
         "python": {"path": "/usr/bin/python3.11", "version": "3.11.7"}, "env": {}}  # fmt: skip
    b = copy.deepcopy(a)
    b["label"] = "B"
    if b_python is not None:
        a["label"] = "python 3.11.7"
        b.update(label=f"python {b_python}", python={"path": "/opt/py", "version": b_python})
    return {"kind": "ab", "a": a, "b": b, "pairing": "pair i = (A round i, B round i)"}


def session(
    seed: int,
    *,
    cells: Iterable[Cell] | None = None,
    pairs: int | Mapping[str, int] = 20,
    sigma: float = 0.02,
    slow: Mapping[str, float] | None = None,
    measure: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One A/B session as saved.  ``slow``: a cell name, a model or a workload -> the
    factor side B's rounds are multiplied by; ``pairs``: for every cell, or per name."""
    rng = np.random.default_rng(seed)
    slow = dict(slow or {})
    info = copy.deepcopy(MACHINE_INFO)
    info["boundbench"]["profile"] = "standard"
    info["boundbench"]["measure"] = copy.deepcopy(dict(measure or sides()))
    benchmarks = []
    for cell in ab_cells() if cells is None else cells:
        n = pairs if isinstance(pairs, int) else pairs.get(cell.name, 20)
        factor = slow.get(cell.name, slow.get(cell.model, slow.get(cell.workload, 1.0)))
        host = rng.lognormal(0.0, 0.08, n)  # the phase both rounds of a pair share
        a = cell.median * host * rng.lognormal(0.0, sigma, n)
        b = cell.median * factor * host * rng.lognormal(0.0, sigma, n)
        for side in (a, b):  # a rare slow round, on either side
            hiccup = rng.random(n) < 0.03
            side[hiccup] *= 1.0 + rng.exponential(0.3, int(hiccup.sum()))
        entry = bench(cell, [float(v) for v in b])
        entry["extra_info"]["ab"] = {"a": [float(v) for v in a], "b": [float(v) for v in b]}
        benchmarks.append(entry)
    return {
        "machine_info": info,
        "commit_info": {"id": "feedfacecafe", "branch": "head", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": f"2026-12-01T10:00:{seed % 60:02d}.000000+00:00",
        "version": "5.2.3",
    }


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_store, "STORE_DIR", tmp_path / "thresholds")
    return tmp_path / "storage"


def run_ab(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = ab_main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def flagged(out: str) -> set[str]:
    return {line.split()[0] for line in out.splitlines()
            if line.rstrip().endswith("REGRESSION") and line.startswith("test_")}  # fmt: skip


def flagged_shifts(out: str) -> set[str]:
    return {line.strip().split("  ")[0] for line in out.splitlines()
            if line.startswith("  ") and line.rstrip().endswith("REGRESSION")}  # fmt: skip


def test_an_aa_session_passes(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_run(storage, 1, session(1))
    code, out, _ = run_ab(capsys, path)
    assert code == 0, out
    assert "no regression: 31 cells judged" in out
    assert "verdict: no regression (exit 0)" in out
    assert "Bonferroni over the 31 judged cell(s)" in out
    assert "no stored A/B thresholds (thresholds/ab.json): 5% for every cell" in out
    assert "python -m reports thresholds --kind ab" in out
    assert "are level on every family" in out
    # a folder: its latest A/B session, timed runs beside it left alone
    write_run(storage, 2, run_data(np.random.default_rng(2)))
    assert run_ab(capsys, storage)[0] == 0
    assert run_ab(capsys, "1", "--paths", str(storage))[0] == 0


def test_a_ten_percent_cpu_loop_slowdown_names_only_cpu_loop_cells(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_run(storage, 1, session(2, slow={"cpu_loop": 1.10}, measure=sides("3.13.0")))
    summary = storage / "ab.md"
    code, out, _ = run_ab(capsys, path, "--markdown", summary)
    assert code == 1, out
    assert flagged(out), out
    assert all(name.startswith("test_cpu_loop[") for name in flagged(out)), out
    assert len(flagged(out)) >= 6, out
    assert flagged_shifts(out) == {"cpu_loop:*"}, out
    assert "B (python 3.13.0) is slower on cpu_loop (median 1.10×)" in out
    assert "(exit 1)" in out.splitlines()[-1]
    markdown = summary.read_text()
    assert markdown.startswith("## ❌ boundbench ab: REGRESSION")
    assert "| `test_cpu_loop[serial-4-1]` |" in markdown


def test_a_faster_side_b_is_an_improvement_in_the_sentence(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = session(3, slow={"cpu_loop": 0.87, "echo": 1.06}, measure=sides("3.13.0"))
    code, out, _ = run_ab(capsys, write_run(storage, 1, data))
    assert code == 1, out  # echo 6 % slower: its family's shift
    assert FASTER_SLOWER in out


def test_a_fifteen_percent_slowdown_of_one_echo_style_is_caught(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 9 pairs an echo cell, as the standard profile's rounds: too few for an interval at
    # the corrected level, so the style's shift against its family catches it
    pairs = {cell.name: 9 for cell in ab_cells() if cell.workload == "echo"}
    data = session(4, pairs=pairs, slow={"select": 1.15}, measure=sides("3.13.0"))
    code, out, _ = run_ab(capsys, write_run(storage, 1, data))
    assert code == 1, out
    assert flagged_shifts(out) == {"echo:* select"}, out
    assert "; select is slower than the rest of echo (1.1" in out
    assert all(name.startswith("test_echo[select-") for name in flagged(out)), out
    assert "not judged (too few pairs)" in out
    assert "15 cell(s) not judged (too few pairs: at most 9" in out


def test_the_correction_keeps_300_null_cells_at_the_stated_rate() -> None:
    """20 A/A sessions of 300 cells, threshold 0 (the test alone): the family-wise rate of
    false alarms is at most alpha 0.05; without the correction, ~4 % of cells a session."""
    cells = [
        Cell(f"w{fam}", "cpu", f"m{i % 6}", i, 1, 0.01 * (1 + i % 7))
        for fam in range(10)
        for i in range(30)
    ]
    alarms, uncorrected = 0, 0
    for seed in range(20):
        run = as_run(session(100 + seed, cells=cells, pairs=20), seed)
        verdict = _ab.judge(run, _ab.Thresholds(default=0.0))
        assert verdict.m == 300
        assert len(verdict.judged) == 300
        alarms += bool(verdict.regressions or verdict.improvements)
        for found in _ab.session_cells(run)[0]:
            low, high = _ab.median_interval(found.ratios, 0.05) or (0.0, 9.0)
            uncorrected += low > 1 or high < 1
    assert alarms <= 1  # expected at most 20 x 0.05 = 1
    assert uncorrected > 20 * 300 * 0.02  # the uncorrected level: dozens a session


def test_order_statistics_and_the_judged_count() -> None:
    assert _ab.pairs_needed(0.05) == 6
    assert _ab.median_interval([1.0] * 5, 0.05) is None
    # n = 20: [r_(6), r_(15)] covers the median with 1 - 2 P(X <= 5) = 95.9 %
    assert _ab.median_interval([float(i) for i in range(1, 21)], 0.05) == (6.0, 15.0)
    # 32 cells of 11 pairs, 81 of 9 and 180 of 5: only the 32 can reach 1 - 0.05/32
    assert _ab.tarone_m([11] * 32 + [9] * 81 + [5] * 180, 0.05) == 32
    assert _ab.tarone_m([20] * 300, 0.05) == 300


def test_too_few_pairs_is_not_judged_and_listed(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = ab_cells()[0]
    data = session(5, pairs={short.name: 4}, slow={short.name: 1.5})
    code, out, _ = run_ab(capsys, write_run(storage, 1, data))
    assert code == 0, out  # 50 % slower on 4 pairs: no interval, and one cell of 8
    row = next(line for line in out.splitlines() if line.startswith(short.name + " "))
    assert row.endswith("not judged (too few pairs)")
    assert "—" in row
    assert "1 cell(s) not judged (too few pairs: at most 4, an interval at" in out
    assert "Bonferroni over the 30 judged cell(s)" in out


def test_cells_of_one_side_are_listed_not_judged(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = session(6)
    del data["benchmarks"][0]["extra_info"]["ab"]
    data["benchmarks"][1]["extra_info"]["ab"]["a"] = []
    code, out, _ = run_ab(capsys, write_run(storage, 1, data))
    assert code == 0, out
    assert "2 cell(s) measured on one side only, not judged" in out
    assert "side B only (no A/B rounds)" in out
    assert "side B only (no A rounds)" in out
    assert "Bonferroni over the 29 judged cell(s)" in out


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["benchmarks"][0]["extra_info"]["ab"]["a"].pop(), "paired by index"),
        (lambda d: d["benchmarks"][0]["extra_info"]["ab"].update(a=[1, "x"]), "not a positive"),
        (lambda d: d["machine_info"]["boundbench"].pop("measure"), "is a time run, not an A/B"),
    ],
)
def test_bad_sessions_are_one_line_errors(
    storage: Path, capsys: pytest.CaptureFixture[str], change: Any, needle: str
) -> None:
    data = session(7)
    change(data)
    summary = storage / "ab.md"
    code, _, err = run_ab(capsys, write_run(storage, 1, data), "--markdown", summary)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert "not a pass" in summary.read_text()
    assert run_ab(capsys, storage / "nothing")[0] == 2
    assert run_ab(capsys, "--alpha", "2")[0] == 2


def test_the_store_is_built_from_aa_sessions_with_provenance(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [write_run(storage / "aa", n, session(10 + n, sigma=0.04)) for n in (1, 2, 3)]
    assert reports_main(["thresholds", "--kind", "ab", *map(str, runs)]) == 0
    content = json.loads(_store.store_path("ab").read_text())
    assert content["kind"] == "ab"
    assert content["generated_by"].startswith("python -m reports thresholds --kind ab")
    made = content["provenance"]
    assert made["runs_count"] == 3
    assert made["profile"] == "standard"
    assert made["measure"]["kind"] == "ab"
    assert set(content["families"]) == {"cpu_loop:*", "echo:*", "io_sleep:*"}
    for entry in content["families"].values():
        assert entry["threshold"] >= max(0.01, entry["largest"]) - 1e-9
        assert entry["threshold"] >= 1.5 * entry["p95"] - 1e-3
        assert entry["changes"] == 3 * entry["cells"]
    assert "echo:* select" in content["shifts"]
    capsys.readouterr()
    code, out, _ = run_ab(capsys, write_run(storage / "ci", 9, session(19, sigma=0.04)))
    assert code == 0, out
    assert "thresholds from ab.json (3 A/A sessions of" in out
    # an A/B session of two interpreters is no A/A session: refused, the store kept
    before = _store.store_path("ab").read_text()
    other = write_run(storage / "x", 1, session(20, measure=sides("3.13.0")))
    assert reports_main(["thresholds", "--kind", "ab", str(other)]) == 2
    err = capsys.readouterr().err
    assert "is no A/A session (its sides differ: python '3.11.7' vs '3.13.0')" in err
    assert _store.store_path("ab").read_text() == before


def test_a_corrupt_store_is_a_one_line_error(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _store.store_path("ab")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    code, _, err = run_ab(capsys, write_run(storage, 1, session(21)))
    assert code == 2
    assert "not a threshold store" in err
    assert "--kind ab" in err
    assert len(err.strip().splitlines()) == 1


def test_the_check_never_pairs_an_ab_session(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timed = write_run(storage, 1, run_data(np.random.default_rng(1), n_rounds=5))
    earlier = write_run(storage, 2, run_data(np.random.default_rng(2), n_rounds=5))
    ab = write_run(storage, 3, session(22))
    for pair in ((timed, ab), (ab, timed)):
        code = check_main(["--baseline", str(pair[0]), "--current", str(pair[1])])
        err = capsys.readouterr().err
        assert code == 2
        assert "is an A/B session: it is judged on its own pairs (python -m reports ab" in err
        assert len(err.strip().splitlines()) == 1
    # the latest run is the session: the check takes the latest other run, and says so
    code = check_main([str(storage)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"current:  run 0002: {earlier}" in out
    assert "is an A/B session, judged on its own pairs by python -m reports ab" in out
    assert _store.pairing_problem(as_run(session(23)), as_run(session(24))) is not None


def test_the_report_draws_the_ab_chart_table_and_sentence(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(storage, 1, run_data(np.random.default_rng(1), n_rounds=5))
    data = session(25, slow={"cpu_loop": 0.87, "echo": 1.06}, measure=sides("3.13.0"))
    session_file = write_run(storage, 2, data)
    out = tmp_path / "report"
    assert report_main([str(storage), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "8 benchmarks and 31 A/B cells from 2 run(s)" in said
    assert "ab" in said.split("charts (")[1]
    assert (out / "ab.png").exists()
    assert (out / "ab.svg").exists()
    # the timed charts and tables read the timed run alone
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 8
    summary = (out / "summary.md").read_text()
    line = next(li for li in summary.splitlines() if li.startswith("- **A against B, paired**"))
    assert FASTER_SLOWER in line
    table = summary[summary.index("### A against B, paired") :].splitlines()
    rows = [row for row in table if row.startswith("| ")][1:]
    assert rows[0].startswith("| test_cpu_loop[")  # flagged cells first
    families = [row.split(" | ")[0].removeprefix("| ") for row in rows if ":*" in row]
    assert families == ["cpu_loop:*", "echo:*", "io_sleep:*"]
    assert 'id="ab-table"' in (out / "index.html").read_text()
    # a report of the session alone still writes, with the A/B chart
    alone = tmp_path / "alone"
    assert report_main([str(session_file), "--out", str(alone)]) == 0
    assert (alone / "ab.png").exists()


def test_the_check_reads_the_time_store(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slower = {"test_cpu_loop[threads-2-2]": 1.15}
    base = write_run(storage / "ci", 1, run_data(np.random.default_rng(1), n_rounds=20))
    head = write_run(
        storage / "ci", 2, run_data(np.random.default_rng(2), n_rounds=20, slow=slower)
    )
    code = check_main(["--baseline", str(base), "--current", str(head)])
    out = capsys.readouterr().out
    assert code == 1, out  # 10 %, no store
    assert "no stored time thresholds (thresholds/time.json)" in out
    assert "sees: only large changes" in out
    assert "--ab-base TREE" in out
    assert "python -m reports ab" in out
    # noisy unchanged runs: the store widens cpu_loop, and the 15 % is within its noise
    calib = [write_run(storage / "calib", n, run_data(np.random.default_rng(n), n_rounds=20,
                                                      speed=1 + 0.1 * (n % 2)))
             for n in range(3, 7)]  # fmt: skip
    assert reports_main(["thresholds", "--kind", "time", *map(str, calib)]) == 0
    capsys.readouterr()
    code = check_main(["--baseline", str(base), "--current", str(head)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "thresholds: thresholds from time.json (4 unchanged runs" in out
    # the command line still comes first
    assert check_main(["--baseline", str(base), "--current", str(head),
                       "--min-effect-group", "cpu_loop:*=0.1"]) == 1  # fmt: skip
    capsys.readouterr()
    # a store of another profile does not apply
    content = json.loads(_store.store_path("time").read_text())
    content["provenance"]["profile"] = "standard"
    _store.store_path("time").write_text(json.dumps(content))
    assert check_main(["--baseline", str(base), "--current", str(head)]) == 1
    assert "time.json was measured on standard runs and this is a quick run" in (
        capsys.readouterr().out
    )


def test_pyproject_holds_no_calibrated_thresholds() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    table = data["tool"]["boundbench"]["check"]
    assert set(table) <= {"min-effect"}, sorted(table)
