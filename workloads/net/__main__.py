"""``python -m workloads.net serve|load``: run an echo server, or drive one and measure it.

serve: prints ``listening on HOST:PORT`` as its first line (flushed), serves until
SIGTERM or SIGINT, exits 0.  ``--delay SECONDS`` (styles selectors, asyncio_protocol) echoes each
request that long after it arrived, like a remote service.  load: prints throughput,
latency percentiles, errors and the client's own CPU use (``--json`` for one JSON
object).

Exit status of load: 0 every request echoed exactly; 1 a request failed or an echoed
byte differed; 2 a bad option value (one line on stderr says which); 3 the server is
unreachable (no connection could be made); 4 the load client itself failed (a worker
died or did not answer in time).  serve: 0 stopped by a signal; 2 a bad option value,
or a port it cannot listen on.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import socket
import sys
from typing import Any

from . import STYLES, get_style, run_load, run_thread_clients
from ._common import (
    DEFAULT_HOST,
    MAX_PORT,
    OneLineParser,
    announce,
    config_from_args,
    configure_logging,
    exit_with_parent,
    int_in,
    loopback_host,
    make_listener,
    positive_seconds,
    server_arg_parser,
)
from .load import DEFAULT_REQUESTS, DEFAULT_SIZE, DEFAULT_TIMEOUT, LoadError, LoadResult

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_CLIENT_FAILED = 4
# Upper bounds that keep a typo from becoming a MemoryError: a request is held in memory
# twice per connection, and every connection is a descriptor.
MAX_SIZE = 64 << 20
MAX_CONNECTIONS = 10_000
MAX_PROCESSES = 256
# How long the reachability probe waits for a connection before calling it unreachable.
PROBE_TIMEOUT = 5.0
# serve --delay: the styles that take it, and the longest delay (a remote service's
# latency; past this every client's timeout would fire first).
DELAY_STYLES = ("asyncio_protocol", "selectors")
MAX_DELAY = 10.0


def delay_seconds(text: str) -> float:
    """argparse type: a reply delay, 0..MAX_DELAY seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_DELAY):
        raise argparse.ArgumentTypeError(f"must be 0..{MAX_DELAY:g} seconds, got {text}")
    return value


LOAD_EPILOG = """exit status: 0 every request echoed exactly; 1 a request failed or an echo
differed; 2 bad option value; 3 server unreachable (nothing accepts connections at
HOST:PORT); 4 the load client itself failed (a worker died or timed out).

--rate R is an open loop, as wrk2: requests are offered at R per second over all
connections whatever the server does, and each latency counts from the request's
intended send time, so a server that falls behind sees its queueing in the
percentiles (no coordinated omission).  Without it the loop is closed: each
connection sends its next request when the last echo is back."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m workloads.net", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    serve = commands.add_parser(
        "serve",
        parents=[server_arg_parser()],  # type: ignore[list-item]
        help="run an echo server",
        description="Run an echo server until SIGTERM or SIGINT.",
        epilog="exit status: 0 stopped by SIGTERM/SIGINT; 2 bad option value or a port "
        "it cannot listen on.",
    )
    serve.add_argument(
        "--style",
        required=True,
        choices=list(STYLES),
        help="server style: " + ", ".join(STYLES),
    )
    serve.add_argument(
        "--delay",
        type=delay_seconds,
        default=0.0,
        metavar="SECONDS",
        help=f"echo each request this long after it arrived, like a remote service "
        f"(0..{MAX_DELAY:g}; styles: {', '.join(DELAY_STYLES)})",
    )

    load = commands.add_parser(
        "load",
        help="drive an echo server",
        description="Drive an echo server and measure it.",
        epilog=LOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("--host", type=loopback_host, default=DEFAULT_HOST, help="loopback only")
    load.add_argument("--port", type=int_in(1, MAX_PORT), required=True)
    load.add_argument(
        "--connections",
        type=int_in(1, MAX_CONNECTIONS),
        default=10,
        help="concurrent connections",
    )
    load.add_argument(
        "--requests",
        type=int_in(1),
        default=DEFAULT_REQUESTS,
        help="requests in total, spread evenly over the connections (ignored with --duration)",
    )
    load.add_argument(
        "--size", type=int_in(1, MAX_SIZE), default=DEFAULT_SIZE, help="bytes per request"
    )
    load.add_argument(
        "--duration", type=positive_seconds, default=None, help="send for this many seconds"
    )
    load.add_argument(
        "--rate",
        type=positive_seconds,  # a finite number above zero, as for seconds
        default=None,
        metavar="R",
        help="open loop: offer R requests/s over all connections; latency from each "
        "request's intended send time",
    )
    load.add_argument(
        "--processes",
        type=int_in(1, MAX_PROCESSES),
        default=None,
        help="load processes (default: one per connection up to 4, else one per core)",
    )
    load.add_argument(
        "--client",
        choices=("processes", "threads"),
        default="processes",
        help="processes: connections multiplexed in worker processes; "
        "threads: the tutorial's client, a blocking thread per connection",
    )
    load.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        help="the longest any wait (a connect, an echo, a worker) may take, in seconds",
    )
    load.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.command == "load" and args.rate is not None and args.client == "threads":
        load.error("--rate needs --client processes")
    if args.command == "serve" and args.delay and args.style not in DELAY_STYLES:
        serve.error(f"--delay: style {args.style!r} has none; styles: {', '.join(DELAY_STYLES)}")
    return args


def serve(args: argparse.Namespace) -> int:
    try:
        style = get_style(args.style)
    except LookupError as exc:
        print(f"python -m workloads.net serve: error: {exc}", file=sys.stderr)
        return 2
    if style.own_process:
        # Refuse a port we cannot listen on here, in one line, before the exec.
        try:
            make_listener(args.host, args.port, args.backlog).close()
        except OSError as exc:
            return _cannot_listen(args, exc)
        _exec_own_process(style, args)
    exit_with_parent(args.parent_pid)
    configure_logging()
    module = importlib.import_module(style.module)
    config = config_from_args(style.name, args)
    try:
        listener = make_listener(args.host, args.port, config.backlog)
    except OSError as exc:  # in use, or privileged: a bad --port, not a crash
        return _cannot_listen(args, exc)
    announce(listener)
    if args.delay:
        module.serve(listener, config, delay=args.delay)
    else:
        module.serve(listener, config)
    return 0


def _cannot_listen(args: argparse.Namespace, exc: OSError) -> int:
    why = exc.strerror or str(exc)
    print(
        f"python -m workloads.net serve: error: cannot listen on {args.host}:{args.port}: {why}",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _exec_own_process(style: Any, args: argparse.Namespace) -> None:
    """gevent must patch before anything is imported: start afresh, same process id."""
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


def probe(host: str, port: int, timeout: float) -> str | None:
    """Why nothing accepts a connection at host:port (None: something does)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or repr(exc)
    return None


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
    if r.rate is not None:
        lines.insert(
            2, f"offered      {r.rate:,.0f} requests/s (open loop: latency from intended send)"
        )
    return "\n".join(lines)


def load(args: argparse.Namespace) -> int:
    prog = "python -m workloads.net load"
    # A bounded probe first: "nothing listens there" gets its own message and status
    # rather than a run of connect errors that reads like a broken echo.
    why = probe(args.host, args.port, min(args.timeout, PROBE_TIMEOUT))
    if why is not None:
        print(
            f"{prog}: error: cannot connect to {args.host}:{args.port}: {why} "
            "(is a server listening there?)",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
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
            result = run_load(
                args.host, args.port, processes=args.processes, rate=args.rate, **options
            )
    except LoadError as exc:
        first = str(exc).splitlines()[0]
        print(f"{prog}: error: the load client failed: {first}", file=sys.stderr)
        return EXIT_CLIENT_FAILED
    if result.unreachable:  # it went away between the probe and the run
        print(
            f"{prog}: error: cannot connect to {args.host}:{args.port}: "
            f"{result.error_samples[0] if result.error_samples else 'no connection'}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        print(format_result(result))
    return EXIT_OK if result.verified else EXIT_ERRORS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return load(args)


if __name__ == "__main__":
    sys.exit(main())
