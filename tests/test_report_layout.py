"""Charts a person can read: every label, legend entry and annotation has room of its own.

Every chart is drawn from fixture runs with the longest parameter strings, task counts,
model names and server styles the suite makes (``tests._report_fixtures.longest_cells``),
then laid out as saved; matplotlib reports each text's box on the canvas
(``get_window_extent`` with the renderer), and no two may overlap.  Each chart also fits
the page's width (the report page shows them at most 1136 px wide), so it is shown at the
size it was drawn, not shrunk.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from reports import _registry
from reports._draw import DPI, keep_figures
from reports.report import main
from tests._report_fixtures import longest_cells, run_document, write

# index.html: body max-width 1200 px less 2 x 2 rem of padding.
PAGE_WIDTH_PX = 1136
# Boxes may touch; overlapping by more than a pixel each way is a collision.
SLACK_PX = 1.0


def longest_runs(root: Path) -> Path:
    """Two runs of one interpreter (the trend), one of a free-threaded build (the
    environments), a count run (the costs) and an A/B session (its chart), each with
    every kind of cell at its longest."""
    for name, seed, python, free, when in (
        ("0001_a", 1, "3.11.7", False, "2025-04-01T00:00:00+00:00"),
        ("0002_b", 2, "3.11.7", False, "2025-04-02T00:00:00+00:00"),
        ("0001_t", 3, "3.13.1", True, "2025-04-02T01:00:00+00:00"),
    ):
        document = run_document(longest_cells(seed, gil=not free), node="bench-runner-a",
                                when=when, commit="a" * 40, python=python, free=free,
                                gil=not free)  # fmt: skip
        write(root / python / f"{name}.json", document)
    # and a count run (its cost chart): the same cells, instructions where times were
    counted = run_document(longest_cells(4, gil=True), node="bench-runner-a",
                           when="2025-04-03T00:00:00+00:00", commit="a" * 40,
                           python="3.11.7", free=False, gil=True)  # fmt: skip
    counted["machine_info"]["boundbench"]["measure"] = {"kind": "instructions"}
    for bench in counted["benchmarks"]:
        stats = bench["stats"]
        for key, value in list(stats.items()):
            if isinstance(value, float) and key not in ("ops", "outliers"):
                stats[key] = value * 1e9
        if isinstance(stats.get("data"), list):
            stats["data"] = [value * 1e9 for value in stats["data"]]
    write(root / "3.11.7" / "0003_c.json", counted)
    # and an A/B session (its chart): the same cells, side A's rounds a little slower,
    # the sides named at their longest
    session = run_document(longest_cells(5, gil=True), node="bench-runner-a",
                           when="2025-04-04T00:00:00+00:00", commit="a" * 40,
                           python="3.11.7", free=False, gil=True)  # fmt: skip
    sides = {
        name: {"label": f"{tag} {'0123456789abcdef'[:7]} python 3.13.1 (/opt/python/3.13.1t/"
               "bin/python3) PYTHONMALLOC=malloc", "tree": f"/work/{tag}", "env": {}}
        for name, tag in (("a", "base"), ("b", "head"))
    }  # fmt: skip
    session["machine_info"]["boundbench"]["measure"] = {"kind": "ab", **sides}
    for i, bench in enumerate(session["benchmarks"]):
        b = bench["stats"].get("data") or [bench["stats"]["median"]] * 7
        factor = 1.0 + 0.3 * ((i % 7) - 3) / 3  # from 0.7 to 1.3: flagged both ways
        bench["extra_info"]["ab"] = {"a": [v * factor for v in b], "b": list(b)}
    write(root / "3.11.7" / "0004_ab.json", session)
    return root


def text_boxes(fig: Figure) -> list[tuple[str, Bbox]]:
    """Every drawn, non-empty text of ``fig`` and its box on the canvas, as laid out."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    hidden: set[int] = set()
    for ax in fig.axes:
        if not ax.get_visible():
            hidden.update(id(text) for text in ax.findobj(Text))
            continue
        for axis, view in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(view)
            slack = (high - low) * 1e-9
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                loc = tick.get_loc()
                if loc is None or not low - slack <= loc <= high + slack:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [
        (text.get_text(), text.get_window_extent(renderer))
        for text in fig.findobj(Text)
        if id(text) not in hidden and text.get_visible() and text.get_text().strip()
    ]


def collisions(fig: Figure) -> list[str]:
    found = []
    for (a, box_a), (b, box_b) in itertools.combinations(text_boxes(fig), 2):
        wide = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        high = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if wide > SLACK_PX and high > SLACK_PX:
            found.append(f"{a!r} overlaps {b!r}")
    return found


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Figure, Path]]:
    root = tmp_path_factory.mktemp("layout")
    src = longest_runs(root / "in")
    out = root / "out"
    with keep_figures() as kept:
        assert main([str(src), "--out", str(out), "-q"]) == 0
    return {name: (fig, out / f"{name}.png") for name, fig in kept}


@pytest.mark.slow
def test_every_chart_is_drawn_from_the_longest_runs(drawn: dict[str, object]) -> None:
    assert set(drawn) == set(_registry.CHART_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", _registry.CHART_NAMES)
def test_no_two_text_boxes_overlap(drawn: dict[str, tuple[Figure, Path]], name: str) -> None:
    fig, _png = drawn[name]
    assert collisions(fig) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", _registry.CHART_NAMES)
def test_the_chart_fits_the_page_at_the_size_it_was_drawn(
    drawn: dict[str, tuple[Figure, Path]], name: str
) -> None:
    _fig, png = drawn[name]
    width = int.from_bytes(png.read_bytes()[16:20], "big")  # the PNG header's IHDR width
    assert width <= PAGE_WIDTH_PX, f"{name}.png is {width} px wide at {DPI} dpi"


@pytest.mark.slow
def test_labels_say_what_differs_and_the_caption_what_is_shared(
    drawn: dict[str, tuple[Figure, Path]],
) -> None:
    fig, png = drawn["headline"]
    labels = {t.get_text() for ax in fig.axes for t in ax.get_xticklabels()}
    assert {"io_socket\nfresh\n500 tasks", "io_socket\nkeep\n500 tasks"} <= labels
    assert "cpu_loop\n8 tasks" in labels
    page = (png.parent / "index.html").read_text(encoding="utf-8")
    caption = page.split('<figure id="headline">')[1].split("</figcaption>")[0]
    assert "Parameters: cpu_loop n=5000000 yield_every=1000;" in caption
    assert "io_socket delay=0.005 k=5 size=1024" in caption
    assert "connect=" not in caption


def test_the_collision_check_sees_an_overlap_and_nothing_else() -> None:
    """The quick, in-process half: the check itself on a small figure.  Two labels drawn
    on top of each other collide; one far from them, an empty one and a tick label
    outside the axis's view are not counted."""
    fig = Figure(figsize=(4, 3), dpi=DPI)
    ax = fig.add_subplot()
    ax.set_xticks([0, 5, 10, 20])
    ax.set_xlim(0, 10)  # 20: outside the view, never drawn
    ax.text(1, 0.5, "first label")
    ax.text(1.2, 0.5, "second label")
    ax.text(8, 0.9, "far away")
    ax.text(8, 0.1, "   ")
    assert collisions(fig) == ["'first label' overlaps 'second label'"]
    texts = [text for text, _box in text_boxes(fig)]
    assert "far away" in texts
    assert "20" not in texts
    assert "   " not in texts
