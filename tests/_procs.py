"""Finding the processes a test started, wherever they were reparented to."""

from __future__ import annotations

import os
import time

import psutil

TAG_ENV = "BOUNDBENCH_TEST_TAG"


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``TAG_ENV=tag`` (children inherit it)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(TAG_ENV) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_gone(tag: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def live_children() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
