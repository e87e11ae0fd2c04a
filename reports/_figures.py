"""The derived figures, in one place: serial baseline, ideal, speedup, efficiency, spread.

The report (``_frame.py``) and the check (``_compare.py``) both call these, so a cell's
speedup or efficiency is the same number on the page and in the verdict.

- A cell's **serial baseline** is the median of the ``serial`` cells of the same run with
  the same workload, parameters and tasks (one cell in practice; the median of them
  should a run hold more than one).
- The **ideal** is the physical limit, the same for every model of a cell: ``ideal_s``
  from ``extra_info`` when the benchmark knows it (I/O: one task's duration; mixed),
  else for CPU work serial median / min(usable cores, tasks).  Not the pool's own size:
  a pool of one worker on 4 tasks on 2 cores is judged against 2 cores, and so is
  serial, which therefore scores 0.5 there, not 1.0.
- **speedup** = serial median / median; **efficiency** = ideal / median (1.0 is the limit).
- A cell is **unstable** when its rounds spread more than ``UNSTABLE_SPREAD`` around the
  median (IQR / median, as pyperf warns on a large standard deviation).
- A model's **lead** over the next best **holds** where the rounds show it or a
  neighbouring point of the sweep agrees (``leads_that_hold``), else they are level.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

# IQR / median above this marks a cell unstable.  10% is pyperf's limit for stdev / mean
# and the check's default minimum effect: a cell whose middle half of rounds spans more
# than the smallest change we claim to detect cannot show that change reliably.  The IQR,
# not the standard deviation: one hiccup among 5 rounds inflates the stdev but leaves the
# median, the figure we report and compare, where it was.
UNSTABLE_SPREAD = 0.10
# Below this many rounds the quartiles are the extremes: no spread is claimed.
MIN_ROUNDS_FOR_SPREAD = 3

BaselineKey = tuple[str, str, int | None]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def params_key(params: Any) -> str:
    """The workload's parameters as a stable JSON string (sorted keys), ``{}`` if none."""
    if not isinstance(params, dict):
        return "{}"
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def baseline_key(extra: Mapping[str, Any]) -> BaselineKey:
    """(workload, parameters, tasks): what a cell shares with its serial baseline."""
    return (str(extra.get("workload")), params_key(extra.get("params")), _int(extra.get("tasks")))


def usable_cpus(machine_info: Mapping[str, Any]) -> int | None:
    """The cores the run could use: ``cpu_usable``, else ``cpu_count``, else pytest's count."""
    facts = machine_info.get("boundbench")
    facts = facts if isinstance(facts, dict) else {}
    cpu = machine_info.get("cpu")
    cpu = cpu if isinstance(cpu, dict) else {}
    for value in (facts.get("cpu_usable"), facts.get("cpu_count"), cpu.get("count")):
        number = _int(value)
        if number is not None and number > 0:
            return number
    return None


def serial_medians(benchmarks: Iterable[Mapping[str, Any]]) -> dict[BaselineKey, float]:
    """The serial baseline of every (workload, parameters, tasks) of one run."""
    found: dict[BaselineKey, list[float]] = {}
    for bench in benchmarks:
        extra = bench.get("extra_info") or {}
        if extra.get("model") != "serial":
            continue
        median = _positive((bench.get("stats") or {}).get("median"))
        if median is not None:
            found.setdefault(baseline_key(extra), []).append(median)
    return {key: statistics.median(values) for key, values in found.items()}


def ideal_time(
    extra: Mapping[str, Any], serial_median: float | None, cpus: int | None
) -> float | None:
    """The cell's ideal time, or None when it cannot be known (see the module doc)."""
    given = _positive(extra.get("ideal_s"))
    if given is not None:
        return given
    if extra.get("bound") != "cpu" or serial_median is None or cpus is None:
        return None
    tasks = _int(extra.get("tasks"))
    width = cpus if tasks is None or tasks < 1 else min(cpus, tasks)
    return serial_median / max(1, width)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator for positive finite numbers, else None."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) else None


def relative_spread(stats: Mapping[str, Any]) -> float | None:
    """IQR / median of a benchmark's rounds, or None with too few rounds to say."""
    rounds = _int(stats.get("rounds"))
    data = stats.get("data")
    if rounds is None and isinstance(data, list):
        rounds = len(data)
    if rounds is None or rounds < MIN_ROUNDS_FOR_SPREAD:
        return None
    median = _positive(stats.get("median"))
    iqr = _number(stats.get("iqr"))
    if iqr is None:
        q1, q3 = _number(stats.get("q1")), _number(stats.get("q3"))
        iqr = None if q1 is None or q3 is None else q3 - q1
    if median is None or iqr is None or iqr < 0:
        return None
    return iqr / median


def is_unstable(spread: float | None, limit: float = UNSTABLE_SPREAD) -> bool:
    return spread is not None and spread > limit


def family(group: str) -> str:
    """The glob that stands for a group's family: ``cpu_loop:tasks=2`` -> ``cpu_loop:*``.

    Groups are named ``FAMILY:qualifiers`` or just ``FAMILY`` (``seed``); new families
    (mixed, scale, ...) follow without a list to update here.
    """
    head, sep, _ = group.partition(":")
    return f"{head}:*" if sep else group


def cap_limit(extra: Mapping[str, Any]) -> float | None:
    """The best efficiency a harness-capped pool can reach on waiting work, else None.

    ``workers_cap`` is set when the harness ran fewer workers than tasks (e.g. processes
    capped at 32 on 100 I/O tasks): the tasks then wait in ceil(tasks / cap) waves, and
    the cell can reach at most 1 / waves of the ideal, whatever the model.
    """
    cap = _int(extra.get("workers_cap"))
    tasks = _int(extra.get("tasks"))
    if cap is None or tasks is None or cap < 1 or cap >= tasks:
        return None
    if extra.get("bound") == "cpu":
        return None  # a cap at or above the core count costs CPU work nothing
    return 1.0 / math.ceil(tasks / cap)


# The host was busy when the 1-minute load average before the run is above this multiple
# of the core count: nothing of ours is running yet, so half the cores busy with other
# work already moves CPU figures.  (A run just before ours lifts it too: the warning says
# "may".)  The load at the end is recorded, not judged: a threaded echo server's hundred
# threads alone lift it far above the core count on a quiet host.
BUSY_LOAD_START = 0.5
# Other processes' share of every core just before the run above which it was busy.
BUSY_OTHER_SHARE = 0.25


def _load(value: Any) -> float | None:
    if isinstance(value, list | tuple) and value:
        return _number(value[0])
    return None


def host_load_warning(machine_info: Mapping[str, Any]) -> str | None:
    """One phrase when the host was busy with other work as the run started, else None.

    From the share of the cores that other processes used just before the run
    (``other_cpu_start``); runs saved without it are judged by their 1-minute load
    average, which also counts a run that ended within the last minute or so.
    """
    facts = machine_info.get("boundbench")
    if not isinstance(facts, dict):
        return None
    cores = _int(facts.get("cpu_count")) or usable_cpus(machine_info)
    other = _number(facts.get("other_cpu_start"))
    if other is not None:
        if other <= BUSY_OTHER_SHARE:
            return None
        where = f" of {cores} cores" if cores else ""
        return (
            f"host busy: other processes used {other:.0%}{where} just before the run"
            f" started (above {BUSY_OTHER_SHARE:.0%}); its figures may be slow or noisy"
        )
    if not cores:
        return None
    start = _load(facts.get("load_avg_start"))
    if start is None or start <= BUSY_LOAD_START * cores:
        return None
    return (
        f"host busy: load average {start:.2f} before the run started"
        f" (above {BUSY_LOAD_START:g} x {cores} cores); its figures may be slow or noisy"
    )


def _facts(machine_info: Mapping[str, Any]) -> Mapping[str, Any]:
    facts = machine_info.get("boundbench")
    return facts if isinstance(facts, dict) else {}


def interpreter(machine_info: Mapping[str, Any]) -> tuple[str, str, bool, bool]:
    """(implementation, version, free-threading build, GIL enabled) of a run.

    What decides how concurrency behaves, and so what the check and the history pair runs
    on: a free-threaded 3.13 with the GIL off is another interpreter than 3.13 with it.
    A run that does not say whether the GIL was on had it on (every build before 3.13).
    """
    facts = _facts(machine_info)
    impl = str(
        facts.get("python_implementation") or machine_info.get("python_implementation") or "Python"
    )
    version = str(facts.get("python_version") or machine_info.get("python_version") or "?")
    free = bool(facts.get("free_threading_build", False))
    gil = facts.get("gil_enabled")
    return impl, version, free, True if gil is None else bool(gil)


def interpreter_label(machine_info: Mapping[str, Any]) -> str:
    """``CPython 3.11.7``; a free-threaded build says so and whether its GIL was on:
    ``CPython 3.13.1t (GIL off)``."""
    impl, version, free, gil = interpreter(machine_info)
    label = f"{impl} {version}{'t' if free else ''}"
    if free:
        label += " (GIL on)" if gil else " (GIL off)"
    return label


def run_settings(machine_info: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """(switch interval in seconds, start method of the process pools) a run used.

    The start method is the one the processes model was given (``method.start_method``,
    schema 2), else the platform's default that the run recorded.
    """
    facts = _facts(machine_info)
    method = facts.get("method")
    start = method.get("start_method") if isinstance(method, dict) else None
    start = start or facts.get("default_start_method")
    return _positive(facts.get("switch_interval")), str(start) if start else None


def environment_label(machine: str, machine_info: Mapping[str, Any]) -> str:
    """Machine, interpreter, GIL state, switch interval and start method, for one legend."""
    impl, version, free, gil = interpreter(machine_info)
    switch, start = run_settings(machine_info)
    parts = [machine, f"{impl} {version}{'t' if free else ''}", f"GIL {'on' if gil else 'off'}"]
    if switch is not None:
        parts.append(f"switch {switch * 1e3:g} ms")
    if start:
        parts.append(start)
    return " · ".join(parts)


def libraries(machine_info: Mapping[str, Any]) -> dict[str, str | None]:
    """``machine_info["boundbench"]["libraries"]``: distribution -> version, None where it
    was not installed ({} if the run records none)."""
    facts = machine_info.get("boundbench")
    found = facts.get("libraries") if isinstance(facts, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(name): None if v is None else str(v) for name, v in found.items()}


# --- which model is best, and by how much -------------------------------------------

# Confidence of the interval on a best model's speedup, and its bootstrap resamples.
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
# Below this efficiency a model is said to fall off on the scale chart.
SCALE_EFFICIENCY = 0.80


def round_times(stats: Mapping[str, Any]) -> tuple[float, ...]:
    """Each round's time (``stats.data``, saved with --benchmark-save-data), else ()."""
    data = stats.get("data")
    if not isinstance(data, list):
        return ()
    times = tuple(_positive(value) for value in data)
    return () if any(value is None for value in times) else times  # type: ignore[return-value]


def lead_intervals(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where a difference is above zero, as (from, to) x ranges, crossings interpolated.

    ``points`` are (x, difference) measured at increasing x; between two measured x the
    difference is taken as linear, so a sign change at x0 < x1 crosses zero at
    x0 + (x1 - x0) * d0 / (d0 - d1).  A range that starts at the first x (or ends at the
    last) was ahead already there: nothing is claimed beyond the measured range.
    """
    ordered = sorted(points)
    out: list[tuple[float, float]] = []
    start: float | None = None
    for i, (x, d) in enumerate(ordered):
        if i == 0:
            start = x if d > 0 else None
            continue
        x0, d0 = ordered[i - 1]
        crossing = x0 + (x - x0) * d0 / (d0 - d) if (d0 > 0) != (d > 0) else None
        if d > 0 and start is None:
            start = crossing
        elif d <= 0 and start is not None and crossing is not None:
            out.append((start, crossing))
            start = None
    if start is not None and ordered:
        out.append((start, ordered[-1][0]))
    return out


def falls_below(
    points: Iterable[tuple[float, float]], threshold: float = SCALE_EFFICIENCY
) -> tuple[float | None, float | None]:
    """(last x at or above ``threshold``, first x below it), scanning x upwards.

    (x_last, None): never below in the measured range.  (None, x_first): below already
    at the first x measured.
    """
    last_ok: float | None = None
    for x, value in sorted(points):
        if value < threshold:
            return last_ok, x
        last_ok = x
    return last_ok, None


def _quantile_interval(values: Any, level: float) -> tuple[float, float]:
    import numpy as np

    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def speedup_interval(
    serial: Mapping[str, Any],
    cell: Mapping[str, Any],
    *,
    level: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, str] | None:
    """A ``level`` confidence interval on serial median / cell median: (low, high, method).

    With each side's rounds saved (``stats.data``, 3 or more): a percentile bootstrap,
    resampling both sides' rounds independently (seeded: a report is reproducible).
    Else from each side's IQR: the median's standard error is about 1.2533 sigma / sqrt(n)
    with sigma = IQR / 1.349, and the log of a ratio adds the two relative variances
    (method "iqr").  None when neither side says enough.
    """
    import numpy as np

    a, b = round_times(serial), round_times(cell)
    if len(a) >= MIN_ROUNDS_FOR_SPREAD and len(b) >= MIN_ROUNDS_FOR_SPREAD:
        rng = np.random.default_rng(seed)
        top = np.median(rng.choice(np.asarray(a), size=(resamples, len(a))), axis=1)
        bottom = np.median(rng.choice(np.asarray(b), size=(resamples, len(b))), axis=1)
        low, high = _quantile_interval(top / bottom, level)
        return low, high, "bootstrap"
    parts = []
    for stats in (serial, cell):
        median = _positive(stats.get("median"))
        spread = relative_spread(stats)
        rounds = _int(stats.get("rounds")) or len(round_times(stats))
        if median is None or spread is None or not rounds:
            return None
        # spread = IQR / median, so the median's relative standard error is:
        parts.append((1.2533 / 1.349) * spread / math.sqrt(rounds))
    ratio_ = ratio(_positive(serial.get("median")), _positive(cell.get("median")))
    if ratio_ is None:
        return None
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
    half = z * math.sqrt(sum(p * p for p in parts))
    return ratio_ * math.exp(-half), ratio_ * math.exp(half), "iqr"


# --- whether one cell's lead over another holds -------------------------------------

# Medians within this share of each other are level, not a lead, where the rounds are too
# few to judge (fewer than ``MIN_ROUNDS_FOR_SPREAD`` a cell; the regression check too lets
# its minimum effect alone decide then, 10 % by default).  Over six unchanged standard runs
# here, processes' lead over threads on native work at 50 % ranged from -9.3 % to +6.2 %
# (a cpu_native cell moves 13-18 % p95 between runs).
LEVEL_WITHIN = 0.10


class Lead(NamedTuple):
    """One cell ahead of another (the next best) at one point of a sweep."""

    leader: str  # who is ahead: a model, or a side ("single", "multi")
    size: float  # the slower median ÷ the faster one, minus 1
    clear: bool  # whether the two cells' own figures show it (``lead_between``)


def cell_stats(row: Mapping[str, Any]) -> dict[str, Any]:
    """A frame row's median, quartiles and rounds, as pytest-benchmark's ``stats`` says
    them: every run saves these (the raw rounds only some), so the chart's sentence and the
    best-model table judge a lead from the same figures."""

    def number(key: str) -> float | None:
        value = row.get(key)
        try:
            found = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return found if math.isfinite(found) else None

    rounds = number("rounds")
    return {
        "median": number("median_s"),
        "iqr": number("iqr_s"),
        "q1": number("q1_s"),
        "q3": number("q3_s"),
        "rounds": None if rounds is None else int(rounds),
    }


def lead_between(
    leader: str, faster: Mapping[str, Any], slower: Mapping[str, Any], *, level: float = CONFIDENCE
) -> Lead:
    """How far ``faster`` (pytest-benchmark ``stats``) is ahead of ``slower``, and whether
    their own figures show it: the ``level`` confidence interval on slower median ÷ faster
    median (``speedup_interval``, from the quartiles without raw rounds) lies above 1; with
    too few rounds for an interval, the lead is more than ``LEVEL_WITHIN``."""
    fast, slow = _positive(faster.get("median")), _positive(slower.get("median"))
    size = (slow / fast - 1.0) if fast is not None and slow is not None else 0.0
    found = speedup_interval(slower, faster, level=level)
    return Lead(leader, size, size > LEVEL_WITHIN if found is None else found[0] > 1.0)


def leads_that_hold(leads: Sequence[Lead]) -> list[bool]:
    """Per point of a sweep (in order): whether its lead holds, else it is level there.

    A lead holds where its cells' figures show it (``Lead.clear``), or where the same
    leader is ahead at a neighbouring point too: one point whose cells cannot tell its
    lead from noise is no lead, two neighbours that agree are.  One rule for the
    crossover's sentence and the best-model table (``reports._best.holding``).
    """
    out = []
    for i, lead in enumerate(leads):
        neighbours = [leads[j] for j in (i - 1, i + 1) if 0 <= j < len(leads)]
        agreed = any(n.size > 0 and n.leader == lead.leader for n in neighbours)
        out.append(lead.size > 0 and (lead.clear or agreed))
    return out


def mixed_one_process_ideal(extra: Mapping[str, Any]) -> float | None:
    """The best time any one process can reach on a mixed cell of Python CPU work.

    One GIL runs the CPU parts of all N tasks one after another: max(N * c, c + w) with
    c = cpu_iters * seconds_per_iter and w = (1 - cpu_share) * task_s (the workload's own
    split, as the ideal for P cores).  None when the cell lacks a part of it.
    """
    params = extra.get("params")
    params = params if isinstance(params, dict) else {}

    def fact(key: str) -> float | None:
        value = _number(extra.get(key))
        return value if value is not None else _number(params.get(key))

    tasks, iters, per_iter = _int(extra.get("tasks")), fact("cpu_iters"), fact("seconds_per_iter")
    share, task_s = fact("cpu_share"), fact("task_s")
    if None in (tasks, iters, per_iter, share, task_s) or not tasks or tasks < 1:
        return None
    cpu = iters * per_iter  # type: ignore[operator]
    wait = max(0.0, (1.0 - share) * task_s)  # type: ignore[operator]
    ideal = max(tasks * cpu, cpu + wait)
    return ideal if ideal > 0 else None


# --- the CPU share a mixed cell really had ------------------------------------------

# How a mixed cell's share was found (``measured_share``), most direct first.
SHARE_SOURCES = ("serial", "per_iter", "asked")


def serial_shares(benchmarks: Iterable[Mapping[str, Any]]) -> dict[BaselineKey, float]:
    """The CPU share serial's mixed cells measured, per (workload, parameters, tasks):
    CPU seconds ÷ wall seconds of a round (``cpu_s`` and the rounds' mean, both means).

    Serial runs the tasks one after another, so this is one task's CPU time ÷ wall time,
    the figure the README tells users to compute for their own work.
    """
    found: dict[BaselineKey, list[float]] = {}
    for bench in benchmarks:
        extra = bench.get("extra_info") or {}
        if extra.get("model") != "serial" or extra.get("bound") != "mixed":
            continue
        stats = bench.get("stats") or {}
        wall = _positive(stats.get("mean")) or _positive(stats.get("median"))
        cpu = _number(extra.get("cpu_s"))
        if wall is not None and cpu is not None and cpu >= 0:
            found.setdefault(baseline_key(extra), []).append(min(1.0, cpu / wall))
    return {key: statistics.median(values) for key, values in found.items()}


def measured_share(extra: Mapping[str, Any], serial: float | None) -> tuple[float, str] | None:
    """(the CPU share a mixed cell had, how it was found), or None if it asked for none.

    ``serial``: the share its serial cell measured (``serial_shares``).  Without one, the
    CPU part from the session's measured seconds per iteration against the waits the
    parameters ask for; without that, the share asked for (``cpu_share``).  A fixed
    iteration count is a smaller share on a faster host: the chart stands at the share
    the work had, as a user measures theirs.
    """
    params = extra.get("params")
    params = params if isinstance(params, dict) else {}
    asked = _number(extra.get("cpu_share"))
    asked = asked if asked is not None else _number(params.get("cpu_share"))
    if asked is None:
        return None
    if serial is not None:
        return serial, "serial"
    iters, per_iter = _number(params.get("cpu_iters")), _positive(extra.get("seconds_per_iter"))
    task_s = _positive(params.get("task_s"))
    if iters is not None and per_iter is not None and task_s is not None:
        cpu, wait = iters * per_iter, max(0.0, (1.0 - asked) * task_s)
        if cpu + wait > 0:
            return cpu / (cpu + wait), "per_iter"
    return asked, "asked"
