"""Shifts: the median change of a family's cells, and of one model's against its family."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from reports._check_config import read_config, read_shift_config
from reports._compare import Row, Settings, shifts


def row(key: str, group: str, model: str, worse_by: float) -> Row:
    return Row(
        key=key,
        name=key,
        group=group,
        baseline=1.0,
        current=worse_by,
        change=worse_by - 1.0,
        worse_by=worse_by,
        min_effect=0.1,
        method="mann-whitney",
        fallback=None,
        p=None,
        rounds=(5, 5),
        verdict="ok",
        model=model,
    )


def noisy_family(
    rng: random.Random,
    family: str,
    models: list[str],
    noise: float,
    slow: dict[str, float],
    tasks_list: tuple[int, ...] = (1, 10, 100),
) -> list[Row]:
    rows = []
    for model in models:
        for tasks in tasks_list:
            factor = rng.uniform(1 - noise, 1 + noise) * slow.get(model, 1.0)
            rows.append(row(f"{family}[{model}-{tasks}]", f"{family}:{tasks}", model, factor))
    return rows


def by_label(found: list) -> dict[str, object]:
    return {shift.label: shift for shift in found}


def test_noise_alone_makes_no_shift_although_cells_move_by_a_fifth() -> None:
    rng = random.Random(4)
    models = ["select", "threaded", "uvloop", "asyncio"]
    rows = noisy_family(rng, "echo", models, 0.2, {}, tasks_list=tuple(range(1, 10)))
    found = shifts(rows, Settings(shift_effect=0.10))
    assert {s.label for s in found} == {"echo:*"} | {
        f"echo:* {m}" for m in ("select", "threaded", "uvloop", "asyncio")
    }
    assert all(s.verdict == "ok" for s in found), [(s.label, s.worse_by) for s in found]


def test_a_whole_workload_slower_is_a_family_shift_not_a_model_one() -> None:
    rng = random.Random(1)
    models = ["serial", "threads", "processes", "asyncio"]
    rows = noisy_family(rng, "cpu_loop", models, 0.05, {m: 1.15 for m in models})
    found = by_label(shifts(rows, Settings(shift_effect=0.05)))
    family = found["cpu_loop:*"]
    assert family.verdict == "regression"
    assert family.worse_by == pytest.approx(1.15, abs=0.04)
    assert len(family.keys) == 12
    assert all(found[f"cpu_loop:* {m}"].verdict == "ok" for m in models)


def test_one_model_slower_is_caught_against_its_family_and_names_its_cells() -> None:
    rng = random.Random(2)
    styles = ["select", "selectors", "threaded", "gevent", "uvloop"]
    rows = noisy_family(rng, "echo", styles, 0.15, {"select": 1.25})
    found = by_label(shifts(rows, Settings(shift_effect=0.10)))
    assert found["echo:*"].verdict == "ok"
    select = found["echo:* select"]
    assert select.verdict == "regression"
    assert set(select.keys) == {f"echo[select-{t}]" for t in (1, 10, 100)}
    assert [label for label, s in found.items() if s.verdict == "regression"] == ["echo:* select"]


def test_shift_effects_are_matched_by_pattern_models_first() -> None:
    settings = Settings(
        shift_effects=(("echo:* nonblocking", 0.3), ("echo:*", 0.2)), shift_effect=0.05
    )
    assert settings.shift_effect_for("echo:* nonblocking") == 0.3
    assert settings.shift_effect_for("echo:* select") == 0.2
    assert settings.shift_effect_for("cpu_loop:*") == 0.05


def test_too_few_cells_make_no_shift() -> None:
    rows = [row("a", "g:1", "m", 2.0), row("b", "g:2", "m", 2.0)]
    assert shifts(rows, Settings()) == []


def test_a_profile_has_its_own_thresholds(tmp_path: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(
        "[tool.boundbench.check]\nmin-effect = 0.1\n"
        '[tool.boundbench.check.min-effect-group]\n"cpu_loop:*" = 0.17\n'
        '[tool.boundbench.check.shift-effect-group]\n"cpu_loop:*" = 0.05\n'
        '[tool.boundbench.check.profile.quick.min-effect-group]\n"cpu_loop:*" = 0.4\n'
        '[tool.boundbench.check.profile.quick.shift-effect-group]\n"cpu_loop:*" = 0.12\n',
        encoding="utf-8",
    )
    assert read_config(config, "standard") == (0.1, [("cpu_loop:*", 0.17)])
    assert read_shift_config(config, "standard") == [("cpu_loop:*", 0.05)]
    assert read_config(config, "quick") == (None, [("cpu_loop:*", 0.4)])
    assert read_shift_config(config, "quick") == [("cpu_loop:*", 0.12)]
    assert read_config(config, None) == (0.1, [("cpu_loop:*", 0.17)])
