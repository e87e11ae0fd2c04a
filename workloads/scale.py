"""Scale cells: a model cell that reports what each task costs, and meets OS limits with
a skip instead of a crash.

Results are checked against the workload's ``expected`` (serial would take 10,000 x
150 ms) inside each round, after its timing, and only the verdict is kept: a runner
holding 100,000 results per round would grow by hundreds of MB.  Before a pool is built
the OS limits are read again (``workloads.limits``); a cell that would come within 10 %
of one fails with ``LIMIT_PREFIX`` and the limit, which the session turns into a skip.
Memory per task comes from ``workloads.memory``'s fresh processes, started by the first
cell to finish, after every timed round of the batch (memory does not depend on timing).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import limits, memory
from .models import MODELS, Model, ModelError
from .runner import Bench, Cell, CellError, ModelCell, Round, measured, model_facts, stretched

LIMIT_PREFIX = "OS limit: "


class LimitReached(CellError):
    """The OS would refuse (or refused) what a cell needs; the cell is skipped."""


def cell_refusal(
    model: str, tasks: int, threads_before: int = 0, facts: limits.Facts | None = None
) -> limits.Refusal | None:
    """The OS limit a cell would hit (limits read now, or ``facts``); ``threads_before``:
    pool threads planned before this one that will be alive beside it."""
    facts = limits.read_facts() if facts is None else facts
    if model == "threads":
        refusal = limits.thread_refusal(threads_before + tasks, facts)
        if refusal is not None:
            return refusal
    refusal = limits.memory_refusal(tasks * limits.TASK_RESIDENT_BYTES, facts)
    if refusal is not None:
        return refusal
    return limits.descriptor_refusal(MODELS[model].descriptors if model in MODELS else 0, facts)


def limit_reason(refusal: limits.Refusal) -> str:
    return f"{LIMIT_PREFIX}{refusal}"


@dataclass(frozen=True)
class ScaleRound:
    problem: str | None
    cpu_s: float


class ScaleCell(ModelCell):
    def __init__(
        self, bench: Bench, memory_jobs: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        self.memory_jobs = memory_jobs
        super().__init__(bench, **kwargs)

    def reference(self) -> list[Any]:
        known = self.workload.expected_results(self.tasks, **self.params)
        if known is None:
            raise LookupError(f"scale: workload {self.ref!r} has no expected results")
        return known

    def model(self) -> Model:
        key = (self.name, self.workers, tuple(sorted(self.options.items())))
        if key not in self.bench.models:
            # Read the limits again right before the pool exists: other pools may have
            # grown since the plan was made.
            refusal = cell_refusal(self.name, self.tasks)
            if refusal is not None:
                raise LimitReached(limit_reason(refusal))
        try:
            return super().model()
        except RuntimeError as exc:
            # "can't start new thread": a limit the check did not foresee.
            if isinstance(exc, (CellError, ModelError)) or "thread" not in str(exc):
                raise
            raise LimitReached(
                f"{LIMIT_PREFIX}the OS refused a thread for {self.tasks} threads: {exc}"
            ) from exc

    def run(self, model: Model) -> list[Any]:
        try:
            return model.run(self.workload, self.params, self.tasks)
        except MemoryError as exc:
            model.broken = "ran out of memory"
            raise LimitReached(
                f"{LIMIT_PREFIX}out of memory with {self.tasks} tasks "
                f"(MemAvailable, RLIMIT_AS: {limits.memory_refusal(0) or 'not reached now'})"
            ) from exc

    def round(self) -> Round:
        model = self.model()
        cpu_before = model.cpu_seconds()
        results, seconds = measured(stretched(lambda: self.run(model), self.slow), model.child_pids)
        cpu = model.cpu_seconds() - cpu_before
        # Checked here and dropped: see the module docstring.
        return Round(seconds, cpu, ScaleRound(self.verdict(results), cpu))

    def verdict(self, results: list[Any]) -> str | None:
        """Why a round's results are wrong, or None."""
        return super().problem(results)

    def problem(self, result: Any) -> str | None:
        verdict: str | None = result.problem
        return verdict

    def finish(self, seconds: list[float], results: list[Any]) -> dict[str, Any]:
        ideal = self.workload.task_seconds(**self.params)
        cpu = [r.cpu_s for r in results]
        return {
            "us_per_task": (
                (statistics.median(seconds) - ideal) / self.tasks * 1e6
                if seconds and ideal is not None
                else None
            ),
            "cpu_us_per_task": statistics.fmean(cpu) / self.tasks * 1e6 if cpu else None,
            "model_info": model_facts(self.model()),
            **self.memory(),
        }

    def memory(self) -> dict[str, Any]:
        """This cell's figures from the batch's memory processes."""
        info: dict[str, Any] = {
            "kb_per_task": None,
            "start_kb_per_task": None,
            "memory_idle_kb": None,
            "memory_peak_kb": None,
            "memory_method": memory.METHOD,
        }
        reason = memory.unsupported()
        if reason is not None or self.memory_jobs is None:
            info["memory_method"] = reason or "not measured (no memory plan)"
            return info
        jobs = [
            memory.Job(j["model"], j["workload"], tuple(sorted(j["params"].items())),
                       tuple(j["counts"]))
            for j in self.memory_jobs
        ]  # fmt: skip
        measure: Callable[[], tuple[Any, Callable[[], None]]] = lambda: (  # noqa: E731
            memory.measure_jobs(jobs, self.bench.timeout),
            lambda: None,
        )
        rows: Mapping[memory.Job, list[dict[str, Any]]] = self.bench.resource(
            ("scale-memory", json.dumps(self.memory_jobs, sort_keys=True)), measure
        )
        wanted = (self.name, self.ref, tuple(sorted(self.params.items())))
        row = next(
            (
                found
                for job, job_rows in rows.items()
                if (job.model, job.workload, job.params) == wanted
                for found in job_rows
                if found.get("tasks") == self.tasks
            ),
            None,
        )
        if row is None or row.get("skipped"):
            info["memory_method"] = (row or {}).get("skipped") or "not measured"
            return info
        if row.get("digest") != memory.digest(self.expected):
            raise CellError(f"{self.name} returned wrong results in its memory run")
        info["kb_per_task"] = row["kb_per_task"]
        info["start_kb_per_task"] = row.get("start_kb_per_task")
        info["memory_idle_kb"] = row.get("idle_kb")
        info["memory_peak_kb"] = row.get("peak_kb")
        return info


def scale(bench: Bench, **kwargs: Any) -> Cell:
    return ScaleCell(bench, **kwargs)
