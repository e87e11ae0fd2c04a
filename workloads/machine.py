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


# The suite's own libraries whose version shapes every figure (the interpreter's own is
# in the facts); each model adds those that shape its figures (``Model.libraries``).
LIBRARIES = ("pytest-benchmark", "psutil", "pytest")


def libraries() -> tuple[str, ...]:
    """``LIBRARIES`` and every registered model's libraries, once each."""
    from .models import MODELS  # the registry imports this package: not at import time

    names = [*LIBRARIES, *(name for cls in MODELS.values() for name in cls.libraries)]
    return tuple(dict.fromkeys(names))


def library_versions() -> dict[str, str | None]:
    """Installed version of each of ``libraries()`` (None when missing)."""
    found: dict[str, str | None] = {}
    for name in libraries():
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# How long other_cpu_share() watches the machine: 50 ticks of the kernel's 100 Hz
# accounting on each core, so one tick is 1% of two cores.
OTHER_CPU_WINDOW_S = 0.5


def other_cpu_share(window_s: float = OTHER_CPU_WINDOW_S) -> float | None:
    """The share of every core's time that other processes kept busy over ``window_s``
    seconds, while this one sleeps (its own CPU, if any, is taken out).

    What a busy host means for the figures about to be taken: work that competes for the
    cores now.  The load average cannot say it: it is a minute-long mean that still holds
    a run that just ended (back-to-back runs read 1.2-1.8 on 2 idle cores).  None where
    the platform does not count CPU time system-wide.
    """
    import time

    import psutil

    try:
        own = psutil.Process()
        system_before, own_before = psutil.cpu_times(), own.cpu_times()
        time.sleep(window_s)
        system_after, own_after = psutil.cpu_times(), own.cpu_times()
    except (OSError, psutil.Error, NotImplementedError):
        return None
    total = sum(system_after) - sum(system_before)
    idle = sum(
        getattr(system_after, name, 0.0) - getattr(system_before, name, 0.0)
        for name in ("idle", "iowait")
    )
    mine = (own_after.user + own_after.system) - (own_before.user + own_before.system)
    if total <= 0:
        return None
    return float(round(min(1.0, max(0.0, (total - idle - mine) / total)), 3))


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
