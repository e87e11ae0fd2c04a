"""The model registry: stable snake_case names -> model classes, one face for all.

A model is one module: its class says everything the suite needs (flavour, pool sizes
worth measuring, session settings it takes, its optional dependency, its start-up
cells), and one line in ``BUILTIN`` registers it.  Installed packages add models through
the entry-point group ``boundbench.models``; a plugin that fails to load is left out
with its reason in ``BROKEN_PLUGINS``, never a crash.

``available_models()`` leaves out, with a reason, the models this interpreter cannot
run (an optional dependency missing); ``get_model()`` raises ``LookupError`` with that
reason and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .._spec import FLAVOURS
from ._base import (
    DEFAULT_TIMEOUT,
    Model,
    ModelError,
    ModelTimeout,
    cpu_count,
    process_cpu_seconds,
)
from .asyncio_model import AsyncioModel, UvloopModel
from .asyncio_processes import AsyncioProcessesModel
from .dask_model import DaskModel
from .generator import GeneratorModel, Wait, run_generators
from .gevent_model import GeventModel
from .interpreters import InterpretersModel
from .processes import (
    DEFAULT_START_METHOD,
    START_METHODS,
    ProcessesModel,
    stop_multiprocessing_helpers,
)
from .serial import SerialModel
from .threads import ThreadsModel, default_thread_workers

# The built-in models, in the order charts and tables list them.
BUILTIN: tuple[type[Model], ...] = (
    SerialModel,
    GeneratorModel,
    ThreadsModel,
    ProcessesModel,
    GeventModel,
    AsyncioModel,
    UvloopModel,
    AsyncioProcessesModel,
    InterpretersModel,
    DaskModel,
)

# Third-party models: ``name = "module:Class"`` in this entry-point group, ``Class`` a
# subclass of ``workloads.models.Model``.
ENTRY_POINT_GROUP = "boundbench.models"


def _valid_name(name: str) -> bool:
    return name.isidentifier() and name == name.lower()


def _load_plugins(
    builtin: Mapping[str, type[Model]],
) -> tuple[dict[str, type[Model]], dict[str, str]]:
    """Models offered by installed packages, and why each broken one was left out."""
    loaded: dict[str, type[Model]] = {}
    broken: dict[str, str] = {}
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"plugin model {entry.name!r} ({entry.value})"
        if entry.name in builtin or entry.name in loaded:
            broken[entry.name] = f"{where} is left out: the name is already taken"
            continue
        if not _valid_name(entry.name):
            broken[entry.name] = f"{where} is left out: names are lower-case identifiers"
            continue
        try:
            obj = entry.load()
        except Exception as exc:  # any failure of third-party code: report, never crash
            broken[entry.name] = f"{where} could not be loaded: {type(exc).__name__}: {exc}"
            continue
        if not (isinstance(obj, type) and issubclass(obj, Model)):
            broken[entry.name] = f"{where} is not a subclass of workloads.models.Model"
            continue
        if getattr(obj, "name", None) != entry.name or obj.flavour not in (*FLAVOURS, "hybrid"):
            broken[entry.name] = (
                f"{where} must set name = {entry.name!r} and flavour to one of "
                f"{', '.join(FLAVOURS)}"
            )
            continue
        loaded[entry.name] = obj
    return loaded, broken


_BUILTIN_BY_NAME = {cls.name: cls for cls in BUILTIN}
PLUGINS, BROKEN_PLUGINS = _load_plugins(_BUILTIN_BY_NAME)
MODELS: dict[str, type[Model]] = {**_BUILTIN_BY_NAME, **PLUGINS}


def unavailable_models() -> dict[str, str]:
    """Registered models this interpreter cannot run, with the reason."""
    missing = {}
    for name, cls in MODELS.items():
        try:
            reason = cls.unavailable()
        except Exception as exc:  # a plugin's own check failing is a reason too
            reason = f"Model {name!r} is not available: its check failed: {exc!r}"
        if reason:
            missing[name] = reason
    return missing


def available_models() -> dict[str, type[Model]]:
    gone = unavailable_models()
    return {name: cls for name, cls in MODELS.items() if name not in gone}


def report_facts() -> dict[str, dict[str, Any]]:
    """What the reports need of every registered model, saved with each run
    (``machine_info["boundbench"]["models"]``): name -> ``order`` (its place in charts
    and tables), ``colour_seed``, ``processes`` ("single", "multi" or None) and
    ``libraries``, as each class declares them (``Model.report_order`` and the next).
    Unavailable models are in too: a report may draw runs made where they were."""
    return {
        name: {
            "order": place if cls.report_order is None else cls.report_order,
            "colour_seed": cls.colour_seed,
            "processes": cls.process_scope,
            "libraries": list(cls.libraries),
        }
        for place, (name, cls) in enumerate(MODELS.items())
    }


def get_model(name: str, **options: Any) -> Model:
    """A new, unstarted model by registry name."""
    if name in BROKEN_PLUGINS:
        raise LookupError(BROKEN_PLUGINS[name])
    if name not in MODELS:
        raise LookupError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    reason = unavailable_models().get(name)
    if reason:
        raise LookupError(reason)
    return MODELS[name](**options)


__all__ = [
    "BROKEN_PLUGINS",
    "BUILTIN",
    "DEFAULT_START_METHOD",
    "DEFAULT_TIMEOUT",
    "ENTRY_POINT_GROUP",
    "MODELS",
    "PLUGINS",
    "START_METHODS",
    "Model",
    "ModelError",
    "ModelTimeout",
    "Wait",
    "available_models",
    "cpu_count",
    "default_thread_workers",
    "get_model",
    "process_cpu_seconds",
    "report_facts",
    "run_generators",
    "stop_multiprocessing_helpers",
    "unavailable_models",
]
