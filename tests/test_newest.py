"""scripts/newest.py: the tests on the newest releases, and which upgrade broke what.

The pieces are tested here without the network: reading the lock's pins where their
markers hold, the list of upgrades, the failed tests read from pytest's JUnit XML, the
blame of one upgrade at a time (with fake environments), and a clear exit 2 when an
environment cannot be made.  The workflow that runs it weekly is checked too.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "newest.py"


@pytest.fixture(scope="module")
def newest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("newest_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_query_reads_the_real_lock_where_its_markers_hold(newest: ModuleType) -> None:
    done = subprocess.run(
        [sys.executable, "-c", newest.QUERY, str(newest.LOCK)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    pins = answer["pins"]
    assert "pytest" in pins
    assert "pandas" in pins
    # A universal lock holds one numpy per Python range; exactly one applies here.
    assert pins["numpy"].count(".") >= 1
    assert "colorama" not in pins  # sys_platform == 'win32' only
    assert "pytest" in answer["installed"]


def test_upgrades_list_what_differs_from_the_lock(newest: ModuleType) -> None:
    installed = {"pytest": "9.2.0", "pandas": "3.1.2", "boundbench": "0.1.0", "new-dep": "1.0"}
    pins = {"pytest": "9.0.3", "pandas": "3.1.2"}
    found = newest.upgrades(installed, pins)
    assert [(u.name, u.locked, u.newest) for u in found] == [
        ("new-dep", None, "1.0"),
        ("pytest", "9.0.3", "9.2.0"),
    ]
    table = newest.table(found, {"pytest": ["tests/test_a.py::test_x"]})
    assert "| pytest | 9.0.3 | 9.2.0 | `tests/test_a.py::test_x` |" in table
    assert "| new-dep | (not locked) | 1.0 | - |" in table


def test_failed_ids_come_from_junit_xml(newest: ModuleType, tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_report_sweeps" name="test_lead[a-b]">'
        '<failure message="x"/></testcase>'
        '<testcase classname="tests.test_a.TestThing" name="test_y"><error message="e"/>'
        "</testcase>"
        '<testcase classname="tests.test_a" name="test_ok"/>'
        "</testsuite></testsuites>"
    )
    assert newest.failed_ids(junit) == [
        "tests/test_a.py::TestThing::test_y",
        "tests/test_report_sweeps.py::test_lead[a-b]",
    ]
    assert newest.failed_ids(tmp_path / "missing.xml") == []


def test_blame_names_the_upgrade_that_breaks_the_failed_tests(
    newest: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installs: list[list[str]] = []
    current: dict[str, str] = {}

    def make_env(where: Path, packages: list[str]) -> Path:
        current.clear()
        return where / "bin" / "python"

    def install(python: Path, packages: list[str]) -> None:
        installs.append(packages)
        if packages[0].startswith("pytest=="):
            current["upgraded"] = "pytest"
        if packages[0].startswith("pandas=="):
            current["upgraded"] = "pandas"

    def run_tests(python: Path, args: list[str], junit: Path) -> tuple[int, list[str]]:
        failed = [a for a in args if a.startswith("tests/")]
        return (1, failed) if current.get("upgraded") == "pytest" else (0, [])

    monkeypatch.setattr(newest, "make_env", make_env)
    monkeypatch.setattr(newest, "install", install)
    monkeypatch.setattr(newest, "run_tests", run_tests)
    ups = [newest.Upgrade("pandas", "3.1.1", "3.1.2"), newest.Upgrade("pytest", "9.0.3", "9.2.0")]
    broken = newest.blame(tmp_path, ups, ["tests/test_x.py::test_y"])
    assert broken == {"pytest": ["tests/test_x.py::test_y"]}
    assert ["pytest==9.2.0"] in installs
    assert ["--no-deps", "-e", "."] in installs


def test_an_environment_that_cannot_be_made_is_one_line_and_exit_2(
    newest: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def make_env(where: Path, packages: list[str]) -> Path:
        raise newest.Failure("pip install --upgrade -e .[all] failed: no network")

    monkeypatch.setattr(newest, "make_env", make_env)
    assert newest.main(["--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "newest: pip install --upgrade -e .[all] failed: no network"


def test_the_weekly_workflow_runs_the_script() -> None:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / "newest.yml").read_text())
    triggers = data.get("on", data.get(True))
    assert "schedule" in triggers
    runs = "\n".join(step.get("run", "") for job in data["jobs"].values() for step in job["steps"])
    assert "scripts/newest.py" in runs
    assert SCRIPT.stat().st_mode & 0o100, "scripts/newest.py is not executable"
