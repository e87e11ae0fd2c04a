"""``python -m reports``: saved runs -> charts, page, tables; ``check``; ``ab`` (the
verdict of an A/B session); ``history``; ``thresholds`` (the stored thresholds, made from
runs of unchanged code)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check":
        from .check import main as check_main

        return check_main(args[1:])
    if args and args[0] == "ab":
        from .ab import main as ab_main

        return ab_main(args[1:])
    if args and args[0] == "thresholds":
        from .thresholds import main as thresholds_main

        return thresholds_main(args[1:])
    if args and args[0] == "history":
        from .history import main as history_main

        return history_main(args[1:])
    from .report import main as report_main

    return report_main(args)


if __name__ == "__main__":
    sys.exit(main())
