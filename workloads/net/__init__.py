"""Network I/O: the tutorial's echo servers in every classic style, and a load client.

Styles (``STYLES``; ``python -m workloads.net serve --style NAME``):

- ``threaded``: blocking sockets, a thread per connection.
- ``gevent``: the same blocking code, cooperative under ``monkey.patch_all()``, in an
  interpreter of its own.
- ``nonblocking``: the tutorial's ``setblocking(False)`` busy-poll loop: spins by design.
- ``select``: ``select.select``; refuses descriptors at or above FD_SETSIZE (1024).
- ``selectors``: ``selectors.DefaultSelector`` (epoll here).
- ``generator``: a task per connection on a small yield-based scheduler of our own.
- ``asyncio``: ``asyncio.start_server`` streams, a coroutine per connection.
- ``asyncio_protocol``: an ``asyncio.Protocol`` (callbacks, no coroutine per request).
- ``uvloop``: that protocol on uvloop's loop (optional extra).

Every server echoes each byte back exactly and copes with partial sends, half-close,
resets, slow or non-reading peers and descriptor exhaustion.  The load client
(``run_load``) spreads its connections over worker processes and verifies every byte.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from ._launch import ServerProcess, ServerStartError
from .load import LoadClient, LoadError, LoadResult, run_load
from .thread_client import run_thread_clients


@dataclass(frozen=True)
class Style:
    name: str
    module: str
    # sync (blocking or readiness code), gen (generator tasks), coro (asyncio's loop)
    flavour: str
    summary: str
    # an optional dependency: the module that must import, and how to get it
    requires: str | None = None
    install: str | None = None
    # True: run as a script in a fresh interpreter (gevent must patch before any import)
    own_process: bool = False


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("threaded", "workloads.net.threaded_server", "sync", "a thread per connection"),
        Style(
            "gevent",
            "workloads.net.gevent_server",
            "sync",
            "a greenlet per connection, monkey-patched, in its own process",
            requires="gevent",
            install="pip install gevent",
            own_process=True,
        ),
        Style(
            "nonblocking",
            "workloads.net.nonblocking_server",
            "sync",
            "setblocking(False) busy-poll loop (spins)",
        ),
        Style("select", "workloads.net.select_server", "sync", "select.select, fd < 1024"),
        Style("selectors", "workloads.net.selectors_server", "sync", "selectors (epoll)"),
        Style(
            "generator",
            "workloads.net.generator_server",
            "gen",
            "generator tasks on our yield-based scheduler",
        ),
        Style("asyncio", "workloads.net.asyncio_server", "coro", "asyncio streams"),
        Style(
            "asyncio_protocol",
            "workloads.net.asyncio_protocol_server",
            "coro",
            "asyncio.Protocol callbacks",
        ),
        Style(
            "uvloop",
            "workloads.net.uvloop_server",
            "coro",
            "asyncio.Protocol on uvloop",
            requires="uvloop",
            install="pip install 'boundbench[uvloop]'",
        ),
    )
}


def unavailable_styles() -> dict[str, str]:
    """Registered styles this interpreter cannot run, with the reason and the fix."""
    missing = {}
    for style in STYLES.values():
        if style.requires and importlib.util.find_spec(style.requires) is None:
            missing[style.name] = (
                f"Style {style.name!r} is not available: {style.requires} is not installed. "
                f"Install it with: {style.install}"
            )
    return missing


def available_styles() -> dict[str, Style]:
    gone = unavailable_styles()
    return {name: style for name, style in STYLES.items() if name not in gone}


def get_style(name: str) -> Style:
    """A style by registry name; ``LookupError`` says why it is unknown or unavailable."""
    if name not in STYLES:
        raise LookupError(f"unknown style {name!r}; valid: {', '.join(STYLES)}")
    reason = unavailable_styles().get(name)
    if reason:
        raise LookupError(reason)
    return STYLES[name]


__all__ = [
    "STYLES",
    "LoadClient",
    "LoadError",
    "LoadResult",
    "ServerProcess",
    "ServerStartError",
    "Style",
    "available_styles",
    "get_style",
    "run_load",
    "run_thread_clients",
    "unavailable_styles",
]
