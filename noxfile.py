"""Every Python on this machine, one report: ``nox -s bench`` then its report.

``bench`` runs once per interpreter found (see ``find_interpreters``): the ones
``nox -s build_pythons`` built (3.14 and 3.14t, in its cache folder), then pyenv's
versions (``$PYENV_ROOT/versions/*/bin``; pyenv's shims expose only the global one), then
``python3``, ``python3.X`` and ``python3.Xt`` on PATH; one per minor version and build.
Interpreters older than the project's ``requires-python`` are listed and skipped with
that reason; a free-threaded build (``sysconfig`` ``Py_GIL_DISABLED``) is its own entry,
suffixed ``t``.  Each one gets a virtualenv under ``.nox/`` with the project installed
(editable) and every dependency that has a build for that interpreter (a library that
has none, e.g. gevent on a free-threaded Python, is named and left out, and the suite
skips its model with that reason), runs ``pytest benchmarks/ --benchmark-autosave`` into
one shared storage, and the ``report`` session then runs ``python -m reports`` over that
storage once, with whichever interpreter has the report's libraries.

    nox -s build_pythons               # CPython 3.14 and 3.14t from Debian's sources (once)
    nox -s bench                       # standard profile on every Python (~6 min each)
    nox -s bench -- --profile quick    # arguments after -- go to pytest
    nox -s bench -- --profile quick -k cpu_loop
    nox -l                             # the interpreters found, and the skipped ones

Environment: ``BOUNDBENCH_PYTHONS_STORAGE`` (default ``.benchmarks/pythons``),
``BOUNDBENCH_PYTHONS_OUT`` (default ``reports/out/pythons``) and
``BOUNDBENCH_PYTHONS_CACHE`` (the builds; default
``${XDG_CACHE_HOME:-~/.cache}/boundbench/pythons``).  See docs/pythons.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nox
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent
BUILD_SCRIPT = ROOT / "scripts" / "build_pythons.py"
STORAGE = Path(os.environ.get("BOUNDBENCH_PYTHONS_STORAGE", ROOT / ".benchmarks" / "pythons"))
OUT = Path(os.environ.get("BOUNDBENCH_PYTHONS_OUT", ROOT / "reports" / "out" / "pythons"))
# Optional extras the suite measures; an extra with a python_version marker (the
# subinterpreter backport) installs only where it applies.
EXTRAS = "dask,interpreters,uvloop"
# Names of interpreters worth asking: python, python3, python3.13, python3.13t, python2.7.
PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?t?)?$")
QUERY_TIMEOUT_S = 20.0
# What ``python -m reports`` imports: any interpreter that has them can draw the report.
REPORT_NEEDS = ("pandas", "matplotlib", "scipy")

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


def _build_script() -> ModuleType:
    """scripts/build_pythons.py as a module: where it builds, and what it built."""
    spec = importlib.util.spec_from_file_location("boundbench_build_pythons", BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_script = _build_script()


def built_bins(cache: Path) -> list[Path]:
    """The ``bin`` folders of the complete builds in ``cache``, newest version first.

    A build in progress or one that failed is never listed: it lives in a dot-folder
    until it is renamed into place with its record (``boundbench-build.json``).
    """
    return [folder / "bin" for folder, _ in build_script.installed_builds(cache)]


def candidates(pyenv_root: Path | None, path: str, built: Sequence[Path] = ()) -> list[str]:
    """Executables worth asking: the built ones, then pyenv's, then PATH's; without
    duplicates or pyenv's shims."""
    found: list[str] = []
    bin_dirs = sorted((pyenv_root / "versions").glob("*/bin")) if pyenv_root else []
    # Built first: X.Yt is then measured beside the X.Y built alike, not pyenv's X.Y.
    for bin_dir in [*built, *bin_dirs]:
        if not bin_dir.is_dir():
            continue
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
    builds: Path | None = None,
) -> tuple[list[Interpreter], list[tuple[Interpreter, str]]]:
    """(interpreters meeting requires-python, [(older one, why skipped)]), oldest first.

    One entry per implementation, minor version and build (free-threaded or not): the
    first path found wins, so pyenv's 3.11.7 stands for 3.11 rather than the system's,
    and a built 3.14 for 3.14 rather than pyenv's.
    ``builds`` is build_pythons' cache folder (default: its ``cache_root()``).
    """
    if pyenv_root is None:
        root = os.environ.get("PYENV_ROOT")
        pyenv_root = Path(root) if root else Path.home() / ".pyenv"
    path = os.environ.get("PATH", "") if path is None else path
    spec = requires_python() if spec is None else spec
    builds = build_script.cache_root() if builds is None else builds
    seen: dict[tuple[str, tuple[int, int], bool], Interpreter] = {}
    pyenv = pyenv_root if pyenv_root.is_dir() else None
    for exe in candidates(pyenv, path, built_bins(builds)):
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


def requirements(extras: str, pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's dependencies and those of ``extras`` (comma-separated), as written
    (markers included: pip skips what does not apply); an extra naming the project's
    own extras (``all``) is followed."""
    with pyproject.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    optional = project.get("optional-dependencies", {})
    wanted: list[str] = list(project.get("dependencies", []))
    todo = [extra.strip() for extra in extras.split(",") if extra.strip()]
    seen: set[str] = set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for line in optional.get(extra, []):
            req = Requirement(line)
            if req.name == project["name"]:
                todo.extend(sorted(req.extras))
            elif line not in wanted:
                wanted.append(line)
    return wanted


def _pip_failure(output: str) -> str:
    """pip's own reason, in one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # A conflict's first line says nothing; pip names the culprits further down.
    for i, line in enumerate(lines):
        if "have no matching distributions available" in line:
            names = [name for name in lines[i + 1 :] if re.fullmatch(r"[\w.-]+", name)]
            if names:
                return f"no build of {', '.join(names)} for this interpreter"
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip failed"])[0][:200]


def install_suite(
    python: str,
    extras: str,
    log: Callable[[str], object] = print,
    pip: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
    known: Iterable[str] = (),
) -> dict[str, str]:
    """Install the project (editable, no dependencies), then every dependency that has a
    build for ``python``; {requirement: pip's reason} for each one that has none.

    Each library the project names must come as a wheel: one with no build for this
    interpreter (gevent or uvloop on a free-threaded Python) is left out rather than
    compiled here for minutes, or failing half-way.  What those libraries depend on may
    still build from source where it has no wheel (pyyaml for dask on 3.13t, a quick
    one).  All at once first (the common case, one resolve); one by one after a failure,
    so one missing library never stops the others.  ``known`` are the requirements that
    failed last time: the rest go in at once, then each of those is tried again alone.
    """

    def run_pip(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    pip = pip or run_pip
    # Editable: the suite's benchmarks/ and tests/ run from this checkout anyway.
    done = pip(["--no-deps", "-e", str(ROOT)])
    if done.returncode != 0:
        raise RuntimeError(f"the project does not install: {_pip_failure(done.stderr)}")
    wanted = requirements(extras)
    retry = [req for req in wanted if req in set(known)]
    first = [req for req in wanted if req not in retry]
    names = ",".join(Requirement(req).name for req in first)
    if pip([f"--only-binary={names}", "--prefer-binary", *first]).returncode != 0:
        retry = wanted
    failed: dict[str, str] = {}
    for req in retry:
        done = pip([f"--only-binary={Requirement(req).name}", "--prefer-binary", req])
        if done.returncode != 0:
            failed[req] = _pip_failure(done.stderr + done.stdout)
            log(f"not installed: {req}: {failed[req]}")
    return failed


def venv_python(session: nox.Session, interp: Interpreter, extras: str = EXTRAS) -> str:
    """A virtualenv for ``interp`` under .nox/ with the suite installed (reused)."""
    env = ROOT / ".nox" / f"py-{interp.id}"
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    if not python.exists():
        session.run(interp.path, "-m", "venv", str(env), external=True)
    session.log(f"installing the suite and its dependencies into {env.name}")
    # What had no build last time: tried alone, after the rest went in at once.
    record = env / "boundbench-not-installed.json"
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    try:
        failed = install_suite(str(python), extras, log=session.warn, known=known)
    except RuntimeError as exc:
        session.error(str(exc))
    record.write_text(json.dumps(failed, indent=2) + "\n")
    if failed:
        names = ", ".join(Requirement(req).name for req in failed)
        session.warn(
            f"{interp.id}: no build of {names} for this Python; "
            "the suite skips what needs them, with the reason"
        )
    return str(python)


def has_modules(python: str, modules: Sequence[str] = REPORT_NEEDS) -> bool:
    """Whether ``python`` imports every one of ``modules``."""
    try:
        done = subprocess.run(
            [python, "-c", "import " + ", ".join(modules)],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def report_python(
    envs: Path = ROOT / ".nox",
    fallback: str = sys.executable,
    usable: Callable[[str], bool] = has_modules,
) -> str | None:
    """An interpreter that can draw the report (pandas, matplotlib, scipy): a bench
    virtualenv, the newest Python's first, else ``fallback`` (nox's own); None if none.
    It need not be one that was measured: the report reads only saved JSON."""
    found = sorted(envs.glob("py-*/bin/python"), reverse=True)
    for python in [*map(str, found), fallback]:
        if usable(python):
            return python
    return None


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
    python = report_python()
    if python is None:
        session.error(
            f"no interpreter here has {', '.join(REPORT_NEEDS)} to draw the report: "
            f"pip install {' '.join(REPORT_NEEDS)} into the one running nox"
        )
    session.log(f"report drawn by {python}")
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


@nox.session(name="build_pythons")
def build_pythons(session: nox.Session) -> None:
    """CPython 3.14 and 3.14t from Debian's sources, built once into the cache folder.

    Arguments after ``--`` go to scripts/build_pythons.py (``--series 3.13``, ``--only
    ft``).  As root it also apt-get installs the missing build dependencies.  Run it
    before ``nox -s bench``, which lists the interpreters when nox starts.
    """
    args = list(session.posargs)
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--install-deps" not in args:
        args.insert(0, "--install-deps")
    session.run(sys.executable, str(BUILD_SCRIPT), *args, external=True)


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
