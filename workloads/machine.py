"""Facts about this interpreter and machine that decide how concurrency behaves."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import sys
import sysconfig
from typing import Any


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


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
