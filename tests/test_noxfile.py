"""The noxfile's interpreter discovery and installs, on fake trees: no nox session runs.

The interpreters scripts/build_pythons.py built (complete ones only) come first, then
pyenv's versions, found explicitly (its shims expose only the global version), then PATH's;
older ones are skipped with the requires-python reason, one interpreter stands for each
minor version, and a free-threaded build (``Py_GIL_DISABLED``) is an entry of its own.
A dependency with no build for an interpreter is left out without stopping the others,
and the report is drawn by any interpreter that has its libraries.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
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
        "answers": answers,
        "builds": tmp_path / "no-builds",
    }


def make_build(cache: Path, name: str, record: bool = True) -> str:
    """An install as build_pythons leaves it: ``CACHE/3.14.1t/bin/python3.14t`` + record."""
    ft = name.endswith("t")
    series = ".".join(name.rstrip("t").split(".")[:2])
    python = f"bin/python{series}{'t' if ft else ''}"
    exe = make_exe(cache / name / python)
    if record:
        (cache / name / "boundbench-build.json").write_text(
            json.dumps({"version": name.rstrip("t"), "free_threaded": ft, "python": python})
        )
    return exe


def test_finds_every_interpreter_meeting_requires_python(
    noxfile: ModuleType, tree: dict[str, Any]
) -> None:
    ok, _ = noxfile.find_interpreters(
        tree["pyenv"], tree["path"], tree["query"], builds=tree["builds"]
    )
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
    _, skipped = noxfile.find_interpreters(
        tree["pyenv"], tree["path"], tree["query"], builds=tree["builds"]
    )
    assert [i.id for i, _ in skipped] == ["2.7.18", "3.10.13"]
    for interp, reason in skipped:
        assert "does not meet requires-python >=3.11" in reason
        assert interp.path in reason


def test_free_threaded_builds_come_from_sysconfig(
    noxfile: ModuleType, tree: dict[str, Any]
) -> None:
    ok, _ = noxfile.find_interpreters(
        tree["pyenv"], tree["path"], tree["query"], builds=tree["builds"]
    )
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
    ok, skipped = noxfile.find_interpreters(
        tmp_path / "no-pyenv", str(tmp_path), lambda exe: None, builds=tmp_path / "no-builds"
    )
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


def test_built_interpreters_are_found_beside_pyenv_and_path(
    noxfile: ModuleType, tree: dict[str, Any], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    answers = tree["answers"]
    answers[make_build(cache, "3.13.5t")] = {"version": [3, 13, 5], "free_threaded": True}
    answers[make_build(cache, "3.14.1")] = {"version": [3, 14, 1]}
    answers[make_build(cache, "3.14.1t")] = {"version": [3, 14, 1], "free_threaded": True}
    # Neither a folder without its record nor a build still in its dot-folder is asked.
    unfinished = [make_build(cache, "3.14.2t", record=False)]
    unfinished.append(make_build(cache / ".build-3.14.3t-x" / "stage", "3.14.3t"))
    for exe in unfinished:
        answers[exe] = {"version": [3, 14, 9], "free_threaded": True}
    ok, _ = noxfile.find_interpreters(tree["pyenv"], tree["path"], tree["query"], builds=cache)
    ids = [i.id for i in ok]
    assert ids == ["3.11.7", "3.12.1", "3.13.0", "3.13.5t", "3.14.1", "3.14.1t", "pypy-3.15.0"]
    built = {i.id: i.path for i in ok}
    # A build stands for its version rather than pyenv's (3.13t) or PATH's (3.14t): it is
    # looked at first, so X.Yt is measured beside the X.Y built alike.
    assert built["3.14.1t"] == str(cache / "3.14.1t" / "bin" / "python3.14t")
    assert built["3.14.1"] == str(cache / "3.14.1" / "bin" / "python3.14")
    assert not set(unfinished) & set(tree["asked"])


def test_the_noxfile_looks_where_the_script_builds(
    noxfile: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNDBENCH_PYTHONS_CACHE", str(tmp_path))
    exe = make_build(tmp_path, "3.14.1t")
    asked: list[str] = []

    def query(path: str) -> None:
        asked.append(path)

    noxfile.find_interpreters(tmp_path / "no-pyenv", "", query)
    assert asked == [exe]


def test_requirements_are_the_dependencies_and_the_extras(noxfile: ModuleType) -> None:
    base = noxfile.requirements("")
    assert any(req.startswith("gevent") for req in base)
    assert any(req.startswith("pandas") for req in base)
    full = noxfile.requirements(noxfile.EXTRAS)
    assert full[: len(base)] == base
    extra = full[len(base) :]
    assert [req.split(">")[0].split(";")[0] for req in extra] == [
        "dask[distributed]",
        "interpreters-pep-734",
        "uvloop",
    ]
    # ``all`` names the project's own extras: they are followed, not installed by name.
    everything = noxfile.requirements("all")
    assert set(full) < set(everything)
    assert not any(req.startswith("boundbench") for req in everything)


class FakePip:
    """pip install, where the listed requirements have no build for this Python."""

    def __init__(self, unbuildable: set[str]) -> None:
        self.unbuildable = unbuildable
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        bad = [arg for arg in args if arg.split(">")[0].split("[")[0] in self.unbuildable]
        if bad:
            name = bad[0].split(">")[0]
            err = f"ERROR: Could not find a version that satisfies the requirement {bad[0]}\n"
            err += f"ERROR: No matching distribution found for {name}\n"
            return subprocess.CompletedProcess(args, 1, "", err)
        return subprocess.CompletedProcess(args, 0, "", "")


def test_the_suite_installs_at_once_where_everything_has_a_build(noxfile: ModuleType) -> None:
    pip = FakePip(set())
    assert noxfile.install_suite("python", noxfile.EXTRAS, pip=pip) == {}
    assert pip.calls[0] == ["--no-deps", "-e", str(noxfile.ROOT)]
    wanted = noxfile.requirements(noxfile.EXTRAS)
    names = "pytest,pytest-benchmark,pytest-timeout,gevent,psutil,pandas,matplotlib,scipy"
    names += ",dask,interpreters-pep-734,uvloop"
    assert pip.calls[1] == [f"--only-binary={names}", "--prefer-binary", *wanted]
    assert len(pip.calls) == 2


def test_a_dependency_without_a_build_does_not_stop_the_others(noxfile: ModuleType) -> None:
    pip = FakePip({"gevent", "uvloop"})
    said: list[str] = []
    failed = noxfile.install_suite("python", noxfile.EXTRAS, log=said.append, pip=pip)
    assert [req.split(">")[0] for req in failed] == ["gevent", "uvloop"]
    assert failed["gevent>=23.9"] == (
        "ERROR: Could not find a version that satisfies the requirement gevent>=23.9"
    )
    # One by one, each library itself as a wheel (what it depends on may build).
    one_by_one = pip.calls[2:]
    assert [call[-1] for call in one_by_one] == noxfile.requirements(noxfile.EXTRAS)
    assert one_by_one[3] == ["--only-binary=gevent", "--prefer-binary", "gevent>=23.9"]
    assert said == [f"not installed: {req}: {why}" for req, why in failed.items()]


def test_what_failed_last_time_is_tried_alone_after_the_rest(noxfile: ModuleType) -> None:
    pip = FakePip({"gevent", "uvloop"})
    known = {"gevent>=23.9": "no wheel", "uvloop>=0.19; sys_platform != 'win32'": "no wheel"}
    failed = noxfile.install_suite("python", noxfile.EXTRAS, pip=pip, known=known)
    assert list(failed) == list(known)
    rest = [req for req in noxfile.requirements(noxfile.EXTRAS) if req not in known]
    assert pip.calls[1][2:] == rest
    assert [call[-1] for call in pip.calls[2:]] == list(known)  # 4 pip calls, not 13
    pip = FakePip(set())  # a wheel appeared since
    assert noxfile.install_suite("python", noxfile.EXTRAS, pip=pip, known=known) == {}
    assert len(pip.calls) == 4


def test_pip_names_the_dependency_that_has_no_build(noxfile: ModuleType) -> None:
    conflict = (
        "ERROR: Cannot install dask because these package versions have conflicting "
        "dependencies.\n\nThe conflict is caused by:\n    dask 2024.1.0 depends on "
        "pyyaml>=5.3.1\n\nAdditionally, some packages in these conflicts have no matching "
        "distributions available for your environment:\n    pyyaml\n\nTo fix this you could"
    )
    assert noxfile._pip_failure(conflict) == "no build of pyyaml for this interpreter"


def test_the_project_itself_must_install(noxfile: ModuleType) -> None:
    def pip(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "ERROR: setup.py not found\n")

    with pytest.raises(RuntimeError, match=r"the project does not install: ERROR: setup\.py"):
        noxfile.install_suite("python", noxfile.EXTRAS, pip=pip)


def test_the_report_is_drawn_by_any_interpreter_with_its_libraries(
    noxfile: ModuleType, tmp_path: Path
) -> None:
    envs = tmp_path / ".nox"
    ft = make_exe(envs / "py-3.14.1t" / "bin" / "python")  # no pandas build here
    gil = make_exe(envs / "py-3.13.0" / "bin" / "python")
    make_exe(envs / "py-3.11.7" / "bin" / "python")
    asked: list[str] = []

    def usable(python: str, good: set[str]) -> bool:
        asked.append(python)
        return python in good

    assert noxfile.report_python(envs, "nox-python", lambda p: usable(p, {gil})) == gil
    assert asked == [ft, gil]  # the newest first
    assert noxfile.report_python(envs, "nox-python", lambda p: p == "nox-python") == "nox-python"
    assert noxfile.report_python(envs, "nox-python", lambda p: False) is None


def test_has_modules_asks_the_interpreter(noxfile: ModuleType) -> None:
    assert noxfile.has_modules(sys.executable, ("json", "os"))
    assert not noxfile.has_modules(sys.executable, ("json", "no_such_module_here"))
    assert not noxfile.has_modules(str(ROOT / "no-such-python"))


def test_the_build_session_runs_the_script(noxfile: ModuleType) -> None:
    assert noxfile.BUILD_SCRIPT == ROOT / "scripts" / "build_pythons.py"
    source = (ROOT / "noxfile.py").read_text()
    assert '@nox.session(name="build_pythons")' in source
    assert "session.run(sys.executable, str(BUILD_SCRIPT), *args, external=True)" in source
