"""Every test module keeps at least one test in the quick set (``pytest -m "not slow"``).

A module whose tests are all ``slow`` would leave the quick set without a word: this test
fails instead, naming it.  The marks are read as pytest collected them (module marks,
decorators, parameters' and fixtures' marks alike), before ``-m`` or ``-k`` deselect
anything (``tests/conftest.py``); when this session did not collect every module (a run
of a few files), one collection of the whole ``tests/`` folder is made to judge from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import MARKS, MARKS_OUT_ENV, ROOT, SKIPPED_MODULES

TESTS = ROOT / "tests"


def module_files() -> set[str]:
    """Every ``tests/test_*.py`` on disk, as ``tests/test_x.py``."""
    return {path.relative_to(ROOT).as_posix() for path in TESTS.glob("test_*.py")}


def without_a_quick_test(
    marks: Mapping[str, list[bool]], modules: Iterable[str], skipped: Iterable[str] = ()
) -> list[str]:
    """The modules of ``modules`` with no collected test that is not slow (``marks``: a
    module's collected tests, True for slow).  A module pytest skipped as a whole (a
    module-level skip, such as a Python version it needs) has nothing to judge."""
    left_out = set(skipped)
    return sorted(
        module for module in modules if module not in left_out and all(marks.get(module, []))
    )


def collected_marks(config: pytest.Config, scratch: Path) -> tuple[dict[str, list[bool]], set[str]]:
    """This session's record if it collected every test module, else a fresh collection."""
    marks = config.stash.get(MARKS, {})
    skipped = config.stash.get(SKIPPED_MODULES, set())
    if module_files() <= set(marks) | skipped:
        return dict(marks), set(skipped)
    out = scratch / "marks.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, MARKS_OUT_ENV: str(out)}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(out.read_text(encoding="utf-8"))
    return record["marks"], set(record["skipped"])


def test_every_test_module_has_a_test_that_is_not_slow(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    marks, skipped = collected_marks(pytestconfig, tmp_path)
    assert without_a_quick_test(marks, module_files(), skipped) == [], (
        "these modules have no test outside `slow`: give each a quick, in-process test"
    )


def test_an_all_slow_module_is_named() -> None:
    """The check itself, on made-up records."""
    marks = {
        "tests/test_a.py": [True, True],  # all slow
        "tests/test_b.py": [True, False],
        "tests/test_c.py": [False],
        "tests/test_e.py": [True],  # all slow, but skipped as a whole here
    }
    modules = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py", "tests/test_d.py",
               "tests/test_e.py"]  # fmt: skip
    # test_d.py collected nothing at all: nothing quick in it either.
    assert without_a_quick_test(marks, modules, skipped={"tests/test_e.py"}) == [
        "tests/test_a.py",
        "tests/test_d.py",
    ]
    assert without_a_quick_test({"tests/test_b.py": [True, False]}, ["tests/test_b.py"]) == []
