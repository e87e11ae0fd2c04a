"""One colour per model and server style, the same in every chart, report and machine."""

from __future__ import annotations

import colorsys
import hashlib
import math
from collections.abc import Iterable, Sequence

# Colours of the models and server styles known today (models first, then network
# server styles).  Network styles named after a model share its colour on purpose.  Any
# other name gets a colour derived from the name itself (``colour_for``): a plugin model
# needs no entry here.
PALETTE = {
    "serial": "#4d4d4d",
    "generator": "#8c564b",
    "threads": "#1f77b4",
    "processes": "#d62728",
    "gevent": "#2ca02c",
    "asyncio": "#9467bd",
    "uvloop": "#e377c2",
    "interpreters": "#17becf",
    "dask": "#bcbd22",
    "asyncio_processes": "#7b4173",
    # Network server styles: a family shares a hue (asyncio's, threads'), no two alike.
    "threaded": "#aec7e8",
    "asyncio_protocol": "#c5b0d5",
    "nonblocking": "#7f7f7f",
    "select": "#ff7f0e",
    "selectors": "#ffbb78",
}


def _rgb(colour: str) -> tuple[float, float, float]:
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    """A cheap perceptual RGB distance ("redmean"): green and blue weigh as the eye does."""
    red = (a[0] + b[0]) / 2
    dr, dg, db = (a[i] - b[i] for i in range(3))
    return math.sqrt((2 + red) * dr * dr + 4 * dg * dg + (3 - red) * db * db)


def _derived_colours() -> tuple[str, ...]:
    """Colours for names not in PALETTE: 24 hues at three lightnesses, minus those close
    to a PALETTE colour (so a plugin never looks like a built-in model)."""
    known = [_rgb(colour) for colour in PALETTE.values()]
    found = []
    for lightness, offset in ((0.35, 0.0), (0.5, 0.5), (0.65, 0.0)):
        for step in range(24):
            rgb = colorsys.hls_to_rgb((step + offset) / 24, lightness, 0.7)
            if min(_distance(rgb, colour) for colour in known) >= MIN_COLOUR_DISTANCE:
                found.append("#" + "".join(f"{round(c * 255):02x}" for c in rgb))
    return tuple(found)


MIN_COLOUR_DISTANCE = 0.25
DERIVED_COLOURS = _derived_colours()


def _slot(name: str) -> int:
    # blake2b, not hash(): str hashes are salted per process, a colour must not be.
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % len(DERIVED_COLOURS)


def colour_for(name: str) -> str:
    """A model's or server style's colour: PALETTE's, else one derived from the name.

    The same name gets the same colour in every report, process and machine.
    """
    return PALETTE.get(name) or DERIVED_COLOURS[_slot(name)]


def make_palette(names: Iterable[str]) -> dict[str, str]:
    """Every name's colour for one report.

    Two names outside PALETTE whose derived colours coincide would be indistinct in
    the same chart: the later one (alphabetically) takes the next free derived colour.
    """
    palette = dict(PALETTE)
    taken = set(palette.values())
    for name in sorted({str(n) for n in names} - set(palette)):
        slot = _slot(name)
        for step in range(len(DERIVED_COLOURS)):
            colour = DERIVED_COLOURS[(slot + step) % len(DERIVED_COLOURS)]
            if colour not in taken:
                break
        palette[name] = colour
        taken.add(colour)
    return palette
