"""What the reports know of each model: its place in charts and tables, its colour seed,
whether it runs every task in one process or spreads them, and the libraries that shape
its figures.

Every run carries these facts (``machine_info["boundbench"]["models"]``, written from
``workloads.models.report_facts()``), so a model this machine has never heard of (a
plugin) is placed, coloured and compared like a built-in one.  A run saved before the
facts were recorded falls back to the facts of the models registered here: the same
declarations on the model classes, not a copy kept in the reports.  A name neither
knows (a network server style, a plugin not installed here) sorts after every known
model, alphabetically, gets a colour derived from its name, and takes no side in the
crossover.

In the frame each row carries its model's facts from its own run (``FACT_COLUMNS``), so
a chart given any slice of the frame finds them there; given bare names, the functions
here use the registered models' facts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

# A model runs every task in one process, under one GIL ("single"), or spreads the tasks'
# CPU work over processes or interpreters with a GIL each ("multi").
SIDES = ("single", "multi")
FACT_COLUMNS = ("model_order", "model_processes", "colour_seed")


@dataclass(frozen=True)
class ModelFacts:
    order: float | None = None
    colour_seed: int | None = None
    processes: str | None = None
    libraries: tuple[str, ...] = ()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_facts(raw: Any) -> dict[str, ModelFacts]:
    """``{name: {order, colour_seed, processes, libraries}}`` as saved; whatever is not
    of the expected type is left out (an older or foreign run never breaks a report)."""
    if not isinstance(raw, dict):
        return {}
    found = {}
    for name, fact in raw.items():
        if not isinstance(fact, dict):
            continue
        seed = fact.get("colour_seed")
        side = fact.get("processes")
        libraries = fact.get("libraries")
        found[str(name)] = ModelFacts(
            order=_number(fact.get("order")),
            colour_seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            processes=side if side in SIDES else None,
            libraries=tuple(str(lib) for lib in libraries) if isinstance(libraries, list) else (),
        )
    return found


@functools.cache
def installed_facts() -> Mapping[str, ModelFacts]:
    """The facts of the models registered where the report runs (built-ins, plugins)."""
    from workloads.models import report_facts  # only when a run lacks its own facts

    return parse_facts(report_facts())


def run_facts(machine_info: Mapping[str, Any]) -> dict[str, ModelFacts]:
    """A run's own facts, completed for the names it lacks by the registered models'."""
    info = machine_info.get("boundbench")
    own = parse_facts(info.get("models") if isinstance(info, dict) else None)
    if own.keys() >= installed_facts().keys():
        return own
    return {**installed_facts(), **own}


def fact_columns(model: str, facts: Mapping[str, ModelFacts]) -> dict[str, Any]:
    """One frame row's ``FACT_COLUMNS`` for ``model``."""
    fact = facts.get(model, ModelFacts())
    return {
        "model_order": math.nan if fact.order is None else fact.order,
        "model_processes": fact.processes,
        "colour_seed": fact.colour_seed,
    }


def facts_of(rows: pd.DataFrame | Iterable[str]) -> dict[str, ModelFacts]:
    """Every model of ``rows`` with its facts: a frame's own (the last row's of each
    model: the latest run's), else the registered models'; names alone are looked up."""
    if isinstance(rows, pd.DataFrame) and "model" in rows.columns:
        if not set(FACT_COLUMNS) <= set(rows.columns):
            return facts_of(rows["model"])
        last = rows.drop_duplicates("model", keep="last")
        found = {}
        for model, order, side, seed in zip(
            last["model"],
            last["model_order"],
            last["model_processes"],
            last["colour_seed"],
            strict=True,
        ):
            found[str(model)] = ModelFacts(
                order=None if pd.isna(order) else float(order),
                colour_seed=None if pd.isna(seed) else int(seed),
                processes=side if side in SIDES else None,
            )
        return found
    known = installed_facts()
    return {str(name): known.get(str(name), ModelFacts()) for name in rows}


def _key(name: str, fact: ModelFacts) -> tuple[float, str]:
    return (math.inf if fact.order is None else fact.order, name)


def ordered_models(rows: pd.DataFrame | Iterable[str]) -> list[str]:
    """The models of ``rows`` in the order charts and tables list them."""
    facts = facts_of(rows)
    return sorted(facts, key=lambda name: _key(name, facts[name]))


def model_rank(rows: pd.DataFrame) -> pd.Series:
    """Each row's model's place in ``ordered_models(rows)``, to sort rows by."""
    place = {name: i for i, name in enumerate(ordered_models(rows))}
    return rows["model"].map(place)


def sides(rows: pd.DataFrame | Iterable[str]) -> dict[str, str | None]:
    """Each model's side: "single", "multi", or None when its run does not say."""
    return {name: fact.processes for name, fact in facts_of(rows).items()}


def colour_seeds(rows: pd.DataFrame | Iterable[str]) -> dict[str, int | None]:
    return {name: fact.colour_seed for name, fact in facts_of(rows).items()}
