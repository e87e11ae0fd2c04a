"""A against B in one session: ``pytest benchmarks/ --ab-base TREE``, ``--ab-python-a/-b
PATH``, ``--ab-env-a/-b KEY=VALUE`` (docs/ab.md).

Side A's runners come from TREE (default: this tree), side B's from this tree, each with
its interpreter (default: this one) and its environment additions.  This session's
catalogue plans the cells; ``_harness.interleave`` runs each cell's A and B rounds back
to back in every pass.  A tree whose runner speaks another protocol, or that has none,
cannot serve this session: ``fallback`` runs its own session, then this tree's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workloads.runner import RunnerError, RunnerProcess

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ("ab_base", "ab_python_a", "ab_python_b", "ab_env_a", "ab_env_b")
PAIRING = (
    "pair i = (A round i, B round i): in every pass each cell runs one round on each side,"
    " back to back, in a random order within the pair (extra_info.ab.first: the side that"
    " ran first); cells in a random order each pass; warm-ups of both sides before"
)
# Why a runner cannot serve this session at all (its tree is of another protocol).
REFUSED = ("speaks runner protocol", "is not a boundbench runner")
PROBE = "import sys; print('boundbench-python', sys.version_info[0])"


@dataclass
class Side:
    name: str  # "a" or "b"
    tree: Path
    python: str
    env: dict[str, str]
    # the hello of its latest runner: its interpreter's path and version
    hello: dict[str, Any] = field(default_factory=dict)

    def pythonpath(self, rest: list[str]) -> str:
        """Its tree first, then its own PYTHONPATH (``--ab-env-a PYTHONPATH=...``), then
        ``rest``."""
        paths = [str(self.tree), *self.env.get("PYTHONPATH", "").split(os.pathsep), *rest]
        return os.pathsep.join(dict.fromkeys(filter(None, paths)))

    def runner(self, timeout: float, patch: str | None, env: dict[str, str]) -> RunnerProcess:
        """A runner of this side, started; RunnerError if it does not run this tree's code."""
        more = {key: value for key, value in {**env, **self.env}.items() if key != "PYTHONPATH"}
        runner = RunnerProcess(timeout, patch=patch, python=self.python, tree=self.tree, env=more)
        runner.env["PYTHONPATH"] = self.pythonpath(runner.env["PYTHONPATH"].split(os.pathsep))
        runner.start()
        if runner.info.get("tree") != str(self.tree):
            runner.kill()
            raise RunnerError(f"{runner.describe()} runs the code of {runner.info.get('tree')}")
        self.hello = runner.info
        return runner


def _python(config: pytest.Config, side: str) -> str:
    given = config.getoption(f"ab_python_{side}")
    if given is None:
        return sys.executable
    found = shutil.which(given) or given
    try:
        done = subprocess.run([found, "-c", PROBE], capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        said = (done.stdout + done.stderr).strip().splitlines() or [f"exit {done.returncode}"]
        why = None if said[0] == "boundbench-python 3" else said[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    if why is not None:
        raise pytest.UsageError(f"--ab-python-{side}: {given} is no Python 3 that runs: {why}")
    return found


def _env(config: pytest.Config, side: str) -> dict[str, str]:
    env = {}
    for item in config.getoption(f"ab_env_{side}") or ():
        key, eq, value = item.partition("=")
        if not (eq and key.strip()):
            raise pytest.UsageError(f"--ab-env-{side}: KEY=VALUE, not {item!r}")
        env[key.strip()] = value
    return env


def sides(config: pytest.Config) -> dict[str, Side] | None:
    """Sides A and B as the --ab-* options say (None: not an A/B session); a value that
    cannot serve is a usage error of one line."""
    if not any(config.getoption(name) for name in OPTIONS):
        return None
    if config.getoption("measure") != "time":
        raise pytest.UsageError("--measure instructions: not in an A/B session (it is timed)")
    base = config.getoption("ab_base")
    tree = ROOT if base is None else Path(base).expanduser().resolve()
    if not (tree / "benchmarks").is_dir():
        why = "not a boundbench checkout (no benchmarks/)" if tree.is_dir() else "no such folder"
        raise pytest.UsageError(f"--ab-base: {base}: {why}")
    return {
        "a": Side("a", tree, _python(config, "a"), _env(config, "a")),
        "b": Side("b", ROOT, _python(config, "b"), _env(config, "b")),
    }


def probe(pair: dict[str, Side]) -> str | None:
    """Start a runner on each side (their hellos name the interpreters): why side A
    cannot serve this session (no runner, another protocol), else None.  Any other
    failure to start is a usage error."""
    for side in pair.values():
        if not (side.tree / "workloads" / "runner").is_dir():
            return f"{side.tree} has no runner (a commit from before workloads/runner)"
        try:
            side.runner(60.0, None, {}).close()
        except RunnerError as exc:
            if any(words in str(exc) for words in REFUSED):
                return str(exc)
            raise pytest.UsageError(
                f"A/B session: side {side.name.upper()} cannot start a runner: {exc}"
            ) from None
    return None


def _commit(tree: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--show-toplevel", "HEAD"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    lines = done.stdout.split()
    ours = done.returncode == 0 and len(lines) == 2 and Path(lines[0]).resolve() == tree
    return lines[1] if ours else None


def facts(pair: dict[str, Side]) -> dict[str, Any]:
    """``machine_info["boundbench"]["measure"]`` of an A/B session."""
    out: dict[str, Any] = {"kind": "ab", "pairing": PAIRING}
    pythons = {n: (s.hello.get("python"), s.hello.get("executable")) for n, s in pair.items()}
    for (name, side), other in zip(pair.items(), reversed(pair.values()), strict=True):
        commit, (version, executable) = _commit(side.tree), pythons[name]
        label = []
        if side.tree != other.tree:
            label.append(f"{'base' if name == 'a' else 'head'} {(commit or '')[:7] or side.tree}")
        if pythons["a"] != pythons["b"]:  # two builds of one version: their paths too
            same = pythons["a"][0] == pythons["b"][0]
            label.append(f"python {version}" + (f" ({executable})" if same else ""))
        if side.env != other.env:
            label.append(" ".join(f"{k}={v}" for k, v in side.env.items()) or "env unchanged")
        out[name] = {
            "label": " ".join(label) or name.upper(),
            "tree": side.hello.get("tree", str(side.tree)),  # its runners' own word
            "commit": commit,
            "python": {"path": executable or side.python, "version": version},
            "env": dict(side.env),
        }
    return out


def _args(args: tuple[str, ...]) -> list[str]:
    """The session's arguments less --ab-* and --benchmark-json (and their values)."""
    drop = {f"--{name.replace('_', '-')}" for name in OPTIONS} | {"--benchmark-json"}
    out, skip = [], False
    for arg in args:
        if not skip and arg not in drop and arg.split("=", 1)[0] not in drop:
            out.append(arg)
        skip = arg in drop and not skip
    return out


def fallback(config: pytest.Config, pair: dict[str, Side], why: str) -> int:
    """Side A's own session, then side B's, each into a JSON file: the way before A/B
    sessions, the host's drift between the two included."""
    asked = config.getoption("benchmark_json")
    stem = Path(config.invocation_params.dir, asked or ".benchmarks/ab.json").resolve()
    out = {name: stem.with_name(f"{stem.stem}.{name}.json") for name in pair}
    print(f"boundbench: WARNING: no A/B session: {why}; running side A's own session, then"
          " side B's (minutes apart: the host's drift between them is in the comparison)",
          flush=True)  # fmt: skip
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and Path(p).resolve() != ROOT]  # fmt: skip
    for name, side in pair.items():
        out[name].parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **side.env, "PYTHONPATH": side.pythonpath(rest)}
        argv = [side.python, "-m", "pytest", *_args(config.invocation_params.args),
                f"--benchmark-json={out[name]}"]  # fmt: skip
        status = subprocess.run(argv, cwd=side.tree, env=env, check=False).returncode
        if status != 0:
            print(f"boundbench: side {name.upper()}'s session ({side.tree}) failed (exit"
                  f" {status})", flush=True)  # fmt: skip
            return status
    print(f"boundbench: compare the two with: python -m reports check --baseline {out['a']}"
          f" --current {out['b']}", flush=True)  # fmt: skip
    return 0
