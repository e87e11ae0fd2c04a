"""The crossover chart stands at the CPU share the work had, not the one asked for.

The ``mixed`` cells run a fixed iteration count per share asked for; on a host twice as
fast that count is a smaller share of each task.  Serial's cells measure the share (CPU
time ÷ wall time, as a user measures theirs), and the chart's points, its sentence and
the best-model table follow it; the axis stays the same.

Its sentence claims only the leads the data supports: a lead holds at a share where the
two cells' rounds show it (or the same side leads at a neighbouring share too); elsewhere
the sides are level "within noise", and the best-model table says so by the same rule.
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
from tests._report_fixtures import (
    DOCUMENTED_ITER_S,
    mixed_cell,
    mixed_sweep,
    run_document,
    write,
)

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


# --- the noise guard ----------------------------------------------------------------

SERIAL_S = 8 * 0.2


def noisy_sweep(
    speedups: dict[str, dict[float, float]],
    iqr: dict[tuple[str, float], float] | None = None,
    *,
    rounds: int = 9,
) -> list[dict[str, Any]]:
    """Cells of one python panel with these speedups over serial, each cell's rounds
    spreading ``iqr`` (IQR ÷ median; 2 % unless named) over ``rounds`` rounds.  Serial
    measures the share asked for; asyncio runs one worker, processes two."""
    rng = random.Random(0)
    cells = []
    for share in sorted(next(iter(speedups.values()))):
        cells.append(mixed_cell(rng, model="serial", share=share, wall=SERIAL_S, spread=0.0,
                                exact_cpu=True, save_data=False))  # fmt: skip
        for model, table in speedups.items():
            wall = SERIAL_S / table[share]
            cell = mixed_cell(rng, model=model, share=share, wall=wall, save_data=False,
                              workers=1 if model == "asyncio" else 2)  # fmt: skip
            spread = (iqr or {}).get((model, share), 0.02)
            q1, q3 = wall * (1 - spread / 2), wall * (1 + spread / 2)
            cell["stats"].update(median=wall, q1=q1, q3=q3, iqr=q3 - q1, rounds=rounds)
            cells.append(cell)
    return cells


def panel(tmp_path: Path, cells: list[dict[str, Any]]) -> tuple[str, str, Any]:
    """(the side clause, the best-model part, the best-model table) of one panel."""
    document = run_document(cells, node="n", when="2025-03-01T00:00:00+00:00", commit="c" * 40)
    runs, _ = load_runs([write(tmp_path / "in" / "0001_x.json", document)])
    frame = build_frame(runs)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    with keep_figures():
        chart = _crossover.chart_crossover(frame, _palette.make_palette(frame), out)
    assert chart is not None
    python = chart.sentence.split(". Each model")[0].split("; Native CPU work")[0]
    clause, best = python.split("; best model: ")
    table = best_table(_best.best_models(frame, _best.stats_by_cell(runs)))
    return clause.removeprefix("Python CPU work, 8 tasks: "), best, table


# The issue's run: processes a hair ahead at the lowest share, where the cells' rounds
# spread 10 %, then behind, then ahead from a crossing between 10 % and 25 %
# (10 + 15 × 2.0 / 2.8 = 20.7 %).  Said as before, that was "processes are ahead of the
# best single-process model only at about 0–0.91 %, 21–100 %".
NOISY_LOW = {
    "asyncio": {0.0: 7.0, 0.1: 6.0, 0.25: 3.0, 0.5: 1.8, 1.0: 1.0},
    "processes": {0.0: 7.2, 0.1: 4.0, 0.25: 3.8, 0.5: 2.0, 1.0: 1.9},
}
NOISE_AT_0 = {("asyncio", 0.0): 0.10, ("processes", 0.0): 0.10}


def test_a_lead_within_the_cells_spread_is_level_not_a_sliver(tmp_path: Path) -> None:
    clause, best, table = panel(tmp_path, noisy_sweep(NOISY_LOW, NOISE_AT_0))
    assert clause == (
        "on this machine, processes overtake the best single-process model from a CPU share"
        " of about 21 % (between the measured 10 % and 25 %), and are level with it within"
        " noise at 0 %"
    )
    assert not re.search(r"\d–\d", clause), clause  # no interval of estimates, no sliver
    # The best model, and the table, by the same rule: level at 0 %, a lead elsewhere.
    assert (
        best
        == "processes and asyncio level within noise at 0 %, asyncio at 10 %, processes from 25 %"
    )
    runner_up = dict(zip(table["work"], table["runner-up"], strict=True))
    assert runner_up["python CPU 0%"] == "asyncio 7.00× (within noise)"
    assert [w for w, r in runner_up.items() if "within noise" in r] == ["python CPU 0%"]


def test_the_same_lead_with_quiet_cells_is_still_named(tmp_path: Path) -> None:
    # 2.9 % ahead, each cell's rounds within 1 %: the rounds show it; alone at the lowest
    # share, it is an interval up to the first crossing.
    quiet = {("asyncio", 0.0): 0.01, ("processes", 0.0): 0.01}
    clause, best, _table = panel(tmp_path, noisy_sweep(NOISY_LOW, quiet))
    assert clause == (
        "processes are ahead of the best single-process model up to about 0.91 % and from"
        " about 21 %"
    )
    assert best.startswith("processes at 0 %, asyncio at 10 %")


# The standard profile: one round a cell, no spread to judge; the 10 % the regression
# check falls back on then decides.  Processes lead by 7 % at 0 %: level; asyncio at
# 10-25 %, processes from 50 % (crossing at 25 + 25 × 1.0 / 1.5 = 33 %).
ONE_ROUND = {
    "asyncio": {0.0: 7.0, 0.1: 6.0, 0.25: 3.0, 0.5: 1.5, 1.0: 1.0},
    "processes": {0.0: 7.5, 0.1: 4.0, 0.25: 2.5, 0.5: 2.5, 1.0: 1.9},
}


def test_with_one_round_a_cell_a_lead_within_ten_percent_is_level(tmp_path: Path) -> None:
    clause, best, table = panel(tmp_path, noisy_sweep(ONE_ROUND, rounds=1))
    assert clause == (
        "on this machine, processes overtake the best single-process model from a CPU share"
        " of about 33 % (between the measured 25 % and 50 %), and are level with it within"
        " noise at 0 %"
    )
    assert best == (
        "processes and asyncio level within noise at 0 %, asyncio at 10–25 %, processes from 50 %"
    )
    within = [w for w, r in zip(table["work"], table["runner-up"], strict=True) if "noise" in r]
    assert within == ["python CPU 0%"]


# Processes ahead by 14-17 % from 50 %, each cell's rounds spreading 40 % there: no share
# shows the lead alone, three neighbours agree.  Crossing at 25 + 25 × 1.0 / 1.3 = 44 %.
NOISY_HIGH = {
    "asyncio": {0.0: 7.0, 0.25: 3.0, 0.5: 1.8, 0.75: 1.4, 1.0: 1.05},
    "processes": {0.0: 3.5, 0.25: 2.0, 0.5: 2.1, 0.75: 1.6, 1.0: 1.2},
}
NOISE_FROM_50 = {(m, x): 0.4 for m in ("asyncio", "processes") for x in (0.5, 0.75, 1.0)}


def test_a_lead_inside_the_noise_holds_where_neighbouring_shares_agree(tmp_path: Path) -> None:
    clause, best, table = panel(tmp_path / "a", noisy_sweep(NOISY_HIGH, NOISE_FROM_50))
    assert clause == (
        "on this machine, processes overtake the best single-process model from a CPU share"
        " of about 44 % (between the measured 25 % and 50 %)"
    )
    assert best == "asyncio at 0–25 %, processes from 50 %"
    assert not table["runner-up"].str.contains("within noise").any()
    # Alone at the top share, the same lead is level: asyncio's (as noisy) hold from 50 %
    # because they agree with the clear ones below.
    alone = {
        "asyncio": {**NOISY_HIGH["asyncio"], 0.5: 2.2, 0.75: 1.7},
        "processes": NOISY_HIGH["processes"],
    }
    clause, best, table = panel(tmp_path / "b", noisy_sweep(alone, NOISE_FROM_50))
    assert clause == (
        "no crossing in the measured range: the best single-process model stays ahead up to"
        " 75 % and is level with processes within noise at 100 % (at 100 %: asyncio 1.1×,"
        " processes 1.2×)"
    )
    assert best == "asyncio at 0–75 %, processes and asyncio level within noise at 100 %"


# Processes clearly ahead from a crossing at 10 + 15 × 3 / 5 = 19 % to one at
# 75 + 25 × 1 / 4 = 81 %; at 50 % a hair behind, inside the cells' 12 % spread: one lead,
# not two with a gap at 50 %.
MIDDLE = {
    "asyncio": {0.0: 7.0, 0.1: 6.0, 0.25: 2.0, 0.5: 2.02, 0.75: 1.5, 1.0: 4.0},
    "processes": {0.0: 3.0, 0.1: 3.0, 0.25: 4.0, 0.5: 2.0, 0.75: 2.5, 1.0: 1.0},
}


def test_leads_either_side_of_a_level_share_merge(tmp_path: Path) -> None:
    noise = {("asyncio", 0.5): 0.12, ("processes", 0.5): 0.12}
    clause, best, _table = panel(tmp_path, noisy_sweep(MIDDLE, noise))
    assert (
        clause == "processes are ahead of the best single-process model between about 19 % and 81 %"
    )
    assert best == (
        "asyncio at 0–10 %, processes at 25 %, processes and asyncio level within noise at 50 %,"
        " processes at 75 %, asyncio at 100 %"
    )


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        ((0.0, "edge"), (5.27, "crossing"), "up to about 5.3 %"),
        ((12.3, "crossing"), (97.0, "edge"), "from about 12 %"),
        ((25.0, "measured"), (100.0, "edge"), "from 25 %"),
        ((12.4, "crossing"), (97.2, "crossing"), "between about 12 % and 97 %"),
        ((25.0, "measured"), (50.0, "measured"), "between 25 % and 50 %"),
        ((9.96, "crossing"), (33.3, "measured"), "between about 10 % and 33 %"),
        ((50.0, "measured"), (50.0, "measured"), "at 50 %"),
    ],
)
def test_share_intervals_read_as_words_with_their_digits(
    start: tuple[float, str], end: tuple[float, str], text: str
) -> None:
    assert _crossover.span_text(start, end) == text


def test_two_runs_on_a_host_twice_as_fast_name_the_same_shares(tmp_path: Path) -> None:
    clauses = []
    for seed in (3, 5):
        cells = mixed_sweep(random.Random(seed), per_iter=DOCUMENTED_ITER_S / 2)
        clause, _best_part, _table = panel(tmp_path / str(seed), cells)
        clauses.append(clause)
        # Noise moves the interpolated crossing, not the shares the sentence names.
        assert "(between the measured 5.3 % and 14 %)" in clause, clause
        assert 5.3 < _crossing(clause) < 14.3
    # The two runs' noise puts the crossing at 9.8 and 11 %: within the bracket, no level
    # share appears or vanishes, nothing else in the clause moves.
    first, second = (re.sub(r"about [\d.]+ %", "about X %", c) for c in clauses)
    assert first == second
