"""The interpreters model: subinterpreters with their own GIL return serial's results,
start every worker, fail clearly, and skip with a reason where they cannot run.

Most tests need Python 3.12+ (3.13 here: ``nox -s tests`` runs them on every Python
found); on 3.11 they skip with the model's reason and only the pure parts run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workloads import WORKLOADS, get_workload
from workloads.models import ModelError, ModelTimeout, get_model
from workloads.models import _interp_pool as pool_mod
from workloads.models.interpreters import HANGS, InterpretersModel

REASON = InterpretersModel.unavailable()
needs_subinterpreters = pytest.mark.skipif(REASON is not None, reason=str(REASON))
SMALL: dict[str, dict[str, Any]] = {
    "cpu_loop": {"n": 20_000, "yield_every": 100},
    "cpu_native": {"size": 1 << 16, "rounds": 4},
    "io_sleep": {"k": 2, "d": 0.002},
    "mixed": {"cpu_share": 0.5, "task_s": 0.1, "steps": 2, "cpu_iters": 20_000},
}
# The pools this interpreter can use: the executor where it exists, and always our own.
BACKENDS = ["_interpreters" if sys.version_info >= (3, 13) else "_xxsubinterpreters"]
if sys.version_info >= (3, 12) and pool_mod.pool_backend() not in BACKENDS:
    BACKENDS.insert(0, pool_mod.pool_backend())


@contextlib.contextmanager
def started(workers: int, **options: Any) -> Iterator[InterpretersModel]:
    model = InterpretersModel(workers=workers, **options).start()
    try:
        yield model
    finally:
        model.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    monkeypatch.setattr(pool_mod, "pool_backend", lambda: name)
    return name


# -- everywhere ------------------------------------------------------------------------


def test_the_module_imports_and_says_why_on_old_pythons() -> None:
    # The registry imports this on every Python, without the optional backport.
    importlib.import_module("workloads.models.interpreters")
    reason = pool_mod.unavailable_reason((3, 11, 7))
    assert reason is not None
    assert "need Python 3.12+" in reason
    assert "3.11.7" in reason
    assert pool_mod.unavailable_reason((3, 13, 0)) is None


def test_the_model_face() -> None:
    assert InterpretersModel.name == "interpreters"
    assert InterpretersModel.flavour == "sync"
    assert InterpretersModel.pooled
    assert InterpretersModel.startup_variants == ({},)
    assert InterpretersModel.worker_counts("io", 100) == sorted(
        InterpretersModel.worker_counts("io", 100)
    )
    assert 32 in InterpretersModel.worker_counts("io", 100)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="checks the refusal on Python < 3.12")
def test_old_pythons_refuse_with_the_reason() -> None:
    assert REASON is not None
    assert "need Python 3.12+" in REASON
    with pytest.raises(ModelError, match=r"need Python 3\.12"):
        InterpretersModel(workers=1).start()


def test_boot_source_sets_the_path_and_compiles() -> None:
    source = pool_mod.boot_source(["/a", "/b c"])
    compile(source, "<boot>", "exec")
    namespace: dict[str, Any] = {}
    saved = list(sys.path)
    try:
        exec(source, namespace)
        assert sys.path == ["/a", "/b c"]
    finally:
        sys.path[:] = saved


# -- where subinterpreters run -----------------------------------------------------------


@needs_subinterpreters
@pytest.mark.parametrize("workload", [name for name in SMALL if name in WORKLOADS])
def test_results_match_serial(backend: str, workload: str) -> None:
    spec = get_workload(workload)
    reason = InterpretersModel.unsupported(spec)
    if reason:
        pytest.skip(reason)
    expected = get_model("serial").run(spec, SMALL[workload], 5)
    with started(3) as model:
        assert model.info()["interpreter_pool"] == backend
        assert model.run(spec, SMALL[workload], 5) == expected
        assert model.run(spec, SMALL[workload], 1) == expected[:1]
        assert model.healthy


@needs_subinterpreters
def test_start_makes_every_worker_and_pids_are_this_process(backend: str) -> None:
    import os

    with started(4) as model:
        assert len(model.pool._threads) == 4
        assert all(thread.is_alive() for thread in model.pool._threads)
        assert model.pids() == [os.getpid()]
        before = model.cpu_seconds()
        model.run(get_workload("cpu_loop"), {"n": 300_000, "yield_every": 1000}, 2)
        assert model.cpu_seconds() > before
    assert model.pool is None


@needs_subinterpreters
def test_a_task_error_fails_the_cell_not_the_pool(backend: str) -> None:
    io = get_workload("io_sleep")
    with started(2) as model:
        with pytest.raises(ModelError, match=r"raised ValueError: .*below the 0\.001 s minimum"):
            model.run(io, {"k": 1, "d": 0.0}, 2)
        assert model.healthy
        assert model.run(io, {"k": 1, "d": 0.001}, 3) == [(0, 1), (1, 1), (2, 1)]


@needs_subinterpreters
def test_a_timeout_retires_the_pool_and_close_is_bounded(backend: str) -> None:
    model = InterpretersModel(workers=1, timeout=0.3).start()
    try:
        began = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"0\.3"):
            model.run(get_workload("io_sleep"), {"k": 1, "d": 2.0}, 1)
        assert time.monotonic() - began < 2.5
        assert not model.healthy
        with pytest.raises(ModelError):
            model.run(get_workload("io_sleep"), {"k": 1, "d": 0.001}, 1)
    finally:
        began = time.monotonic()
        model.close()
        assert time.monotonic() - began < 15


@needs_subinterpreters
def test_a_user_module_beside_the_suite_is_found(tmp_path: Path, backend: str) -> None:
    """Subinterpreters start with the default sys.path; the model hands them ours."""
    module = tmp_path / "bb_interp_user_mod.py"
    module.write_text("def double(task_id):\n    return task_id * 2\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import bb_interp_user_mod

        with started(2) as model:
            futures = [model.pool.submit(bb_interp_user_mod.double, i) for i in range(4)]
            assert [f.result(timeout=30) for f in futures] == [0, 2, 4, 6]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("bb_interp_user_mod", None)


@needs_subinterpreters
def test_a_module_that_refuses_subinterpreters_is_a_skip_reason(tmp_path: Path) -> None:
    # psutil's C module refuses to load in an isolated interpreter (an ImportError).
    problem = pool_mod.import_problem("psutil")
    assert problem is not None
    assert "does not import in a subinterpreter" in problem
    assert pool_mod.import_problem("workloads.cpu_loop") is None


@needs_subinterpreters
@pytest.mark.slow
def test_a_module_that_crashes_a_subinterpreter_is_caught_in_another_process() -> None:
    pytest.importorskip("gevent")
    # gevent's C modules abort the process inside an isolated interpreter here: the
    # probe runs in a separate process, so the suite lives on and says why.
    problem = pool_mod.import_problem("gevent")
    if problem is None:
        pytest.skip("gevent imports in a subinterpreter on this build")
    assert "gevent" in problem


@needs_subinterpreters
@pytest.mark.skipif(sys.version_info < (3, 13), reason="reads _interpreters.get_config (3.13+)")
def test_every_worker_has_its_own_gil(backend: str) -> None:
    _interpreters: Any = importlib.import_module("_interpreters")

    with started(3) as model:
        expr = "__import__('_interpreters').get_current()[0]"
        ids = {model.pool.submit(eval, expr).result(timeout=30) for _ in range(30)}
        gils = {_interpreters.get_config(interp).gil for interp in ids}
    assert _interpreters.get_main()[0] not in ids
    assert gils == {"own"}


@needs_subinterpreters
@pytest.mark.slow
def test_cpu_loop_runs_in_parallel() -> None:
    """4 tasks on 2 workers: one GIL each, so faster than serial (generous margin)."""
    from workloads.models import cpu_count

    if cpu_count() < 2:
        pytest.skip("needs 2 cores")
    load = os.getloadavg()[0]
    if load > 1.5 * cpu_count():
        pytest.skip(f"the host is busy (load {load:.1f}): no core is free for a second GIL")
    spec = get_workload("cpu_loop")
    params = {"n": 1_000_000, "yield_every": 1000}
    serial = get_model("serial")
    with started(2) as model:
        model.run(spec, params, 4)
        serial_s: list[float] = []
        pool_s: list[float] = []
        for _ in range(5):
            for runner, times in ((serial, serial_s), (model, pool_s)):
                began = time.perf_counter()
                runner.run(spec, params, 4)
                times.append(time.perf_counter() - began)
    assert min(serial_s) / min(pool_s) > 1.2, (serial_s, pool_s)


# -- the low-level pool alone ------------------------------------------------------------


@needs_subinterpreters
def test_the_low_level_pool_keeps_order_and_passes_errors() -> None:
    paths = [p for p in sys.path if isinstance(p, str)]
    pool = pool_mod.SubinterpreterPool(2, paths, start_timeout=60)
    try:
        futures = [pool.submit(divmod, 17, n) for n in (1, 2, 3, 0)]
        assert [f.result(timeout=30) for f in futures[:3]] == [(17, 0), (8, 1), (5, 2)]
        with pytest.raises(ZeroDivisionError):
            futures[3].result(timeout=30)
        # An unpicklable result comes back as an error, and the worker goes on.
        bad = pool.submit(eval, "(lambda: 1)")
        with pytest.raises(RuntimeError, match="not picklable"):
            bad.result(timeout=30)
        assert pool.submit(abs, -3).result(timeout=30) == 3
    finally:
        pool.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in pool._threads)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(abs, 1)


@needs_subinterpreters
def test_nothing_is_left_running_after_close() -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    with started(3) as model:
        model.run(get_workload("io_sleep"), {"k": 1, "d": 0.001}, 3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not extra:
            break
        time.sleep(0.05)
    assert extra == []


@needs_subinterpreters
def test_the_whole_workloads_package_imports_in_a_subinterpreter() -> None:
    """Every built-in workload can run here; a new one importing psutil or numpy would not."""
    assert pool_mod.import_problem("workloads") is None
    for spec in WORKLOADS.values():
        if spec.name in HANGS:  # left out for a hang, not an import problem
            assert "cannot run" in (InterpretersModel.unsupported(spec) or "")
            continue
        assert InterpretersModel.unsupported(spec) is None, spec.name


# A dask cluster and an interpreter pool alive in one process, as in the suite's CPU batch.
_BESIDE_DASK = """
from workloads import get_workload
from workloads.models.dask_model import DaskModel
from workloads.models.interpreters import InterpretersModel

if __name__ == "__main__":
    spec, params = get_workload("cpu_loop"), {"n": 1_000_000, "yield_every": 1000}
    with DaskModel(workers=2) as cluster, InterpretersModel(workers=2) as pool:
        expected = [spec.sync(i, **params) for i in range(4)]
        for _ in range(4):
            assert cluster.run(spec, params, 4) == expected
            assert pool.run(spec, params, 4) == expected
    print("ok")
"""


@needs_subinterpreters
@pytest.mark.slow
def test_subinterpreters_run_beside_a_dask_cluster(tmp_path: Path) -> None:
    """3.13.0 aborts when a dask scheduler runs in the process beside subinterpreters;
    the dask model keeps its scheduler in a process of its own.  Run in a child process,
    so that a crash fails this test instead of ending the session."""
    pytest.importorskip("distributed")
    import subprocess

    script = tmp_path / "beside_dask.py"
    script.write_text(_BESIDE_DASK)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
