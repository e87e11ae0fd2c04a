#!/usr/bin/env python3
"""The tests against the newest release of every dependency, and which upgrade broke what.

CI and the default benchmark environment install ``requirements-lock.txt`` (exact
versions, with hashes), so a new release of pytest, pandas or gevent changes nothing until
the lock is regenerated on purpose (``nox -s lock``).  This script is the other half: it
makes a fresh virtual environment with the newest releases that the project's own ranges
admit, lists every package whose version differs from the lock, and runs the tests there.
When tests fail, it tries each upgraded package alone on top of the locked environment
and re-runs just the failed tests, so the verdict names the upgrade that broke them:

    python3 scripts/newest.py                 # the whole test suite
    python3 scripts/newest.py -- -m "not slow"  # arguments after -- go to pytest
    python3 scripts/newest.py --list          # only: what would be upgraded

Exit status: 0 the tests pass on the newest releases; 1 some fail (the upgrades to blame
are printed, a table in Markdown with ``--summary FILE``); 2 the environment could not be
made (the message says why).  Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"
EXTRAS = "all"
# Generous: a fresh environment downloads ~60 packages; the test suite takes ~10 min.
INSTALL_TIMEOUT_S = 900
TESTS_TIMEOUT_S = 1800

# Run inside an environment: the installed versions, and the lock's pins whose markers
# hold there (the lock is universal: one file for every Python the project supports).
QUERY = """
import json, sys
from importlib import metadata
from packaging.markers import Marker
from packaging.utils import canonicalize_name
installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
pins = {}
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip().rstrip("\\\\").strip()
    if "==" not in line or line.startswith("-"):
        continue
    spec, _, marker = line.partition(";")
    name, _, version = spec.partition("==")
    if marker.strip() and not Marker(marker.strip()).evaluate():
        continue
    pins[canonicalize_name(name.strip())] = version.strip()
print(json.dumps({"installed": installed, "pins": pins}))
"""


class Failure(Exception):
    """The environment could not be made: one line for the user, exit 2."""


@dataclass(frozen=True)
class Upgrade:
    name: str
    locked: str | None  # None: not in the lock (a new dependency)
    newest: str


def run(cmd: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]
    except subprocess.TimeoutExpired as exc:
        raise Failure(f"{' '.join(cmd[:4])} ... took more than {timeout:.0f} s") from exc


def make_env(where: Path, packages: list[str]) -> Path:
    """A new virtual environment at ``where`` with ``packages`` installed (pip arguments)."""
    if where.exists():
        shutil.rmtree(where)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(where)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise Failure(f"could not make a virtual environment at {where}: {exc}") from exc
    python = where / "bin" / "python"
    install(python, packages)
    return python


def install(python: Path, packages: list[str]) -> None:
    done = run(
        [str(python), "-m", "pip", "install", "--quiet", *packages],
        INSTALL_TIMEOUT_S,
        cwd=ROOT,
        capture_output=True,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise Failure(f"pip install {' '.join(packages)} failed: {tail[0]}")


def versions(python: Path) -> tuple[dict[str, str], dict[str, str]]:
    done = run([str(python), "-c", QUERY, str(LOCK)], 120, capture_output=True)
    if done.returncode != 0:
        raise Failure(f"could not read the environment's versions: {done.stderr.strip()}")
    answer = json.loads(done.stdout)
    return answer["installed"], answer["pins"]


def upgrades(installed: dict[str, str], pins: dict[str, str]) -> list[Upgrade]:
    """Every installed package whose version is not the locked one (the project aside)."""
    return [
        Upgrade(name, pins.get(name), version)
        for name, version in sorted(installed.items())
        if name not in ("boundbench", "pip", "setuptools") and pins.get(name) != version
    ]


def run_tests(python: Path, args: list[str], junit: Path) -> tuple[int, list[str]]:
    """pytest's exit status and the node ids that failed or errored."""
    done = run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
        TESTS_TIMEOUT_S,
        cwd=ROOT,
    )
    return done.returncode, failed_ids(junit)


def failed_ids(junit: Path) -> list[str]:
    if not junit.exists():
        return []
    failed = []
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            path = case.get("classname", "").replace(".", "/")
            module, _, cls = path.partition("/Test")
            node = f"{module}.py" + (f"::Test{cls}" if cls else "")
            failed.append(f"{node}::{case.get('name')}")
    return sorted(set(failed))


def blame(work: Path, candidates: list[Upgrade], failed: list[str]) -> dict[str, list[str]]:
    """For each upgrade alone on the locked environment: the failed tests it breaks."""
    broken: dict[str, list[str]] = {}
    for upgrade in candidates:
        print(
            f"newest: trying {upgrade.name} {upgrade.locked} -> {upgrade.newest} alone", flush=True
        )
        python = make_env(work / "blame", ["-r", str(LOCK)])
        install(python, [f"{upgrade.name}=={upgrade.newest}"])
        install(python, ["--no-deps", "-e", "."])
        _, still = run_tests(python, ["-q", *failed], work / f"blame-{upgrade.name}.xml")
        if still:
            broken[upgrade.name] = still
    return broken


def table(found: list[Upgrade], broken: dict[str, list[str]] | None) -> str:
    lines = ["| package | locked | newest | breaks |", "|---|---|---|---|"]
    for up in found:
        hits = (broken or {}).get(up.name, [])
        verdict = ", ".join(f"`{node}`" for node in hits) if hits else "-"
        lines.append(f"| {up.name} | {up.locked or '(not locked)'} | {up.newest} | {verdict} |")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".nox" / "newest",
                        help="where the environments are made (default .nox/newest)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the upgrades, run no test")
    parser.add_argument("--summary", type=Path, help="also write the verdict here (Markdown)")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print("newest: a fresh environment with the newest releases", flush=True)
        python = make_env(args.work / "env", ["--upgrade", "-e", f".[{EXTRAS}]"])
        installed, pins = versions(python)
        found = upgrades(installed, pins)
        print(f"newest: {len(found)} package(s) newer than the lock", flush=True)
        if args.list:
            print(table(found, None))
            return 0
        status, failed = run_tests(python, args.pytest_args, args.work / "newest.xml")
        if status == 0:
            verdict = "The tests pass on the newest releases."
            broken: dict[str, list[str]] = {}
        else:
            broken = blame(args.work, [u for u in found if u.locked], failed) if failed else {}
            blamed = sorted({node for hits in broken.values() for node in hits})
            unexplained = [node for node in failed if node not in blamed]
            verdict = (
                f"{len(failed)} test(s) fail on the newest releases (pytest exit {status}); "
                + (
                    f"upgrades to blame: {', '.join(sorted(broken))}"
                    if broken
                    else "no single upgrade breaks them alone"
                )
                + (
                    f"; not explained by one upgrade: {len(unexplained)}"
                    if unexplained and broken
                    else ""
                )
            )
        print(f"\n{verdict}\n\n{table(found, broken)}")
        if args.summary:
            args.summary.write_text(f"## Newest releases\n\n{verdict}\n\n{table(found, broken)}\n")
        return 0 if status == 0 else 1
    except Failure as exc:
        print(f"newest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
