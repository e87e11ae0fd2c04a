"""``python -m workloads.net serve|load``: run an echo server, or drive one and measure it.

serve: prints ``listening on HOST:PORT`` as its first line (flushed), serves until
SIGTERM or SIGINT, exits 0.  load: prints throughput, latency percentiles, errors and
the client's own CPU use (``--json`` for one JSON object); exits 1 if any request failed
or any echoed byte differed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from typing import Any

from . import STYLES, get_style, run_load, run_thread_clients
from ._common import (
    DEFAULT_HOST,
    announce,
    config_from_args,
    configure_logging,
    exit_with_parent,
    loopback_host,
    make_listener,
    server_arg_parser,
)
from .load import DEFAULT_REQUESTS, DEFAULT_SIZE, DEFAULT_TIMEOUT, LoadError, LoadResult


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workloads.net", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        parents=[server_arg_parser()],
        help="run an echo server",
        description="Run an echo server until SIGTERM or SIGINT.",
    )
    serve.add_argument(
        "--style",
        required=True,
        choices=list(STYLES),
        help="server style: " + ", ".join(STYLES),
    )

    load = commands.add_parser(
        "load", help="drive an echo server", description="Drive an echo server and measure it."
    )
    load.add_argument("--host", type=loopback_host, default=DEFAULT_HOST, help="loopback only")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--connections", type=int, default=10, help="concurrent connections")
    load.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help="requests in total, spread evenly over the connections (ignored with --duration)",
    )
    load.add_argument("--size", type=int, default=DEFAULT_SIZE, help="bytes per request")
    load.add_argument(
        "--duration", type=float, default=None, help="send for this many seconds instead"
    )
    load.add_argument(
        "--processes", type=int, default=None, help="load processes (default: one per core)"
    )
    load.add_argument(
        "--client",
        choices=("processes", "threads"),
        default="processes",
        help="processes: connections multiplexed in worker processes; "
        "threads: the tutorial's client, a blocking thread per connection",
    )
    load.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    load.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.command == "load":
        for name in ("connections", "size"):
            if getattr(args, name) < 1:
                load.error(f"--{name} must be at least 1")
        if args.duration is None and args.requests < 1:
            load.error("--requests must be at least 1")
        if args.duration is not None and args.duration <= 0:
            load.error("--duration must be positive")
    return args


def serve(args: argparse.Namespace) -> int:
    try:
        style = get_style(args.style)
    except LookupError as exc:
        print(f"python -m workloads.net serve: error: {exc}", file=sys.stderr)
        return 2
    if style.own_process:
        # gevent must patch before anything is imported: start afresh, same process id.
        spec = importlib.util.find_spec(style.module)
        if spec is None or spec.origin is None:
            raise LookupError(f"cannot find the module of style {style.name!r}")
        forwarded = [
            f"--host={args.host}",
            f"--port={args.port}",
            f"--backlog={args.backlog}",
            f"--stall-timeout={args.stall_timeout}",
            f"--high-water={args.high_water}",
        ]
        if args.parent_pid is not None:
            forwarded.append(f"--parent-pid={args.parent_pid}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, spec.origin, *forwarded])
    exit_with_parent(args.parent_pid)
    configure_logging()
    module = importlib.import_module(style.module)
    config = config_from_args(style.name, args)
    listener = make_listener(args.host, args.port, config.backlog)
    announce(listener)
    module.serve(listener, config)
    return 0


def format_result(result: LoadResult) -> str:
    r = result
    lines = [
        f"client       {r.client}: {r.connections} connections over {r.processes} process(es)",
        f"requests     {r.requests} x {r.size} B in {r.wall_s:.3f} s",
        f"throughput   {r.throughput_rps:,.0f} requests/s   {r.throughput_mb_s:,.2f} MB/s",
        f"latency ms   p50 {r.latency_p50_ms:.3f}  p90 {r.latency_p90_ms:.3f}  "
        f"p99 {r.latency_p99_ms:.3f}  p99.9 {r.latency_p999_ms:.3f}  max {r.latency_max_ms:.3f}",
        f"errors       {r.errors}" + (f"  e.g. {r.error_samples[0]}" if r.error_samples else ""),
        f"verified     {r.bytes_verified} bytes echoed exactly: {'yes' if r.verified else 'NO'}",
        f"client CPU   {r.client_cpu_s:.3f} s ({r.client_cpu_util:.2f} cores)",
    ]
    return "\n".join(lines)


def load(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "connections": args.connections,
        "requests": args.requests,
        "size": args.size,
        "duration": args.duration,
        "timeout": args.timeout,
    }
    try:
        if args.client == "threads":
            result = run_thread_clients(args.host, args.port, **options)
        else:
            result = run_load(args.host, args.port, processes=args.processes, **options)
    except LoadError as exc:
        print(f"python -m workloads.net load: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        print(format_result(result))
    return 0 if result.verified else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return load(args)


if __name__ == "__main__":
    sys.exit(main())
