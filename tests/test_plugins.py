"""Third-party models through the entry-point group ``boundbench.models``.

Each test installs a plugin the way pip would make it visible (a ``*.dist-info``
directory with ``entry_points.txt`` on the path) in a temporary directory, and runs the
suite in a subprocess: no project file is touched.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests._procs import TAG_ENV, wait_gone
from tests.test_suite import ROOT, count_of, run_pytest

TOY_MODEL = '''
"""A test-only model: runs the sync flavour in reverse task order."""
from workloads.models import Model


class ReverseModel(Model):
    name = "reverse"
    flavour = "sync"

    @classmethod
    def worker_counts(cls, bound, tasks):
        return [1]

    def run(self, workload, params, tasks):
        fn = workload.task("sync", **params)
        done = {task_id: fn(task_id) for task_id in reversed(range(tasks))}
        return [done[task_id] for task_id in range(tasks)]
'''


def install_plugin(where: Path, dist: str, group: str, entries: dict[str, str]) -> Path:
    """Make ``entries`` visible in ``group`` to importlib.metadata from ``where``."""
    info = where / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"[{group}]", *(f"{name} = {ref}" for name, ref in entries.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return where


def plugin_env(*paths: Path) -> dict[str, str]:
    return {"PYTHONPATH": ":".join(str(p) for p in paths)}


QUICK_CPU = ["benchmarks/test_cpu.py", "--profile", "quick", "--benchmark-disable", "-q"]


@pytest.mark.slow
def test_a_plugin_model_runs_with_models_like_a_builtin_one(tmp_path: Path) -> None:
    (tmp_path / "toy_plugin.py").write_text(TOY_MODEL)
    install_plugin(
        tmp_path, "toy_plugin", "boundbench.models", {"reverse": "toy_plugin:ReverseModel"}
    )
    result = run_pytest(*QUICK_CPU, "--models", "serial,reverse", env=plugin_env(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "boundbench: plugin models: reverse" in result.stdout
    # both CPU workloads, both models: the plugin's cells ran and were verified
    assert count_of("passed", result.stdout.splitlines()[-1]) == 4
    collected = run_pytest(
        "benchmarks/", "--models", "reverse", "--collect-only", "-q", env=plugin_env(tmp_path)
    )
    assert "test_cpu_loop[reverse-2-1]" in collected.stdout
    assert "test_io_sleep[reverse-10-1]" in collected.stdout


BROKEN = {
    "exploding": ("exploding_plugin:Model", "raise RuntimeError('boom at import')\n"),
    "notamodel": ("notamodel_plugin:Thing", "class Thing:\n    pass\n"),
    "misnamed": (
        "misnamed_plugin:Other",
        "from workloads.models import SerialModel\n\n"
        "class Other(SerialModel):\n    name = 'other'\n",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("plugin", sorted(BROKEN))
def test_a_broken_plugin_is_reported_by_name_and_skipped(tmp_path: Path, plugin: str) -> None:
    ref, source = BROKEN[plugin]
    (tmp_path / f"{ref.partition(':')[0]}.py").write_text(source)
    install_plugin(tmp_path, f"{plugin}_dist", "boundbench.models", {plugin: ref})
    env = plugin_env(tmp_path)
    result = run_pytest(*QUICK_CPU, "--models", "serial", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"plugin model {plugin!r}" in result.stdout
    assert "skipped" in result.stdout
    # Asking for it by name is a usage error that says why, never a traceback.
    asked = run_pytest(*QUICK_CPU, "--models", plugin, env=env)
    assert asked.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"plugin model {plugin!r}" in asked.stderr
    assert "Traceback" not in asked.stderr


@pytest.mark.slow
def test_the_example_loky_plugin_runs_and_leaves_no_process(tmp_path: Path) -> None:
    pytest.importorskip("loky", reason="the example plugin needs loky: pip install loky")
    install_plugin(
        tmp_path, "boundbench_loky", "boundbench.models", {"loky": "boundbench_loky:LokyModel"}
    )
    tag = uuid.uuid4().hex
    env = {**plugin_env(tmp_path, ROOT / "examples" / "loky_model"), TAG_ENV: tag}
    result = run_pytest(
        "benchmarks/test_cpu.py",
        "benchmarks/test_startup.py",
        "--models",
        "serial,loky",
        "--profile",
        "quick",
        "-q",
        "--benchmark-storage=file://" + str(tmp_path / "storage"),
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_startup[loky]" in result.stdout
    assert count_of("passed", result.stdout.splitlines()[-1]) == 5
    assert wait_gone(tag) == [], "loky workers outlived the session"


def test_the_readme_add_a_model_section_matches_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Add a model", 1)[1].split("\n## ", 1)[0]
    assert len(section.splitlines()) <= 60, "the section is at most a page"
    for fact in ("boundbench.models", "worker_choices", "startup_variants", "requires", "settings"):
        assert fact in section, fact
