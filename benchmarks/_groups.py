"""The shapes of the catalogue's entries, and the one path from an entry to its cells.

A ``Group`` is one benchmark test: ``rows(session)`` are its pytest parameters (one row
a cell, with its id and, when it cannot run here, why), ``cell(session, **params)`` the
cell a row measures.  ``ModelGroup`` is every group whose cells run a workload under
models; its ``variants`` say what runs (workload, parameters, task counts) and the rest
of its fields how (models, rounds, group name).  No pytest in here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workloads import UserWorkload, limits, resolve_workload, scale
from workloads.models import MODELS, unavailable_models

MODEL_KIND = "workloads.runner.cells:model"
SCALE_KIND = "workloads.scale:scale"
# The batch of a model whose cells run apart from the other models' (Model.own_batch).
APART = "model:"


@dataclass
class Session:
    """What a session's options say about its cells."""

    profile: str
    # the models chosen with --models (all by default)
    models: Sequence[str] = tuple(MODELS)
    # the session's options that models take as constructor keywords (Model.settings)
    settings: Mapping[str, Any] = field(default_factory=dict)
    seed_sleep: float | None = None
    user: Sequence[UserWorkload] = ()
    # figures measured once per session at planning (mixed: seconds per iteration)
    measured: dict[str, Any] = field(default_factory=dict)
    # what a round records: "time", or "instructions" in a count run
    measure: str = "time"

    def uncounted(self, model: str) -> str | None:
        """Why a count run leaves ``model`` out (``Model.uncountable``), else None."""
        return MODELS[model].uncountable if self.measure == "instructions" else None

    def options(self, model: str) -> dict[str, Any]:
        """The session's settings ``model`` takes: the one path every option reaches
        every model by (recorded in its cells' ``extra_info``)."""
        return {key: self.settings[key] for key in MODELS[model].settings if key in self.settings}


@dataclass(frozen=True)
class Row:
    values: tuple[Any, ...]
    id: str
    skip: str | None = None


@dataclass(frozen=True)
class Cell:
    """One planned cell: how many rounds, what the saved run says about it, and what a
    runner measures (``kind``, ``kwargs``: ``workloads.runner``'s data)."""

    group: str
    rounds: int
    warmup: int
    info: Mapping[str, Any]
    kind: str
    kwargs: Mapping[str, Any]
    # cells interleave with the others of their batch; None: their test module's
    batch: str | None = None
    # the model whose runner measures the cell (Model.runner_patch), if any
    model: str | None = None


class Group:
    argnames: tuple[str, ...] = ()

    def rows(self, session: Session) -> list[Row]:
        raise NotImplementedError

    def cell(self, session: Session, **params: Any) -> Cell:
        raise NotImplementedError


def model_rows(
    session: Session,
    triples: Sequence[tuple[str, int, int]],
    workload: Any = None,
    prefix: tuple[Any, ...] = (),
    id_prefix: str = "",
) -> list[Row]:
    """A row per (model, tasks, workers) of a chosen model; one this interpreter lacks,
    or that lacks the workload's flavour, is skipped with the reason."""
    missing = unavailable_models()
    rows = []
    for model, tasks, workers in triples:
        if model not in session.models:
            continue
        reason = missing.get(model) or session.uncounted(model)
        if reason is None and workload is not None:
            reason = MODELS[model].unsupported(workload)
        rows.append(Row((*prefix, model, tasks, workers), f"{id_prefix}{model}-{tasks}-{workers}",
                        reason))  # fmt: skip
    return rows


def every_model(bound: str, tasks: Sequence[int]) -> list[tuple[str, int, int]]:
    """(model, tasks, workers): every model, each task count, the pool sizes it names."""
    return [
        (model, count, workers)
        for count in tasks
        for model, cls in MODELS.items()
        for workers in cls.worker_counts(bound, count)
    ]


@dataclass(frozen=True)
class Variant:
    """One setting of a model group's outer parameters: what its model cells run."""

    values: tuple[Any, ...]
    id: str
    workload: str
    params: Mapping[str, Any]
    tasks: tuple[int, ...]


# (session, variant, model, tasks, workers) -> (rounds, warm-up rounds)
RoundsRule = Callable[[Session, Variant, str, int, int], tuple[int, int]]


@dataclass(frozen=True)
class ModelGroup(Group):
    """A workload run by models: every registered one at the pool sizes it names, unless
    ``models`` lists them.  ``group`` is formatted with ``workload``, ``tasks`` and the
    outer parameters' names."""

    variants: Callable[[Session], list[Variant]]
    rounds: RoundsRule
    outer: tuple[str, ...] = ()
    group: str = "{workload}:tasks={tasks}"
    models: Callable[[Session, str, Sequence[int]], list[tuple[str, int, int]]] = (
        lambda s, bound, tasks: every_model(bound, tasks)
    )
    kind: str = MODEL_KIND
    # more keywords of the kind (io_socket: its server's style)
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # the workload's name in extra_info, when not its own (the seed's io_sleep cells)
    label: str | None = None
    batch: str | None = None
    # more extra_info from the planned cell (mixed: its measured ideal)
    extra: Callable[[Session, Cell], dict[str, Any]] | None = None
    # skips that need every row at once (scale: the OS limits of all pools together)
    refine: Callable[[list[Row]], list[Row]] | None = None

    @property
    def argnames(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.outer, "model", "tasks", "workers")

    def rows(self, session: Session) -> list[Row]:
        rows = []
        for variant in self.variants(session):
            spec = resolve_workload(variant.workload)
            triples = self.models(session, spec.bound, variant.tasks)
            prefix = f"{variant.id}-" if variant.id else ""
            rows += model_rows(session, triples, spec, variant.values, prefix)
        return self.refine(rows) if self.refine else rows

    def cell(self, session: Session, **params: Any) -> Cell:
        outer = tuple(params[name] for name in self.outer)
        variant = next(v for v in self.variants(session) if v.values == outer)
        model, tasks, workers = params["model"], params["tasks"], params["workers"]
        rounds, warmup = self.rounds(session, variant, model, tasks, workers)
        made = model_cell(session, variant, model, tasks, workers, rounds, warmup, self)
        if self.extra is None:
            return made
        return dataclasses.replace(made, info={**made.info, **self.extra(session, made)})


def model_cell(
    session: Session,
    variant: Variant,
    model: str,
    tasks: int,
    workers: int | None,
    rounds: int,
    warmup: int,
    group: ModelGroup,
) -> Cell:
    """A model cell with the ``extra_info`` the contract names."""
    spec = resolve_workload(variant.workload)
    cls = MODELS[model]
    options = session.options(model)
    workers = workers if cls.pooled else None
    # How many tasks run at once: a pool's size; serial 1, a scheduler every task.
    effective = (
        min(workers or tasks, tasks) if cls.pooled else cls.worker_counts(spec.bound, tasks)[0]
    )
    params = dict(variant.params)
    info: dict[str, Any] = {
        "bound": spec.bound,
        "workload": group.label or spec.name,
        "model": model,
        "flavour": cls.flavour,
        "tasks": tasks,
        "workers": effective,
        "params": params,
        "profile": session.profile,
        **options,
    }
    ideal = spec.task_seconds(**params)
    if ideal is not None:
        info["ideal_s"] = ideal
    capped = cls.worker_cap is not None and workers == cls.worker_cap < tasks
    if capped and "tasks" in cls.choices(spec.bound):
        info["workers_cap"] = cls.worker_cap  # one worker per task, capped
    names = dict(zip(group.outer, variant.values, strict=True))
    return Cell(
        group=group.group.format(workload=spec.name, tasks=tasks, **names),
        rounds=rounds,
        warmup=warmup,
        info=info,
        kind=group.kind,
        kwargs={
            "workload": variant.workload,
            "model": model,
            "tasks": tasks,
            "workers": workers,
            "params": params,
            "options": options,
            **group.kwargs,
        },
        batch=f"{APART}{model}" if cls.own_batch else group.batch,
        model=model,
    )


def user_variants(session: Session, counts: Mapping[str, tuple[int, ...]]) -> list[Variant]:
    """The ``--workload`` cells: a user's workload, its parameters and the task counts of
    its bound (``counts``: "cpu" and "io")."""
    return [
        Variant(
            (index,),
            user.workload.name,
            user.ref,
            user.workload.params(**user.params),
            counts["cpu" if user.workload.bound == "cpu" else "io"],
        )
        for index, user in enumerate(session.user)
    ]


# -- scale cells: OS limits at planning, memory jobs of the whole plan ------------------


def scale_limits(rows: list[Row]) -> list[Row]:
    """Cells that would hit an OS limit skipped with it; every thread pool of the group
    is alive at once (their rounds interleave), so each count is checked with the
    smaller ones beside it."""
    beside, refused = 0, {}
    facts = limits.read_facts()
    for row in sorted(rows, key=lambda r: (r.values[0] != "threads", r.values[1])):
        model, tasks, _ = row.values
        refusal = scale.cell_refusal(model, tasks, beside if model == "threads" else 0, facts)
        if refusal is not None:
            refused[(model, tasks)] = scale.limit_reason(refusal)
        elif model == "threads":
            beside += tasks
    return [Row(r.values, r.id, r.skip or refused.get((r.values[0], r.values[1]))) for r in rows]


def memory_jobs(cells: list[Cell]) -> list[Cell]:
    """Each planned scale cell learns the memory jobs of all of them (one fresh process
    per model and workload, run after the batch's timed rounds)."""
    jobs: dict[tuple[Any, ...], set[int]] = {}
    for cell in cells:
        if cell.kind == SCALE_KIND:
            kw = cell.kwargs
            key = (kw["model"], kw["workload"], tuple(sorted(kw["params"].items())))
            jobs.setdefault(key, set()).add(kw["tasks"])
    plan = [
        {"model": m, "workload": w, "params": dict(p), "counts": sorted(counts)}
        for (m, w, p), counts in jobs.items()
    ]
    return [
        replace(c, kwargs={**c.kwargs, "memory_jobs": plan}) if c.kind == SCALE_KIND else c
        for c in cells
    ]
