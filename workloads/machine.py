"""Facts about this interpreter and machine that decide how concurrency behaves."""

from __future__ import annotations

import importlib.metadata
import multiprocessing as mp
import os
import platform
import sys
import sysconfig
from typing import Any


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


# The libraries whose version shapes a figure (the interpreter's own is in the facts).
LIBRARIES = ("pytest-benchmark", "gevent", "greenlet", "uvloop", "psutil", "pytest")


def library_versions() -> dict[str, str | None]:
    """Installed version of each library in ``LIBRARIES`` (None when missing)."""
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the platform has them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_facts() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": affinity or os.cpu_count(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "python_compiler": platform.python_compiler(),
        "free_threading_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_enabled": gil_enabled(),
        "switch_interval": sys.getswitchinterval(),
        "default_start_method": mp.get_start_method(allow_none=True)
        or mp.get_all_start_methods()[0],
        "start_methods": mp.get_all_start_methods(),
    }
