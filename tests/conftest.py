"""What the tests share: the record of which collected tests are slow, and the runs of
every core cell and the whole report that several modules read.

Before ``-m``/``-k`` deselect anything, every collected test's module and whether it is
marked ``slow`` are kept in the session's stash; ``tests/test_markers.py`` reads them to
prove that every test module keeps a test in the quick set (``pytest -m "not slow"``).
With ``BOUNDBENCH_TEST_MARKS=FILE`` (a collection of its own, which that test starts when
its session did not collect every module) they are written to FILE as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests._suite_runs import DisabledRun

MARKS_OUT_ENV = "BOUNDBENCH_TEST_MARKS"
# module path (relative to the repository) -> [slow?, ...] of its collected tests
MARKS = pytest.StashKey[dict[str, list[bool]]]()
# modules whose collection was skipped as a whole (pytest.skip(allow_module_level=True))
SKIPPED_MODULES = pytest.StashKey[set[str]]()
ROOT = Path(__file__).resolve().parents[1]


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if report.skipped and isinstance(collector, pytest.Module):
        collector.config.stash.setdefault(SKIPPED_MODULES, set()).add(_relative(collector.path))
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # First: before -m and -k deselect (pytest's own hook) anything.
    marks = config.stash.setdefault(MARKS, {})
    marks.clear()
    for item in items:
        marks.setdefault(_relative(item.path), []).append(
            item.get_closest_marker("slow") is not None
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get(MARKS_OUT_ENV)
    if out:
        record = {
            "marks": session.config.stash.get(MARKS, {}),
            "skipped": sorted(session.config.stash.get(SKIPPED_MODULES, set())),
        }
        Path(out).write_text(json.dumps(record, sort_keys=True), encoding="utf-8")


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick-profile run of every core cell, saved as a user would save it (read by
    tests/test_suite.py and tests/test_convoy.py)."""
    from tests._suite_runs import quick_run as run

    return run(tmp_path_factory.mktemp("storage"))


@pytest.fixture(scope="session")
def quick_disabled_run(tmp_path_factory: pytest.TempPathFactory) -> DisabledRun:
    """Every core cell run once (quick profile, ``--benchmark-disable``), read by
    tests/test_suite.py, tests/test_mixed_bench.py, tests/test_io_socket.py and
    tests/test_convoy.py, each about its own benchmark module."""
    from tests._suite_runs import disabled_run

    return disabled_run(tmp_path_factory.mktemp("disabled"))


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One report over every report fixture, good and bad, shared by the tests that read
    it (tests/test_report.py's, and the browser's in tests/test_report_browser.py)."""
    from reports.report import main
    from tests._report_fixtures import FIXTURES

    out = tmp_path_factory.mktemp("report") / "out"
    before = digest(FIXTURES)
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main([str(FIXTURES / "runs"), str(FIXTURES / "bad"), "--out", str(out)])
    return {
        "code": code,
        "out": out,
        "stderr": err.getvalue(),
        "stdout": std.getvalue(),
        "before": before,
        "after": digest(FIXTURES),
    }
