"""``python -m workloads.runner``: a runner process, measuring cells for a conductor.

The conductor (a pytest session, or any program: ``RunnerProcess``) writes one JSON
request a line on the runner's stdin; the runner writes its hello first, then one JSON
reply a line for each request, on the stdout it had at start (anything a task prints
goes to stderr).  Requests: ``prepare`` (key, kind, kwargs), ``round`` (key, keep),
``finish`` (key), ``close``.  The runner's heap holds its cells and nothing of the
conductor's, and it times its own rounds (``measured``): the pipe is never in a round.

It ends on ``close``, at the end of its stdin, on SIGTERM (what it started is closed
first, bounded) and when its parent is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import IO, Any

from ._engine import Engine
from ._protocol import PROTOCOL, hello

PARENT_POLL_S = 0.5


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _watch_parent() -> None:
    """SIGTERM to this process once its parent is gone (a conductor killed with SIGKILL)."""
    parent = os.getppid()
    start_new_thread: Any = threading._start_new_thread  # type: ignore[attr-defined]
    sleep = time.sleep
    if "gevent.monkey" in sys.modules:  # a real thread and a real sleep, not greenlets
        from gevent import monkey

        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        sleep = monkey.get_original("time", "sleep")

    def watch() -> None:
        while os.getppid() == parent:
            sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    start_new_thread(watch, ())


def serve(
    engine: Engine, requests: IO[bytes], replies: IO[str], patched: str | None = None
) -> None:
    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    reply(hello(patched))
    for line in requests:
        started = time.perf_counter()
        request = json.loads(line)
        op = request.get("op")
        if op == "close":
            reply({})
            return
        if op == "prepare":
            answer = engine.prepare(request["key"], request["kind"], request["kwargs"])
        elif op == "round":
            answer = engine.round(request["key"], bool(request["keep"]))
        elif op == "finish":
            answer = engine.finish(request["key"])
        else:
            answer = {"error": f"unknown request {op!r} (protocol {PROTOCOL})"}
        # How long the runner held the request: the rest of a round trip is the hand-off.
        reply({**answer, "runner_s": time.perf_counter() - started})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.runner", description=__doc__)
    parser.add_argument("--timeout", type=float, default=300.0, help="every wait of a cell")
    parser.add_argument("--patched", default=None, help="the patch the boot line applied")
    args = parser.parse_args(argv)
    # The protocol owns the real stdout; a task that prints writes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.signal(signal.SIGTERM, _interrupt)
    # Its own session: a Ctrl-C in the terminal reaches the conductor, which ends us.
    signal.signal(signal.SIGINT, _interrupt)
    _watch_parent()
    engine = Engine(args.timeout)
    try:
        serve(engine, sys.stdin.buffer, replies, args.patched)
    except KeyboardInterrupt:
        return 1
    finally:
        engine.bench.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
