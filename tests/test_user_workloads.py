"""``--workload``: a user's own workload under every model, and every kind of bad spec."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests._procs import TAG_ENV, wait_gone
from tests.test_plugins import install_plugin, plugin_env
from tests.test_suite import ROOT, count_of, run_pytest
from workloads import (
    WorkloadSpecError,
    check_flavours,
    make_workload,
    resolve_spec,
)

MODULE = """
import asyncio
from workloads import make_workload, Workload


def square(task_id, n=3):
    return task_id * n


def square_gen(task_id, n=3):
    yield 0.001
    return task_id * n


async def square_coro(task_id, n=3):
    await asyncio.sleep(0.001)
    return task_id * n


async def wrong_coro(task_id, n=3):
    return task_id * n + 1


def needs_a_value(task_id, n):
    return n


SQUARE = make_workload("square", square, gen=square_gen, coro=square_coro)
SYNC_ONLY = make_workload("sync_only", square, bound="io")
DISAGREE = make_workload("disagree", square, coro=wrong_coro)
NOT_A_WORKLOAD = {"name": "square"}
"""


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    (tmp_path / "user_mod.py").write_text(MODULE)
    return tmp_path


QUICK = ["--profile", "quick", "-q"]


def run_user(user_dir: Path, *args: str, **env: str) -> Any:
    return run_pytest("benchmarks/test_user.py", *QUICK, *args, env={**plugin_env(user_dir), **env})


@pytest.mark.slow
def test_a_good_workload_runs_under_every_model_and_is_saved(
    user_dir: Path, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    storage = tmp_path / "storage"
    result = run_user(
        user_dir,
        "--workload",
        "user_mod:SQUARE,n=5",
        "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}",
        **{TAG_ENV: tag},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert wait_gone(tag) == [], "children outlived the session"
    (saved,) = storage.rglob("*.json")
    benchmarks = json.loads(saved.read_text())["benchmarks"]
    models = {b["extra_info"]["model"] for b in benchmarks}
    # every model with a flavour for it (asyncio_processes needs a hybrid one)
    assert {"serial", "generator", "threads", "processes", "gevent", "asyncio"} <= models
    first = benchmarks[0]
    assert first["group"].startswith("square:tasks=")
    assert first["extra_info"]["workload"] == "square"
    assert first["extra_info"]["params"] == {"n": 5}


@pytest.mark.slow
def test_a_sync_only_workload_skips_the_models_that_need_another_flavour(
    user_dir: Path,
) -> None:
    result = run_user(user_dir, "--workload", "user_mod:SYNC_ONLY", "--benchmark-disable")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "generator runs the 'gen' flavour, which workload 'sync_only' does not have" in (
        result.stdout
    )
    assert "asyncio runs the 'coro' flavour" in result.stdout
    assert count_of("passed", result.stdout.splitlines()[-1]) > 0


BAD = {
    "no module": ("nosuch_mod:W", "module 'nosuch_mod' not found"),
    "no name": ("user_mod:MISSING", "'user_mod' has no attribute 'MISSING'"),
    "not a workload": ("user_mod:NOT_A_WORKLOAD", "is a dict, not a workloads.Workload"),
    "unknown parameter": ("user_mod:SQUARE,size=3", "unknown parameter(s) ['size']"),
    "not key=value": ("user_mod:SQUARE,n", "'n' is not key=value"),
    "flavours disagree": ("user_mod:DISAGREE", "its flavours disagree"),
    "unknown name": ("nosuch", "unknown workload 'nosuch'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_spec_is_a_usage_error_that_says_why(user_dir: Path, case: str) -> None:
    spec, expected = BAD[case]
    result = run_user(user_dir, "--workload", spec, "--collect-only")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout[-2000:]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_entry_point_workload_is_listed_and_runs_by_name(user_dir: Path) -> None:
    install_plugin(user_dir, "square_dist", "boundbench.workloads", {"square": "user_mod:SQUARE"})
    listed = run_pytest("benchmarks/", "--list-workloads", env=plugin_env(user_dir))
    assert listed.returncode == 0
    assert "user_mod:SQUARE" in listed.stdout
    assert "io_sleep" in listed.stdout
    result = run_user(
        user_dir, "--workload", "square", "--models", "serial,threads", "--benchmark-disable"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (
        "test_workload[square-threads-"
        in run_user(user_dir, "--workload", "square", "--collect-only").stdout
    )


@pytest.mark.slow
def test_the_example_workload_runs(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    result = run_pytest(
        "benchmarks/test_user.py",
        *QUICK,
        "--workload",
        "user_workload:ORDERS,orders=20,wait_s=0.002",
        "--benchmark-disable",
        env={**plugin_env(ROOT / "examples"), TAG_ENV: tag},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert count_of("passed", result.stdout.splitlines()[-1]) >= 10
    assert wait_gone(tag) == []


@pytest.mark.slow
def test_without_workload_the_user_module_is_not_collected() -> None:
    result = run_pytest("benchmarks/", "--collect-only", "-q")
    assert "test_user.py" not in result.stdout


# -- in process ------------------------------------------------------------------------


def square(task_id: int, n: int = 3) -> int:
    return task_id * n


def test_make_workload_takes_parameters_from_the_sync_signature() -> None:
    built = make_workload("sq", square)
    assert built.defaults == {"n": 3}
    assert built.flavours() == ("sync",)
    assert built.task("sync", n=4)(2) == 8
    with pytest.raises(ValueError, match="bound must be one of"):
        make_workload("sq", square, bound="gpu")


def test_make_workload_needs_defaults() -> None:
    def no_default(task_id: int, n: int) -> int:
        return n

    with pytest.raises(ValueError, match="'n' of no_default needs a default value"):
        make_workload("nd", no_default)


def test_check_flavours_finds_a_raising_flavour() -> None:
    def boom(task_id: int, n: int = 1) -> int:
        raise ZeroDivisionError("x")

    assert "its sync flavour raised ZeroDivisionError" in (
        check_flavours(make_workload("b", boom), {}) or ""
    )


def test_resolve_spec_parses_literals() -> None:
    chosen = resolve_spec("io_sleep,k=1,d=0.002")
    assert chosen.params == {"k": 1, "d": 0.002}
    assert chosen.ref == "io_sleep"
    with pytest.raises(WorkloadSpecError, match="empty"):
        resolve_spec(",k=1")
