"""The echo benchmark cells themselves, run in a pytest subprocess (quick profile, two
styles): the contract's keys, the recorded pinning, and the test-only slowdown hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._net_helpers import AFFINITY_OUT_ENV
from workloads._children import child_env
from workloads.net._affinity import split_cpus, usable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def slowed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of the ``select`` and ``selectors`` cells, ``select`` slowed 3x."""
    tmp = tmp_path_factory.mktemp("netbench")
    out = tmp / "run.json"
    env = child_env()
    env["BOUNDBENCH_SLOWDOWN"] = "echo:select=3.0"
    env[AFFINITY_OUT_ENV] = str(tmp / "affinity.txt")
    before = usable()
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "benchmarks/test_net.py", "-p", "tests._net_helpers",
            "--profile", "quick", "-k", "select- or selectors-", f"--benchmark-json={out}",
            "-q", "-p", "no:cacheprovider",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
        start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    cells = {b["extra_info"]["style"]: b for b in data["benchmarks"]}
    assert set(cells) == {"select", "selectors"}
    return {
        "cells": cells,
        "host": data["boundbench_host"],
        "path": out,
        "pytest_cpus_before": before,
        "pytest_cpus_after": [int(c) for c in (tmp / "affinity.txt").read_text().split()],
    }


@pytest.mark.slow
def test_echo_cells_keep_the_contract(slowed_run: dict[str, Any]) -> None:
    for style, cell in slowed_run["cells"].items():
        info = cell["extra_info"]
        connections = info["connections"]
        assert info["style"] == info["model"] == style
        # docs/contract.md: workers = tasks in flight at once; a connection is a task.
        assert info["tasks"] == info["workers"] == connections == 10
        assert isinstance(info["client_processes"], int)
        assert info["client_processes"] >= 1
        assert info["client_processes"] != info["workers"]  # a fact of its own
        assert info["params"] == {"payload": 1024, "connections": 10, "requests": 3000}


@pytest.mark.slow
def test_pinning_is_recorded_and_never_applied_to_pytest(slowed_run: dict[str, Any]) -> None:
    assert slowed_run["pytest_cpus_after"] == slowed_run["pytest_cpus_before"]
    halves = split_cpus(slowed_run["pytest_cpus_before"])
    for cell in slowed_run["cells"].values():
        info = cell["extra_info"]
        if halves is None:
            assert info["pinned"] is False
            continue
        assert info["pinned"] is True
        assert info["server_cpus"] == halves[0]
        assert info["client_cpus"] == halves[1]
        assert not set(info["server_cpus"]) & set(info["client_cpus"])
        assert info["client_processes"] == len(halves[1])


@pytest.mark.slow
def test_the_slowdown_hook_stretches_one_style_only(slowed_run: dict[str, Any]) -> None:
    """A round's time against the client's own wall time for the same requests: ~3 with
    ``echo:select=3.0``, ~1 for the style not named (generous bounds: a loaded host
    stretches the untimed hand-offs of both alike)."""
    ratios = {}
    for style, cell in slowed_run["cells"].items():
        info = cell["extra_info"]
        client_wall = info["requests"] / info["throughput_rps"]
        ratios[style] = cell["stats"]["median"] / client_wall
    assert ratios["select"] > 2.0, ratios
    assert ratios["select"] > 1.8 * ratios["selectors"], ratios


@pytest.mark.slow
def test_a_run_made_with_a_test_hook_says_so(slowed_run: dict[str, Any]) -> None:
    """Never mistaken for a real run: the reports find it in machine_info["boundbench"]."""
    from reports._runs import read_run

    hooks = {"BOUNDBENCH_SLOWDOWN": "echo:select=3.0"}
    assert slowed_run["host"]["test_hooks"] == hooks
    assert read_run(slowed_run["path"]).machine_info["boundbench"]["test_hooks"] == hooks


def test_the_slowdown_hook_is_off_when_unset() -> None:
    from workloads.runner._hooks import SLOWDOWN_ENV, slowdown_factor

    assert SLOWDOWN_ENV not in os.environ
    assert slowdown_factor("echo:select") == 1.0
