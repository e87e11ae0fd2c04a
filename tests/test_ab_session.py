"""A against B in one session (``--ab-base``, ``--ab-python-a/-b``, ``--ab-env-a/-b``).

The pass schedule with in-process runners (pairs adjacent, random order within each pair
and among cells, every round present); sessions with a second copy of this tree as side
A (its runners run its code: its rounds are marked), with an environment for side A
only, and with an old tree whose runner speaks protocol 1 (the fallback: base's session,
then head's); bad values, a usage error of one line.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import _ab
from benchmarks._groups import Cell
from benchmarks._harness import UNAVAILABLE, InProcess, Outcome, Trials, interleave, measure
from workloads.runner import PROTOCOL, Engine

ROOT = Path(__file__).resolve().parents[1]
HERE = "tests.test_ab_session"
TINY = ["benchmarks/test_user.py", "--workload", "cpu_loop,n=2000", "--profile", "quick"]
LOG: list[tuple[str, str]] = []


# -- the schedule, in process -----------------------------------------------------------


class Logged(InProcess):
    """In-process engines that log (cell, side) at each round; side A cannot prepare
    the cells named in ``missing``."""

    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        super().__init__(5.0, ("a", "b"))
        self.missing = missing

    def __call__(self, patch: str | None, side: str = "") -> Engine:
        engine = super().__call__(patch, side)
        prepare, one = engine.prepare, engine.round

        def prepared(key: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
            if side == "a" and key in self.missing:
                return {"error": f"could not prepare the cell: no kind {kind}"}
            return prepare(key, kind, kwargs)

        def round_(key: str, keep: bool) -> dict[str, Any]:
            LOG.append((key, side))
            return one(key, keep)

        engine.prepare, engine.round = prepared, round_  # type: ignore[method-assign]
        return engine


def cell(rounds: int = 6, warmup: int = 1) -> Cell:
    return Cell(group="g", rounds=rounds, warmup=warmup, info={}, kind=f"{HERE}:nothing",
                kwargs={})  # fmt: skip


def nothing(bench: Any) -> Any:
    from workloads.runner import Cell as Prepared
    from workloads.runner import Round

    class Nothing(Prepared):
        def round(self) -> Round:
            return Round(0.001, 0.001, None)

    return Nothing()


def test_every_pass_runs_each_cells_pair_back_to_back_in_a_random_order() -> None:
    LOG.clear()
    cells = {name: cell() for name in "wxyz"}
    outcomes: dict[str, Outcome] = {}
    interleave(cells, outcomes, seed=3, opener=Logged())
    warmups, timed = LOG[:8], LOG[8:]
    assert sorted(warmups) == sorted(itertools.product("wxyz", "ab")), "both sides warm up"
    assert len(timed) == 6 * 4 * 2
    passes = [timed[i : i + 8] for i in range(0, len(timed), 8)]
    orders = set()
    for rounds in passes:
        pairs = [rounds[i : i + 2] for i in range(0, 8, 2)]
        assert all(a[0] == b[0] and {a[1], b[1]} == {"a", "b"} for a, b in pairs), rounds
        assert sorted(a[0] for a, _ in pairs) == list("wxyz"), "every cell once a pass"
        orders.add(tuple(a[0] for a, _ in pairs))
    assert len(orders) > 1, "the cells' order changes from pass to pass"
    firsts = Counter(side for (_, side) in timed[::2])
    assert min(firsts["a"], firsts["b"]) > 5, f"either side may go first: {firsts}"
    for name, outcome in outcomes.items():
        assert outcome.error is None
        assert outcome.a is not None
        assert len(outcome.seconds) == len(outcome.a.seconds) == 6
        # the side that ran first in each pair, as the log has it
        assert outcome.first == [side for (key, side) in timed[::2] if key == name]


def test_a_cell_side_a_cannot_prepare_is_skipped_and_the_rest_go_on() -> None:
    LOG.clear()
    cells = {name: cell(rounds=3) for name in ("old", "new")}
    trials = Trials(seed=0, opener=Logged(missing=("new",)), cells=cells,
                    batches={"m": ["old", "new"]}, batch_of={"old": "m", "new": "m"})  # fmt: skip
    assert trials.outcome("old").error is None
    assert trials.outcome("new").error == (
        f"{UNAVAILABLE} (could not prepare the cell: no kind {HERE}:nothing)"
    )
    assert {key for key, _ in LOG} == {"old"}, "neither side runs the cell"
    benchmark = SimpleNamespace(enabled=True, group=None, extra_info={})
    with pytest.raises(pytest.skip.Exception, match=rf"^{UNAVAILABLE} "):
        measure(benchmark, trials, SimpleNamespace(nodeid="new"))  # type: ignore[arg-type]


def test_a_sessions_arguments_for_the_fallback_lose_the_ab_options() -> None:
    args = ("benchmarks/", "--ab-base", "/t", "--ab-env-a=K=V", "--profile", "quick",
            "--benchmark-json", "x.json", "--ab-python-b=/p", "-q")  # fmt: skip
    assert _ab._args(args) == ["benchmarks/", "--profile", "quick", "-q"]


def test_side_a_environment_puts_its_pythonpath_after_its_tree(tmp_path: Path) -> None:
    (tmp_path / "only_here.py").write_text("def where():\n    return 'site a'\n")
    side = _ab.Side("a", ROOT, sys.executable, {"PYTHONPATH": str(tmp_path), "AB_PROBE": "1"})
    runner = side.runner(30.0, None, {})
    try:
        assert runner.env["PYTHONPATH"].split(os.pathsep)[:2] == [str(ROOT), str(tmp_path)]
        assert runner.env["AB_PROBE"] == "1"
        kwargs = {"target": "only_here:where", "args": [], "kwargs": {}, "expect": "site a"}
        assert runner.prepare("c", "workloads.runner.cells:call", kwargs).get("error") is None
        assert "seconds" in runner.round("c", keep=True)
    finally:
        runner.close()
    assert side.hello["tree"] == str(ROOT)


# -- sessions -----------------------------------------------------------------------


def pytest_session(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def copy_tree(into: Path, edit: dict[str, tuple[str, str]] | None = None) -> Path:
    """This checkout's code in ``into``, with ``edit``: {path: (old, new)} replaced."""
    junk = (".git", ".venv", ".benchmarks", "__pycache__", ".mypy_cache", ".ruff_cache",
            ".nox", ".pytest_cache", "*.egg-info")  # fmt: skip
    shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns(*junk))
    for path, (old, new) in (edit or {}).items():
        text = (into / path).read_text()
        assert old in text, (path, old)
        (into / path).write_text(text.replace(old, new))
    return into


def saved(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# Side A's copy adds 1000 s to every round it reports: its rounds are unmistakable.
MARKED = {"workloads/runner/_engine.py": ('{"seconds": done.seconds,',
                                          '{"seconds": done.seconds + 1000.0,')}  # fmt: skip


@pytest.mark.slow
def test_an_ab_session_pairs_rounds_of_side_a_from_the_other_tree(tmp_path: Path) -> None:
    base = copy_tree(tmp_path / "base", MARKED)
    out = tmp_path / "ab.json"
    done = pytest_session(*TINY, "-k", "serial or threads", f"--ab-base={base}",
                          f"--benchmark-json={out}")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = saved(out)
    measure = run["machine_info"]["boundbench"]["measure"]
    assert measure["kind"] == "ab"
    assert measure["a"]["tree"] == str(base)  # the runners' hello said so
    assert measure["a"]["commit"] is None  # a plain copy
    assert measure["b"]["tree"] == str(ROOT)
    assert measure["a"]["label"] == f"base {base}"
    assert measure["b"]["label"].startswith("head ")
    for side in "ab":
        assert measure[side]["python"]["version"] == sys.version.split()[0]
        assert measure[side]["env"] == {}
    assert "back to back" in measure["pairing"]
    assert len(run["benchmarks"]) == 2
    firsts = []
    for bench in run["benchmarks"]:
        ab = bench["extra_info"]["ab"]
        assert len(ab["a"]) == len(ab["b"]) == len(ab["first"]) == bench["stats"]["rounds"] == 5
        assert ab["b"] == bench["stats"]["data"], "the statistics are side B's"
        assert all(s > 1000 for s in ab["a"]), "side A ran the other tree's code"
        assert all(s < 1 for s in ab["b"])
        firsts += ab["first"]
    assert set(firsts) == {"a", "b"}, "the order within a pair is random"
    assert "A/B session: A = base" in done.stdout


@pytest.mark.slow
def test_an_environment_for_side_a_reaches_side_a_only(tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    done = pytest_session(*TINY, "-k", "serial", "--ab-env-a", "BOUNDBENCH_SLOWDOWN=cpu_loop=20",
                          f"--benchmark-json={out}")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = saved(out)
    measure = run["machine_info"]["boundbench"]["measure"]
    assert measure["a"]["tree"] == measure["b"]["tree"] == str(ROOT)
    assert measure["a"]["env"] == {"BOUNDBENCH_SLOWDOWN": "cpu_loop=20"}
    assert measure["a"]["label"] == "BOUNDBENCH_SLOWDOWN=cpu_loop=20"
    assert measure["b"]["label"] == "env unchanged"
    (bench,) = run["benchmarks"]
    ab = bench["extra_info"]["ab"]
    assert min(a / b for a, b in zip(ab["a"], ab["b"], strict=True)) > 4, ab


@pytest.mark.slow
def test_a_base_of_another_protocol_falls_back_to_base_then_head(tmp_path: Path) -> None:
    old = PROTOCOL - 1
    base = copy_tree(tmp_path / "base", {
        "workloads/runner/_protocol.py": (f"PROTOCOL = {PROTOCOL}\n", f"PROTOCOL = {old}\n")
    })  # fmt: skip
    out = tmp_path / "runs" / "ab.json"
    done = pytest_session(*TINY, "-k", "serial", f"--ab-base={base}", f"--benchmark-json={out}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    warnings = [line for line in done.stdout.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "no A/B session" in warnings[0]
    assert f"speaks runner protocol {old}, this session {PROTOCOL}" in warnings[0]
    a, b = tmp_path / "runs" / "ab.a.json", tmp_path / "runs" / "ab.b.json"
    assert not out.exists()
    assert done.stdout.strip().splitlines()[-1] == (
        f"boundbench: compare the two with: python -m reports check --baseline {a} --current {b}"
    )
    for path, protocol in ((a, old), (b, PROTOCOL)):
        run = saved(path)
        assert run["machine_info"]["boundbench"]["measure"] == {"kind": "time"}
        assert run["boundbench_runners"]["protocol"] == protocol, "each tree's own session"
        assert [bench["name"] for bench in run["benchmarks"]] == [
            "test_workload[cpu_loop-serial-2-1]"
        ]
    check = subprocess.run([sys.executable, "-m", "reports", "check", "--baseline", str(a),
                            "--current", str(b)], cwd=ROOT, capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert check.returncode in (0, 1), check.stdout + check.stderr


# -- bad values ---------------------------------------------------------------------


FAILING_RUNNER = """#!/bin/sh
# A Python 3 that cannot start a runner (a missing dependency).
case "$*" in *boundbench-python*) exec "{python}" "$@" ;; esac
echo "ModuleNotFoundError: No module named 'psutil'" >&2
exit 1
"""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--ab-base=/no/such/tree"], "--ab-base: /no/such/tree: no such folder"),
        (["--ab-base={tmp}"], "not a boundbench checkout"),
        (["--ab-base", str(ROOT)], "write --ab-base=TREE"),
        (["--ab-python-a=/no/such/python"], "--ab-python-a: /no/such/python is no Python 3"),
        (["--ab-python-b=/bin/true"], "--ab-python-b: /bin/true is no Python 3 that runs"),
        (["--ab-python-a={tmp}/python"], "side A cannot start a runner: the runner of"),
        (["--ab-env-a", "NOVALUE"], "--ab-env-a: KEY=VALUE, not 'NOVALUE'"),
        (["--ab-env-b=K=V", "--measure", "instructions"], "not in an A/B session"),
    ],
)
def test_a_bad_value_is_a_usage_error_of_one_line(
    tmp_path: Path, args: list[str], said: str
) -> None:
    python = tmp_path / "python"
    python.write_text(FAILING_RUNNER.format(python=sys.executable))
    python.chmod(0o755)
    argv = [arg.format(tmp=tmp_path) for arg in args]
    done = pytest_session("benchmarks/test_cpu.py", *argv, "--collect-only")
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert said in lines[0]
