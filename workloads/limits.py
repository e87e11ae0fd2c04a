"""The OS limits a cell may run into (threads, descriptors, memory), read before it runs.

Each ``*_refusal(count)`` returns a ``Refusal`` naming the limit and its value when
asking for ``count`` more threads (descriptors, bytes) would come within ``HEADROOM`` of
a limit, or None when it fits.  Nothing is probed by exhausting it: creating threads
until ``pthread_create`` fails starves every other process of the machine, and a limit
hit half-way leaves a half-built pool behind.  Everything is read from ``/proc``,
``/sys/fs/cgroup`` and ``getrlimit``; what cannot be read (not Linux) is not checked.

Threads (every thread is a kernel task with a pid and a stack mapping):
- ``kernel.threads-max`` and ``kernel.pid_max`` against the tasks on the machine now;
- ``RLIMIT_NPROC`` against this user's tasks (not for root: the kernel exempts it);
- the cgroup's ``pids.max`` against its ``pids.current`` (v1 and v2);
- ``vm.max_map_count`` against this process's mappings (two per thread: stack, guard);
- ``RLIMIT_AS`` against this process's address space plus a stack per thread
  (``RLIMIT_STACK`` or ``threading.stack_size()``) and a reserve for malloc arenas;
- strict overcommit (``vm.overcommit_memory = 2``): ``CommitLimit`` against
  ``Committed_AS`` plus a stack per thread;
- available memory (``MemAvailable``; the cgroup's limit minus its usage) against
  ``THREAD_RESIDENT_BYTES`` per thread.

Descriptors: ``RLIMIT_NOFILE`` against this process's open descriptors, and
``fs.file-max`` against the machine's (``fs/file-nr``).

Memory: ``MemAvailable``, the cgroup's limit minus its usage, and ``RLIMIT_AS`` minus
this process's address space.

Tests inject limits (``facts=``) instead of lowering real ones where a real limit
would not bind root.
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
CGROUP = Path("/sys/fs/cgroup")
# Keep this share of every limit free for the rest of the machine: a benchmark must
# never be what brings a host to its limit.
HEADROOM = 0.10
# Resident memory of one idle thread: its touched stack pages, the kernel's stack and
# task structures.  ~19 KiB measured here (10,000 threads: +19.1 KiB RSS each); rounded
# up generously, since the kernel's part is not in RSS.
THREAD_RESIDENT_BYTES = 64 * 1024
# A generous resident estimate per task of a scheduler (asyncio: ~2 KiB measured here,
# gevent ~5 KiB), for the memory check of a cell with many tasks.
TASK_RESIDENT_BYTES = 16 * 1024
# glibc's default thread stack when RLIMIT_STACK is unlimited (x86-64).
DEFAULT_STACK_BYTES = 2 * 1024 * 1024
# Address space glibc may reserve for per-thread malloc arenas (8 x cores x 64 MiB at
# most; this is a generous share of it).
ARENA_RESERVE_BYTES = 1024 * 1024 * 1024
UNLIMITED = resource.RLIM_INFINITY

# limit name -> (its value, in use now); None where unknown or unlimited
Facts = dict[str, tuple[int, int] | None]


@dataclass(frozen=True)
class Refusal:
    """A limit that ``need`` more units would hit: its name, value, and what is in use."""

    limit: str
    value: int
    in_use: int
    need: int
    unit: str

    def __str__(self) -> str:
        what = "" if self.unit == "bytes" else f" {self.unit}"
        used = f" on top of {_fmt(self.in_use, self.unit)} in use" if self.in_use else ""
        return (
            f"{self.limit} = {_fmt(self.value, self.unit)}: {_fmt(self.need, self.unit)} more"
            f"{what}{used} would leave less than {HEADROOM:.0%} of it free"
        )


def _fmt(value: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 2**20:,.0f} MiB"
    return f"{value:,}"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().split()
    except OSError:
        return None
    if not text:
        return None
    if text[0] == "max":
        return None  # cgroup v2: no limit
    try:
        return int(text[0])
    except ValueError:
        return None


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    try:
        lines = (PROC / "meminfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _status_kb(field: str) -> int | None:
    try:
        lines = (PROC / "self" / "status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name == field and rest.split():
            return int(rest.split()[0])
    return None


def _cgroup_dirs(controller: str) -> list[Path]:
    """This process's cgroup directories for a controller (v1 and v2), innermost first."""
    try:
        lines = (PROC / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = path.lstrip("/")
        if controllers == "":  # v2
            base = CGROUP / rel if (CGROUP / "cgroup.controllers").exists() else None
            if base is None and (CGROUP / "unified").exists():
                base = CGROUP / "unified" / rel
        elif controller in controllers.split(","):
            base = CGROUP / controllers / rel
        else:
            continue
        # Limits of enclosing groups bind too: walk up to the root of the hierarchy.
        while base is not None and CGROUP in base.parents:
            found.append(base)
            if base.parent == base:
                break
            base = base.parent
    return found


def _cgroup_limit(controller: str, limit_file: str, usage_file: str) -> tuple[int, int] | None:
    """The tightest (limit, usage) of this process's cgroups for a controller, if any."""
    best: tuple[int, int] | None = None
    for directory in _cgroup_dirs(controller):
        limit = _read_int(directory / limit_file)
        usage = _read_int(directory / usage_file)
        if limit is None or usage is None or limit >= 2**62:
            continue
        if best is None or limit - usage < best[0] - best[1]:
            best = (limit, usage)
    return best


def _machine_tasks() -> int | None:
    """Kernel tasks (threads) on the machine now: /proc/loadavg's 4th field, 'running/total'."""
    try:
        field = (PROC / "loadavg").read_text().split()[3]
        return int(field.split("/")[1])
    except (OSError, IndexError, ValueError):
        return None


def _user_tasks(uid: int) -> int | None:
    total = 0
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            if int(fields["Uid"].split()[1]) == uid:  # effective uid
                total += int(fields["Threads"])
        except (KeyError, IndexError, ValueError):
            continue
    return total


def _rlimit(kind: int) -> int | None:
    soft, _hard = resource.getrlimit(kind)
    return None if soft == UNLIMITED else soft


def stack_bytes() -> int:
    """The stack a new thread of this process gets."""
    size = threading.stack_size()
    if size:
        return size
    soft = _rlimit(resource.RLIMIT_STACK)
    return soft if soft is not None else DEFAULT_STACK_BYTES


def _open_descriptors() -> int | None:
    try:
        return len(os.listdir(PROC / "self" / "fd"))
    except OSError:
        return None


def _map_count() -> int | None:
    try:
        with (PROC / "self" / "maps").open("rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def read_facts() -> Facts:
    """Every limit this module knows: name -> (value, in use), None where unknown/unlimited."""
    mem = _meminfo()
    facts: Facts = {}
    tasks = _machine_tasks()
    for name, path in (
        ("kernel.threads-max", PROC / "sys/kernel/threads-max"),
        ("kernel.pid_max", PROC / "sys/kernel/pid_max"),
    ):
        value = _read_int(path)
        facts[name] = (value, tasks) if value is not None and tasks is not None else None
    nproc = _rlimit(resource.RLIMIT_NPROC)
    # The kernel does not apply RLIMIT_NPROC to root (CAP_SYS_RESOURCE / CAP_SYS_ADMIN).
    if nproc is not None and os.geteuid() != 0:
        used = _user_tasks(os.geteuid())
        facts["RLIMIT_NPROC"] = (nproc, used) if used is not None else None
    else:
        facts["RLIMIT_NPROC"] = None
    facts["cgroup pids.max"] = _cgroup_limit("pids", "pids.max", "pids.current")
    maps = _map_count()
    max_maps = _read_int(PROC / "sys/vm/max_map_count")
    facts["vm.max_map_count"] = (max_maps, maps) if max_maps and maps is not None else None
    address_limit = _rlimit(resource.RLIMIT_AS)
    vm_size = _status_kb("VmSize")
    facts["RLIMIT_AS"] = (
        (address_limit, vm_size * 1024)
        if address_limit is not None and vm_size is not None
        else None
    )
    overcommit = _read_int(PROC / "sys/vm/overcommit_memory")
    facts["CommitLimit"] = (
        (mem["CommitLimit"], mem["Committed_AS"])
        if overcommit == 2 and "CommitLimit" in mem and "Committed_AS" in mem
        else None
    )
    # Available memory as a limit with nothing in use: (available, 0).
    facts["MemAvailable"] = (mem["MemAvailable"], 0) if "MemAvailable" in mem else None
    facts["cgroup memory limit"] = _cgroup_limit(
        "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
    ) or _cgroup_limit("memory", "memory.max", "memory.current")
    nofile = _rlimit(resource.RLIMIT_NOFILE)
    fds = _open_descriptors()
    facts["RLIMIT_NOFILE"] = (nofile, fds) if nofile is not None and fds is not None else None
    try:
        allocated, _free, file_max = (int(x) for x in (PROC / "sys/fs/file-nr").read_text().split())
        facts["fs.file-max"] = (file_max, allocated)
    except (OSError, ValueError):
        facts["fs.file-max"] = None
    return facts


def _first_refusal(facts: Facts, needs: dict[str, int], unit: dict[str, str]) -> Refusal | None:
    for name, need in needs.items():
        known = facts.get(name)
        if known is None or need <= 0:
            continue
        value, in_use = known
        spare = int(value * HEADROOM)
        if in_use + need > value - spare:
            return Refusal(name, value, in_use, need, unit[name])
    return None


def thread_refusal(count: int, facts: Facts | None = None) -> Refusal | None:
    """The limit ``count`` more threads of this process would hit, or None."""
    facts = read_facts() if facts is None else facts
    stack = stack_bytes()
    memory = count * THREAD_RESIDENT_BYTES
    needs = {
        "kernel.threads-max": count,
        "kernel.pid_max": count,
        "RLIMIT_NPROC": count,
        "cgroup pids.max": count,
        "vm.max_map_count": 2 * count,
        "RLIMIT_AS": count * stack + ARENA_RESERVE_BYTES,
        "CommitLimit": count * stack,
        "MemAvailable": memory,
        "cgroup memory limit": memory,
    }
    units = dict.fromkeys(needs, "threads")
    units["vm.max_map_count"] = "mappings"
    for name in ("RLIMIT_AS", "CommitLimit", "MemAvailable", "cgroup memory limit"):
        units[name] = "bytes"
    return _first_refusal(facts, needs, units)


def descriptor_refusal(count: int, facts: Facts | None = None) -> Refusal | None:
    """The limit ``count`` more open descriptors of this process would hit, or None."""
    facts = read_facts() if facts is None else facts
    needs = {"RLIMIT_NOFILE": count, "fs.file-max": count}
    return _first_refusal(facts, needs, dict.fromkeys(needs, "descriptors"))


def memory_refusal(nbytes: int, facts: Facts | None = None) -> Refusal | None:
    """The limit allocating ``nbytes`` more in this process would hit, or None."""
    facts = read_facts() if facts is None else facts
    needs = {"MemAvailable": nbytes, "cgroup memory limit": nbytes, "RLIMIT_AS": nbytes}
    return _first_refusal(facts, needs, dict.fromkeys(needs, "bytes"))


def summary() -> dict[str, Any]:
    """The limits as plain data (for a cell's ``extra_info`` or a log)."""
    return {name: list(known) if known else None for name, known in read_facts().items()}


__all__ = [
    "HEADROOM",
    "TASK_RESIDENT_BYTES",
    "THREAD_RESIDENT_BYTES",
    "Facts",
    "Refusal",
    "descriptor_refusal",
    "memory_refusal",
    "read_facts",
    "stack_bytes",
    "summary",
    "thread_refusal",
]
