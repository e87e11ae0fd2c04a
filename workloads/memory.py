"""Peak memory per task of a model, measured without disturbing any timed run.

Method: the kernel's own high-water mark, in a fresh process.  One new interpreter
(``python -m workloads.memory --jobs FILE``) imports the models and forks a child per
(model, workload); each child starts the model, makes one warm-up run of one task, and
then for each task count, smallest first: returns freed memory to the OS (``settle``),
resets each process's peak resident size (``echo 5 > /proc/PID/clear_refs``), reads its
resident size (``VmRSS``: the idle level), runs the tasks once, and reads the peak
(``VmHWM``).  Every process doing the model's work is counted (``Model.pids()``: the
gevent worker too).  KiB per task = sum over those processes of (peak - idle) / tasks.
The children run side by side (memory does not depend on timing), except those that
build big pools (``runs_alone``), and the benchmark starts them after all its timed
rounds.

Why this method:
- Nothing samples during a run: the kernel keeps the peak anyway.  A sampling thread
  would take the GIL from the tasks it measures (and miss short peaks).
- It sees all memory: thread stacks, greenlet stacks, C allocations (uvloop's handles).
  ``tracemalloc`` sees only Python's allocator and misses every stack.
- A fresh process, because a peak of resident memory is blind to memory the process
  already holds: an allocator reuses what earlier work freed (Python keeps partly used
  arenas; glibc keeps freed heap), so in the long-lived benchmark process a run of
  1,000 asyncio tasks read 0.2 KiB per task, and 2 KiB in a fresh one.  A fork of an
  interpreter that has only imported has such a clean heap, without paying for an
  interpreter per job.  Counts go up by tenfold steps, so what a smaller count left
  behind is a small share of the next.
- The warm-up run keeps one-off costs (lazy imports, caches) out of the first count.

Pools are started before the reset (as everywhere in the suite, untimed), so a
thread's stack is in the idle level: ``kb_per_task`` is what a run allocates per task,
and ``start_kb_per_task`` (pools with one worker per task: threads) is what starting the
pool added, per task — mostly the threads' stacks.

Limits: figures are pages the kernel counts, so at 10 tasks a figure is a few pages
over 10 (indicative from ~1,000 tasks up).  Where ``/proc`` has no ``clear_refs`` or
``VmHWM`` (not Linux), ``unsupported()`` says why and no figure is made (``None``)
rather than a wrong one.  A count whose threads or memory would come near an OS limit
(``workloads.limits``) is skipped with the limit named.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import _children

METHOD = "clear_refs+VmHWM, a fresh forked process per model and workload"
PROC = Path("/proc")
# Writing this to clear_refs resets the peak resident size (Linux >= 4.0).
_RESET_PEAK = b"5"
# A job whose pool has this many workers or more runs alone (``runs_alone``).
BIG_POOL = 2_000

T = TypeVar("T")


def _status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/PID/status, or None when the process or the field is gone."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            parts = value.split()
            return int(parts[0]) if parts and parts[0].isdigit() else None
    return None


def rss_kb(pid: int) -> int | None:
    """Resident size now (``VmRSS``), KiB."""
    return _status_kb(pid, "VmRSS")


def peak_kb(pid: int) -> int | None:
    """Peak resident size since start or the last reset (``VmHWM``), KiB."""
    return _status_kb(pid, "VmHWM")


def reset_peak(pid: int) -> bool:
    """Reset a process's peak resident size to its current one; False if not possible."""
    try:
        with (PROC / str(pid) / "clear_refs").open("wb", buffering=0) as handle:
            handle.write(_RESET_PEAK)
    except OSError:
        return False
    return True


def unsupported() -> str | None:
    """Why peak memory cannot be measured here, or None when it can."""
    me = os.getpid()
    if not (PROC / str(me) / "status").exists():
        return f"no {PROC}/PID/status here (not Linux?): peak memory is not measured"
    if peak_kb(me) is None:
        return f"{PROC}/PID/status has no VmHWM: peak memory is not measured"
    if not os.access(PROC / str(me) / "clear_refs", os.W_OK):
        return f"{PROC}/PID/clear_refs cannot be written: peak memory is not measured"
    return None


def settle() -> None:
    """Give memory freed by earlier runs back to the OS, so the idle level is low.

    Collects cycles and asks glibc to return free heap pages (``malloc_trim``).
    """
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        trim = ctypes.CDLL(libc_name).malloc_trim
    except (OSError, AttributeError):
        return  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


@dataclass(frozen=True)
class PeakUse:
    """Per process: resident KiB after the reset (idle) and the peak during the call."""

    idle_kb: dict[int, int]
    peak_kb: dict[int, int]

    @property
    def growth_kb(self) -> int:
        """Sum over the processes of peak above idle, KiB."""
        return sum(
            max(0, self.peak_kb[pid] - idle)
            for pid, idle in self.idle_kb.items()
            if pid in self.peak_kb
        )


def peak_during(pids: Iterable[int], call: Callable[[], T]) -> tuple[T, PeakUse | None]:
    """Run ``call`` once; return its result and the processes' peak use above idle.

    The use is None when any of the processes cannot be reset or read (then a figure
    would leave part of the work out).
    """
    targets = list(dict.fromkeys(pids))
    idle: dict[int, int] | None = {}
    for pid in targets:
        level = rss_kb(pid) if reset_peak(pid) else None
        if level is None or idle is None:
            idle = None
            continue
        idle[pid] = level
    result = call()
    if idle is None:
        return result, None
    peaks: dict[int, int] = {}
    for pid in targets:
        top = peak_kb(pid)
        if top is None:
            return result, None
        peaks[pid] = top
    return result, PeakUse(idle, peaks)


def digest(results: Any) -> str:
    """A short fingerprint of a run's results (checked against the expected ones)."""
    return hashlib.sha256(repr(results).encode()).hexdigest()[:16]


# -- one model, in this (fresh) process -------------------------------------------------


def _row(tasks: int, skipped: str | None) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "kb_per_task": None,
        "idle_kb": None,
        "peak_kb": None,
        "start_kb_per_task": None,
        "digest": None,
        "skipped": skipped,
    }


def _total_rss(pids: Iterable[int]) -> int:
    return sum(rss_kb(pid) or 0 for pid in pids)


def measure_model(
    model_name: str,
    workload_ref: str,
    params: Mapping[str, Any],
    counts: Sequence[int],
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Peak memory per task of ``model_name`` at each of ``counts`` tasks (see module doc).

    Call it in a fresh process.  One dict per count: ``tasks``, ``kb_per_task``,
    ``idle_kb``, ``peak_kb``, ``start_kb_per_task``, ``digest`` (of the results), and
    ``skipped`` (a reason, or None).
    """
    from . import limits
    from . import resolve_workload as _resolve
    from .models import MODELS, get_model

    workload = _resolve(workload_ref)
    cls = MODELS[model_name]
    reason = unsupported()
    if reason is not None:
        return [_row(tasks, reason) for tasks in sorted(set(counts))]
    out: list[dict[str, Any]] = []
    shared = None if cls.pooled else get_model(model_name, timeout=timeout).start()
    try:
        if shared is not None:
            shared.run(workload, dict(params), 1)  # warm-up: one-off costs stay out
        for tasks in sorted(set(counts)):
            row = _row(tasks, None)
            out.append(row)
            refusal = (
                limits.thread_refusal(tasks) if model_name == "threads" else None
            ) or limits.memory_refusal(tasks * limits.TASK_RESIDENT_BYTES)
            if refusal is not None:
                row["skipped"] = f"OS limit: {refusal}"
                continue
            model = shared
            if model is None:
                settle()
                before = _total_rss([os.getpid()])
                model = get_model(model_name, workers=tasks, timeout=timeout).start()
                settle()
                row["start_kb_per_task"] = (_total_rss(model.pids()) - before) / tasks
                model.run(workload, dict(params), 1)
            try:
                settle()
                run = functools.partial(model.run, workload, dict(params), tasks)
                results, use = peak_during(model.pids(), run)
                row["digest"] = digest(results)
                del results
            finally:
                if model is not shared:
                    model.close()
            if use is not None:
                row["kb_per_task"] = use.growth_kb / tasks
                row["idle_kb"] = sum(use.idle_kb.values())
                row["peak_kb"] = sum(use.peak_kb.values())
    finally:
        if shared is not None:
            shared.close()
    return out


# -- from the benchmark process: one fresh process, a forked child per job ---------------


@dataclass(frozen=True)
class Job:
    """One child's work: a model, a workload (a ``resolve_workload`` reference) and its
    parameters, task counts."""

    model: str
    workload: str
    params: tuple[tuple[str, Any], ...]
    counts: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "workload": self.workload,
            "params": dict(self.params),
            "counts": list(self.counts),
        }


def measure_jobs(jobs: Iterable[Job], timeout: float = 300.0) -> dict[Job, list[dict[str, Any]]]:
    """Measure every job, all at once, each in a child of one fresh process; rows by job.

    One new interpreter imports the models once and forks a child per job (a fork of
    an interpreter that has only imported has a clean heap, and the children run side
    by side without paying for an interpreter each).  A job that fails or outlives
    ``timeout`` gets one row per count with the reason in ``skipped``.  The process
    leads its own process group and is killed with it on timeout or interruption.
    """
    todo = list(dict.fromkeys(jobs))
    if not todo:
        return {}
    with contextlib.ExitStack() as files:
        spec = files.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))
        json.dump([job.as_json() for job in todo], spec)
        spec.flush()
        out = files.enter_context(tempfile.TemporaryFile())
        err = files.enter_context(tempfile.TemporaryFile())
        argv = [sys.executable, "-m", "workloads.memory", "--jobs", spec.name]
        proc = _children.spawn(
            [*argv, "--timeout", str(timeout)], stdout=out, stderr=err, cwd=_children.ROOT
        )
        # The children have ``timeout`` each, side by side but for the big pools; the
        # rest is start-up.
        waves = 1 + sum(runs_alone(job) for job in todo)
        try:
            finished = _children.wait_exit(proc, waves * timeout + 60)
        finally:
            # Also what it left behind: its forked children are in its group.
            code = _children.end(proc)
        if not finished:
            return {
                job: _failed(job, f"memory measurement unfinished after {timeout} s")
                for job in todo
            }
        out.seek(0)
        err.seek(0)
        if code != 0:
            last = (err.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
            return {
                job: _failed(job, f"memory measurement failed (exit {code}): {last}")
                for job in todo
            }
        try:
            rows: list[list[dict[str, Any]]] = json.loads(out.read().decode(errors="replace"))[
                "jobs"
            ]
        except (ValueError, KeyError, TypeError):
            rows = []
    if len(rows) != len(todo):
        return {job: _failed(job, "memory measurement printed no result") for job in todo}
    return dict(zip(todo, rows, strict=True))


def _failed(job: Job, reason: str) -> list[dict[str, Any]]:
    return [_row(tasks, reason) for tasks in job.counts]


def job_problem(job: Job) -> str | None:
    """Why a job cannot run here (unknown or unavailable model, bad workload or params)."""
    from . import resolve_workload as _resolve
    from .models import MODELS, unavailable_models

    if job.model not in MODELS:
        return f"unknown model {job.model!r}; valid: {', '.join(MODELS)}"
    missing = unavailable_models().get(job.model)
    if missing:
        return missing
    if not job.counts or min(job.counts) < 1:
        return f"task counts must be positive: {list(job.counts)}"
    try:
        _resolve(job.workload).params(**dict(job.params))
    except (LookupError, ValueError) as exc:
        return str(exc)
    return None


def runs_alone(job: Job) -> bool:
    """Whether a job needs a pool big enough that it must not run beside another such.

    Two children each building 10,000 threads beside the benchmark's own pools came
    near ``kernel.pid_max`` here, and their GIL convoys starved the machine for minutes;
    each child checks the limits before building its pool, but two checking at once
    both see room.
    """
    from .models import MODELS

    cls = MODELS.get(job.model)
    return cls is not None and cls.pooled and max(job.counts, default=0) >= BIG_POOL


def fork_jobs(jobs: Sequence[Job], timeout: float) -> list[list[dict[str, Any]]]:
    """Run each job in a forked child of this process; rows per job, in order.

    The jobs run side by side, except those that build big pools (``runs_alone``): one
    at a time, after the others.  Each child has ``timeout`` seconds.  Call it in a
    fresh interpreter that has only imported (``python -m workloads.memory --jobs``):
    the children inherit its heap.
    """
    import importlib.util

    from . import models as _models  # noqa: F401  (imported once, before the forks)

    if importlib.util.find_spec("uvloop") is not None:
        import uvloop  # noqa: F401  (the children would each import it otherwise)
    results: list[list[dict[str, Any]] | None] = [None] * len(jobs)
    runnable = []
    for index, job in enumerate(jobs):
        problem = job_problem(job)
        if problem is None:
            runnable.append(index)
        else:
            results[index] = _failed(job, problem)
    together = [index for index in runnable if not runs_alone(jobs[index])]
    waves = [together] + [[index] for index in runnable if runs_alone(jobs[index])]
    with tempfile.TemporaryDirectory() as scratch:
        for wave in waves:
            children = {_fork(jobs[index], scratch, index, timeout): index for index in wave}
            _reap(jobs, children, scratch, timeout, results)
    return [
        rows if rows is not None else _failed(job, "not run")
        for rows, job in zip(results, jobs, strict=True)
    ]


def _fork(job: Job, scratch: str, index: int, timeout: float) -> int:
    path = os.path.join(scratch, f"{index}.json")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    # The child: measure, write, leave without running any of the parent's cleanup.
    code = 1
    try:
        rows = measure_model(job.model, job.workload, dict(job.params), job.counts, timeout)
        with open(path, "w") as handle:
            json.dump(rows, handle)
        code = 0
    except BaseException as exc:  # the parent reports it as the job's failure
        with contextlib.suppress(OSError), open(path, "w") as handle:
            json.dump({"error": f"{type(exc).__name__}: {exc}"}, handle)
    finally:
        os._exit(code)


def _reap(
    jobs: Sequence[Job],
    children: dict[int, int],
    scratch: str,
    timeout: float,
    results: list[list[dict[str, Any]] | None],
) -> None:
    """Wait for the children (pid -> job index), at most ``timeout``; kill the late ones
    (and every one left if this fails or is interrupted)."""
    deadline = time.monotonic() + timeout
    try:
        while children:
            for pid in list(children):
                if _children.reap_fork(pid) is not None:
                    index = children.pop(pid)
                    path = os.path.join(scratch, f"{index}.json")
                    results[index] = _read_rows(jobs[index], path)
            if children and time.monotonic() > deadline:
                for index in children.values():
                    results[index] = _failed(
                        jobs[index], f"memory measurement unfinished after {timeout} s"
                    )
                break
            time.sleep(0.02)
    finally:
        for pid in children:
            _children.kill_fork(pid)
        children.clear()


def _read_rows(job: Job, path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return _failed(job, "memory measurement died without a result")
    if isinstance(data, dict):
        return _failed(job, f"memory measurement failed: {data.get('error')}")
    rows: list[dict[str, Any]] = data
    return rows


__all__ = [
    "METHOD",
    "Job",
    "PeakUse",
    "digest",
    "fork_jobs",
    "job_problem",
    "measure_jobs",
    "measure_model",
    "peak_during",
    "peak_kb",
    "reset_peak",
    "rss_kb",
    "runs_alone",
    "settle",
    "unsupported",
]


# -- command line -----------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of task counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"task counts must be positive: {text!r}")
    return counts


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _jobs(path: str) -> list[Job]:
    try:
        with open(path) as handle:
            data = json.load(handle)
        return [
            Job(
                str(item["model"]),
                str(item["workload"]),
                tuple(sorted(dict(item.get("params", {})).items())),
                tuple(int(count) for count in item["counts"]),
            )
            for item in data
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read jobs from {path!r}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.memory",
        description="Peak memory per task of models, measured in this fresh process (JSON).",
    )
    parser.add_argument("--model")
    parser.add_argument("--workload")
    parser.add_argument("--params", type=_params, default={})
    parser.add_argument("--tasks", type=_counts, help="e.g. 10,100,1000")
    parser.add_argument(
        "--jobs",
        type=_jobs,
        metavar="FILE",
        help="JSON list of {model, workload, params, counts}: a forked child each, at once",
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.jobs is not None:
        if args.model or args.workload or args.tasks:
            parser.error("--jobs goes alone (without --model, --workload, --tasks)")
        print(json.dumps({"method": METHOD, "jobs": fork_jobs(args.jobs, args.timeout)}))
        return 0
    if not (args.model and args.workload and args.tasks):
        parser.error("give --model, --workload and --tasks (or --jobs FILE)")
    job = Job(args.model, args.workload, tuple(sorted(args.params.items())), tuple(args.tasks))
    problem = job_problem(job)
    if problem is not None:
        parser.error(problem)
    cells = measure_model(args.model, args.workload, args.params, args.tasks, args.timeout)
    print(json.dumps({"method": METHOD, "cells": cells}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
