"""generator: a small scheduler of our own over generator tasks (the tutorial's ``yield``).

A task yields what it waits for:

- ``None``: let the next ready task run (round-robin);
- a number: sleep that many seconds (a timer heap);
- ``Wait(sock, "r" | "w", timeout)``: park until the socket (or descriptor) is readable
  or writable; one ``selectors`` selector (epoll here) watches every parked task.  Past
  ``timeout`` seconds the task is resumed with ``TimeoutError`` raised at its ``yield``.

The tutorial's two techniques joined: generators that yield at their switch points, and
``select`` to learn which socket is ready.  When nothing is ready the scheduler blocks
until the earliest timer or a ready socket, so waiting costs no CPU.  CPU and sleep
tasks never touch the selector (it is made at the first ``Wait``), and every wake-up is
O(log n) (a heap and a dict), so ten thousand sleepers cost what ten do per wake-up.
It is one thread: CPU work gains nothing from it, and every switch costs a little, as
the tutorial measured.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import select
import selectors
import time
from collections import deque
from collections.abc import Generator, Iterable
from typing import Any, Protocol, final

from .._spec import Workload
from ._base import Model, ModelError, ModelTimeout

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_EVENTS = {"r": READ, "w": WRITE}
_WORDS = {READ: "readable", WRITE: "writable"}
# select() takes descriptors below this (FD_SETSIZE); see _wait_ready.
_FD_SETSIZE = 1024
# Stale timeout entries (their wait ended first) are swept from the heap once there are
# this many and they are at least half of it: memory stays bounded, a sweep is rare.
_SWEEP_AT = 256


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


@final
class Wait:
    """What a generator task yields to park until ``target`` is ready.

    ``target`` is a socket (anything with ``fileno()``) or a descriptor; ``mode`` is
    ``"r"`` (readable) or ``"w"`` (writable); ``timeout`` (seconds, or None for no
    bound but the model's own) makes the scheduler raise ``TimeoutError`` in the task.
    """

    __slots__ = ("events", "fd", "target", "timeout")

    def __init__(
        self, target: int | _HasFileno, mode: str = "r", timeout: float | None = None
    ) -> None:
        events = _EVENTS.get(mode)
        if events is None:
            raise ValueError(f"Wait: mode must be 'r' or 'w', got {mode!r}")
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"Wait: timeout must be a finite number above 0, got {timeout!r}")
        fd = target if isinstance(target, int) else target.fileno()
        if fd < 0:
            raise ValueError(f"Wait: {target!r} has no descriptor (closed?)")
        self.target = target
        self.fd = fd
        self.events = events
        self.timeout = timeout

    def __repr__(self) -> str:
        mode = "r" if self.events == READ else "w"
        return f"Wait({self.fd}, {mode!r}, timeout={self.timeout})"


Task = Generator["float | Wait | None", None, Any]
# A parked task: (index, generator, token, its Wait's timeout).  The token is also in its
# timeout entry, which tells that entry whether the wait it bounds is still the current one.
_Parked = tuple[int, Task, int, "float | None"]
# (due, token, fd waited on): the timeout of a Wait
_Deadline = tuple[float, int, int]


def _wait_ready(
    selector: selectors.BaseSelector, timeout: float
) -> list[tuple[selectors.SelectorKey, int]]:
    """``selector.select(timeout)``, waking on time to the microsecond.

    epoll counts its timeout in whole milliseconds, rounded up: a timer due in 5.1 ms
    would fire at 6 ms.  ``select`` counts in microseconds, and an epoll descriptor is
    readable exactly when it has events, so wait on that, then collect without waiting.
    """
    fileno = getattr(selector, "fileno", None)
    if timeout > 0 and fileno is not None:
        fd = fileno()
        if fd < _FD_SETSIZE:
            select.select([fd], [], [], timeout)
            timeout = 0
    return selector.select(timeout)


def _raising(gen: Task, exc: BaseException) -> Task:
    """``gen`` resumed with ``exc`` raised at its ``yield``, then driven as before.

    How a timed-out wait reaches its task: the scheduler's loop only ever calls
    ``next()``, so a switch costs no test for the rare exception.
    """
    try:
        op = gen.throw(exc)
    except StopIteration as stop:
        return stop.value
    yield op
    return (yield from gen)


def _close_all(tasks: Iterable[Task]) -> None:
    for gen in tasks:
        # A task that fails to close must not hide the error that ended the run.
        with contextlib.suppress(Exception):
            gen.close()


class _Parking:
    """The tasks parked on sockets: one selector, and a heap of their timeouts.

    Made at a run's first ``Wait``, so CPU and sleep tasks never pay for it.  A task's
    socket stays registered between its waits (a round trip then costs no
    ``epoll_ctl``, only the shared ``epoll_wait``), and nothing is checked per switch:
    a socket reported ready while its task is not parked on it (running, sleeping) is
    unregistered then, once, so a level-triggered selector cannot turn a sleep into a
    busy loop; a task's socket is also unregistered when the task ends.  A timeout
    entry whose wait ended first stays in the heap, recognised by its token, until it
    comes due or a sweep removes it.
    """

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.waiting: dict[int, _Parked] = {}  # fd -> the task parked on it
        # task index -> (target, fd, events) registered for it; fd -> that task
        self.held: dict[int, tuple[object, int, int]] = {}
        self.owner: dict[int, int] = {}
        self.deadlines: list[_Deadline] = []
        self.stale = 0
        self.tokens = itertools.count()
        # tasks resumed with TimeoutError (closed with the others if the run fails)
        self.timed_out: list[Task] = []

    def park(self, index: int, gen: Task, wait: Wait) -> None:
        fd = wait.fd
        held = self.held.get(index)
        try:
            # The same socket object as last time: still registered (an int may name a
            # new descriptor that reuses a closed one's number, so it is registered anew).
            if held is not None and held[0] is wait.target and not isinstance(wait.target, int):
                if held[2] != wait.events:
                    self.selector.modify(fd, wait.events)
                    self.held[index] = (wait.target, fd, wait.events)
            else:
                if held is not None:
                    self.release(index)
                other = self.owner.get(fd)
                if other is not None:
                    if fd in self.waiting:
                        raise ModelError(
                            f"generator: task {index} waits on descriptor {fd}, "
                            f"which task {other} already waits on"
                        )
                    self.release(other)
                self.selector.register(fd, wait.events)
                self.held[index] = (wait.target, fd, wait.events)
                self.owner[fd] = index
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"generator: task {index} cannot wait on descriptor {fd}: {exc!r}"
            ) from exc
        token = next(self.tokens)
        self.waiting[fd] = (index, gen, token, wait.timeout)
        if wait.timeout is not None:
            heapq.heappush(self.deadlines, (time.monotonic() + wait.timeout, token, fd))

    def release(self, index: int) -> None:
        """Stop watching the socket of task ``index`` (it yielded something else, or ended)."""
        held = self.held.pop(index, None)
        if held is not None:
            del self.owner[held[1]]
            # Already closed by the task: epoll dropped it, the selector forgets it.
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(held[1])

    def _current(self, entry: _Deadline) -> bool:
        parked = self.waiting.get(entry[2])
        return parked is not None and parked[2] == entry[1]

    def wake(self, timeout: float, ready: deque[tuple[int, Task]], precise: bool) -> None:
        """Wait up to ``timeout`` s; queue the tasks whose socket is ready or wait timed out.

        ``precise``: the timeout is a sleeper's timer, to be kept to the microsecond.
        """
        if timeout > 0 and self.deadlines:
            timeout = min(timeout, max(0.0, self.deadlines[0][0] - time.monotonic()))
        events = _wait_ready(self.selector, timeout) if precise else self.selector.select(timeout)
        waiting = self.waiting
        for selected, _ in events:
            parked = waiting.pop(selected.fd, None)
            if parked is not None:
                ready.append((parked[0], parked[1]))
                if parked[3] is not None:
                    self.stale += 1
            elif selected.fd in self.owner:
                # Its task is doing something else (running, sleeping): stop watching,
                # or a level-triggered selector would report it on every look.
                self.release(self.owner[selected.fd])
        deadlines = self.deadlines
        if deadlines and deadlines[0][0] <= time.monotonic():
            now = time.monotonic()
            while deadlines and deadlines[0][0] <= now:
                entry = heapq.heappop(deadlines)
                if not self._current(entry):
                    self.stale -= 1
                    continue
                index, gen, _, bound = waiting.pop(entry[2])
                word = _WORDS[self.held[index][2]]
                error = TimeoutError(f"descriptor {entry[2]} not {word} within {bound} s")
                self.timed_out.append(gen)
                ready.append((index, _raising(gen, error)))
        if self.stale >= _SWEEP_AT and self.stale * 2 >= len(deadlines):
            self.deadlines = [entry for entry in deadlines if self._current(entry)]
            heapq.heapify(self.deadlines)
            self.stale = 0

    def tasks(self) -> list[Task]:
        return [parked[1] for parked in self.waiting.values()] + self.timed_out

    def close(self) -> None:
        self.selector.close()


def run_generators(
    tasks: Iterable[Task], limit: int | None = None, timeout: float = 300.0
) -> list[Any]:
    """Drive generator tasks to completion; return their return values in input order.

    At most ``limit`` tasks are in flight at once.  Raises ``ModelError`` past ``timeout``
    seconds or when a task raises; every unfinished task is then closed (its ``finally``
    blocks run, so its sockets close).
    """
    pending = deque(enumerate(tasks))
    results: dict[int, Any] = {}
    ready: deque[tuple[int, Task]] = deque()
    timers: list[tuple[float, int, int, Task]] = []
    parking: _Parking | None = None
    seq = itertools.count()
    in_flight = 0
    clock = time.monotonic
    deadline = clock() + timeout
    total = len(pending)

    try:
        while len(results) < total:
            while pending and (limit is None or in_flight < limit):
                ready.append(pending.popleft())
                in_flight += 1
            if parking is not None and parking.waiting:
                if ready:
                    # Tasks are ready: only look, without waiting, for ready sockets too.
                    parking.wake(0.0, ready, False)
                elif timers and timers[0][0] < deadline:
                    # Block until a socket is ready or the first timer (to the µs) is due.
                    parking.wake(max(0.0, timers[0][0] - clock()), ready, True)
                else:
                    parking.wake(max(0.0, deadline - clock()), ready, False)
            elif not ready:
                # Only sleepers left: wait for the earliest timer instead of spinning.
                due = timers[0][0]
                if due > deadline:
                    raise ModelTimeout(f"generator: tasks still sleeping after {timeout} s")
                pause = due - clock()
                if pause > 0:
                    time.sleep(pause)
            now = clock()
            while timers and timers[0][0] <= now:
                _, _, index, gen = heapq.heappop(timers)
                ready.append((index, gen))
            if now > deadline:
                raise ModelTimeout(f"generator: tasks unfinished after {timeout} s")
            for _ in range(len(ready)):
                index, gen = ready.popleft()
                try:
                    op = next(gen)
                except StopIteration as stop:
                    results[index] = stop.value
                    in_flight -= 1
                    if parking is not None:
                        parking.release(index)
                    continue
                except Exception as exc:
                    raise ModelError(f"generator: task {index} raised {exc!r}") from exc
                if op is None:
                    ready.append((index, gen))
                elif op.__class__ is float:
                    heapq.heappush(timers, (clock() + op, next(seq), index, gen))
                elif op.__class__ is Wait:
                    if parking is None:
                        parking = _Parking()
                    parking.park(index, gen, op)
                    continue
                elif op:
                    assert not isinstance(op, Wait)
                    try:
                        due = clock() + op
                    except TypeError:
                        raise ModelError(
                            f"generator: task {index} yielded {op!r}; expected None, "
                            "seconds to sleep, or a Wait"
                        ) from None
                    heapq.heappush(timers, (due, next(seq), index, gen))
                else:
                    ready.append((index, gen))
        return [results[i] for i in range(total)]
    finally:
        if len(results) < total:
            # Failed or timed out: close what is left now, so its sockets close now.
            left = [gen for _, gen in ready] + [entry[3] for entry in timers]
            _close_all(left + (parking.tasks() if parking is not None else []))
        if parking is not None:
            parking.close()


class GeneratorModel(Model):
    name = "generator"
    flavour = "gen"
    colour_seed = 1
    process_scope = "single"

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task(self.flavour, **params)
        try:
            return run_generators((fn(i) for i in range(tasks)), self.workers, self.timeout)
        except ModelTimeout as exc:
            self.broken = str(exc)
            raise
