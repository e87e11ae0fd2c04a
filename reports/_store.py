"""Thresholds as data: measured from runs of unchanged code, stored with their provenance.

A run is of one *kind* (``run_kind``): ``time`` (wall time, the default run),
``instructions`` (a count run: ``pytest benchmarks/ --measure instructions``, instructions
executed under Valgrind, saved in the same JSON where the times would be) or ``ab`` (an
A/B session: ``pytest benchmarks/ --ab-base TREE``, both sides' rounds paired in one
file, judged on its own by ``python -m reports ab``).  The check never pairs two kinds,
never takes an A/B session, and pairs a count run only with one counted the same way
(``count_setup``: Valgrind version, tool and flags, CPU model).

The thresholds a kind is judged with live in ``thresholds/<kind>.json``, made by one
command from runs of unchanged code, never edited by hand::

    python -m reports thresholds --kind time RUN RUN RUN ...          # the check's
    python -m reports thresholds --kind instructions RUN RUN RUN ...  # count runs'
    python -m reports thresholds --kind ab SESSION SESSION ...        # A/B sessions'

Each file holds, per group family (``cpu_loop:*``, ``seed``...), the noise measured and
the threshold it gives (``margin`` x the 95th percentile, at least the largest seen,
never below ``FLOOR``), the same for each family's and model's median shift, and where
it all came from: the machine, the interpreter, the date, the runs, the profile, the
count setup.  For ``time`` and ``instructions`` the noise is the change of each cell's
median between every pair of runs; for ``ab`` it is |median paired ratio - 1| of each
cell in A/A sessions (the same tree, interpreter and environment on both sides), whose
B/A ratios are all noise (``_ab.aa_noise``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _ab, _calibrate
from ._compare import InputError, environment_label
from ._runs import Run

KINDS = ("time", "instructions", "ab")
STORE_DIR = Path(__file__).resolve().parents[1] / "thresholds"
# The smallest threshold a family gets, whatever its noise: a count that moved by less
# than this is a rounding matter (a dict resized a round later), not a cost.
FLOOR = {"instructions": 0.002, "time": 0.01, "ab": 0.01}
COMMAND = "python -m reports thresholds --kind {kind} RUN RUN ..."
# The facts of a count run that must match for two counts to be compared.
COUNT_FACTS = ("tool", "valgrind", "flags", "cpu_model", "python")


def measure_facts(run: Run) -> dict[str, Any]:
    """What the run measured and how (``machine_info["boundbench"]["measure"]``)."""
    facts = (run.machine_info.get("boundbench") or {}).get("measure") or {}
    return facts if isinstance(facts, dict) else {}


def run_kind(run: Run) -> str:
    """``time``, ``instructions`` or ``ab``; a run that does not say is a timed run."""
    kind = measure_facts(run).get("kind", "time")
    return str(kind)


def count_setup(run: Run) -> dict[str, Any]:
    """The facts of a count run that decide whether its counts compare with another's."""
    facts = measure_facts(run)
    return {name: facts.get(name) for name in COUNT_FACTS}


def pairing_problem(first: Run, second: Run) -> str | None:
    """Why ``first`` and ``second`` must not be compared, or None."""
    kinds = run_kind(first), run_kind(second)
    if "ab" in kinds:
        session = first if kinds[0] == "ab" else second
        other = second if session is first else first
        what = "another A/B session" if kinds == ("ab", "ab") else f"a {run_kind(other)} run"
        return (
            f"{session.path} is an A/B session: it is judged on its own pairs (python -m"
            f" reports ab {session.path}), never paired with {what} ({other.path})"
        )
    if kinds[0] != kinds[1]:
        return (
            f"{first.path} is a {kinds[0]} run and {second.path} a {kinds[1]} run: a count"
            " run is never compared with a timed run"
        )
    if kinds[0] == "instructions":
        one, two = count_setup(first), count_setup(second)
        differ = [name for name in COUNT_FACTS if one[name] != two[name]]
        if differ:
            said = "; ".join(f"{name} {one[name]!r} vs {two[name]!r}" for name in differ)
            return f"the two count runs were not counted the same way ({said})"
    return None


@dataclass(frozen=True)
class Store:
    kind: str
    path: Path
    families: dict[str, float]
    shifts: dict[str, float]
    default: float
    provenance: dict[str, Any]

    def describe(self) -> str:
        made = self.provenance
        runs = "A/A sessions" if self.kind == "ab" else "unchanged runs"
        return (
            f"thresholds from {self.path.name} ({made.get('runs_count', '?')} {runs}"
            f" of {made.get('date', '?')} on {made.get('environment', '?')}, profile"
            f" {made.get('profile', '?')})"
        )


def store_path(kind: str, root: Path | None = None) -> Path:
    return (root or STORE_DIR) / f"{kind}.json"


def load(kind: str, root: Path | None = None) -> Store | None:
    """The stored thresholds of ``kind``, None when there are none; InputError when the
    file is there but not a store this code wrote."""
    path = store_path(kind, root)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        families = {str(k): float(v["threshold"]) for k, v in data["families"].items()}
        # A model's line first: the family's pattern "echo:*" also matches "echo:* select".
        found = data.get("shifts", {})
        shifts = {str(k): float(found[k]["threshold"])
                  for k in sorted(found, key=lambda label: (" " not in label, label))}  # fmt: skip
        store = Store(
            kind=str(data["kind"]),
            path=path,
            families=families,
            shifts=shifts,
            default=float(data["default"]),
            provenance=dict(data["provenance"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{path}: not a threshold store ({type(exc).__name__}: {exc}); make it anew with"
            f" {COMMAND.format(kind=kind)}"
        ) from None
    if store.kind != kind:
        raise InputError(f"{path}: holds {store.kind} thresholds, not {kind}")
    return store


def _round_up(value: float, floor: float) -> float:
    """Up to the next tenth of a percent, at least ``floor``."""
    return max(floor, math.ceil(value * 1000 - 1e-9) / 1000)


def build(runs: Sequence[Run], kind: str, margin: float, command: str) -> dict[str, Any]:
    """A store's content from ``runs`` of unchanged code (all of ``kind``, one machine,
    interpreter and count setup: InputError otherwise); ``ab``: from A/A sessions."""
    if kind == "ab":
        return _build_ab(runs, margin, command)
    if len(runs) < 2:
        raise InputError(f"thresholds need at least 2 runs of unchanged code, got {len(runs)}")
    for run in runs:
        if run_kind(run) != kind:
            what = "an A/B session" if run_kind(run) == "ab" else f"a {run_kind(run)} run"
            raise InputError(f"{run.path} is {what}, not {kind}")
        problem = pairing_problem(runs[0], run)
        if problem:
            raise InputError(problem)
    warnings = _calibrate.check_environments(runs, any_machine=False)
    floor = FLOOR.get(kind, FLOOR["time"])
    mode = "instructions" if kind == "instructions" else "time"
    noise = _calibrate.calibrate(runs, mode=mode, margin=margin)
    families = {
        f"{n.family}": {
            "threshold": _round_up(max(margin * n.p95, n.largest), floor),
            "p95": round(n.p95, 6),
            "largest": round(n.largest, 6),
            "worst_cell": n.worst[0],
            "cells": n.cells,
            "changes": n.changes,
        }
        for n in noise
    }
    shifts = {
        s.pattern: {
            "threshold": _round_up(margin * s.largest, floor),
            "largest": round(s.largest, 6),
        }
        for s in _calibrate.shift_noise(runs, mode=mode, margin=margin)
    }
    return {
        "kind": kind,
        "generated_by": command,
        "note": "made by the command above from runs of unchanged code; never edit by hand",
        "provenance": {**_provenance(runs, margin, floor), "warnings": warnings},
        # a family these runs did not have: the largest of the measured ones
        "default": max((float(str(f["threshold"])) for f in families.values()), default=floor),
        "families": families,
        "shifts": shifts,
    }


def _provenance(runs: Sequence[Run], margin: float, floor: float) -> dict[str, Any]:
    profiles = sorted({str((r.machine_info.get("boundbench") or {}).get("profile")) for r in runs})
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": environment_label(runs[0]),
        "profile": ",".join(profiles),
        "runs": [str(run.path) for run in runs],
        "runs_count": len(runs),
        "margin": margin,
        "floor": floor,
        "measure": measure_facts(runs[0]),
    }


def _build_ab(runs: Sequence[Run], margin: float, command: str) -> dict[str, Any]:
    """The A/B store from A/A sessions: per family, ``margin`` x the 95th percentile over
    its cells of |median paired ratio - 1| (at least the largest, never below the floor);
    per family and model, ``margin`` x the largest |shift - 1|."""
    if not runs:
        raise InputError("A/B thresholds need at least 1 A/A session, got none")
    for run in runs:
        if run_kind(run) != "ab":
            raise InputError(f"{run.path} is a {run_kind(run)} run, not an A/B session")
        differ = _ab.aa_difference(run)
        if differ:
            raise InputError(
                f"{run.path} is no A/A session (its sides differ: {differ}): thresholds are"
                " measured where B is A, so that every ratio is noise"
            )
    warnings = _calibrate.check_environments(runs, any_machine=False)
    floor = FLOOR["ab"]
    noise, largest = _ab.aa_noise(runs, _ab.pairs_needed(_ab.DEFAULT_ALPHA))
    families = {}
    for item in noise:
        values = sorted(item.values)
        p95 = float(np.percentile(values, 95))
        families[item.family] = {
            "threshold": _round_up(max(margin * p95, values[-1]), floor),
            "p95": round(p95, 6),
            "largest": round(values[-1], 6),
            "worst_cell": item.worst[0],
            "cells": item.cells,
            "changes": len(values),
        }
    shifts = {
        label: {"threshold": _round_up(margin * moved, floor), "largest": round(moved, 6)}
        for label, moved in sorted(largest.items())
    }
    return {
        "kind": "ab",
        "generated_by": command,
        "note": "made by the command above from A/A sessions; never edit by hand",
        "provenance": {**_provenance(runs, margin, floor), "warnings": warnings},
        "default": max((float(str(f["threshold"])) for f in families.values()), default=floor),
        "families": families,
        "shifts": shifts,
    }


def write(content: dict[str, Any], path: Path) -> None:
    """Written whole or not at all (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
