"""The model registry: stable snake_case names -> model classes, one face for all.

``available_models()`` leaves out, with a reason, the models this interpreter cannot
run (an optional dependency missing); ``get_model()`` raises ``LookupError`` with that
reason and how to fix it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

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
from .generator import GeneratorModel, run_generators
from .gevent_model import GeventModel
from .processes import (
    DEFAULT_START_METHOD,
    START_METHODS,
    ProcessesModel,
    stop_multiprocessing_helpers,
)
from .serial import SerialModel
from .threads import ThreadsModel, default_thread_workers

MODELS: dict[str, type[Model]] = {
    cls.name: cls
    for cls in (
        SerialModel,
        GeneratorModel,
        ThreadsModel,
        ProcessesModel,
        GeventModel,
        AsyncioModel,
        UvloopModel,
        AsyncioProcessesModel,
    )
}

# name -> (module that must import, how to get it)
_REQUIREMENTS = {
    "gevent": ("gevent", "pip install gevent"),
    "uvloop": ("uvloop", "pip install 'boundbench[uvloop]'"),
}


def unavailable_models() -> dict[str, str]:
    """Registered models this interpreter cannot run, with the reason."""
    missing = {}
    for name, (module, fix) in _REQUIREMENTS.items():
        if importlib.util.find_spec(module) is None:
            missing[name] = (
                f"Model {name!r} is not available: {module} is not installed. "
                f"Install it with: {fix}"
            )
    return missing


def available_models() -> dict[str, type[Model]]:
    gone = unavailable_models()
    return {name: cls for name, cls in MODELS.items() if name not in gone}


def get_model(name: str, **options: Any) -> Model:
    """A new, unstarted model by registry name."""
    if name not in MODELS:
        raise LookupError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    reason = unavailable_models().get(name)
    if reason:
        raise LookupError(reason)
    return MODELS[name](**options)


__all__ = [
    "DEFAULT_START_METHOD",
    "DEFAULT_TIMEOUT",
    "MODELS",
    "START_METHODS",
    "Model",
    "ModelError",
    "ModelTimeout",
    "available_models",
    "cpu_count",
    "default_thread_workers",
    "get_model",
    "process_cpu_seconds",
    "run_generators",
    "stop_multiprocessing_helpers",
    "unavailable_models",
]
