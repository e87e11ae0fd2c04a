"""Steps and trends over a series of runs: what a pairwise check cannot see.

CI compares each run with the one before it, so a cell that gets 4% slower in each of
five runs never crosses a 10% minimum effect, yet ends 22% slower.  Over the series of
runs of one machine and interpreter, per cell, this looks for:

- **steps**: change points found by e-divisive (Matteson & James 2014, the method of
  MongoDB's performance CI, open-sourced as ``signal-processing-algorithms`` and Apache
  Otava), hierarchical, each split kept only when a permutation test says it is not
  chance; a step counts when the medians of the segments on either side differ by at
  least the minimum effect;
- **trends**: a monotone drift (one-sided Kendall tau on the run order) whose Theil-Sen
  slope adds up to at least the minimum effect over the window.

The e-divisive here is a few lines of numpy: both PyPI packages pin numpy and scipy
versions this project does not use (numpy < 2; numpy == 2.2 and scipy < 1.17), and only
the statistic is needed.  The permutation test is seeded, so a report is reproducible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, theilslopes

DEFAULT_PERMUTATIONS = 199
DEFAULT_PVALUE = 0.05
MIN_SEGMENT = 2


def _q_hat(d: np.ndarray, tau: int) -> float:
    """The scaled energy distance between z[:tau] and z[tau:], from the distance matrix."""
    n = d.shape[0]
    m, k = tau, n - tau
    between = d[:tau, tau:].mean()
    within_x = d[:tau, :tau].sum() / (m * (m - 1)) if m > 1 else 0.0
    within_y = d[tau:, tau:].sum() / (k * (k - 1)) if k > 1 else 0.0
    energy = 2.0 * between - within_x - within_y
    return float(m * k / n * energy)


def _best_split(z: np.ndarray, min_size: int) -> tuple[int, float] | None:
    n = len(z)
    if n < 2 * min_size:
        return None
    d = np.abs(z[:, None] - z[None, :])
    scores = [(_q_hat(d, tau), tau) for tau in range(min_size, n - min_size + 1)]
    q, tau = max(scores)
    return tau, q


def e_divisive(
    series: Sequence[float],
    *,
    pvalue: float = DEFAULT_PVALUE,
    permutations: int = DEFAULT_PERMUTATIONS,
    min_size: int = MIN_SEGMENT,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """Change points of ``series`` as (index where the new segment starts, p-value), sorted.

    Hierarchical: split the segment whose best split is strongest, keep the split if a
    permutation test (shuffling that segment) gives p <= ``pvalue``, repeat.
    """
    z = np.asarray(series, dtype=float)
    rng = np.random.default_rng(seed)
    points: list[tuple[int, float]] = []
    bounds = [0, len(z)]
    while True:
        best: tuple[float, int, int, int] | None = None  # (q, tau, start, end)
        for start, end in itertools.pairwise(bounds):
            found = _best_split(z[start:end], min_size)
            if found is not None and (best is None or found[1] > best[0]):
                best = (found[1], start + found[0], start, end)
        if best is None:
            break
        q, tau, start, end = best
        segment = z[start:end]
        beaten = 0
        for _ in range(permutations):
            shuffled = _best_split(rng.permutation(segment), min_size)
            if shuffled is not None and shuffled[1] >= q:
                beaten += 1
        p = (beaten + 1) / (permutations + 1)
        if p > pvalue:
            break
        points.append((tau, p))
        bounds = sorted({*bounds, tau})
    return sorted(points)


@dataclass(frozen=True)
class Step:
    index: int  # first run of the new level
    change: float  # median after / median before - 1, in the series' unit
    p: float


@dataclass(frozen=True)
class Trend:
    change: float  # over the whole window, from the Theil-Sen slope
    per_run: float
    p: float


def steps(
    values: Sequence[float],
    *,
    pvalue: float = DEFAULT_PVALUE,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> list[Step]:
    """Steps of a positive series (its log is searched, so a step is a ratio)."""
    logs = np.log(np.asarray(values, dtype=float))
    points = e_divisive(logs, pvalue=pvalue, permutations=permutations, seed=seed)
    bounds = [0, *(index for index, _p in points), len(logs)]
    out = []
    for i, (index, p) in enumerate(points):
        before = np.median(values[bounds[i] : index])
        after = np.median(values[index : bounds[i + 2]])
        out.append(Step(index=index, change=float(after / before - 1.0), p=p))
    return out


def trend(values: Sequence[float], *, alternative: str) -> Trend | None:
    """The drift of a positive series over its run order, or None when too short.

    ``alternative`` is "greater" (rising) or "less" (falling): the direction that is
    worse for the unit (times rise, speedups fall).
    """
    n = len(values)
    if n < 4:
        return None
    order = np.arange(n, dtype=float)
    logs = np.log(np.asarray(values, dtype=float))
    if np.all(logs == logs[0]):
        return None
    slope = float(theilslopes(logs, order)[0])
    result = kendalltau(order, logs, alternative=alternative)
    p = float(result.pvalue)
    if math.isnan(p):
        return None
    return Trend(change=math.exp(slope * (n - 1)) - 1.0, per_run=math.exp(slope) - 1.0, p=p)
