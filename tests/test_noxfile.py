"""The noxfile's interpreter discovery, on a fake directory tree: no nox session runs.

pyenv's versions are found explicitly (its shims expose only the global version),
older ones are skipped with the requires-python reason, one interpreter stands for each
minor version, and a free-threaded build (``Py_GIL_DISABLED``, no such build can be
installed on this machine) is an entry of its own.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("nox", reason="the noxfile needs nox: pip install nox")


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    # Loading the noxfile asks this machine's interpreters once (its session list).
    spec = importlib.util.spec_from_file_location("boundbench_noxfile", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def make_exe(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Any]:
    """A fake pyenv root, a fake PATH with a shims folder, and what each 'python' says."""
    pyenv = tmp_path / "pyenv"
    answers: dict[str, dict[str, Any] | None] = {}

    def version(folder: str, name: str, answer: dict[str, Any] | None) -> None:
        answers[make_exe(pyenv / "versions" / folder / "bin" / name)] = answer

    version("2.7.18", "python2.7", {"version": [2, 7, 18]})
    version("3.10.13", "python3", {"version": [3, 10, 13]})
    version("3.11.7", "python3", {"version": [3, 11, 7]})
    version("3.11.7", "python3.11", {"version": [3, 11, 7]})
    version("3.12.1", "python3", {"version": [3, 12, 1]})
    version("3.13.0", "python3", {"version": [3, 13, 0], "free_threaded": False})
    version("3.13.0t", "python3.13t", {"version": [3, 13, 0], "free_threaded": True})
    version("broken", "python3", None)  # does not run: left out
    make_exe(pyenv / "versions" / "3.13.0" / "bin" / "python3-config")  # not a Python
    bin_dir = tmp_path / "usr" / "bin"
    answers[make_exe(bin_dir / "python3")] = {"version": [3, 11, 2]}  # a second 3.11
    answers[make_exe(bin_dir / "python3.14t")] = {"version": [3, 14, 0], "free_threaded": True}
    answers[make_exe(bin_dir / "python3.15")] = {
        "version": [3, 15, 0],
        "implementation": "pypy",
    }
    shims = tmp_path / "pyenv" / "shims"
    answers[make_exe(shims / "python3.12")] = {"version": [3, 12, 1]}
    asked: list[str] = []

    def query(exe: str) -> dict[str, Any] | None:
        asked.append(exe)
        return answers.get(exe)

    return {
        "pyenv": pyenv,
        "path": os.pathsep.join([str(shims), str(bin_dir), str(tmp_path / "missing")]),
        "query": query,
        "asked": asked,
    }


def test_finds_every_interpreter_meeting_requires_python(
    noxfile: ModuleType, tree: dict[str, Any]
) -> None:
    ok, _ = noxfile.find_interpreters(tree["pyenv"], tree["path"], tree["query"])
    assert [i.id for i in ok] == ["3.11.7", "3.12.1", "3.13.0", "3.13.0t", "3.14.0t",
                                  "pypy-3.15.0"]  # fmt: skip
    # pyenv's are found by looking in its versions folder, never through its shims.
    assert not any("shims" in exe for exe in tree["asked"])
    assert not any(exe.endswith("python3-config") for exe in tree["asked"])
    # One per minor version: pyenv's 3.11.7 (found first) stands for 3.11, not /usr/bin's.
    assert ok[0].path.endswith("3.11.7/bin/python3")


def test_older_interpreters_are_skipped_with_the_reason(
    noxfile: ModuleType, tree: dict[str, Any]
) -> None:
    _, skipped = noxfile.find_interpreters(tree["pyenv"], tree["path"], tree["query"])
    assert [i.id for i, _ in skipped] == ["2.7.18", "3.10.13"]
    for interp, reason in skipped:
        assert "does not meet requires-python >=3.11" in reason
        assert interp.path in reason


def test_free_threaded_builds_come_from_sysconfig(
    noxfile: ModuleType, tree: dict[str, Any]
) -> None:
    ok, _ = noxfile.find_interpreters(tree["pyenv"], tree["path"], tree["query"])
    free = {i.id for i in ok if i.free_threaded}
    assert free == {"3.13.0t", "3.14.0t"}
    # The GIL build and the free-threaded build of one version are both kept.
    assert {i.id for i in ok if i.version == (3, 13, 0)} == {"3.13.0", "3.13.0t"}


def test_requires_python_is_read_from_pyproject(noxfile: ModuleType) -> None:
    spec = noxfile.requires_python()
    assert spec.contains("3.11.0")
    assert not spec.contains("3.10.13")


def test_the_query_runs_on_this_python_and_reads_the_gil_build(noxfile: ModuleType) -> None:
    import sysconfig

    answer = noxfile.ask(sys.executable)
    assert answer is not None
    assert answer["version"] == list(sys.version_info[:3])
    assert answer["free_threaded"] == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert noxfile.ask(str(ROOT / "no-such-python")) is None


def test_a_missing_pyenv_is_fine(noxfile: ModuleType, tmp_path: Path) -> None:
    ok, skipped = noxfile.find_interpreters(tmp_path / "no-pyenv", str(tmp_path), lambda exe: None)
    assert ok == []
    assert skipped == []


def test_sessions_skip_old_pythons_and_share_one_storage(noxfile: ModuleType) -> None:
    """The parametrized sessions carry the skip reason; bench and report share STORAGE."""
    source = (ROOT / "noxfile.py").read_text()
    assert "--benchmark-storage=file://{STORAGE}" in source
    assert '"-m", "reports", str(STORAGE)' in source
    for interp, reason in noxfile.INTERPRETERS:
        assert (reason is None) == noxfile.requires_python().contains(
            ".".join(map(str, interp.version))
        )
