"""The crossover chart stands at the CPU share the work had, not the one asked for.

The ``mixed`` cells run a fixed iteration count per share asked for; on a host twice as
fast that count is a smaller share of each task.  Serial's cells measure the share (CPU
time ÷ wall time, as a user measures theirs), and the chart's points, its sentence and
the best-model table follow it; the axis stays the same.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from reports import _best, _crossover, _palette
from reports._draw import keep_figures
from reports._frame import build_frame
from reports._runs import load_runs
from reports._tables import best_table
from tests._report_fixtures import DOCUMENTED_ITER_S, mixed_sweep, run_document, write

ASKED = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 100.0]
# Twice as fast: half the CPU seconds for the same iterations, the same waits.
FAST = [100 * (a / 2) / (a / 2 + (100 - a)) for a in ASKED]


def drawn(tmp_path: Path, per_iter: float) -> tuple[Any, Figure, Any, Any]:
    """(the chart, its figure, the frame, the runs) for a sweep made on a host whose
    iterations take ``per_iter``."""
    document = run_document(mixed_sweep(random.Random(3), per_iter=per_iter), node="n",
                            when="2025-03-01T00:00:00+00:00", commit="c" * 40)  # fmt: skip
    src = write(tmp_path / f"{per_iter:g}" / "0001_x.json", document)
    runs, _ = load_runs([src])
    frame = build_frame(runs)
    out = tmp_path / f"out{per_iter:g}"
    out.mkdir()
    with keep_figures() as kept:
        chart = _crossover.chart_crossover(frame, _palette.make_palette(frame), out)
    assert chart is not None
    [(name, fig)] = kept
    assert name == "crossover"
    return chart, fig, frame, runs


def _serial_x(fig: Figure, colour: str) -> list[float]:
    python = fig.axes[0]
    [line] = [line for line in python.lines if line.get_color() == colour]
    return [float(x) for x in line.get_xdata()]


def _crossing(sentence: str) -> float:
    found = re.search(r"from a CPU share of about ([\d.]+) %", sentence.split("; Native")[0])
    assert found is not None, sentence
    return float(found.group(1))


@pytest.mark.slow
def test_a_host_twice_as_fast_moves_the_points_and_the_share_not_the_axis(
    tmp_path: Path,
) -> None:
    slow, slow_fig, slow_frame, _ = drawn(tmp_path, DOCUMENTED_ITER_S)
    fast, fast_fig, fast_frame, fast_runs = drawn(tmp_path, DOCUMENTED_ITER_S / 2)
    serial = _palette.make_palette(slow_frame)["serial"]
    assert _serial_x(slow_fig, serial) == pytest.approx(ASKED)
    assert _serial_x(fast_fig, serial) == pytest.approx(FAST)
    # The sentence's share moves with the points ...
    assert "(between the measured 10 % and 25 %)" in slow.sentence
    assert "(between the measured 5.3 % and 14 %)" in fast.sentence
    assert _crossing(fast.sentence) != _crossing(slow.sentence)
    assert "asyncio_processes at 14–82 %" in fast.sentence
    # ... and says what was asked for where the work had another share.
    assert "asked for" not in slow.sentence
    assert "(asked for 10, 25, 50, 75, 90 %, the work had 5.3, 14, 33, 60, 82 %)" in fast.sentence
    # The axis does not: the same ticks, the same words, on both hosts.
    for slow_ax, fast_ax in zip(slow_fig.axes, fast_fig.axes, strict=True):
        assert [t.get_text() for t in slow_ax.get_xticklabels()] == [
            t.get_text() for t in fast_ax.get_xticklabels()
        ]
        assert slow_ax.get_xlabel() == fast_ax.get_xlabel()
    labels = [t.get_text() for t in fast_fig.axes[0].get_xticklabels()]
    assert labels == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert fast_fig.axes[0].get_xlabel() == "CPU share of each task: serial's CPU time ÷ wall time"
    # The best-model table follows the measured share too.
    best = best_table(_best.best_models(fast_frame, _best.stats_by_cell(fast_runs)))
    assert "python CPU 14% (asked 25%)" in set(best["work"])
    slow_best = _best.best_models(slow_frame, {})
    assert "python CPU 25%" in set(best_table(slow_best)["work"])


def test_the_share_comes_from_serial_else_the_seconds_per_iteration_else_as_asked(
    tmp_path: Path,
) -> None:
    cells = mixed_sweep(random.Random(3), per_iter=DOCUMENTED_ITER_S / 2)
    no_serial = [c for c in cells if c["extra_info"]["model"] != "serial"]
    document = run_document(no_serial, node="n", when="2025-03-01T00:00:00+00:00", commit="c")
    runs, _ = load_runs([write(tmp_path / "a" / "0001_a.json", document)])
    frame = build_frame(runs)
    mixed = frame[frame["workload"] == "mixed"]
    assert set(mixed["cpu_share_source"]) == {"per_iter"}
    at_25 = mixed[mixed["cpu_share"] == 0.25]["cpu_share_measured"]
    assert at_25.iloc[0] == pytest.approx(FAST[2] / 100)
    for cell in no_serial:
        cell["extra_info"].pop("seconds_per_iter")
    document = run_document(no_serial, node="n", when="2025-03-01T00:00:00+00:00", commit="c")
    runs, _ = load_runs([write(tmp_path / "b" / "0001_b.json", document)])
    mixed = build_frame(runs)
    mixed = mixed[mixed["workload"] == "mixed"]
    assert set(mixed["cpu_share_source"]) == {"asked"}
    assert (mixed["cpu_share_measured"] == mixed["cpu_share"]).all()
