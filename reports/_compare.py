"""Cell-by-cell comparison of two runs, for ``python -m reports check``.

A cell is identified across runs by its benchmark ``fullname`` (stable by contract).
Each cell is measured in the unit of the mode:

- ``time``: seconds per call (median; each round's time when raw data was saved).
- ``speedup``: serial median / cell time, the serial cell taken from the *same* run
  (same workload, parameters and tasks).  A machine twice as fast makes both faster,
  so the ratio survives a change of machine or a noisy shared runner; a slowdown that
  hits the serial cell and the model alike is, by design, invisible here.
- ``efficiency``: ideal / cell time, ideal being ``ideal_s`` when the benchmark knows
  it, else (CPU work) serial median / min(usable CPUs, tasks) of the same run.

Serial baselines and ideals come from :mod:`reports._figures`, as in the report.

In the normalized modes the serial median is one number per run, so the per-round
values are the cell's own rounds scaled by it: the rank test sees the cell's noise, not
the serial cell's.  The minimum effect (10% by default) is the guard against a serial
median that happens to be off.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _figures, _stats
from ._models import run_facts
from ._runs import Run

MODES = ("time", "speedup", "efficiency")
# Count runs (``_store.run_kind``) are compared in their own unit, never chosen by hand.
COUNTS = "instructions"
HIGHER_IS_BETTER = {"time": False, "speedup": True, "efficiency": True, COUNTS: False}
MODE_TITLES = {
    "time": "absolute time per call",
    COUNTS: "instructions executed per round (count runs)",
    "speedup": "machine-normalized: speedup over the serial cell of the same run",
    "efficiency": "machine-normalized: efficiency vs ideal within the same run",
}
DEFAULT_MIN_EFFECT = 0.10
# A shift is the median change of many cells: its noise is a fraction of one cell's.
DEFAULT_SHIFT_EFFECT = 0.05
# With fewer rounds than this in either run a cell gets no verdict of its own (one or two
# rounds carry no measure of their noise; a single slow round read +90% between hours);
# its change still counts in its family's and its model's shifts.
CELL_MIN_ROUNDS = 3
# The fewest cells whose median change is a shift worth judging.
MIN_SHIFT_CELLS = 3

MWU = "mann-whitney"
THRESHOLD = "threshold"


class InputError(ValueError):
    """Bad input for the check; the message is one line that names what is wrong."""


@dataclass(frozen=True)
class Measure:
    """One cell of one run, in the unit of the mode."""

    key: str
    name: str
    group: str
    value: float
    # per-round values in the mode's unit; empty when the run kept only summary stats
    rounds: tuple[float, ...]
    # IQR / median of the round times, None when too few rounds to say
    spread: float | None = None
    model: str = ""


@dataclass(frozen=True)
class Settings:
    mode: str = "time"
    alpha: float = _stats.DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    # (fnmatch pattern, minimum effect); matched against group, then fullname; first wins
    group_effects: tuple[tuple[str, float], ...] = ()
    # (fnmatch pattern, minimum effect) for shifts, matched against the family ("echo:*")
    # or the family and model ("echo:* select"); first wins
    shift_effects: tuple[tuple[str, float], ...] = ()
    shift_effect: float = DEFAULT_SHIFT_EFFECT
    cell_min_rounds: int = CELL_MIN_ROUNDS

    def shift_effect_for(self, label: str) -> float:
        for pattern, effect in self.shift_effects:
            if fnmatch.fnmatchcase(label, pattern):
                return effect
        return self.shift_effect

    def effect_for(self, measure: Measure) -> float:
        """The group's minimum effect: the first pattern that matches the group, the
        group and model as shifts name them ("echo:* nonblocking"), or the fullname."""
        labels = (measure.group, f"{measure.group} {measure.model}", measure.key)
        for pattern, effect in self.group_effects:
            if any(fnmatch.fnmatchcase(label, pattern) for label in labels):
                return effect
        return self.min_effect


@dataclass(frozen=True)
class Row:
    key: str
    name: str
    group: str
    baseline: float
    current: float
    # current / baseline - 1, in the mode's unit (a time +15%, a speedup -13%)
    change: float
    # how much worse current is, as a factor: 1.15 = 15% slower (or 15% less speedup)
    worse_by: float
    min_effect: float
    method: str
    # why the threshold was used instead of the test, when it was
    fallback: str | None
    # one-sided p-value in the direction of the change, when the test was run
    p: float | None
    rounds: tuple[int, int]
    verdict: str  # "regression", "improved", "ok"
    # IQR / median of the round times in (baseline, current)
    spread: tuple[float | None, float | None] = (None, None)
    model: str = ""

    @property
    def unstable(self) -> bool:
        return any(_figures.is_unstable(value) for value in self.spread)


@dataclass(frozen=True)
class Shift:
    """How a group family moved as a whole, or one model within it against its family.

    One cell's median moves with the host from run to run; the median change over many
    cells moves far less, so a slowdown of a whole workload (every cell of ``cpu_loop``)
    or of one model (every echo cell of one server style) shows here before any single
    cell can prove it.  ``worse_by`` is the median of the cells' worse-by factors; for a
    model, divided by its family's, so a change of the whole family is not counted twice.
    """

    label: str
    keys: tuple[str, ...]
    worse_by: float
    min_effect: float
    verdict: str  # "regression", "improved", "ok"


def shifts(rows: Sequence[Row], settings: Settings) -> list[Shift]:
    """The family shifts, then each model's shift within its family (3+ cells each)."""
    families: dict[str, list[Row]] = {}
    for row in rows:
        families.setdefault(_figures.family(row.group), []).append(row)
    out: list[Shift] = []
    for fam, members in sorted(families.items()):
        if len(members) < MIN_SHIFT_CELLS:
            continue
        whole = _median_factor(members)
        out.append(_shift(fam, members, whole, settings))
        models: dict[str, list[Row]] = {}
        for row in members:
            models.setdefault(row.model, []).append(row)
        if len(models) < 2:
            continue
        for model, own in sorted(models.items()):
            if len(own) >= MIN_SHIFT_CELLS:
                out.append(_shift(f"{fam} {model}", own, _median_factor(own) / whole, settings))
    return out


def _median_factor(rows: Sequence[Row]) -> float:
    return math.exp(statistics.median(math.log(row.worse_by) for row in rows))


def _shift(label: str, rows: Sequence[Row], worse_by: float, settings: Settings) -> Shift:
    effect = settings.shift_effect_for(label)
    if worse_by >= (1.0 + effect) * (1 - 1e-9):
        verdict = "regression"
    elif worse_by <= (1.0 / (1.0 + effect)) * (1 + 1e-9):
        verdict = "improved"
    else:
        verdict = "ok"
    return Shift(label, tuple(row.key for row in rows), worse_by, effect, verdict)


@dataclass
class Comparison:
    settings: Settings
    rows: list[Row]
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    # key -> why it could not be compared (no serial reference, ...)
    not_compared: dict[str, str] = field(default_factory=dict)
    shifts: list[Shift] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "regression"]

    @property
    def shift_regressions(self) -> list[Shift]:
        return [shift for shift in self.shifts if shift.verdict == "regression"]

    @property
    def improvements(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "improved"]


def cell_key(bench: dict[str, Any]) -> str:
    fullname = bench.get("fullname")
    if isinstance(fullname, str) and fullname:
        return fullname
    return f"{bench.get('group') or ''}::{bench.get('name') or '?'}"


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: {what} is {value!r}, not a number (corrupt run?)")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{where}: {what} is {value!r}, not a positive time (corrupt run?)")
    return number


def _times(run: Run, bench: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    """(median, per-round times) of one benchmark, checked: corrupt numbers are errors."""
    where = f"{run.path}: {cell_key(bench)}"
    stats = bench["stats"]
    median = _number(stats.get("median"), where, "stats.median")
    data = stats.get("data")
    if data is None:
        return median, ()
    if not isinstance(data, list):
        raise InputError(f"{where}: stats.data is not a list of round times (corrupt run?)")
    rounds = tuple(_number(value, where, "a round time in stats.data") for value in data)
    return median, rounds


def measures(run: Run, mode: str) -> tuple[dict[str, Measure], dict[str, str]]:
    """Every cell of ``run`` in the unit of ``mode``, and why others cannot be measured."""
    if mode not in (*MODES, COUNTS):
        raise ValueError(f"unknown mode {mode!r}")
    out: dict[str, Measure] = {}
    unmeasured: dict[str, str] = {}
    serial = _figures.serial_medians(run.benchmarks) if mode in ("speedup", "efficiency") else {}
    cpus = _figures.usable_cpus(run.machine_info)
    for bench in run.benchmarks:
        key = cell_key(bench)
        if key in out or key in unmeasured:
            raise InputError(f"{run.path}: benchmark {key} appears twice (corrupt run?)")
        median, rounds = _times(run, bench)
        extra = bench.get("extra_info") or {}
        is_serial = extra.get("model") == "serial"
        reference = serial.get(_figures.baseline_key(extra))
        if mode in ("time", COUNTS):
            scale = None
        elif mode == "speedup":
            if is_serial:
                unmeasured[key] = "the serial reference itself (speedup 1 by definition)"
                continue
            if reference is None:
                unmeasured[key] = "no serial cell with the same workload, parameters and tasks"
                continue
            scale = reference
        else:
            ideal = _figures.ideal_time(extra, reference, cpus)
            if ideal is not None and (not is_serial or "ideal_s" in extra):
                scale = ideal
            elif extra.get("bound") != "cpu":
                unmeasured[key] = "no ideal_s and not CPU work: ideal unknown"
                continue
            elif is_serial:
                unmeasured[key] = "the serial reference itself (its ideal is its own time)"
                continue
            elif reference is None:
                unmeasured[key] = "no serial cell to derive the ideal time from"
                continue
            else:
                unmeasured[key] = "no CPU count in machine_info: ideal unknown"
                continue
        if scale is not None:
            median = scale / median
            rounds = tuple(scale / value for value in rounds)
        out[key] = Measure(
            key=key,
            name=str(bench.get("name") or key),
            group=str(bench.get("group") or extra.get("workload") or ""),
            value=median,
            rounds=rounds,
            spread=_figures.relative_spread(bench["stats"]),
            model=str(extra.get("model") or ""),
        )
    return out, unmeasured


def too_few_rounds(rounds: tuple[int, int], settings: Settings) -> bool:
    """Whether a cell measured in (baseline, current) rounds gets no verdict of its own
    (runs saved without round data are judged on their summary, as before)."""
    return 0 < min(rounds) < settings.cell_min_rounds


def compare_cell(baseline: Measure, current: Measure, settings: Settings) -> Row:
    higher = HIGHER_IS_BETTER[settings.mode]
    effect = settings.effect_for(current)
    worse_by = baseline.value / current.value if higher else current.value / baseline.value
    n_base, n_cur = len(baseline.rounds), len(current.rounds)
    # A hair of tolerance so that an exact 10% change meets a 10% minimum effect.
    slower = worse_by >= (1.0 + effect) * (1 - 1e-9)
    faster = worse_by <= (1.0 / (1.0 + effect)) * (1 + 1e-9)
    p: float | None = None
    fallback: str | None = None
    if not n_base or not n_cur:
        method, fallback = THRESHOLD, "no round data"
    elif not _stats.can_test(n_base, n_cur, settings.alpha):
        method = THRESHOLD
        fallback = f"{n_base}+{n_cur} rounds, min p {_stats.min_p_value(n_base, n_cur):.2g}"
    else:
        method = MWU
        if worse_by >= 1.0:
            p = _stats.p_worse(baseline.rounds, current.rounds, higher_is_better=higher)
            slower = slower and p <= settings.alpha
            faster = False
        else:
            p = _stats.p_better(baseline.rounds, current.rounds, higher_is_better=higher)
            faster = faster and p <= settings.alpha
            slower = False
    if too_few_rounds((n_base, n_cur), settings):
        fallback = f"{n_base}+{n_cur} rounds: too few for a verdict of its own"
        slower = faster = False
    verdict = "regression" if slower else "improved" if faster else "ok"
    return Row(
        key=current.key,
        name=current.name,
        group=current.group,
        baseline=baseline.value,
        current=current.value,
        change=current.value / baseline.value - 1.0,
        worse_by=worse_by,
        min_effect=effect,
        method=method,
        fallback=fallback,
        p=p,
        rounds=(n_base, n_cur),
        verdict=verdict,
        spread=(baseline.spread, current.spread),
        model=current.model,
    )


def compare_runs(baseline: Run, current: Run, settings: Settings) -> Comparison:
    """Compare every cell the two runs share; InputError if there is none to compare."""
    base, base_out = measures(baseline, settings.mode)
    cur, cur_out = measures(current, settings.mode)
    base_keys = set(base) | set(base_out)
    cur_keys = set(cur) | set(cur_out)
    common = sorted(base_keys & cur_keys)
    if not common:
        raise InputError(
            f"no cells in common: the baseline has {len(base_keys)} benchmark(s), the "
            f"current run {len(cur_keys)}, and no fullname appears in both "
            f"(e.g. {_example(base_keys)} vs {_example(cur_keys)})"
        )
    rows: list[Row] = []
    not_compared: dict[str, str] = {}
    for key in common:
        if key in base and key in cur:
            rows.append(compare_cell(base[key], cur[key], settings))
        else:
            not_compared[key] = base_out.get(key) or cur_out.get(key) or "?"
    if not rows:
        reasons = sorted(set(not_compared.values()))
        raise InputError(
            f"none of the {len(common)} cells in common can be compared in "
            f"{settings.mode} mode ({'; '.join(reasons)}); run the serial cells too, "
            "or use --mode time"
        )
    return Comparison(
        settings=settings,
        rows=rows,
        only_baseline=sorted(base_keys - cur_keys),
        only_current=sorted(cur_keys - base_keys),
        not_compared=not_compared,
        shifts=shifts(rows, settings),
    )


def _example(keys: set[str]) -> str:
    return min(keys) if keys else "nothing"


# Facts that make two runs' absolute times incomparable (machine), facts that change how
# concurrency behaves (interpreter: what runs are paired on), and settings a run recorded
# that move figures too (warned, not paired on).
Fact = tuple[str, Callable[[dict[str, Any]], Any]]
_MACHINE_FACTS: tuple[Fact, ...] = (
    ("machine", lambda info: info.get("node")),
    ("CPU", lambda info: (info.get("cpu") or {}).get("brand_raw")),
    (
        "CPU count",
        lambda info: _facts(info).get("cpu_count") or (info.get("cpu") or {}).get("count"),
    ),
    ("usable CPUs", lambda info: _facts(info).get("cpu_usable")),
)
_INTERPRETER_FACTS: tuple[Fact, ...] = (
    ("Python", lambda info: _facts(info).get("python_version") or info.get("python_version")),
    (
        "implementation",
        lambda info: _facts(info).get("python_implementation") or info.get("python_implementation"),
    ),
    ("GIL enabled", lambda info: _facts(info).get("gil_enabled")),
    ("free-threading build", lambda info: _facts(info).get("free_threading_build")),
)
_SETTING_FACTS: tuple[Fact, ...] = (
    ("switch interval", lambda info: _facts(info).get("switch_interval")),
    ("default start method", lambda info: _facts(info).get("default_start_method")),
)


def _facts(info: dict[str, Any]) -> dict[str, Any]:
    facts = info.get("boundbench")
    return facts if isinstance(facts, dict) else {}


def _differences(baseline: Run, current: Run, facts: Sequence[Any]) -> list[str]:
    out = []
    for label, get in facts:
        before, after = get(baseline.machine_info), get(current.machine_info)
        if before is not None and after is not None and before != after:
            out.append(f"{label} {before!r} vs {after!r}")
    return out


def machine_differences(baseline: Run, current: Run) -> tuple[list[str], list[str]]:
    """(machine differences, interpreter and setting differences), as phrases."""
    return (
        _differences(baseline, current, _MACHINE_FACTS),
        _differences(baseline, current, (*_INTERPRETER_FACTS, *_SETTING_FACTS)),
    )


def setting_differences(baseline: Run, current: Run) -> tuple[list[str], list[str]]:
    """(interpreter differences, setting differences), as phrases, for the warnings."""
    return (
        _differences(baseline, current, _INTERPRETER_FACTS),
        _differences(baseline, current, _SETTING_FACTS),
    )


def same_machine(first: Run, second: Run) -> bool:
    """As far as both runs tell (a fact one of them lacks is no clash)."""
    return not _differences(first, second, _MACHINE_FACTS)


def same_interpreter(first: Run, second: Run) -> bool:
    """Same implementation, version and GIL state (free-threading build, GIL on or off)."""
    return not _differences(first, second, _INTERPRETER_FACTS)


def environment(run: Run, *, machine: bool = True, interpreter: bool = True) -> tuple[Any, ...]:
    """The facts two runs must share to be paired: the machine's and the interpreter's."""
    facts = (*(_MACHINE_FACTS if machine else ()), *(_INTERPRETER_FACTS if interpreter else ()))
    return tuple(get(run.machine_info) for _label, get in facts)


def interpreter_label(run: Run) -> str:
    """``CPython 3.11.7``, or ``CPython 3.13.1t (GIL off)`` for a free-threaded build."""
    return _figures.interpreter_label(run.machine_info)


def environment_label(run: Run) -> str:
    return f"{run.machine} · {interpreter_label(run)}"


def library_differences(baseline: Run, current: Run) -> list[str]:
    """Libraries whose version differs (or that only one run has installed), as phrases
    naming the models whose figures each shapes (``Model.libraries``, from the run).

    Only libraries both runs record are compared: a run made before the suite recorded a
    library (dask's, from the models' own lists) says nothing about it.
    """
    before = _figures.libraries(baseline.machine_info)
    after = _figures.libraries(current.machine_info)
    shapes: dict[str, list[str]] = {}
    for model, facts in run_facts(current.machine_info).items():
        for library in facts.libraries:
            shapes.setdefault(library, []).append(model)
    out = []
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        if old != new:
            models = shapes.get(name)
            whose = f" (for {', '.join(models)})" if models else ""
            out.append(f"{name} {old or 'absent'} vs {new or 'absent'}{whose}")
    return out
