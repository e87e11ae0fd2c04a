"""The check's settings a user sets on purpose: ``[tool.boundbench.check]`` in pyproject.toml.

``min-effect`` (the default minimum effect; the project sets 10 %), and, for a deliberate
override, ``min-effect-group`` / ``shift-effect-group`` tables of PATTERN = E (also per
profile, under ``profile.NAME``), which come after ``--min-effect-group`` and before the
stored thresholds.  Thresholds *measured* from the noise of unchanged runs are not kept
here: they are data with their provenance, ``thresholds/time.json`` (``_store``), made by
``python -m reports thresholds --kind time RUN ...``, never by hand.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from ._compare import InputError
from ._runs import Run

CONFIG_TABLE = "tool.boundbench.check"


def fraction(text: str) -> float:
    """'0.1', '10%' -> 0.1; a minimum effect must be in [0, 10)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.1 or 10%") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 0 and 10 (1000%)")
    return value


def _profile_table(table: dict[str, Any], profile: str | None, path: Path) -> dict[str, Any]:
    """The ``[tool.boundbench.check.profile.NAME]`` table for the run's profile, if any.

    Each profile sizes its cells and rounds differently, so each has its own noise: a
    quick run's 20 ms cells move far more than a standard run's.
    """
    profiles = table.get("profile", {})
    if not isinstance(profiles, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}.profile] must be a table of profiles")
    chosen = profiles.get(profile) if profile else None
    if chosen is None:
        return table
    if not isinstance(chosen, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}.profile.{profile}] must be a table")
    return chosen


def _config_table(path: Path) -> object:
    """``[tool.boundbench.check]`` of the TOML file at ``path`` ({} when it is absent)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config: {exc}") from exc
    table: object = data
    for key in CONFIG_TABLE.split("."):
        table = table.get(key, {}) if isinstance(table, dict) else {}
    return table


def read_config(
    path: Path | None, profile: str | None = None
) -> tuple[float | None, list[tuple[str, float]]]:
    """The check's settings set on purpose: (min effect, [(pattern, effect)]).

    Read by CI and people at a terminal alike; the measured thresholds are the store's.
    """
    explicit = path is not None
    path = path or Path("pyproject.toml")
    if not path.is_file():
        if explicit:
            raise InputError(f"{path}: no such config file")
        return None, []
    table = _config_table(path)
    if not isinstance(table, dict):
        raise InputError(f"{path}: [{CONFIG_TABLE}] must be a table")
    table = _profile_table(table, profile, path)
    known = {"min-effect", "min-effect-group", "shift-effect-group", "profile"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"{path}: [{CONFIG_TABLE}] has unknown key(s) {', '.join(unknown)}")
    try:
        effect = fraction(str(table["min-effect"])) if "min-effect" in table else None
        groups = table.get("min-effect-group", {})
        if not isinstance(groups, dict):
            raise argparse.ArgumentTypeError("min-effect-group must be a table PATTERN = E")
        pairs = [(str(pattern), fraction(str(value))) for pattern, value in groups.items()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"{path}: [{CONFIG_TABLE}]: {exc}") from exc
    return effect, pairs


def read_shift_config(path: Path | None, profile: str | None = None) -> list[tuple[str, float]]:
    """``[tool.boundbench.check.shift-effect-group]``: PATTERN = E for family/model shifts."""
    path = path or Path("pyproject.toml")
    if not path.is_file():
        return []
    table = _config_table(path)
    if isinstance(table, dict):
        table = _profile_table(table, profile, path).get("shift-effect-group", {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: shift-effect-group must be a table PATTERN = E")
    try:
        return [(str(pattern), fraction(str(value))) for pattern, value in table.items()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"{path}: [{CONFIG_TABLE}.shift-effect-group]: {exc}") from exc


def run_profile(run: Run) -> str | None:
    """The profile a run was made with (``machine_info["boundbench"]["profile"]``)."""
    facts = run.machine_info.get("boundbench")
    profile = facts.get("profile") if isinstance(facts, dict) else None
    return profile if isinstance(profile, str) else None
