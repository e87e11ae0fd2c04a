"""Command-line options, shared fixtures and the machine-info hook of boundbench.

``--profile`` sizes the benchmark cells, ``--models`` picks models by registry name;
both reject unknown names with a usage error that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._harness import ModelCache, default_workers, gevent_patched
from benchmarks._profiles import DEFAULT_PROFILE, PROFILE_NAMES, PROFILES, Profile
from workloads import machine_facts
from workloads.models import DEFAULT_START_METHOD, MODELS, START_METHODS, unavailable_models


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boundbench")
    group.addoption(
        "--profile",
        choices=PROFILE_NAMES,
        default=DEFAULT_PROFILE,
        help=f"size of the benchmark cells: {', '.join(PROFILE_NAMES)} (default {DEFAULT_PROFILE})",
    )
    group.addoption(
        "--models",
        default="",
        metavar="NAMES",
        help=f"comma-separated models to run (default: all): {', '.join(MODELS)}",
    )
    group.addoption(
        "--seed-sleep",
        type=float,
        default=None,
        metavar="SECONDS",
        help="length of each sleep in the seed's gevent experiment (the tutorial used 2.0; "
        "default: the profile's)",
    )
    group.addoption(
        "--start-method",
        choices=START_METHODS,
        default=DEFAULT_START_METHOD,
        help=f"start method of the processes model's pool (default {DEFAULT_START_METHOD}); "
        "recorded in each cell's extra_info",
    )
    group.addoption(
        "--cell-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up on a cell (and fail it) after this long (default 300)",
    )


def selected_models(config: pytest.Config) -> list[str]:
    raw = config.getoption("models") or ""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or list(MODELS)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    unknown = [name for name in selected_models(config) if name not in MODELS]
    if unknown:
        raise pytest.UsageError(
            f"--models: unknown model(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(MODELS)}"
        )
    seed_sleep = config.getoption("seed_sleep")
    if seed_sleep is not None and seed_sleep < 0.001:
        raise pytest.UsageError("--seed-sleep: must be at least 0.001 seconds")
    # The regression check wants every round's time, not only the summary.
    if hasattr(config.option, "benchmark_save_data"):
        config.option.benchmark_save_data = True


def get_profile(config: pytest.Config) -> Profile:
    return PROFILES[config.getoption("profile")]


def model_params(config: pytest.Config, cells: list[tuple[str, int, int]]) -> list[Any]:
    """pytest.param per (model, tasks, workers), skipping unavailable models visibly."""
    chosen = selected_models(config)
    missing = unavailable_models()
    params = []
    for model, tasks, workers in cells:
        if model not in chosen:
            continue
        marks = [pytest.mark.skip(reason=missing[model])] if model in missing else []
        params.append(
            pytest.param(model, tasks, workers, id=f"{model}-{tasks}-{workers}", marks=marks)
        )
    return params


def parametrize_cells(metafunc: pytest.Metafunc, bound: str, task_counts: tuple[int, ...]) -> None:
    """Parametrize (model, tasks, workers): every model, each task count, its worker counts."""
    cells = [
        (model, tasks, workers or (1 if model == "serial" else tasks))
        for tasks in task_counts
        for model in MODELS
        for workers in default_workers(model, bound, tasks)
    ]
    metafunc.parametrize(("model", "tasks", "workers"), model_params(metafunc.config, cells))


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    return get_profile(pytestconfig)


@pytest.fixture(scope="session")
def model_cache(pytestconfig: pytest.Config) -> Iterator[ModelCache]:
    cache = ModelCache(
        timeout=pytestconfig.getoption("cell_timeout"),
        start_method=pytestconfig.getoption("start_method"),
    )
    try:
        yield cache
    finally:
        cache.close()


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    facts = machine_facts()
    facts["profile"] = config.getoption("profile")
    machine_info["boundbench"] = facts


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The gevent model patches only its own worker; a patched pytest process would make
    # every other model's figures silently wrong.
    patched = gevent_patched()
    if patched:
        session.config.get_terminal_writer().line(
            f"boundbench: ERROR: gevent patched the pytest process: {', '.join(patched)}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
