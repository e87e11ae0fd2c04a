"""The check's statistics: it catches a 15% slowdown and does not cry wolf.

Runs are synthetic with seeded noise: lognormal round times (sigma 3-5%, the spread of
pedantic rounds on a quiet machine) plus a 5% chance per round of a slow outlier.
Every figure below is deterministic for the seeds used; the bounds leave room so that
a change of numpy's generator would not flip them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports import _stats
from reports._compare import Settings, compare_runs
from tests.fixtures.check.synth import CELLS, as_run, run_data

SEEDS = 200
DEFAULT = Settings()
TARGET = CELLS[1]  # cpu_loop under threads


def null_rates(n_rounds: int, sigma: float, *, save_data: bool = True) -> tuple[float, float]:
    """(false alarms per cell, runs with any false alarm) over SEEDS pairs of like runs."""
    cells_flagged = runs_flagged = compared = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        kwargs = {"n_rounds": n_rounds, "sigma": sigma, "save_data": save_data}
        baseline = as_run(run_data(rng, **kwargs), 1)  # type: ignore[arg-type]
        current = as_run(run_data(rng, **kwargs), 2)  # type: ignore[arg-type]
        comparison = compare_runs(baseline, current, DEFAULT)
        compared += len(comparison.rows)
        cells_flagged += len(comparison.regressions)
        runs_flagged += bool(comparison.regressions)
    return cells_flagged / compared, runs_flagged / SEEDS


def detection(n_rounds: int, sigma: float, factor: float = 1.15) -> tuple[float, int]:
    """(share of runs where TARGET, made ``factor`` slower, is flagged; other cells flagged)."""
    hits = others = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(10_000 + seed)
        baseline = as_run(run_data(rng, n_rounds=n_rounds, sigma=sigma), 1)
        slow = {TARGET.name: factor}
        current = as_run(run_data(rng, n_rounds=n_rounds, sigma=sigma, slow=slow), 2)
        names = {row.name for row in compare_runs(baseline, current, DEFAULT).regressions}
        hits += TARGET.name in names
        others += len(names - {TARGET.name})
    return hits / SEEDS, others


def test_defaults() -> None:
    assert DEFAULT.alpha == 0.01
    assert DEFAULT.min_effect == 0.10
    assert DEFAULT.mode == "time"


def test_min_p_value() -> None:
    assert _stats.min_p_value(3, 3) == pytest.approx(1 / 20)
    assert _stats.min_p_value(5, 5) == pytest.approx(1 / 252)
    assert not _stats.can_test(4, 4, 0.01)  # 1/70
    assert _stats.can_test(5, 5, 0.01)
    assert _stats.min_p_value(0, 5) == 1.0


def test_p_values_point_the_right_way() -> None:
    low, high = [1.0, 1.1, 1.2, 1.05, 1.15], [2.0, 2.1, 2.2, 2.05, 2.15]
    # times going up is worse; speedups going up is better
    assert _stats.p_worse(low, high, higher_is_better=False) == pytest.approx(1 / 252)
    assert _stats.p_better(low, high, higher_is_better=False) == 1.0
    assert _stats.p_better(low, high, higher_is_better=True) == pytest.approx(1 / 252)
    # identical constant samples: no evidence, and no warning from a zero variance
    assert _stats.p_worse([1.0] * 10, [1.0] * 10, higher_is_better=False) == 1.0
    assert _stats.p_worse([], [1.0], higher_is_better=False) == 1.0


def test_p_value_is_finite_with_ties_and_large_samples() -> None:
    rng = np.random.default_rng(0)
    coarse = [round(float(x), 2) for x in rng.normal(1.0, 0.01, 2000)]
    p = _stats.p_worse(coarse[:1000], coarse[1000:], higher_is_better=False)
    assert 0.0 <= p <= 1.0
    assert not math.isnan(p)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_rounds", "sigma", "per_run_bound"),
    [(5, 0.05, 0.05), (10, 0.03, 0.01), (20, 0.05, 0.01)],
    ids=["5rounds-5pct", "10rounds-3pct", "20rounds-5pct"],
)
def test_false_alarm_rate_with_round_data(
    n_rounds: int, sigma: float, per_run_bound: float
) -> None:
    per_cell, per_run = null_rates(n_rounds, sigma)
    # The requirement: at most 1% of cells flagged when nothing changed.
    assert per_cell <= 0.01
    # And whole runs of 8 cells, where noise allows (5 rounds of 5% noise is the worst).
    assert per_run <= per_run_bound


@pytest.mark.slow
def test_false_alarm_rate_threshold_fallback() -> None:
    # The quick profile's 3 rounds: the test cannot run, the 10% threshold decides.
    per_cell, _ = null_rates(3, 0.03)
    assert per_cell <= 0.01


@pytest.mark.slow
def test_false_alarm_rate_summary_only() -> None:
    per_cell, _ = null_rates(10, 0.03, save_data=False)
    assert per_cell <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_rounds", "sigma", "least"),
    [(10, 0.03, 0.95), (20, 0.05, 0.95)],
    ids=["10rounds-3pct", "20rounds-5pct"],
)
def test_a_15_percent_slowdown_is_caught_in_that_cell_only(
    n_rounds: int, sigma: float, least: float
) -> None:
    caught, others = detection(n_rounds, sigma)
    assert caught >= least
    assert others == 0


def test_a_large_slowdown_is_caught_even_on_the_threshold() -> None:
    caught, others = detection(3, 0.03, factor=1.5)
    assert caught == 1.0
    assert others / (SEEDS * (len(CELLS) - 1)) <= 0.01
