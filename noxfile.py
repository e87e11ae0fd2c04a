"""Every Python on this machine, one report: ``nox -s bench`` then its report.

``bench`` runs once per interpreter found (see ``find_interpreters``): pyenv's versions
(``$PYENV_ROOT/versions/*/bin``; pyenv's shims expose only the global one), then
``python3``, ``python3.X`` and ``python3.Xt`` on PATH; one per minor version and build.
Interpreters older than the project's ``requires-python`` are listed and skipped with
that reason; a free-threaded build (``sysconfig`` ``Py_GIL_DISABLED``) is its own entry,
suffixed ``t``.  Each one
gets a virtualenv under ``.nox/`` with the project installed (editable, with the
extras), runs ``pytest benchmarks/ --benchmark-autosave`` into one shared storage, and
the ``report`` session then runs ``python -m reports`` over that storage once.

    nox -s bench                       # standard profile on every Python (~6 min each)
    nox -s bench -- --profile quick    # arguments after -- go to pytest
    nox -s bench -- --profile quick -k cpu_loop
    nox -l                             # the interpreters found, and the skipped ones

Environment: ``BOUNDBENCH_PYTHONS_STORAGE`` (default ``.benchmarks/pythons``) and
``BOUNDBENCH_PYTHONS_OUT`` (default ``reports/out/pythons``).  See docs/pythons.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nox
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent
STORAGE = Path(os.environ.get("BOUNDBENCH_PYTHONS_STORAGE", ROOT / ".benchmarks" / "pythons"))
OUT = Path(os.environ.get("BOUNDBENCH_PYTHONS_OUT", ROOT / "reports" / "out" / "pythons"))
# Optional extras the suite measures; an extra with a python_version marker (the
# subinterpreter backport) installs only where it applies.
EXTRAS = "dask,interpreters,uvloop"
# Names of interpreters worth asking: python, python3, python3.13, python3.13t, python2.7.
PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?t?)?$")
QUERY_TIMEOUT_S = 20.0

# What each candidate says about itself (run in the candidate, so it must work on old
# Pythons too, 2.7 included: no f-strings, no sys.implementation).
QUERY = (
    "import json, sys, sysconfig, platform\n"
    "print(json.dumps({'version': list(sys.version_info[:3]),"
    " 'implementation': platform.python_implementation().lower(),"
    " 'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
    " 'executable': sys.executable}))\n"
)

nox.options.sessions = ["bench"]
nox.options.default_venv_backend = "none"


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]
    implementation: str = "cpython"
    free_threaded: bool = False

    @property
    def id(self) -> str:
        """A stable, readable id: ``3.13.0``, ``3.13.0t``, ``pypy-3.10.14``."""
        version = ".".join(map(str, self.version)) + ("t" if self.free_threaded else "")
        return version if self.implementation == "cpython" else f"{self.implementation}-{version}"


def requires_python(pyproject: Path = ROOT / "pyproject.toml") -> SpecifierSet:
    with pyproject.open("rb") as handle:
        return SpecifierSet(tomllib.load(handle)["project"]["requires-python"])


def ask(path: str) -> dict[str, object] | None:
    """The candidate's answer to ``QUERY``, or None if it is not a working Python."""
    try:
        done = subprocess.run(
            [path, "-c", QUERY],
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
            env={**os.environ, "PYENV_VERSION": ""},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return answer if isinstance(answer, dict) else None


def candidates(pyenv_root: Path | None, path: str) -> list[str]:
    """Executables worth asking, pyenv's first, without duplicates or pyenv's shims."""
    found: list[str] = []
    if pyenv_root is not None:
        for bin_dir in sorted((pyenv_root / "versions").glob("*/bin")):
            found.extend(
                str(exe)
                for exe in sorted(bin_dir.iterdir())
                if PYTHON_NAME.match(exe.name) and os.access(exe, os.X_OK)
            )
    for directory in path.split(os.pathsep):
        if not directory or "shims" in Path(directory).parts:
            continue  # a pyenv shim runs only the active version, whatever its name says
        folder = Path(directory)
        if not folder.is_dir():
            continue
        found.extend(
            str(exe)
            for exe in sorted(folder.iterdir())
            if PYTHON_NAME.match(exe.name) and exe.is_file() and os.access(exe, os.X_OK)
        )
    unique: dict[str, str] = {}
    for exe in found:
        unique.setdefault(os.path.realpath(exe), exe)
    return list(unique.values())


def find_interpreters(
    pyenv_root: Path | None = None,
    path: str | None = None,
    query: Callable[[str], dict[str, object] | None] = ask,
    spec: SpecifierSet | None = None,
) -> tuple[list[Interpreter], list[tuple[Interpreter, str]]]:
    """(interpreters meeting requires-python, [(older one, why skipped)]), oldest first.

    One entry per implementation, minor version and build (free-threaded or not): the
    first path found wins, so pyenv's 3.11.7 stands for 3.11 rather than the system's.
    """
    if pyenv_root is None:
        root = os.environ.get("PYENV_ROOT")
        pyenv_root = Path(root) if root else Path.home() / ".pyenv"
    path = os.environ.get("PATH", "") if path is None else path
    spec = requires_python() if spec is None else spec
    seen: dict[tuple[str, tuple[int, int], bool], Interpreter] = {}
    for exe in candidates(pyenv_root if pyenv_root.is_dir() else None, path):
        answer = query(exe)
        if not answer:
            continue
        version = answer.get("version")
        if not isinstance(version, list) or len(version) < 3:
            continue
        interp = Interpreter(
            path=exe,
            version=(int(version[0]), int(version[1]), int(version[2])),
            implementation=str(answer.get("implementation", "cpython")),
            free_threaded=bool(answer.get("free_threaded")),
        )
        key = (interp.implementation, interp.version[:2], interp.free_threaded)
        seen.setdefault(key, interp)
    ok: list[Interpreter] = []
    skipped: list[tuple[Interpreter, str]] = []
    for interp in sorted(seen.values(), key=lambda i: (i.version, i.free_threaded, i.path)):
        version = ".".join(map(str, interp.version))
        if spec.contains(version, prereleases=True):
            ok.append(interp)
        else:
            skipped.append((interp, f"Python {version} at {interp.path} does not meet "
                                    f"requires-python {spec}"))  # fmt: skip
    return ok, skipped


def venv_python(session: nox.Session, interp: Interpreter, extras: str = EXTRAS) -> str:
    """A virtualenv for ``interp`` under .nox/ with the project installed (reused)."""
    env = ROOT / ".nox" / f"py-{interp.id}"
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    if not python.exists():
        session.run(interp.path, "-m", "venv", str(env), external=True)
    # Editable: the suite's benchmarks/ and tests/ run from this checkout anyway.
    session.run(str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]",
                external=True)  # fmt: skip
    return str(python)


def _all_interpreters() -> list[tuple[Interpreter, str | None]]:
    ok, skipped = find_interpreters()
    rows: list[tuple[Interpreter, str | None]] = [(i, None) for i in ok]
    rows += skipped
    return sorted(rows, key=lambda row: (row[0].version, row[0].free_threaded))


def _params(rows: Iterable[tuple[Interpreter, str | None]]) -> list[object]:
    return [nox.param(interp, reason, id=interp.id) for interp, reason in rows]


# Discovered once, when nox loads this file (it asks each candidate: ~50 ms each).
INTERPRETERS = _all_interpreters()


@nox.session
@nox.parametrize(("interp", "skip_reason"), _params(INTERPRETERS))
def bench(session: nox.Session, interp: Interpreter, skip_reason: str | None) -> None:
    """The benchmark suite on one interpreter, saved into the shared storage."""
    if skip_reason:
        session.skip(skip_reason)
    # Queued now, so the report is made even when one interpreter's run fails.
    session.notify("report")
    python = venv_python(session, interp)
    STORAGE.mkdir(parents=True, exist_ok=True)
    session.run(
        python, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider",
        "--benchmark-autosave", f"--benchmark-storage=file://{STORAGE}",
        *session.posargs,
        external=True,
    )  # fmt: skip


@nox.session
def report(session: nox.Session) -> None:
    """``python -m reports`` over the shared storage: the interpreters side by side."""
    if not STORAGE.is_dir():
        session.error(f"no saved runs in {STORAGE}: run `nox -s bench` first")
    # Any bench virtualenv has the report's dependencies; the newest Python's first.
    envs = sorted((ROOT / ".nox").glob("py-*/bin/python"), reverse=True)
    python = str(envs[0]) if envs else sys.executable
    session.run(python, "-m", "reports", str(STORAGE), "--out", str(OUT), external=True)
    session.log(f"report: {OUT / 'index.html'}")


@nox.session
@nox.parametrize(("interp", "skip_reason"), _params(INTERPRETERS))
def tests(session: nox.Session, interp: Interpreter, skip_reason: str | None) -> None:
    """The per-interpreter tests (default: the interpreters and dask models) on each Python."""
    if skip_reason:
        session.skip(skip_reason)
    python = venv_python(session, interp, extras=f"{EXTRAS},test")
    args = session.posargs or ["tests/test_interpreters.py", "tests/test_dask.py"]
    session.run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, external=True)


# -- the locked environment and the newest releases ------------------------------------

LOCK = ROOT / "requirements-lock.txt"
LOCK_COMMAND = (
    "pyproject.toml", "--all-extras", "--universal", "--python-version", "3.11",
    "--generate-hashes", "--custom-compile-command", "nox -s lock",
)  # fmt: skip


@nox.session(venv_backend="venv")
def lock(session: nox.Session) -> None:
    """Regenerate requirements-lock.txt: the newest releases pyproject.toml's ranges admit,
    exact and hashed, for every Python the project supports (one universal file)."""
    session.install("uv")
    session.run("uv", "pip", "compile", "-q", *LOCK_COMMAND, "--upgrade", "-o", str(LOCK))


@nox.session(venv_backend="none")
def newest(session: nox.Session) -> None:
    """The tests against the newest releases, naming the upgrade that broke each failure
    (scripts/newest.py; arguments after -- go to pytest)."""
    session.run(sys.executable, str(ROOT / "scripts" / "newest.py"), "--", *session.posargs)
