"""What the reports know of each model comes from the model's own declarations.

``workloads.models.report_facts()`` is saved with every run; the reports read a model's
place, colour, single- or multi-process side and libraries from there, so a plugin's
model needs no edit anywhere to appear in every chart, sentence and table.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Text

from reports import _cells, _crossover, _models, _palette
from reports._draw import keep_figures
from reports._frame import build_frame
from reports._runs import load_runs
from reports.report import main
from tests._report_fixtures import (
    as_plugin,
    convoy_sweep,
    mixed_sweep,
    run_document,
    scale_sweep,
    synthetic_run,
    write,
)
from workloads.machine import LIBRARIES, libraries
from workloads.models import BUILTIN, MODELS, report_facts


def test_every_registered_model_declares_what_the_reports_need() -> None:
    facts = report_facts()
    assert list(facts) == list(MODELS)
    # The built-ins in the registry's order, each with a base colour of its own.
    assert [facts[cls.name]["order"] for cls in BUILTIN] == list(range(len(BUILTIN)))
    seeds = [facts[cls.name]["colour_seed"] for cls in BUILTIN]
    assert sorted(seeds) == list(range(len(BUILTIN)))
    sides = {name: fact["processes"] for name, fact in facts.items() if name in MODELS}
    assert {sides[cls.name] for cls in BUILTIN} == {"single", "multi"}
    assert sides["interpreters"] == "multi"  # one process, but a GIL per interpreter
    assert sides["threads"] == sides["asyncio"] == sides["uvloop"] == "single"
    assert facts["gevent"]["libraries"] == ["gevent", "greenlet"]


def test_the_recorded_libraries_are_the_suites_and_every_models() -> None:
    names = libraries()
    assert names[: len(LIBRARIES)] == LIBRARIES
    for cls in MODELS.values():
        assert set(cls.libraries) <= set(names), cls.name
    assert len(set(names)) == len(names)


# --- a plugin model, from its run's facts alone -------------------------------------

PLUGIN = "loky_pool"
# What a plugin class would declare: beside processes in charts, a colour of its own,
# a pool of processes (the crossover's "multi" side), a library that shapes its figures.
PLUGIN_FACTS = {"order": 3.5, "colour_seed": 40, "processes": "multi", "libraries": ["loky"]}
# The charts that show models (the convoy shows where CPU work runs, the echo charts
# server styles, the seed chart the tutorial's own models).
MODEL_CHARTS = {
    "headline",
    "efficiency",
    "crossover",
    "walltime",
    "cpu_wall",
    "scale",
    "trend",
    "environments",
    "startup",
}


def _with_plugin(benchmarks: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """The run plus a plugin pool a little faster than processes (and, in the scale
    sweep, a scheduler like uvloop)."""
    scale = [b for b in benchmarks if str(b["group"]).startswith("scale:")]
    rest = [b for b in benchmarks if b not in scale]
    return [
        *benchmarks,
        *as_plugin(rest, PLUGIN, like="processes", factor=factor),
        *as_plugin(scale, PLUGIN, like="uvloop", factor=1.02),
    ]


def plugin_runs(root: Path, *, facts: bool = True) -> Path:
    """Three runs that know a model this suite does not: two of one interpreter (the
    trend), one of another (the environments), the latest with every kind of cell."""
    models = {**report_facts(), PLUGIN: PLUGIN_FACTS} if facts else None
    rng = random.Random(5)
    latest = [*synthetic_run(seed=2), *mixed_sweep(rng), *scale_sweep(rng), *convoy_sweep(rng)]
    for name, benches, python, free, when in (
        ("0001_old", synthetic_run(seed=1), "3.11.7", False, "2025-03-01T00:00:00+00:00"),
        ("0002_new", latest, "3.11.7", False, "2025-03-02T00:00:00+00:00"),
        ("0001_ft", synthetic_run(seed=7, gil=False, net=False, extras=False), "3.13.1", True,
         "2025-03-02T01:00:00+00:00"),
    ):  # fmt: skip
        document = run_document(_with_plugin(benches, 0.9), node="n", when=when,
                                commit="e" * 40, python=python, free=free, gil=not free,
                                models=models)  # fmt: skip
        write(root / python / f"{name}.json", document)
    return root


def _texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.findobj(Text) if text.get_visible()]


def _colours(fig: Figure) -> set[str]:
    found: set[str] = set()
    for ax in fig.axes:
        for patch in ax.patches:
            found.add(to_hex(patch.get_facecolor()))
        for line in ax.lines:
            found.add(to_hex(line.get_color()))
        for collection in ax.collections:
            found.update(to_hex(c) for c in collection.get_facecolors())
            found.update(to_hex(c) for c in collection.get_edgecolors())
    return found


@pytest.mark.slow
def test_a_plugin_model_appears_in_every_chart_sentence_and_table(tmp_path: Path) -> None:
    src = plugin_runs(tmp_path / "in")
    out = tmp_path / "out"
    with keep_figures() as kept:
        assert main([str(src), "--out", str(out), "-q"]) == 0
    runs, _ = load_runs([src])
    frame = build_frame(runs)
    colour = _palette.make_palette(frame)[PLUGIN]
    assert colour == _palette.colour_for(PLUGIN, 40)
    assert colour not in _palette.RESERVED
    drawn = {name: fig for name, fig in kept}
    assert set(drawn) >= MODEL_CHARTS
    for name in MODEL_CHARTS:
        assert any(PLUGIN in text for text in _texts(drawn[name])), name
        assert colour in _colours(drawn[name]), name
    # Its declared place: right after processes, in the legends and the tables.
    assert _models.ordered_models(frame)[3:5] == ["processes", PLUGIN]
    # The crossover sentence takes it as a multi-process model: it leads at high shares.
    summary = (out / "summary.md").read_text(encoding="utf-8")
    crossover = next(line for line in summary.splitlines() if "CPU share grows" in line)
    assert f"{PLUGIN} from " in crossover
    assert "takes no side" not in crossover
    assert f"| {PLUGIN} |" in summary.split("### Which model is fastest")[1]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert PLUGIN in page.split('id="best-model"')[1]


def test_runs_without_model_facts_use_the_registered_models_and_name_a_stranger(
    tmp_path: Path,
) -> None:
    src = plugin_runs(tmp_path / "in", facts=False)
    runs, _ = load_runs([src])
    frame = build_frame(runs)
    # The built-ins from the registry here; the stranger after them, coloured by name.
    order = _models.ordered_models(frame)
    assert order[:4] == ["serial", "generator", "threads", "processes"]
    known = [name for name in order if name in MODELS]
    assert order[: len(known)] == known  # every registered model before any stranger
    assert PLUGIN in order[len(known) :]
    assert _palette.make_palette(frame)[PLUGIN] == _palette.colour_for(PLUGIN)
    points = _crossover.crossover_points(_cells.latest_sweep(frame, "crossover"))
    python = points[points["cpu_kind"] == "python"]
    clause = _crossover.crossover_clause(python)
    assert clause.endswith(f"({PLUGIN} takes no side: not declared single- or multi-process)")
    # A run's own facts win over the registry's.
    own = {**report_facts(), "threads": {**report_facts()["threads"], "order": 99}}
    benches = synthetic_run(seed=3, net=False, extras=False)
    when = "2025-03-03T00:00:00+00:00"
    document = run_document(benches, node="n", when=when, commit="f" * 40, models=own)
    runs, _ = load_runs([write(tmp_path / "own" / "0001_own.json", document)])
    assert _models.ordered_models(build_frame(runs))[-1] == "threads"
