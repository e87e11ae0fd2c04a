#!/usr/bin/env python3
"""Build CPython X.Y and its free-threaded twin X.Yt from Debian's sources, once.

    python3 scripts/build_pythons.py                  # 3.14 and 3.14t (nox -s build_pythons)
    python3 scripts/build_pythons.py --series 3.13    # another series the suite serves
    python3 scripts/build_pythons.py --only ft        # 3.14t alone
    python3 scripts/build_pythons.py --install-deps   # apt-get install missing -dev packages

Steps, one progress line each:

1. Build dependencies: the Debian ``-dev`` packages CPython's modules need, read from
   dpkg.  A missing compiler, ssl, zlib or ffi stops here (pip and ctypes need them); a
   missing optional one (gdbm, zstd, ...) is named and its module left out.
2. Fetch: the ``pythonX.Y`` source package of Debian's ``unstable`` suite, through a
   private apt configuration (its own sources.list with one ``deb-src`` line, its own
   lists and cache under the cache folder) so the machine's own package lists are
   untouched.  The archive is the one the machine's apt already uses.  No version is
   pinned: the newest one the suite lists that downloads is taken (the index may list
   a version before the archive serves its files).  Only the upstream tarball
   (``pythonX.Y_*.orig.tar.*``) is kept, in the cache folder.
3. Build, for each of X.Y and X.Yt: ``./configure --prefix=CACHE/VERSION[t]`` without and
   with ``--disable-gil``, no PGO or LTO, ``make -jN`` and ``make install`` under
   ``nice -n 19``, in a temporary folder of the cache, installed with ``DESTDIR`` and
   renamed into place only once the new interpreter has answered: a failed build leaves
   no half-built interpreter where ``noxfile.py`` would find it.  Beside each install,
   ``boundbench-build.json`` records the version, the configure flags, how long the
   build took and when.  An install whose record matches the served version and the
   flags is reused; a newer served version is built and then replaces the older one.

The cache folder is ``$BOUNDBENCH_PYTHONS_CACHE``, else
``${XDG_CACHE_HOME:-~/.cache}/boundbench/pythons``.  Standard library only: it runs on any
Python 3.9+.

Exit status: 0 built or reused; 1 a build failed; 3 the sources could not be fetched;
4 build dependencies are missing (or could not be installed); 2 bad usage.  Every failure
is one line on stderr; the full output of each step is kept in ``CACHE/logs/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

PROG = "build_pythons"
SERIES = "3.14"
SUITE = "unstable"
JOBS = 2
MARKER = "boundbench-build.json"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Debian's release names, to tell its archive from a third party's in sources.list.
CODENAMES = ("buster", "bullseye", "bookworm", "trixie", "forky", "duke")
NICE = ("nice", "-n", "19")  # the machine is shared: a build never slows the rest down

OK, BUILD_FAILED, USAGE, FETCH_FAILED, DEPS_MISSING = 0, 1, 2, 3, 4

# Debian packages the build reads, and what each one gives CPython.  Without a required
# one the result is useless here (pip needs ssl and zlib, the suite ctypes); without an
# optional one only that module is missing.
REQUIRED_DEPS = {
    "gcc": "the C compiler",
    "make": "make",
    "pkg-config": "configure's library checks",
    "libssl-dev": "ssl and hashlib (pip)",
    "zlib1g-dev": "zlib (pip)",
    "libffi-dev": "ctypes",
}
OPTIONAL_DEPS = {
    "libbz2-dev": "bz2",
    "liblzma-dev": "lzma",
    "libsqlite3-dev": "sqlite3",
    "libreadline-dev": "readline",
    "uuid-dev": "_uuid",
    "libncurses-dev": "curses",
    "libgdbm-dev": "dbm.gnu",
    "libgdbm-compat-dev": "dbm.ndbm",
    "libzstd-dev": "compression.zstd (3.14+)",
}

# What a fresh interpreter says about itself, to check a build before it is moved in.
PROBE = (
    "import json, platform, sys, sysconfig\n"
    "gil = getattr(sys, '_is_gil_enabled', lambda: True)()\n"
    "print(json.dumps({'version': platform.python_version(),"
    " 'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
    " 'gil_enabled': gil, 'config_args': sysconfig.get_config_var('CONFIG_ARGS'),"
    " 'cc': sysconfig.get_config_var('CC'), 'opt': sysconfig.get_config_var('OPT')}))\n"
)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Failure(Exception):
    """A step failed: ``str(exc)`` is the one line the user sees, ``code`` the exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def say(message: str, stream: TextIO | None = None) -> None:
    print(f"{PROG}: {message}", file=stream or sys.stdout, flush=True)


def run(
    cmd: Sequence[str],
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; its output goes to ``log`` (appended) or is captured.  Never raises
    for a failing command; a missing program is exit status 127."""
    try:
        if log is None:
            return subprocess.run(
                list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False
            )
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            return subprocess.run(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
    except OSError as exc:
        return subprocess.CompletedProcess(list(cmd), 127, "", str(exc))


# -- where things live -------------------------------------------------------------


def cache_root(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """``$BOUNDBENCH_PYTHONS_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/boundbench/pythons``."""
    if environ.get("BOUNDBENCH_PYTHONS_CACHE"):
        return Path(environ["BOUNDBENCH_PYTHONS_CACHE"]).expanduser()
    xdg = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "boundbench" / "pythons"


def installed_builds(cache: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Complete installs in ``cache`` (a folder with a readable record), newest first.

    A build in progress or left by a crash lives in a dot-folder and has no record at the
    top of its own folder until it is renamed into place, so it is never listed.
    """
    found = []
    if not cache.is_dir():
        return []
    for folder in cache.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        record = read_record(folder)
        if record is not None:
            found.append((folder, record))
    found.sort(key=lambda row: row[0].name)  # X.Y before X.Yt, whatever iterdir says
    found.sort(key=lambda row: _python_version_key(str(row[1]["version"])), reverse=True)
    return found


def read_record(prefix: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((prefix / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("version"), str):
        return None
    exe = record.get("python")
    if not isinstance(exe, str) or not (prefix / exe).is_file():
        return None
    return record


def _python_version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


# -- the machine's Debian archive ---------------------------------------------------


@dataclass(frozen=True)
class Archive:
    uri: str
    keyring: str


def _os_codename(os_release: Path) -> str | None:
    try:
        text = os_release.read_text()
    except OSError:
        return None
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]+)\"?$", text, re.M)
    return match.group(1) if match else None


def _one_line_entries(text: str) -> Iterator[dict[str, Any]]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        match = re.match(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
        if not match:
            continue
        options = dict(opt.split("=", 1) for opt in (match.group(2) or "").split() if "=" in opt)
        yield {
            "uris": [match.group(3)],
            "suites": [match.group(4)],
            "keyring": options.get("signed-by"),
        }


def _deb822_entries(text: str) -> Iterator[dict[str, Any]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1].isspace() and key:
                fields[key] += "\n" + raw.strip()
                continue
            if ":" in raw:
                key, value = raw.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if not {"types", "uris", "suites"} <= fields.keys():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if not {"deb", "deb-src"} & set(fields["types"].split()):
            continue
        keyring = fields.get("signed-by", "")
        yield {
            "uris": fields["uris"].split(),
            "suites": fields["suites"].split(),
            # Signed-By holds a path, or an inline key we cannot reuse by path.
            "keyring": keyring if keyring.startswith("/") else None,
        }


def find_archive(
    etc: Path = Path("/etc/apt"),
    os_release: Path = Path("/etc/os-release"),
    environ: dict[str, str] | os._Environ[str] = os.environ,
) -> Archive:
    """The Debian archive this machine's apt uses (not its security archive).

    ``$BOUNDBENCH_DEBIAN_MIRROR`` overrides it.  Among the entries of ``sources.list``,
    ``sources.list.d/*.list`` and ``*.sources``, the first whose suite is this system's
    codename (or a Debian suite name) wins: a third-party repository lists its own suites.
    """
    keyring_default = KEYRING
    if environ.get("BOUNDBENCH_DEBIAN_MIRROR"):
        return Archive(environ["BOUNDBENCH_DEBIAN_MIRROR"].rstrip("/"), keyring_default)
    entries: list[dict[str, Any]] = []
    files = [etc / "sources.list"]
    parts = etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        parse = _deb822_entries if file.suffix == ".sources" else _one_line_entries
        entries.extend(parse(text))
    codename = _os_codename(os_release)
    names = {"stable", "testing", "unstable", "sid", "oldstable", "experimental", *CODENAMES}
    if codename:
        names.add(codename)
    for entry in entries:
        if any(suite in names for suite in entry["suites"]):
            return Archive(entry["uris"][0].rstrip("/"), entry["keyring"] or keyring_default)
    raise Failure(
        FETCH_FAILED,
        f"no Debian archive found in {etc}'s sources (set BOUNDBENCH_DEBIAN_MIRROR to one)",
    )


# -- a private apt ----------------------------------------------------------------------


def private_apt(root: Path, archive: Archive, suite: str) -> list[str]:
    """apt options that read one ``deb-src`` line and keep lists and cache under ``root``.

    The machine's ``/etc/apt/sources.list*`` and ``/var/lib/apt/lists`` are neither read
    nor written; apt.conf (proxies, ``Check-Valid-Until``) still applies.
    """
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = root / "etc" / "sources.list"
    sources.write_text(f"deb-src [signed-by={archive.keyring}] {archive.uri} {suite} main\n")
    return [
        "-o", f"Dir::Etc::sourcelist={sources}",
        "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::Cache={root / 'cache'}",
        "-o", "APT::Get::List-Cleanup=0",
    ]  # fmt: skip


# -- versions ---------------------------------------------------------------------------


def compare_debian_versions(a: str, b: str) -> int:
    """<0, 0, >0 as Debian orders versions ``a`` and ``b`` (asks ``dpkg --compare-versions``,
    which every machine with apt has: epochs, ``~`` before a release, revisions)."""
    if a == b:
        return 0
    try:
        lower = (
            subprocess.run(
                ["dpkg", "--compare-versions", a, "lt", b], timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Failure(f"cannot compare Debian versions with dpkg: {exc}") from exc
    return -1 if lower else 1


def served_versions(showsrc: str, package: str) -> list[str]:
    """The versions of source ``package`` in ``apt-cache showsrc`` output, newest first."""
    versions = set()
    for stanza in re.split(r"\n\s*\n", showsrc):
        name = re.search(r"^Package:\s*(\S+)", stanza, re.M)
        version = re.search(r"^Version:\s*(\S+)", stanza, re.M)
        if name and version and name.group(1) == package:
            versions.add(version.group(1))
    key = functools.cmp_to_key(compare_debian_versions)
    return sorted(versions, key=key, reverse=True)


def tarball_version(name: str, package: str) -> str | None:
    """Python's version in an upstream tarball's name, or None if it is not one.

    ``python3.14_3.14.10.orig.tar.xz`` -> ``3.14.10``; ``python3.14_3.14.0~rc1.orig.tar.xz``
    -> ``3.14.0rc1`` (Debian's ``~`` sorts a pre-release first); a repack suffix
    (``+dfsg``) is dropped.
    """
    match = re.fullmatch(re.escape(package) + r"_([^_/]+)\.orig\.tar\.(?:xz|gz|bz2)", name)
    if not match:
        return None
    upstream = match.group(1).split(":")[-1].split("+")[0]
    version = upstream.replace("~", "")
    return version if re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", version) else None


def upstream_of(debian_version: str) -> str:
    """``3.14.10-1`` -> ``3.14.10`` (the part of the tarball's name)."""
    rest = debian_version.split(":", 1)[-1]
    return rest.rpartition("-")[0] if "-" in rest else rest


# -- fetch --------------------------------------------------------------------------------


def _last_error(log: Path, start: int = 0) -> str:
    """The most telling line of a failed step's log (from byte ``start``): the first
    error apt or the compiler printed (``E:``, ``error:``), else the last line."""
    try:
        with log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "no output"
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("$ ")]
    errors = [line for line in lines if line.startswith("E:") or "error:" in line.lower()]
    line = errors[0] if errors else (lines[-1] if lines else "no output")
    # apt names the file and the answer: keep both, without the address.
    match = re.search(r"Failed to fetch \S*/([^/\s]+)\s+(.*?)(?:\s*\[IP:.*)?$", line)
    if match:
        return f"{match.group(1)}: {' '.join(match.group(2).split())}"
    return line[:300]


@dataclass(frozen=True)
class Tarball:
    path: Path | None  # None: every build of this version is installed, nothing to fetch
    version: str  # Python's: 3.14.10
    debian_version: str  # the source package's: 3.14.10-1


def fetch(
    package: str,
    suite: str,
    apt_opts: list[str],
    cache: Path,
    runner: Runner = run,
    built: Callable[[str], bool] = lambda version: False,
) -> Tarball:
    """The newest upstream tarball of ``package`` that ``suite`` lists and serves.

    ``built(version)`` says whether every wanted build of a Python version is installed
    already: then nothing is downloaded.
    """
    tarballs = cache / "tarballs"
    tarballs.mkdir(parents=True, exist_ok=True)
    log = cache / "logs" / "fetch.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    done = runner(["apt-get", *apt_opts, "update"], log=log)
    if done.returncode != 0:
        raise Failure(FETCH_FAILED, f"fetch failed: apt-get update: {_last_error(log)}")
    shown = runner(["apt-cache", *apt_opts, "showsrc", package])
    versions = served_versions(shown.stdout or "", package) if shown.returncode == 0 else []
    if not versions:
        raise Failure(FETCH_FAILED, f"fetch failed: the {suite} suite lists no {package}")
    say(f"fetch: {suite} lists {package} {', '.join(versions)}")
    tried = []
    for debian_version in versions:
        upstream = upstream_of(debian_version)
        version = tarball_version(f"{package}_{upstream}.orig.tar.xz", package)
        if version is None:
            tried.append(f"{debian_version}: not a CPython version")
            continue
        if built(version):
            return Tarball(None, version, debian_version)
        cached = [
            p for p in sorted(tarballs.glob(f"{package}_{upstream}.orig.tar.*"))
            if tarball_version(p.name, package)
        ]  # fmt: skip
        if cached:
            say(f"fetch: {cached[0].name} already in the cache")
            return Tarball(cached[0], version, debian_version)
        started = time.monotonic()
        offset = log.stat().st_size
        with tempfile.TemporaryDirectory(prefix=".download-", dir=tarballs) as tmp:
            got = runner(
                ["apt-get", *apt_opts, "source", "--download-only", f"{package}={debian_version}"],
                log=log,
                cwd=Path(tmp),
            )
            names = [p for p in Path(tmp).iterdir() if tarball_version(p.name, package)]
            if got.returncode == 0 and len(names) == 1:
                target = tarballs / names[0].name
                os.replace(names[0], target)  # whole or not at all
                size = target.stat().st_size / 1e6
                seconds = time.monotonic() - started
                say(f"fetch: {target.name} ({size:.1f} MB) in {seconds:.1f} s")
                return Tarball(target, version, debian_version)
        reason = _last_error(log, offset) if got.returncode != 0 else "no upstream tarball in it"
        tried.append(f"{debian_version}: {reason}")
        say(f"fetch: {package} {debian_version} is listed but not served ({reason})")
    raise Failure(
        FETCH_FAILED,
        f"fetch failed: no {package} that the {suite} suite lists could be downloaded "
        f"({'; '.join(tried)})",
    )


def cached_tarball(package: str, cache: Path) -> Tarball:
    """The newest tarball already in the cache (``--offline``)."""
    found = []
    for path in (cache / "tarballs").glob(f"{package}_*"):
        version = tarball_version(path.name, package)
        if version:
            found.append((path, version))
    if not found:
        raise Failure(FETCH_FAILED, f"fetch failed: --offline and no {package} tarball in {cache}")
    path, version = max(found, key=lambda row: _python_version_key(row[1]))
    return Tarball(path, version, "")


# -- build dependencies -------------------------------------------------------------------


def missing_packages(names: Sequence[str], runner: Runner = run) -> list[str]:
    """Which of the Debian packages ``names`` are not installed (dpkg's answer)."""
    done = runner(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *names])
    installed = set()
    for line in (done.stdout or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii"):
            installed.add(parts[0].split(":")[0])
    return [name for name in names if name not in installed]


def check_deps(install: bool, runner: Runner = run, log: Path | None = None) -> list[str]:
    """Missing optional packages (the build goes on); raises if a required one is missing."""
    wanted = [*REQUIRED_DEPS, *OPTIONAL_DEPS]
    missing = missing_packages(wanted, runner)
    if missing and install:
        say(f"build dependencies: apt-get install {' '.join(missing)}")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = runner(cmd, log=log, env=env)
        if done.returncode != 0:
            # The machine's lists may be stale (a fresh machine): refresh them once.
            runner(["apt-get", "update", "-q"], log=log, env=env)
            done = runner(cmd, log=log, env=env)
        if done.returncode != 0:
            where = f" (log: {log})" if log else ""
            raise Failure(DEPS_MISSING, f"could not install build dependencies{where}")
        missing = missing_packages(wanted, runner)
    required = [name for name in missing if name in REQUIRED_DEPS]
    if required:
        raise Failure(
            DEPS_MISSING,
            f"missing build dependencies: {' '.join(missing)} "
            f"(apt-get install {' '.join(missing)}, or rerun with --install-deps as root)",
        )
    if missing:
        modules = ", ".join(OPTIONAL_DEPS[name] for name in missing)
        say(
            f"build dependencies: missing {' '.join(missing)}, so no {modules} "
            f"(apt-get install {' '.join(missing)}, or --install-deps as root)"
        )
    else:
        say(f"build dependencies: all {len(wanted)} installed")
    return missing


# -- build --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    version: str
    free_threaded: bool
    cache: Path

    @property
    def name(self) -> str:
        return self.version + ("t" if self.free_threaded else "")

    @property
    def series(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def prefix(self) -> Path:
        return self.cache / self.name

    @property
    def python(self) -> str:
        """The interpreter, relative to the prefix."""
        return f"bin/python{self.series}{'t' if self.free_threaded else ''}"

    @property
    def flags(self) -> list[str]:
        return [f"--prefix={self.prefix}", *(["--disable-gil"] if self.free_threaded else [])]

    def current(self) -> dict[str, Any] | None:
        """The record of an install of exactly this build, or None."""
        record = read_record(self.prefix)
        if (
            record
            and record["version"] == self.version
            and record.get("configure_flags") == self.flags
        ):
            return record
        return None


def _unpack(tarball: Path, into: Path) -> Path:
    """Unpack ``tarball`` into ``into``; its one top folder."""
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(into, filter="data")
        else:  # Python before 3.12 (and 3.11.4): an upstream tarball we fetched ourselves
            archive.extractall(into)
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1 or not (tops[0] / "configure").is_file():
        raise Failure(BUILD_FAILED, f"{tarball.name} holds no single source folder with configure")
    return tops[0]


def _build_env() -> dict[str, str]:
    # The caller's PYTHONPATH, PYTHONHOME or PYTHON_GIL must not reach the new
    # interpreter, which runs during the build (and is probed after it).
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def build(
    build: Build,
    tarball: Tarball,
    jobs: int = JOBS,
    runner: Runner = run,
) -> dict[str, Any]:
    """Build and install ``build`` from ``tarball``; its record.  Atomic: on any failure
    nothing is left at ``build.prefix`` that was not there before."""
    cache = build.cache
    assert tarball.path is not None, "a build needs its tarball"
    log = cache / "logs" / f"{build.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{build.name}-", dir=cache))
    env = _build_env()
    started = time.monotonic()
    try:
        say(f"{build.name}: unpack {tarball.path.name}")
        source = _unpack(tarball.path, tmp / "src")
        stage = tmp / "stage"
        steps = [
            ("configure", [*NICE, "./configure", *build.flags]),
            (f"make -j{jobs}", [*NICE, "make", f"-j{jobs}"]),
            ("make install", [*NICE, "make", "install", f"DESTDIR={stage}"]),
        ]
        step_seconds = {}
        for step, cmd in steps:
            say(f"{build.name}: {step}")
            step_started = time.monotonic()
            done = runner(cmd, log=log, cwd=source, env=env)
            step_seconds[step.split(" -j")[0]] = round(time.monotonic() - step_started, 1)
            if done.returncode != 0:
                raise Failure(
                    BUILD_FAILED,
                    f"build of {build.name} failed at {step} (exit {done.returncode}): "
                    f"{_last_error(log)} (log: {log})",
                )
        seconds = time.monotonic() - started
        staged = stage / build.prefix.relative_to(build.prefix.anchor)
        answer = _probe(staged, build, runner, env)
        record = {
            "version": build.version,
            "free_threaded": build.free_threaded,
            "python": build.python,
            "configure_flags": build.flags,
            "jobs": jobs,
            "pgo": False,
            "lto": False,
            "build_seconds": round(seconds, 1),
            "step_seconds": step_seconds,
            # timezone.utc, not datetime.UTC: the script runs on Pythons before 3.11.
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(  # noqa: UP017
                timespec="seconds"
            ),
            "source": {
                "tarball": tarball.path.name,
                "debian_version": tarball.debian_version,
            },
            "sysconfig": {key: answer.get(key) for key in ("config_args", "cc", "opt")},
        }
        (staged / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        # Into place: an older install of this name moves aside first (one rename), then
        # the new one moves in (one rename): a reader never sees a half-built one.
        if build.prefix.exists() or build.prefix.is_symlink():
            os.replace(build.prefix, tmp / "old")
        os.replace(staged, build.prefix)
        return record
    finally:
        _rmtree(tmp)


def _probe(staged: Path, build: Build, runner: Runner, env: dict[str, str]) -> dict[str, Any]:
    """Ask the staged interpreter who it is (before anything can find it)."""
    exe = staged / build.python
    done = runner([str(exe), "-c", PROBE], env={**env, "PYTHONHOME": str(staged)})
    try:
        answer = json.loads((done.stdout or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        why = (done.stderr or "").strip().splitlines()[-1:] or ["no answer"]
        raise Failure(BUILD_FAILED, f"build of {build.name}: {exe.name} does not run: {why[0]}")
    if answer.get("version") != build.version or answer.get("free_threaded") != build.free_threaded:
        raise Failure(
            BUILD_FAILED,
            f"build of {build.name}: the new interpreter is {answer.get('version')}"
            f"{'t' if answer.get('free_threaded') else ''}, not {build.name}",
        )
    if build.free_threaded and answer.get("gil_enabled"):
        raise Failure(BUILD_FAILED, f"build of {build.name}: the GIL is enabled at start-up")
    return answer


def retire_older(build: Build, keep: Path) -> list[Path]:
    """Remove installs of the same series and build other than ``keep`` (a newer version
    replaced them); each moves aside in one rename before it is deleted."""
    gone = []
    for folder, record in installed_builds(build.cache):
        same = (
            record["version"].startswith(build.series + ".")
            and bool(record.get("free_threaded")) == build.free_threaded
        )
        if same and folder != keep:
            aside = Path(tempfile.mkdtemp(prefix=".retired-", dir=build.cache))
            os.replace(folder, aside / folder.name)
            _rmtree(aside)
            gone.append(folder)
    return gone


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One build_pythons at a time per cache folder."""
    import fcntl  # here, not at the top: noxfile.py imports this module on any platform

    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another {PROG} on {cache}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build CPython X.Y and X.Yt (free-threaded) from Debian's sources.",
    )
    parser.add_argument("--series", default=SERIES, help="CPython series (default: %(default)s)")
    parser.add_argument("--suite", default=SUITE, help="Debian suite (default: %(default)s)")
    parser.add_argument(
        "--only",
        choices=("gil", "ft"),
        help="build only the GIL build or only the free-threaded one",
    )
    parser.add_argument("--jobs", type=int, default=JOBS, help="make -jN (default: %(default)s)")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: see above)"
    )
    parser.add_argument(
        "--install-deps", action="store_true", help="apt-get install missing build dependencies"
    )
    parser.add_argument(
        "--offline", action="store_true", help="use the newest tarball in the cache, fetch nothing"
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d+\.\d+", args.series):
        parser.error(f"--series wants a version like 3.14, not {args.series!r}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(
    argv: Sequence[str] | None = None,
    runner: Runner = run,
    etc: Path = Path("/etc/apt"),
) -> int:
    args = parse_args(argv)
    cache = (args.cache or cache_root()).expanduser().resolve()
    package = f"python{args.series}"
    builds = [
        free
        for free in (False, True)
        if args.only is None or args.only == ("ft" if free else "gil")
    ]
    try:
        with locked(cache):
            (cache / "logs").mkdir(exist_ok=True)
            check_deps(args.install_deps, runner, log=cache / "logs" / "deps.log")
            started = time.monotonic()
            if args.offline:
                tarball = cached_tarball(package, cache)
                say(f"fetch: --offline, {package} {tarball.version} from the cache")
            else:
                archive = find_archive(etc)
                opts = private_apt(cache / "apt", archive, args.suite)
                say(f"fetch: {package} from {args.suite} (private apt lists in {cache / 'apt'})")
                tarball = fetch(
                    package,
                    args.suite,
                    opts,
                    cache,
                    runner,
                    built=lambda version: all(Build(version, f, cache).current() for f in builds),
                )
            say(f"fetch: done in {_minutes(time.monotonic() - started)}")
            ready = []
            for free in builds:
                wanted = Build(tarball.version, free, cache)
                record = wanted.current()
                if record is not None:
                    say(f"{wanted.name}: already built with the same flags, reused")
                else:
                    record = build(wanted, tarball, args.jobs, runner)
                    steps = ", ".join(
                        f"{step} {_minutes(took)}" for step, took in record["step_seconds"].items()
                    )
                    say(f"{wanted.name}: built in {_minutes(record['build_seconds'])} ({steps})")
                for gone in retire_older(wanted, wanted.prefix):
                    say(f"{wanted.name}: removed the older {gone.name}")
                ready.append(str(wanted.prefix / record["python"]))
            for stale in (cache / "tarballs").glob(f"{package}_*"):
                if tarball_version(stale.name, package) != tarball.version:
                    stale.unlink(missing_ok=True)
    except Failure as exc:
        say(str(exc), sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        say("interrupted; nothing half-built was left in place", sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a permission: still one line
        say(f"failed: {exc}", sys.stderr)
        return BUILD_FAILED
    say("ready: " + " ".join(ready))
    return OK


if __name__ == "__main__":
    sys.exit(main())
