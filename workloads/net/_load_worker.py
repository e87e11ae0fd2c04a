"""A load client worker process: opens its share of connections, drives them on "go".

Protocol (length-prefixed pickle on stdin/stdout): -> ("prepare", job) <- ("ready", info);
-> ("go",) <- ("done", facts); EOF on stdin: exit.  Any failure is answered with
("error", text) and the worker keeps serving.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from workloads.net._driver import drive, open_connections
from workloads.net._ipc import read_message, write_message


def main() -> None:
    # The protocol owns the real stdout; anything else printed goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    write_message(channel, ("hello", os.getpid()))
    job: dict[str, Any] | None = None
    socks: list[Any] = []
    while (message := read_message(requests)) is not None:
        try:
            kind = message[0]
            if kind == "prepare":
                job = message[1]
                socks, errors = open_connections(job["host"], job["port"], len(job["counts"]))
                write_message(channel, ("ready", {"errors": errors}))
            elif kind == "go":
                if job is None:
                    raise RuntimeError("'go' before 'prepare'")
                facts = drive(
                    socks,
                    job["counts"],
                    job["size"],
                    job["duration"],
                    job["timeout"],
                    job["seed"],
                    job.get("rate"),
                    job.get("offsets"),
                )
                job, socks = None, []
                write_message(channel, ("done", facts))
            else:
                raise ValueError(f"unknown request {kind!r}")
        except Exception as exc:  # report, keep serving
            text = "".join(traceback.format_exception_only(exc)).strip()
            write_message(channel, ("error", text, traceback.format_exc()))


if __name__ == "__main__":
    main()
