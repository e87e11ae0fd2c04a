"""A against B in one session: the paired verdict behind ``python -m reports ab``.

An A/B session (``pytest benchmarks/ --ab-base TREE ...``) measures every cell on side A
(the base tree, or interpreter A) and side B (this tree) in one session, a round of each
side back to back in every pass.  It is saved as one pytest-benchmark run whose
``machine_info["boundbench"]["measure"]`` says ``kind: ab`` and describes the sides; each
benchmark's ``stats`` are side B's rounds, and ``extra_info["ab"] = {"a": [...], "b":
[...]}`` holds both sides' rounds paired by index (pair i = A round i, B round i).

**The statistics.**  Per cell, the paired ratios ``r_i = b_i / a_i``: the host's slow
phases of seconds hit both rounds of a pair alike and cancel in the ratio.  The figure is
their median, with the distribution-free confidence interval of a median from order
statistics: ``[r_(k), r_(n-k+1)]`` of the sorted ratios covers the true median with
probability ``1 - 2 P(X <= k-1)``, ``X ~ Binomial(n, 1/2)`` (the sign-test interval; no
assumption on the ratios' distribution), ``k`` the largest that keeps the coverage at
least the confidence asked.

**The correction.**  ~300 cells are judged at once, so each interval is at confidence
``1 - alpha/m`` (Bonferroni: the chance of any false alarm over the session is at most
``alpha``, default 0.05).  ``m`` is the number of *judged* cells, Tarone's refinement: a
cell with too few pairs for an interval at ``1 - alpha/m`` at all (``2 / 2**n > alpha/m``)
can never raise an alarm, so it is not judged and not counted; ``m`` is the smallest
count for which the cells with enough pairs number no more than ``m``.

A cell is a **regression** when its interval's lower bound is above ``1 + threshold``,
**improved** when its upper bound is below ``1 - threshold``.  Families (``cpu_loop:*``)
and each model within a family are judged as **shifts**, as the check does: the median
of their cells' median ratios (a model's against its family's) against the shift
threshold; cells too short for an interval of their own count there.  Thresholds come
from ``thresholds/ab.json`` (``_store``, made from A/A sessions), else ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _figures
from ._compare import MIN_SHIFT_CELLS, InputError, cell_key
from ._runs import Run

DEFAULT_ALPHA = 0.05
# Without stored thresholds: 5 % for every cell and shift.
DEFAULT_THRESHOLD = 0.05
AB = "ab"
REGRESSION, IMPROVED, OK, UNJUDGED = "regression", "improved", "ok", "not judged"
SAME_AS_A = "same as A"


def measure(run: Run) -> dict[str, Any]:
    facts = (run.machine_info.get("boundbench") or {}).get("measure") or {}
    return facts if isinstance(facts, dict) else {}


def is_session(run: Run) -> bool:
    return measure(run).get("kind") == AB


def side(run: Run, name: str) -> dict[str, Any]:
    """Side ``a`` or ``b`` of the session's facts ({} when it does not say)."""
    facts = measure(run).get(name)
    return facts if isinstance(facts, dict) else {}


def python_of(facts: Mapping[str, Any]) -> str | None:
    """A side's Python version: ``python_version``, or ``python`` as a string or as
    ``{"version": ...}``."""
    given = facts.get("python_version")
    python = facts.get("python")
    if given is None and isinstance(python, dict):
        given = python.get("version")
    elif given is None and isinstance(python, str):
        given = python
    return None if given is None else str(given)


def label(run: Run, name: str) -> str:
    """How a side is named: its ``label`` (``base 1a2b3c4``, ``python 3.13.0``), else
    what tells it apart."""
    facts = side(run, name)
    given = facts.get("label")
    if isinstance(given, str) and given.strip() and given.strip().upper() != name.upper():
        return given.strip()
    if aa_difference(run) is None:
        return SAME_AS_A if name == "b" else "A"
    python = python_of(facts)
    commit = facts.get("commit")
    parts = [str(commit)[:7]] if commit else []
    if python:
        parts.append(f"python {python}")
    return " ".join(parts) or name.upper()


def aa_difference(run: Run) -> str | None:
    """What differs between the two sides (None: an A/A session, the same code,
    interpreter and environment on both sides)."""
    a, b = side(run, "a"), side(run, "b")
    differ = []
    code = (a.get("commit") or a.get("tree"), b.get("commit") or b.get("tree"))
    if code[0] != code[1]:
        differ.append(f"code {code[0]!r} vs {code[1]!r}")
    pythons = [(python_of(s), (s.get("python") or {}).get("path")
                if isinstance(s.get("python"), dict) else None) for s in (a, b)]  # fmt: skip
    if pythons[0] != pythons[1]:
        differ.append(f"python {pythons[0][0]!r} vs {pythons[1][0]!r}")
    if (a.get("env") or {}) != (b.get("env") or {}):
        differ.append(f"env {a.get('env') or {}} vs {b.get('env') or {}}")
    return "; ".join(differ) or None


# -- the cells of a session --------------------------------------------------------


@dataclass(frozen=True)
class Pairs:
    key: str
    name: str
    group: str
    model: str
    ratios: tuple[float, ...]

    @property
    def family(self) -> str:
        return _figures.family(self.group)

    @property
    def median(self) -> float:
        return float(statistics.median(self.ratios))


def _rounds(value: Any, where: str, what: str) -> tuple[float, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(f"{where}: extra_info.ab.{what} is not a list of round times")
    out = []
    for item in value:
        number = item if isinstance(item, int | float) and not isinstance(item, bool) else None
        if number is None or not math.isfinite(number) or number <= 0:
            raise InputError(
                f"{where}: extra_info.ab.{what} holds {item!r}, not a positive time (corrupt"
                " session?)"
            )
        out.append(float(number))
    return tuple(out)


def session_cells(run: Run) -> tuple[list[Pairs], dict[str, str]]:
    """The session's paired cells, and the cells measured on one side only (key -> why).

    InputError when the rounds are not pairs (another count on each side) or not times.
    """
    paired: list[Pairs] = []
    one_sided: dict[str, str] = {}
    seen: set[str] = set()
    for bench in run.benchmarks:
        key = cell_key(bench)
        where = f"{run.path}: {key}"
        if key in seen:
            raise InputError(f"{where}: appears twice (corrupt session?)")
        seen.add(key)
        extra = bench.get("extra_info") or {}
        ab = extra.get(AB)
        if not isinstance(ab, dict):
            one_sided[key] = "side B only (no A/B rounds)"
            continue
        a, b = _rounds(ab.get("a"), where, "a"), _rounds(ab.get("b"), where, "b")
        if not a or not b:
            one_sided[key] = "side B only (no A rounds)" if b else "side A only (no B rounds)"
            continue
        if len(a) != len(b):
            raise InputError(
                f"{where}: {len(a)} A rounds and {len(b)} B rounds; they are paired by"
                " index (corrupt session?)"
            )
        paired.append(
            Pairs(
                key=key,
                name=str(bench.get("name") or key),
                group=str(bench.get("group") or extra.get("workload") or ""),
                model=str(extra.get("model") or ""),
                ratios=tuple(y / x for x, y in zip(a, b, strict=True)),
            )
        )
    return paired, one_sided


# -- order statistics --------------------------------------------------------------


def _tail(k: int, n: int) -> float:
    """P(X <= k), X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)


def order_rank(n: int, alpha: float) -> int | None:
    """The largest k with P(r_(k) <= median <= r_(n-k+1)) >= 1 - alpha; None when even
    the whole range (k = 1, coverage 1 - 2/2**n) falls short."""
    if n < 1 or 2 * 0.5**n > alpha:
        return None
    k = 1
    while k < (n + 1) // 2 and 2 * _tail(k, n) <= alpha:
        k += 1
    return k


def median_interval(values: Sequence[float], alpha: float) -> tuple[float, float] | None:
    """The distribution-free (order-statistic) interval of the median at 1 - alpha."""
    k = order_rank(len(values), alpha)
    if k is None:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[len(ordered) - k]


def pairs_needed(alpha: float) -> int:
    """The fewest pairs with which an interval at 1 - alpha exists: 2 / 2**n <= alpha."""
    return max(1, math.ceil(math.log2(2 / alpha) - 1e-12))


def tarone_m(pairs: Iterable[int], alpha: float) -> int:
    """The m of the Bonferroni level alpha/m: the smallest m >= 1 such that no more than
    m cells have pairs enough for an interval at 1 - alpha/m (the others cannot raise
    an alarm and are not counted; Tarone 1990)."""
    counts = list(pairs)
    for m in range(1, len(counts) + 1):
        need = pairs_needed(alpha / m)
        if sum(1 for n in counts if n >= need) <= m:
            return m
    return max(1, len(counts))


# -- the verdict ---------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Per family (``cpu_loop:*``) for cells; per shift label for shifts."""

    families: Mapping[str, float] = field(default_factory=dict)
    shifts: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_THRESHOLD
    # where they come from, one line
    said: str = ""

    def cell(self, family: str) -> float:
        return self.families.get(family, self.default)

    def shift(self, label: str) -> float:
        family = label.split(" ", 1)[0]
        found = self.shifts.get(label, self.shifts.get(family))
        return self.default if found is None else found


@dataclass(frozen=True)
class CellVerdict:
    key: str
    name: str
    group: str
    model: str
    pairs: int
    ratio: float
    interval: tuple[float, float] | None
    threshold: float
    verdict: str

    @property
    def family(self) -> str:
        return _figures.family(self.group)


@dataclass(frozen=True)
class ShiftVerdict:
    label: str
    # "family" or "model"
    level: str
    keys: tuple[str, ...]
    # the median of the cells' median ratios (a model's divided by its family's)
    ratio: float
    threshold: float
    verdict: str


@dataclass
class Verdict:
    run: Run
    alpha: float
    # the Bonferroni divisor: each judged cell's interval is at 1 - alpha / m
    m: int
    cells: list[CellVerdict]
    shifts: list[ShiftVerdict]
    one_sided: dict[str, str]
    thresholds: Thresholds

    @property
    def confidence(self) -> float:
        return 1 - self.alpha / self.m

    @property
    def needed(self) -> int:
        return pairs_needed(self.alpha / self.m)

    @property
    def judged(self) -> list[CellVerdict]:
        return [cell for cell in self.cells if cell.verdict != UNJUDGED]

    @property
    def unjudged(self) -> list[CellVerdict]:
        return [cell for cell in self.cells if cell.verdict == UNJUDGED]

    @property
    def regressions(self) -> list[CellVerdict]:
        return [cell for cell in self.cells if cell.verdict == REGRESSION]

    @property
    def improvements(self) -> list[CellVerdict]:
        return [cell for cell in self.cells if cell.verdict == IMPROVED]

    @property
    def shift_regressions(self) -> list[ShiftVerdict]:
        return [shift for shift in self.shifts if shift.verdict == REGRESSION]

    @property
    def families(self) -> list[ShiftVerdict]:
        return [shift for shift in self.shifts if shift.level == "family"]

    @property
    def failed(self) -> bool:
        return bool(self.regressions or self.shift_regressions)


def _judge(low: float, high: float, threshold: float) -> str:
    # A hair of tolerance, as the check: an exact 5 % change meets a 5 % threshold.
    if low >= (1.0 + threshold) * (1 - 1e-9) and low > 1.0:
        return REGRESSION
    if high <= (1.0 - threshold) * (1 + 1e-9) and high < 1.0:
        return IMPROVED
    return OK


def _log_median(values: Iterable[float]) -> float:
    return math.exp(float(statistics.median(math.log(value) for value in values)))


def shifts(cells: Sequence[Pairs], thresholds: Thresholds) -> list[ShiftVerdict]:
    """Each family's median of its cells' median ratios, then each model's against its
    family's (3 cells or more each; families with two models or more), as the check."""
    families: dict[str, list[Pairs]] = {}
    for cell in cells:
        families.setdefault(cell.family, []).append(cell)
    out: list[ShiftVerdict] = []
    for fam, members in sorted(families.items()):
        if len(members) < MIN_SHIFT_CELLS:
            continue
        whole = _log_median(cell.median for cell in members)
        out.append(_shift(fam, "family", members, whole, thresholds))
        models: dict[str, list[Pairs]] = {}
        for cell in members:
            models.setdefault(cell.model, []).append(cell)
        if len(models) < 2:
            continue
        for model, own in sorted(models.items()):
            if len(own) >= MIN_SHIFT_CELLS:
                ratio = _log_median(cell.median for cell in own) / whole
                out.append(_shift(f"{fam} {model}", "model", own, ratio, thresholds))
    return out


def _shift(
    label: str, level: str, cells: Sequence[Pairs], ratio: float, thresholds: Thresholds
) -> ShiftVerdict:
    threshold = thresholds.shift(label)
    verdict = _judge(ratio, ratio, threshold)
    return ShiftVerdict(label, level, tuple(c.key for c in cells), ratio, threshold, verdict)


def judge(run: Run, thresholds: Thresholds, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """Every cell and shift of the A/B session ``run``; InputError when it is no A/B
    session, or has no paired cell."""
    if not is_session(run):
        kind = measure(run).get("kind", "time")
        raise InputError(
            f"{run.path} is a {kind} run, not an A/B session (pytest benchmarks/ --ab-base"
            " TREE ... makes one)"
        )
    paired, one_sided = session_cells(run)
    if not paired:
        raise InputError(
            f"{run.path}: no cell has rounds of both sides ({len(one_sided)} one-sided);"
            " nothing to judge"
        )
    m = tarone_m((len(cell.ratios) for cell in paired), alpha)
    out = []
    for cell in sorted(paired, key=lambda c: c.key):
        threshold = thresholds.cell(cell.family)
        interval = median_interval(cell.ratios, alpha / m)
        verdict = UNJUDGED if interval is None else _judge(*interval, threshold)
        out.append(
            CellVerdict(
                key=cell.key,
                name=cell.name,
                group=cell.group,
                model=cell.model,
                pairs=len(cell.ratios),
                ratio=cell.median,
                interval=interval,
                threshold=threshold,
                verdict=verdict,
            )
        )
    found = shifts(paired, thresholds)
    if not found and all(cell.verdict == UNJUDGED for cell in out):
        most = max(cell.pairs for cell in out)
        raise InputError(
            f"{run.path}: nothing can be judged: {len(out)} paired cell(s) of at most {most}"
            f" pairs (an interval at {1 - alpha / m:.3%} needs {pairs_needed(alpha / m)})"
            f" and no family of {MIN_SHIFT_CELLS} cells or more"
        )
    return Verdict(run, alpha, m, out, found, one_sided, thresholds)


# -- A/A noise, for the store ---------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    family: str
    # |median ratio - 1| of every cell of the family in every session
    values: tuple[float, ...]
    cells: int
    worst: tuple[str, float]


def aa_noise(runs: Sequence[Run], min_pairs: int) -> tuple[list[Noise], dict[str, float]]:
    """Per family, |median paired ratio - 1| of its cells over the A/A ``runs`` (cells
    with ``min_pairs`` or more when the family has any: those a verdict can judge); and
    the largest |shift - 1| of each family and model."""
    values: dict[str, list[tuple[str, float]]] = {}
    short: dict[str, list[tuple[str, float]]] = {}
    largest: dict[str, float] = {}
    for run in runs:
        paired, _ = session_cells(run)
        for cell in paired:
            into = values if len(cell.ratios) >= min_pairs else short
            into.setdefault(cell.family, []).append((cell.name, abs(cell.median - 1.0)))
        for found in shifts(paired, Thresholds()):
            moved = abs(found.ratio - 1.0)
            largest[found.label] = max(largest.get(found.label, 0.0), moved)
    out = []
    for fam in sorted(set(values) | set(short)):
        chosen = values.get(fam) or short[fam]
        worst = max(chosen, key=lambda item: item[1])
        names = {name for name, _ in chosen}
        out.append(Noise(fam, tuple(v for _, v in chosen), len(names), worst))
    return out, largest
