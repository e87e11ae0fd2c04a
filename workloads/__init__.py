"""boundbench workloads and the concurrency models that run them.

No pytest and no pandas in here: this package is plain, importable code.
"""

from __future__ import annotations

from ._spec import FLAVOURS, Workload
from .cpu_loop import CPU_LOOP
from .cpu_native import CPU_NATIVE
from .io_sleep import IO_SLEEP
from .machine import machine_facts
from .mixed import MIXED

WORKLOADS: dict[str, Workload] = {w.name: w for w in (CPU_LOOP, CPU_NATIVE, IO_SLEEP, MIXED)}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise LookupError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}") from None


__all__ = ["FLAVOURS", "WORKLOADS", "Workload", "get_workload", "machine_facts"]
