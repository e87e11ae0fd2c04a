"""summary.md as a person reads it: figures with their digits, each sentence once.

A p99 latency of 0.13 ms is 130 µs, never "0 ms"; a duration keeps three significant
digits in the unit that fits; a harness cap shared by io_socket's kept and fresh
connections is said once per model and workload.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from reports._draw import fmt_seconds, fmt_sig
from reports.report import main
from tests._report_fixtures import newer_cells, run_document, synthetic_run, write
from tests.test_report_crossover import NOISE_AT_0, NOISY_LOW, noisy_sweep


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.00013, "130 µs"),
        (0.08, "80.0 ms"),
        (0.0800004, "80.0 ms"),
        (0.00333, "3.33 ms"),
        (0.162, "162 ms"),
        (2.58, "2.58 s"),
        (0.0009997, "1.00 ms"),
        (0.9997, "1.00 s"),
        (4.2e-7, "420 ns"),
        (0.0, "0 s"),
        (float("nan"), "–"),
    ],
)
def test_a_duration_keeps_its_significant_digits_in_the_unit_that_fits(
    seconds: float, text: str
) -> None:
    assert fmt_seconds(seconds) == text


def test_other_figures_keep_theirs() -> None:
    assert [fmt_sig(v) for v in (0.0968, 1.31, 0.13, 99.96, 13242.4)] == [
        "0.0968",
        "1.31",
        "0.130",
        "100",
        "13,242",
    ]


def _summary(tmp_path: Path, benches: list[dict[str, object]]) -> str:
    document = run_document(benches, node="n", when="2025-03-01T00:00:00+00:00", commit="c" * 40)
    src = write(tmp_path / "in" / "0001_x.json", document)
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "-q"]) == 0
    return (out / "summary.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_sub_millisecond_latencies_are_not_printed_as_zero(tmp_path: Path) -> None:
    benches = synthetic_run(seed=1, extras=False)
    for bench in benches:
        extra = bench["extra_info"]
        if extra["bound"] == "net":
            for key in ("latency_p50_ms", "latency_p99_ms"):
                extra[key] = 0.13 if extra["model"] == "selectors" else extra[key] * 0.5
    summary = _summary(tmp_path, benches)
    latency = next(line for line in summary.splitlines() if "p99 latency per style" in line)
    assert "selectors has the lowest median (130 µs)" in latency
    assert "(0 ms)" not in summary
    assert "| 0.130 |" in summary  # the echo table's p99 (ms) column


@pytest.mark.slow
def test_a_cap_shared_by_kept_and_fresh_connections_is_said_once(tmp_path: Path) -> None:
    cells = newer_cells(random.Random(2), connects=("keep", "fresh"), size=1024, pool=32)
    benches = [*synthetic_run(seed=2, net=False, extras=False), *cells]
    summary = _summary(tmp_path, benches)
    efficiency = next(line for line in summary.splitlines() if "**Efficiency vs ideal**" in line)
    for model in ("processes", "interpreters", "dask"):
        said = f" {model} on io_socket runs at most 32 workers for 100 tasks (a harness cap)"
        assert efficiency.count(said) == 1, efficiency
        line = f"- {model} on io_socket (2 cells): the harness caps this pool at 32 workers"
        assert summary.count(line) == 1
    bullets = [line for line in summary.splitlines() if line.startswith("- ")]
    assert len(bullets) == len(set(bullets)), "a sentence is repeated"
    # Speedups keep three significant digits too (99.1×, not 99.14×; 0.90×).
    speedups = re.findall(r"(\d[\d,]*(?:\.\d+)?)×", summary)
    assert speedups
    assert all(len(s.replace(",", "").replace(".", "").lstrip("0")) <= 3 for s in speedups)


def test_the_crossover_sentence_and_the_best_model_table_agree(tmp_path: Path) -> None:
    # Processes a hair ahead at 0 %, inside the two cells' spread: level in both.
    summary = _summary(tmp_path, noisy_sweep(NOISY_LOW, NOISE_AT_0))
    sentence = next(line for line in summary.splitlines() if "CPU share grows" in line)
    assert "level with it within noise at 0 %" in sentence
    assert "processes and asyncio level within noise at 0 %" in sentence
    assert "0–0.91 %" not in sentence
    table = summary.split("### Which model is fastest")[1]
    rows = {line.split(" | ")[1]: line for line in table.splitlines() if "python CPU" in line}
    assert "asyncio 7.00× (within noise)" in rows["python CPU 0%"]
    assert all("within noise" not in row for work, row in rows.items() if work != "python CPU 0%")
    assert 'A runner-up "within noise" cannot be told from the best model here' in table
