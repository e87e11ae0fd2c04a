# The gevent model's worker process.  Patching must come before anything else is
# imported, in an interpreter of its own: patching a live pytest process would make
# every later benchmark (threads, processes, asyncio) run on gevent without saying so.
from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402  (the imports below must follow the patch)
import os
import pickle
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

from workloads.models.gevent_model import run_greenlets

HEADER = struct.Struct("!I")


def read_message(stream: BinaryIO) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the parent closed the pipe: time to go
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def write_message(stream: BinaryIO, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def run_cell(task: bytes, tasks: int, workers: int | None) -> list[Any]:
    fn = pickle.loads(task)  # a user's module that fails to import fails this cell only
    return run_greenlets(fn, tasks, workers, None)


def handle(request: tuple[Any, ...]) -> Any:
    kind = request[0]
    if kind == "ping":
        return {"pid": os.getpid(), "patched": monkey.is_anything_patched()}
    if kind == "run":
        # Timed here: the pipe's round trip (0.4-0.5 ms here) is the suite's, not gevent's.
        started = time.perf_counter()
        results = run_cell(*request[1:])
        return {"results": results, "seconds": time.perf_counter() - started}
    raise ValueError(f"unknown request {kind!r}")


def main() -> None:
    # The protocol owns the real stdout; anything a task prints goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    while (request := read_message(requests)) is not None:
        try:
            write_message(channel, ("ok", handle(request)))
        except Exception as exc:  # report, keep serving
            text = "".join(traceback.format_exception_only(exc)).strip()
            write_message(channel, ("error", text, traceback.format_exc()))


if __name__ == "__main__":
    main()
