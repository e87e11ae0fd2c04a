"""The statistics of the regression check: a rank test that knows its own limits.

Two runs of one cell are compared round by round with the Mann-Whitney U test (as asv
does), one-sided: "are the current rounds worse than the baseline's?".  The test makes
no assumption about the shape of the timing distribution (skewed, with outliers), but
it cannot say much with few rounds: with 3 rounds on each side the smallest p-value it
can ever give is 1/20 = 0.05.  ``min_p_value`` tells the caller so, and the caller
falls back to a plain threshold instead of pretending to have tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import mannwhitneyu

DEFAULT_ALPHA = 0.01


def min_p_value(n1: int, n2: int) -> float:
    """The smallest one-sided p-value Mann-Whitney U can give for samples of n1 and n2.

    Reached when the samples do not overlap at all: one ordering out of C(n1+n2, n1).
    """
    if n1 < 1 or n2 < 1:
        return 1.0
    orderings = math.comb(n1 + n2, n1)
    try:
        return 1.0 / orderings
    except OverflowError:  # more orderings than a float can count: p is as good as 0
        return 0.0


def can_test(n1: int, n2: int, alpha: float) -> bool:
    """Whether samples this small can reach significance at ``alpha`` at all."""
    return min_p_value(n1, n2) <= alpha


def p_worse(
    baseline: Sequence[float], current: Sequence[float], *, higher_is_better: bool
) -> float:
    """One-sided Mann-Whitney p-value for "current is worse than baseline".

    Worse means larger for times and smaller for speedups and efficiencies.
    """
    alternative = "less" if higher_is_better else "greater"
    return _mwu(current, baseline, alternative)


def p_better(
    baseline: Sequence[float], current: Sequence[float], *, higher_is_better: bool
) -> float:
    """One-sided Mann-Whitney p-value for "current is better than baseline"."""
    alternative = "greater" if higher_is_better else "less"
    return _mwu(current, baseline, alternative)


def _mwu(x: Sequence[float], y: Sequence[float], alternative: str) -> float:
    if not x or not y:
        return 1.0
    # All rounds equal (a coarse timer, a constant ratio): no evidence either way, and
    # the normal approximation would divide by a zero variance.
    if min(min(x), min(y)) == max(max(x), max(y)):
        return 1.0
    result = mannwhitneyu(x, y, alternative=alternative, method="auto")
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p
