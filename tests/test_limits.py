"""OS limits are read, never probed: a count that would come near one is refused by name."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from workloads import limits

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20

# name -> (limit value, in use, the unit a refusal prints)
THREAD_LIMITS = {
    "kernel.threads-max": (1_000, 900, "threads"),
    "kernel.pid_max": (1_000, 900, "threads"),
    "RLIMIT_NPROC": (1_000, 900, "threads"),
    "cgroup pids.max": (1_000, 900, "threads"),
    "vm.max_map_count": (1_000, 900, "mappings"),
    "RLIMIT_AS": (2_000 * MIB, 1_900 * MIB, "MiB"),
    "CommitLimit": (2_000 * MIB, 1_900 * MIB, "MiB"),
    "MemAvailable": (6 * MIB, 0, "MiB"),
    "cgroup memory limit": (2_000 * MIB, 1_999 * MIB, "MiB"),
}


def roomy() -> dict[str, tuple[int, int] | None]:
    """Facts with every limit far away."""
    return {name: (2**50, 0) for name in [*THREAD_LIMITS, "RLIMIT_NOFILE", "fs.file-max"]}


@pytest.mark.parametrize("name", THREAD_LIMITS)
def test_each_thread_limit_refuses_by_name_and_value(name: str) -> None:
    value, in_use, unit = THREAD_LIMITS[name]
    facts = roomy()
    facts[name] = (value, in_use)
    refusal = limits.thread_refusal(100, facts)
    assert refusal is not None
    assert refusal.limit == name
    text = str(refusal)
    assert text.startswith(f"{name} = ")
    shown = f"{value // MIB:,} MiB" if unit == "MiB" else f"{value:,}"
    assert shown in text, text
    assert limits.thread_refusal(1, roomy()) is None


def test_unknown_limits_are_not_checked() -> None:
    assert limits.thread_refusal(10**6, dict.fromkeys(THREAD_LIMITS)) is None


def test_headroom_is_kept() -> None:
    facts = roomy()
    facts["kernel.pid_max"] = (10_000, 0)
    # 10 % of the limit stays free for the rest of the machine.
    assert limits.thread_refusal(8_900, facts) is None
    assert limits.thread_refusal(9_100, facts) is not None


def test_descriptor_and_memory_refusals() -> None:
    facts = roomy()
    facts["RLIMIT_NOFILE"] = (64, 20)
    refusal = limits.descriptor_refusal(50, facts)
    assert refusal is not None
    assert str(refusal).startswith("RLIMIT_NOFILE = 64: 50 more descriptors on top of 20 in use")
    assert limits.descriptor_refusal(5, facts) is None
    facts["MemAvailable"] = (1000 * MIB, 0)
    refusal = limits.memory_refusal(950 * MIB, facts)
    assert refusal is not None
    assert refusal.limit == "MemAvailable"
    assert limits.memory_refusal(10 * MIB, facts) is None


def test_this_machine_has_room_for_a_few_threads() -> None:
    facts = limits.read_facts()
    assert facts["kernel.pid_max"] is not None, "Linux exposes pid_max"
    assert limits.thread_refusal(10) is None
    assert limits.stack_bytes() > 0


def run_python(code: str, **rlimits: int) -> subprocess.CompletedProcess[str]:
    def lower() -> None:
        for name, value in rlimits.items():
            kind = getattr(resource, name)
            resource.setrlimit(kind, (value, resource.getrlimit(kind)[1]))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lower,
        check=False,
    )


@pytest.mark.slow
def test_rlimit_as_binds_root_and_is_named() -> None:
    # Root is exempt from RLIMIT_NPROC, never from RLIMIT_AS: a real limit, lowered in a
    # child only.
    code = "from workloads import limits; print(limits.thread_refusal(1000))"
    result = run_python(code, RLIMIT_AS=3 * 2**30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("RLIMIT_AS = 3,072 MiB: "), result.stdout
    assert run_python(code).stdout.strip() == "None"


@pytest.mark.slow
def test_rlimit_nofile_binds_root_and_is_named() -> None:
    code = "from workloads import limits; print(limits.descriptor_refusal(100))"
    result = run_python(code, RLIMIT_NOFILE=64)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("RLIMIT_NOFILE = 64: 100 more descriptors"), result.stdout


def test_cgroup_limits_are_read_from_this_process_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("8:pids:/job\n0::/\n")
    group = tmp_path / "cgroup" / "pids" / "job"
    group.mkdir(parents=True)
    (group / "pids.max").write_text("500\n")
    (group / "pids.current").write_text("480\n")
    monkeypatch.setattr(limits, "PROC", proc)
    monkeypatch.setattr(limits, "CGROUP", tmp_path / "cgroup")
    facts = limits.read_facts()
    assert facts["cgroup pids.max"] == (500, 480)
    refusal = limits.thread_refusal(10, facts)
    assert refusal is not None
    assert str(refusal).startswith("cgroup pids.max = 500: 10 more")


def test_rlimit_nproc_is_not_checked_for_root() -> None:
    facts = limits.read_facts()
    if os.geteuid() == 0:
        assert facts["RLIMIT_NPROC"] is None, "the kernel exempts root"
