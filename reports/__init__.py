"""boundbench reports: saved pytest-benchmark runs -> tidy frame, charts, page, verdict.

``python -m reports [PATHS...] --out DIR`` writes the report; ``python -m reports check``
compares runs.  The names below are the public face; the rest lives in private modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._frame import build_frame
from ._runs import Run, RunError, load_runs


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reports`` (the report, not ``check``); imports matplotlib only when run."""
    from .report import main as report_main

    return report_main(argv)


__all__ = ["Run", "RunError", "build_frame", "load_runs", "main"]
