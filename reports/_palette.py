"""One colour per model and server style, the same in every chart, report and machine.

A model's colour comes from the seed it declares (``Model.colour_seed``, saved with each
run; ``reports._models``): seeds 0-9 are the ten base colours below, which the built-in
models hold one each; any other seed, or a model that declares none, gets a colour
derived from the seed or the name, away from every base colour.  A plugin model needs
no entry here.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from collections.abc import Iterable, Sequence

import pandas as pd

from ._models import colour_seeds, ordered_models

# The base colours, by seed.
BASE_COLOURS = (
    "#4d4d4d",
    "#8c564b",
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7b4173",
)
# Network server styles that are not models (those named after a model, such as
# ``threads`` or ``asyncio``, share its colour on purpose): a family shares a hue
# (asyncio's, threads'), no two alike.
STYLE_COLOURS = {
    "threaded": "#aec7e8",
    "asyncio_protocol": "#c5b0d5",
    "nonblocking": "#7f7f7f",
    "select": "#ff7f0e",
    "selectors": "#ffbb78",
}
RESERVED = (*BASE_COLOURS, *STYLE_COLOURS.values())


def _rgb(colour: str) -> tuple[float, float, float]:
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    """A cheap perceptual RGB distance ("redmean"): green and blue weigh as the eye does."""
    red = (a[0] + b[0]) / 2
    dr, dg, db = (a[i] - b[i] for i in range(3))
    return math.sqrt((2 + red) * dr * dr + 4 * dg * dg + (3 - red) * db * db)


def _derived_colours() -> tuple[str, ...]:
    """Colours for every other name: 24 hues at three lightnesses, minus those close to a
    base or style colour (so a plugin never looks like a built-in model)."""
    known = [_rgb(colour) for colour in RESERVED]
    found = []
    for lightness, offset in ((0.35, 0.0), (0.5, 0.5), (0.65, 0.0)):
        for step in range(24):
            rgb = colorsys.hls_to_rgb((step + offset) / 24, lightness, 0.7)
            if min(_distance(rgb, colour) for colour in known) >= MIN_COLOUR_DISTANCE:
                found.append("#" + "".join(f"{round(c * 255):02x}" for c in rgb))
    return tuple(found)


MIN_COLOUR_DISTANCE = 0.25
DERIVED_COLOURS = _derived_colours()


def _slot(name: str, seed: int | None = None) -> int:
    if seed is not None:
        return seed % len(DERIVED_COLOURS)
    # blake2b, not hash(): str hashes are salted per process, a colour must not be.
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % len(DERIVED_COLOURS)


def _base(seed: int | None) -> str | None:
    return BASE_COLOURS[seed] if seed is not None and 0 <= seed < len(BASE_COLOURS) else None


def colour_for(name: str, seed: int | None = None) -> str:
    """A name's colour: its seed's base colour, a server style's, else one derived from
    the seed or the name.  The same name and seed get the same colour everywhere."""
    return _base(seed) or STYLE_COLOURS.get(name) or DERIVED_COLOURS[_slot(name, seed)]


def make_palette(rows: pd.DataFrame | Iterable[str]) -> dict[str, str]:
    """Every model's (and server style's) colour for one report.

    ``rows``: the frame (each model's seed from its latest run) or bare names (the
    registered models' seeds).  Two names whose colours would coincide are told apart:
    base colours go to the models in chart order, then the styles', then every other
    name (alphabetically) takes its derived colour or the next free one.
    """
    seeds = colour_seeds(rows)
    palette: dict[str, str] = {}
    taken = set(RESERVED)
    based = [name for name in ordered_models(rows) if _base(seeds[name])]
    for name in based:
        colour = _base(seeds[name])
        if colour is not None and colour not in palette.values():
            palette[name] = colour
    for name in sorted(set(seeds) - set(palette)):
        if name in STYLE_COLOURS and STYLE_COLOURS[name] not in palette.values():
            palette[name] = STYLE_COLOURS[name]
    for name in sorted(set(seeds) - set(palette)):
        slot = _slot(name, seeds[name])
        for step in range(len(DERIVED_COLOURS)):
            derived = DERIVED_COLOURS[(slot + step) % len(DERIVED_COLOURS)]
            if derived not in taken:
                break
        palette[name] = derived
        taken.add(derived)
    return palette
