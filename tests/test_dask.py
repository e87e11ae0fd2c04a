"""The dask model: right results on a local and on a real external cluster, loopback only,
clear errors, and no scheduler, worker or nanny left behind (also after a failed cell,
a dead worker and Ctrl-C).

The external cluster is started here with the ``dask scheduler`` / ``dask worker``
commands (``python -m dask ...``), each in its own process group, and killed at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests._procs import TAG_ENV, as_from_a_terminal, describe, live_children, tagged, wait_gone
from workloads import get_workload
from workloads.models import ModelError, ModelTimeout, get_model
from workloads.models.dask_model import (
    INSTALL_HINT,
    DaskModel,
    check_scheduler_address,
    split_workers,
)

ROOT = Path(__file__).resolve().parent.parent
HAVE_DASK = DaskModel.unavailable() is None
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason=str(DaskModel.unavailable()))
CPU = get_workload("cpu_loop")
IO = get_workload("io_sleep")
SMALL_CPU = {"n": 20_000, "yield_every": 100}
# Every wait on the external cluster gives up after this many seconds.
CLUSTER_WAIT_S = 60.0


def serial(workload: Any, params: dict[str, Any], tasks: int) -> list[Any]:
    return get_model("serial").run(workload, params, tasks)


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, host, port) of every listening TCP socket of these processes."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(pid).net_connections("inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((pid, conn.laddr.ip, conn.laddr.port))
    return found


def new_children(before: set[int], timeout: float = 15.0) -> list[psutil.Process]:
    """Children started since ``before`` still alive after ``timeout`` (bounded wait).

    multiprocessing's resource tracker is left out: spawning workers starts it once per
    process, shared by every pool, and the session stops it.
    """

    def left() -> list[psutil.Process]:
        found = []
        for proc in live_children():
            if proc.pid in before:
                continue
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" not in " ".join(proc.cmdline()):
                    found.append(proc)
        return found

    deadline = time.monotonic() + timeout
    while (alive := left()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails the test if a process started during it is still alive afterwards."""
    before = {p.pid for p in live_children()}
    yield
    left = new_children(before)
    assert left == [], describe(left)


# -- pure helpers (no dask needed) -------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "cores", "split"),
    [
        (2, 2, (2, 1)),
        (1, 2, (1, 1)),
        (32, 2, (2, 16)),
        (10, 2, (2, 5)),
        (3, 2, (1, 3)),
        (4, 4, (4, 1)),
        (6, 4, (3, 2)),
    ],
)
def test_workers_split_into_processes_and_threads_exactly(
    workers: int, cores: int, split: tuple[int, int]
) -> None:
    processes, threads = split_workers(workers, cores)
    assert (processes, threads) == split
    assert processes * threads == workers


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "tcp://[::1]:8786", " tcp://h:1 "])
def test_scheduler_addresses_are_checked(address: str) -> None:
    assert check_scheduler_address(address) == address.strip()


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "http://x:1", "tcp://", ""])
def test_a_bad_scheduler_address_is_one_clear_line(address: str) -> None:
    with pytest.raises(ValueError, match="expected tcp://HOST:PORT") as info:
        DaskModel(dask_scheduler=address)
    assert "\n" not in str(info.value)


def test_missing_dask_is_a_reason_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def no_distributed(name: str, *args: Any) -> Any:
        return None if name == "distributed" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_distributed)
    reason = DaskModel.unavailable()
    assert reason is not None
    assert "distributed is not installed" in reason
    assert INSTALL_HINT in reason


def test_the_model_face() -> None:
    assert DaskModel.name == "dask"
    assert DaskModel.flavour == "sync"
    assert DaskModel.settings == ("dask_scheduler",)
    assert DaskModel.startup_variants == ({},)
    assert DaskModel.requires == ("distributed", INSTALL_HINT)
    assert DaskModel.worker_counts("io", 100) == [32]
    assert DaskModel.worker_counts("io", 10) == [10]
    # Construction is cheap and connects to nothing (the suite builds one per cell).
    model = DaskModel(dask_scheduler="tcp://127.0.0.1:1")
    assert not model.started


# -- a local cluster -----------------------------------------------------------------------


@pytest.mark.slow
@needs_dask
def test_a_local_cluster_matches_serial_and_listens_on_loopback_only(
    no_leftovers: None,
) -> None:
    with DaskModel(workers=2) as model:
        info = model.info()
        assert (info["dask_processes"], info["dask_threads"]) == (2, 1 * 2)
        assert info["dask_scheduler"] == "local"
        workers = model.child_pids()
        assert len(workers) == 2
        # This process (the client), two workers, the scheduler and the nannies' process.
        assert len(model.pids()) == 1 + 2 + 1 + 1
        assert model.run(CPU, SMALL_CPU, 5) == serial(CPU, SMALL_CPU, 5)
        assert model.run(IO, {"k": 2, "d": 0.002}, 7) == serial(IO, {"k": 2, "d": 0.002}, 7)
        # The workers' scratch space is in the cluster's own folder, removed on close
        # (dask's default is a shared /tmp/dask-scratch-space, which keeps lock files).
        folder = model._folder
        assert folder is not None
        assert model.client is not None
        scratch = model.client.run(lambda dask_worker: dask_worker.local_directory)
        assert len(scratch) == 2
        assert all(Path(path).is_relative_to(folder) for path in scratch.values()), scratch
        # Scheduler, its HTTP server, nannies and workers: all listen, on loopback only.
        others = [pid for pid in model.pids() if pid != os.getpid()]
        sockets = listening(others)
        assert {pid for pid, _, _ in sockets} == set(others)
        assert {host for _, host, _ in sockets} == {"127.0.0.1"}, sockets
        before = model.cpu_seconds()
        model.run(CPU, {"n": 300_000, "yield_every": 1000}, 2)
        assert model.cpu_seconds() > before
    assert not any(psutil.pid_exists(pid) for pid in others)
    assert not folder.exists()


@needs_dask
@pytest.mark.slow
def test_a_sigkilled_owner_leaves_no_cluster_behind(tmp_path: Path) -> None:
    """The cluster's processes watch their parent: even SIGKILL of the owner ends them."""
    script = tmp_path / "owner.py"
    script.write_text(_CTRL_C_SCRIPT)
    tag = f"dask-sigkill-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # A SIGKILLed owner cannot remove its cluster's log folder (nor multiprocessing's):
        # they go to this test's own temporary folder, not the machine's /tmp.
        env={**os.environ, TAG_ENV: tag, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert len(tagged(tag)) >= 5  # owner, scheduler, nannies' process, two workers
        proc.kill()
        proc.wait(10)
        left = wait_gone(tag, timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for straggler in tagged(tag):
            with contextlib.suppress(psutil.Error):
                straggler.kill()
    assert left == []


@needs_dask
@pytest.mark.slow
def test_two_models_in_one_process_do_not_slow_each_other(no_leftovers: None) -> None:
    """The suite keeps one model per pool size alive: each waits on its own client (with
    the default client's wait, the older model's runs took 1-4 s instead of ~40 ms)."""
    io = {"k": 2, "d": 0.005}
    with DaskModel(workers=2) as older, DaskModel(workers=4) as newer:
        for model, tasks in ((older, 4), (newer, 8), (older, 4)):
            times = []
            for _ in range(3):
                began = time.perf_counter()
                assert model.run(IO, io, tasks) == serial(IO, io, tasks)
                times.append(time.perf_counter() - began)
            assert min(times) < 0.5, (model.workers, times)


@pytest.mark.slow
@needs_dask
def test_a_task_error_fails_the_cell_not_the_cluster(no_leftovers: None) -> None:
    with DaskModel(workers=1) as model:
        with pytest.raises(ModelError, match=r"raised ValueError: .*below the 0\.001 s minimum"):
            model.run(IO, {"k": 1, "d": 0.0}, 1)
        assert model.healthy
        assert model.run(IO, {"k": 1, "d": 0.001}, 2) == [(0, 1), (1, 1)]


@pytest.mark.slow
@needs_dask
def test_a_timeout_retires_the_cluster_and_close_is_bounded(no_leftovers: None) -> None:
    model = DaskModel(workers=1, timeout=0.3).start()
    try:
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"0\.3"):
            model.run(IO, {"k": 1, "d": 5.0}, 1)
        assert time.monotonic() - started < 2.5
        assert not model.healthy
    finally:
        started = time.monotonic()
        model.close()
        assert time.monotonic() - started < 15


@pytest.mark.slow
@needs_dask
def test_a_killed_worker_fails_the_run_clearly(no_leftovers: None) -> None:
    model = DaskModel(workers=2).start()
    try:
        victim = model.child_pids()[0]
        future_kill = time.monotonic() + 0.3
        # Both workers are busy when one dies: its task fails instead of moving on.
        with pytest.raises(ModelError, match="died"), _kill_at(victim, future_kill):
            model.run(IO, {"k": 20, "d": 0.05}, 4)
        assert not model.healthy
        with pytest.raises(ModelError):
            model.run(IO, {"k": 1, "d": 0.001}, 1)
    finally:
        model.close()
    with DaskModel(workers=2) as fresh:
        assert fresh.run(IO, {"k": 1, "d": 0.001}, 2) == [(0, 1), (1, 1)]


@contextlib.contextmanager
def _kill_at(pid: int, when: float) -> Iterator[None]:
    import threading

    def kill() -> None:
        time.sleep(max(0.0, when - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(10)


# A user's script: a local cluster, a long cell, then Ctrl-C (SIGINT to the group).
_CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys
    from workloads import get_workload
    from workloads.models.dask_model import DaskModel

    if __name__ == "__main__":
        with DaskModel(workers=2) as model:
            print("ready", flush=True)
            model.run(get_workload("io_sleep"), {"k": 1, "d": 60.0}, 2)
    """
)


@needs_dask
@pytest.mark.slow
def test_ctrl_c_leaves_no_scheduler_worker_or_nanny(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(_CTRL_C_SCRIPT)
    tag = f"dask-ctrl-c-{uuid.uuid4().hex}"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, TAG_ENV: tag, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        workers = [p for p in tagged(tag) if p.pid != proc.pid]
        assert workers, "the local cluster's worker processes run"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert "KeyboardInterrupt" in err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert wait_gone(tag, timeout=15) == []
    # The cluster's log folder went with it.
    assert list(scratch.glob("boundbench-dask-*")) == []


# -- an external cluster started with the dask CLI ---------------------------------------


@dataclass
class Cluster:
    address: str
    procs: list[subprocess.Popen[bytes]]
    tag: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(argv: list[str], tag: str, log: Path) -> subprocess.Popen[bytes]:
    # Scratch space beside the log, in this test's folder (not /tmp/dask-scratch-space).
    env = {
        **os.environ,
        TAG_ENV: tag,
        "PYTHONPATH": str(ROOT),
        "DASK_TEMPORARY_DIRECTORY": str(log.parent),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two single-threaded workers (with nannies) on 127.0.0.1."""
    if not HAVE_DASK:
        pytest.skip(str(DaskModel.unavailable()))
    tmp = tmp_path_factory.mktemp("dask-cluster")
    tag = f"dask-cluster-{uuid.uuid4().hex}"
    info_file = tmp / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            _start(
                [
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--scheduler-file",
                    str(info_file),
                ],
                tag,
                tmp / "scheduler.log",
            )
        )
        deadline = time.monotonic() + CLUSTER_WAIT_S
        while not info_file.exists() or not info_file.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the dask scheduler did not start: {(tmp / 'scheduler.log').read_text()}"
                )
            time.sleep(0.1)
        address = json.loads(info_file.read_text())["address"]
        procs.append(
            _start(
                [
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--nanny",
                    "--no-dashboard",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--memory-limit",
                    "0",
                    "--death-timeout",
                    "30",
                ],
                tag,
                tmp / "worker.log",
            )
        )
        distributed: Any = importlib.import_module("distributed")
        with distributed.Client(address, timeout=CLUSTER_WAIT_S) as client:
            client.wait_for_workers(2, timeout=CLUSTER_WAIT_S)
        yield Cluster(address, procs, tag)
    finally:
        _stop(procs)
        left = wait_gone(tag, timeout=15)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        assert left == [], "the external cluster's processes outlived their fixture"


@pytest.mark.slow
@needs_dask
def test_an_external_cluster_runs_cells_and_stays_up(cluster: Cluster) -> None:
    for _ in range(2):  # a second model on the same cluster: the first left it working
        with DaskModel(dask_scheduler=cluster.address) as model:
            info = model.info()
            assert info["dask_scheduler"] == cluster.address
            assert (info["dask_processes"], info["dask_threads"]) == (2, 2)
            assert model.child_pids() == []  # not ours to kill
            assert model.run(CPU, SMALL_CPU, 6) == serial(CPU, SMALL_CPU, 6)
            assert model.run(IO, {"k": 1, "d": 0.002}, 4) == serial(IO, {"k": 1, "d": 0.002}, 4)
            # Its workers and scheduler are on this machine: their CPU is counted.
            assert len(model.pids()) == 1 + 2 + 1
            with pytest.raises(ModelError, match="raised ValueError"):
                model.run(IO, {"k": 1, "d": 0.0}, 1)
    assert all(proc.poll() is None for proc in cluster.procs)


@pytest.mark.slow
@needs_dask
def test_the_cli_cluster_listens_on_loopback_only(cluster: Cluster) -> None:
    procs = tagged(cluster.tag)
    # scheduler, the worker command (which runs the nannies) and its two worker processes
    assert len(procs) >= 4
    sockets = listening([proc.pid for proc in procs])
    assert sockets
    assert {host for _, host, _ in sockets} == {"127.0.0.1"}, sockets


@pytest.mark.slow
@needs_dask
def test_an_unreachable_scheduler_is_a_clear_error_within_10_s(no_leftovers: None) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    model = DaskModel(dask_scheduler=address)
    started = time.monotonic()
    with pytest.raises(ModelError, match="cannot reach the dask scheduler at") as info:
        model.start()
    assert time.monotonic() - started < 10
    assert address in str(info.value)
    assert not model.healthy
    model.close()


@needs_dask
@pytest.mark.slow
def test_per_task_overhead_is_plausible(cluster: Cluster, no_leftovers: None) -> None:
    """1000 no-op tasks: the distributed docs say about 1 ms a task; allow a busy host.

    On the module's cluster (two single-threaded workers, the shape DaskModel(workers=2)
    starts here): a task's path, from the model's client through the scheduler to a
    worker and back, is the same; a local cluster of its own cost 15 s to start and stop."""
    with DaskModel(dask_scheduler=cluster.address) as model:
        model.run(CPU, {"n": 1, "yield_every": 1}, 100)
        started = time.perf_counter()
        assert model.run(CPU, {"n": 1, "yield_every": 1}, 1000) == [(i, 0) for i in range(1000)]
        per_task = (time.perf_counter() - started) / 1000
    assert per_task < 0.05


# -- --dask-scheduler through the suite (every dask cell, one path) ---------------------


def bench_run(*args: str, tag: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, TAG_ENV: tag, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--profile", "quick", "--models", "serial,dask",
         "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@needs_dask
@pytest.mark.slow
def test_the_dask_scheduler_option_reaches_cpu_io_and_mixed_cells(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    tag = uuid.uuid4().hex
    done = bench_run(
        "benchmarks/test_cpu.py", "benchmarks/test_io.py", "benchmarks/test_mixed.py",
        "-k", "dask and (cpu_loop or io_sleep or python-1.0)", "--dask-scheduler",
        cluster.address, f"--benchmark-json={out}", tag=tag,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert wait_gone(tag) == []
    cells = json.loads(out.read_text())["benchmarks"]
    assert {c["extra_info"]["workload"] for c in cells} == {"cpu_loop", "io_sleep", "mixed"}
    for bench in cells:
        info = bench["extra_info"]
        assert info["model"] == "dask"
        assert info["dask_scheduler"] == cluster.address, bench["name"]
        # what the started model says: it ran on the external cluster's two workers
        assert info["model_info"]["dask_scheduler"] == cluster.address, bench["name"]
        assert info["model_info"]["dask_processes"] == 2
    assert all(proc.poll() is None for proc in cluster.procs), "the cluster stays up"


@needs_dask
@pytest.mark.slow
def test_a_closed_scheduler_port_fails_every_dask_cell_clearly_within_10_s() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    tag = uuid.uuid4().hex
    started = time.monotonic()
    done = bench_run("benchmarks/test_cpu.py", "-k", "cpu_loop", "--dask-scheduler", address,
                     "-rf", tag=tag)  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:]
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:]
    assert f"cannot reach the dask scheduler at {address}" in done.stdout
    assert "Traceback" not in done.stdout
    # one cell's start gives up within 10 s; the session's start-up and serial's rounds
    assert took < 60, took
    assert wait_gone(tag) == []
