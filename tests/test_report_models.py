"""What the reports know of each model comes from the model's own declarations.

``workloads.models.report_facts()`` is saved with every run; the reports read a model's
place, colour, single- or multi-process side and libraries from there, so a plugin's
model needs no edit anywhere to appear in every chart, sentence and table.
"""

from __future__ import annotations

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
