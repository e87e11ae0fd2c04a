"""Users' own workloads: ``--workload module:NAME[,key=value...]`` and entry points.

A spec names a ``Workload`` object three ways:

- ``mypkg.mymod:MY_WORKLOAD``: an attribute of an importable module;
- ``io_sleep``: a workload registered in ``workloads.WORKLOADS``;
- ``name``: a workload an installed package offers through the entry-point group
  ``boundbench.workloads`` (``name = "module:OBJECT"``).

Parameters follow after commas, ``mypkg.mymod:W,n=1000,size=64``; values are Python
literals (numbers, strings, booleans), anything else is taken as a string.

``make_workload`` builds a ``Workload`` from plain functions: the parameters and their
defaults come from the ``sync`` function's keyword arguments.  ``check_flavours`` runs
each flavour a workload has on a couple of tasks and refuses one whose flavours
disagree, once, before any timing.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ._spec import BOUNDS, CoroFn, GenFn, SyncFn, Workload

ENTRY_POINT_GROUP = "boundbench.workloads"


class WorkloadSpecError(LookupError):
    """A ``--workload`` spec that cannot be used; the message says why."""


@dataclass(frozen=True)
class UserWorkload:
    """A resolved spec: the workload and the parameters the user set."""

    spec: str
    # what ``resolve_workload`` turns back into the workload (the spec without parameters)
    ref: str
    workload: Workload
    params: Mapping[str, Any] = field(default_factory=dict)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ref,key=value,..."`` -> (ref, {key: value})."""
    ref, *pairs = [part.strip() for part in spec.split(",")]
    if not ref:
        raise WorkloadSpecError(f"--workload {spec!r}: empty; expected module:NAME[,key=value...]")
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise WorkloadSpecError(
                f"--workload {spec!r}: {pair!r} is not key=value (parameters follow the "
                "name after commas: module:NAME,n=1000)"
            )
        params[key.strip()] = _literal(value.strip())
    return ref, params


def entry_point_workloads() -> dict[str, str]:
    """Workloads installed packages offer: name -> ``module:OBJECT``."""
    return {
        entry.name: entry.value
        for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    }


def _load(ref: str, origin: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise WorkloadSpecError(f"{origin}: expected module:NAME, got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise WorkloadSpecError(
            f"{origin}: module {module_name!r} not found ({exc}); is it importable from "
            "here (installed, or on PYTHONPATH)?"
        ) from None
    except Exception as exc:  # the user's module failed while importing
        raise WorkloadSpecError(
            f"{origin}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise WorkloadSpecError(f"{origin}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def resolve_workload(ref: str, registered: Mapping[str, Workload]) -> Workload:
    """The ``Workload`` a reference names (no parameters): see the module docstring."""
    if ":" in ref:
        obj = _load(ref, f"workload {ref!r}")
    elif ref in registered:
        return registered[ref]
    else:
        offered = entry_point_workloads()
        if ref not in offered:
            valid = ", ".join([*registered, *offered])
            raise WorkloadSpecError(
                f"unknown workload {ref!r}: give module:NAME, or one of: {valid}"
            )
        obj = _load(offered[ref], f"workload {ref!r} (entry point {offered[ref]!r})")
    if not isinstance(obj, Workload):
        raise WorkloadSpecError(
            f"workload {ref!r} is a {type(obj).__name__}, not a workloads.Workload "
            "(build one with workloads.make_workload)"
        )
    return obj


def resolve_spec(spec: str, registered: Mapping[str, Workload]) -> UserWorkload:
    """A ``--workload`` spec, checked: known parameters, agreeing flavours."""
    ref, params = parse_spec(spec)
    workload = resolve_workload(ref, registered)
    try:
        workload.params(**params)
    except ValueError as exc:
        raise WorkloadSpecError(f"--workload {spec!r}: {exc}") from None
    problem = check_flavours(workload, params)
    if problem:
        raise WorkloadSpecError(f"--workload {spec!r}: {problem}")
    return UserWorkload(spec=spec, ref=ref, workload=workload, params=params)


def _run_gen(gen: Any) -> Any:
    """Drive one generator task to its result (sleeps are slept; tasks alone here)."""
    import time

    try:
        value = next(gen)
        while True:
            if isinstance(value, int | float) and value > 0:
                time.sleep(value)
            value = gen.send(None)
    except StopIteration as stop:
        return stop.value


def check_flavours(workload: Workload, params: Mapping[str, Any], tasks: int = 2) -> str | None:
    """Why the flavours of ``workload`` disagree (or fail) on a few tasks, or None."""
    values = workload.params(**params)
    results: dict[str, list[Any]] = {}
    for flavour in workload.flavours():
        fn = workload.flavour(flavour)
        try:
            if flavour == "sync":
                got = [fn(task_id, **values) for task_id in range(tasks)]
            elif flavour == "gen":
                got = [_run_gen(fn(task_id, **values)) for task_id in range(tasks)]
            else:
                got = [asyncio.run(fn(task_id, **values)) for task_id in range(tasks)]
        except Exception as exc:
            return f"its {flavour} flavour raised {type(exc).__name__}: {exc}"
        results[flavour] = got
    first, *others = results
    for flavour in others:
        if results[flavour] != results[first]:
            return (
                f"its flavours disagree: {first} returned {results[first]!r}, "
                f"{flavour} returned {results[flavour]!r} for tasks 0..{tasks - 1}"
            )
    return None


def make_workload(
    name: str,
    sync: SyncFn,
    *,
    bound: str = "cpu",
    gen: GenFn | None = None,
    coro: CoroFn | None = None,
    duration: Callable[..., float | None] | None = None,
) -> Workload:
    """A ``Workload`` from plain functions ``f(task_id, **params)``.

    The parameters and their defaults are the ``sync`` function's keyword arguments
    after ``task_id``; the other flavours must take the same ones.  Functions must be
    defined at module level, so that process pools can pickle them.
    """
    if bound not in BOUNDS:
        raise ValueError(f"{name}: bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
    signature = inspect.signature(sync)
    names = list(signature.parameters)
    if not names:
        raise ValueError(f"{name}: the sync function must take task_id first")
    defaults = {}
    for param in list(signature.parameters.values())[1:]:
        if param.default is inspect.Parameter.empty:
            raise ValueError(
                f"{name}: parameter {param.name!r} of {sync.__name__} needs a default value"
            )
        defaults[param.name] = param.default
    return Workload(
        name=name,
        bound=bound,
        sync=sync,
        gen=gen,
        coro=coro,
        defaults=defaults,
        duration=duration,
    )
