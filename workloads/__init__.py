"""boundbench workloads and the concurrency models that run them.

No pytest and no pandas in here: this package is plain, importable code.
"""

from __future__ import annotations

from ._spec import BOUNDS, FLAVOURS, Workload
from ._user import (
    UserWorkload,
    WorkloadSpecError,
    check_flavours,
    entry_point_workloads,
    make_workload,
)
from ._user import resolve_spec as _resolve_spec
from ._user import resolve_workload as _resolve_workload
from .cpu_loop import CPU_LOOP
from .cpu_native import CPU_NATIVE
from .io_sleep import IO_SLEEP
from .io_socket import IO_SOCKET
from .io_spin import IO_SPIN
from .machine import machine_facts
from .mixed import MIXED

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (CPU_LOOP, CPU_NATIVE, IO_SLEEP, MIXED, IO_SOCKET, IO_SPIN)
}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise LookupError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}") from None


def resolve_workload(ref: str) -> Workload:
    """A workload by registry name, ``module:NAME`` or entry-point name."""
    return _resolve_workload(ref, WORKLOADS)


def resolve_spec(spec: str) -> UserWorkload:
    """A ``--workload`` spec (``module:NAME[,key=value...]``), checked before any timing."""
    return _resolve_spec(spec, WORKLOADS)


def workload_ref(workload: Workload) -> str:
    """A string that ``resolve_workload`` turns back into ``workload``."""
    if WORKLOADS.get(workload.name) is workload:
        return workload.name
    module = getattr(workload.sync, "__module__", None)
    if module:
        for attr, value in vars(__import__(module, fromlist=["_"])).items():
            if value is workload:
                return f"{module}:{attr}"
    raise LookupError(
        f"workload {workload.name!r} is neither registered nor a module-level object of "
        f"{module!r}; define it at module level"
    )


__all__ = [
    "BOUNDS",
    "FLAVOURS",
    "WORKLOADS",
    "UserWorkload",
    "Workload",
    "WorkloadSpecError",
    "check_flavours",
    "entry_point_workloads",
    "get_workload",
    "machine_facts",
    "make_workload",
    "resolve_spec",
    "resolve_workload",
    "workload_ref",
]
