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
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

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


def _load(value: Any) -> float | None:
    if isinstance(value, list | tuple) and value:
        return _number(value[0])
    return None


def host_load_warning(machine_info: Mapping[str, Any]) -> str | None:
    """One phrase when the load average says the host was busy with other work, else None."""
    facts = machine_info.get("boundbench")
    if not isinstance(facts, dict):
        return None
    cores = _int(facts.get("cpu_count")) or usable_cpus(machine_info)
    if not cores:
        return None
    start = _load(facts.get("load_avg_start"))
    parts = []
    if start is not None and start > BUSY_LOAD_START * cores:
        parts.append(
            f"load average {start:.2f} before the run started"
            f" (above {BUSY_LOAD_START:g} x {cores} cores)"
        )
    if not parts:
        return None
    return "host busy: " + "; ".join(parts) + "; its figures may be slow or noisy"


def libraries(machine_info: Mapping[str, Any]) -> dict[str, str]:
    """``machine_info["boundbench"]["libraries"]``: distribution -> version ({} if absent)."""
    facts = machine_info.get("boundbench")
    found = facts.get("libraries") if isinstance(facts, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(name): str(version) for name, version in found.items()}
