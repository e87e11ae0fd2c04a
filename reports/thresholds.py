"""``python -m reports thresholds --kind KIND RUN RUN ...``: the one way thresholds are made.

Reads runs of unchanged code (run numbers under PATHS, run files, or folders: every run
in them), measures the noise between every pair per group family, and writes
``thresholds/<kind>.json`` (or ``--out``) whole, with its provenance.  Exit 0 when
written; 2 on bad input (one line, nothing written, the old store kept).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _calibrate, _store
from ._check_runs import calibration_runs
from ._compare import InputError
from .check import OneLineParser, _margin

PROG = "python -m reports thresholds"
EXIT_OK, EXIT_BAD_INPUT = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("calibrate", nargs="+", metavar="RUN", help="runs of unchanged code")
    parser.add_argument(
        "--kind", choices=_store.KINDS, required=True, help="what the runs measured"
    )
    parser.add_argument(
        "--paths", nargs="*", default=[], metavar="PATH", help="where run numbers are looked up"
    )
    parser.add_argument(
        "--margin",
        type=_margin,
        default=_calibrate.DEFAULT_MARGIN,
        metavar="M",
        help="threshold = M x the 95th percentile of the noise"
        f" (default {_calibrate.DEFAULT_MARGIN})",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: thresholds/KIND.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    out = args.out or _store.store_path(args.kind)
    try:
        runs = calibration_runs(args)
        content = _store.build(runs, args.kind, args.margin, f"{PROG} {shlex.join(argv)}")
        _store.write(content, out)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"{PROG}: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for family, entry in sorted(content["families"].items()):
        print(f"{family:<28} noise p95 {entry['p95']:.3%}  largest {entry['largest']:.3%}"
              f"  -> threshold {entry['threshold']:.1%}")  # fmt: skip
    print(f"{PROG}: wrote {out} from {len(runs)} runs")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
