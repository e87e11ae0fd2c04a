"""One scheduler for generator tasks: the generator model, the generator echo server and
io_socket's ``gen`` flavour all run on it (the tutorial's ``yield``, grown up).

A task is a generator that yields what it waits for:

- ``None``: let the next ready task run (round-robin);
- a number: sleep that many seconds (a timer heap);
- ``Wait(sock, "r" | "w" | "rw", timeout)``: park until the socket (or descriptor) is
  readable, writable or either; one ``selectors`` selector (epoll here) watches every
  parked task.  Past ``timeout`` seconds the task is resumed with ``TimeoutError``
  raised at its ``yield``.

The tutorial's two techniques joined: generators that yield at their switch points, and
``select`` to learn which socket is ready.  When nothing is ready the scheduler blocks
until the earliest timer or a ready socket, so waiting costs no CPU.  CPU and sleep
tasks never touch the selector (it is made at the first ``Wait``), and every wake-up is
O(log n) (a heap and a dict), so ten thousand sleepers cost what ten do per wake-up.
It is one thread: CPU work gains nothing from it, and every switch costs a little, as
the tutorial measured.

Two ways to drive it:

- ``run_tasks(tasks, limit, timeout)``: a fixed list of tasks, at most ``limit`` in
  flight; their return values in order; the first task to raise ends the run
  (``SchedulerError``), and so does ``timeout`` (``SchedulerTimeout``).  The generator
  model (``workloads.models.run_generators``), io_socket's ``gen`` flavour under it.
- ``Scheduler``: ``spawn`` tasks, also from a running task; ``watch`` a descriptor that
  interrupts a wait; ``run(stop=..., on_error=...)`` until ``stop()``, a task that
  raises ending alone.  The generator echo server: a task per connection, spawned by
  the accepting task.

However a run ends, every task still unfinished is closed (its ``finally`` blocks run,
so its sockets close).
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
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Protocol, final

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_EVENTS = {"r": READ, "w": WRITE, "rw": READ | WRITE}
_WORDS = {READ: "readable", WRITE: "writable", READ | WRITE: "readable or writable"}
# select() takes descriptors below this (FD_SETSIZE); see _wait_ready.
_FD_SETSIZE = 1024
# Stale timeout entries (their wait ended first) are swept from the heap once there are
# this many and they are at least half of it: memory stays bounded, a sweep is rare.
_SWEEP_AT = 256
# The longest one wait for sockets or timers lasts; a run without a bound looks again.
_LONGEST_WAIT = 3600.0


class SchedulerError(RuntimeError):
    """A task raised, yielded something it may not, or waited on a socket it cannot."""


class SchedulerTimeout(SchedulerError):
    """The run did not finish within its timeout."""


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


@final
class Wait:
    """What a generator task yields to park until ``target`` is ready.

    ``target`` is a socket (anything with ``fileno()``) or a descriptor; ``mode`` is
    ``"r"`` (readable), ``"w"`` (writable) or ``"rw"`` (either); ``timeout`` (seconds,
    or None for no bound but the run's own) makes the scheduler raise ``TimeoutError``
    in the task.  A task may yield the same ``Wait`` again and again.
    """

    __slots__ = ("events", "fd", "target", "timeout")

    def __init__(
        self, target: int | _HasFileno, mode: str = "r", timeout: float | None = None
    ) -> None:
        events = _EVENTS.get(mode)
        if events is None:
            raise ValueError(f"Wait: mode must be 'r' or 'w' (or 'rw': either), got {mode!r}")
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
        mode = {READ: "r", WRITE: "w"}.get(self.events, "rw")
        return f"Wait({self.fd}, {mode!r}, timeout={self.timeout})"


Task = Generator["float | Wait | None", None, Any]
# A parked task: (index, generator, token, its Wait's timeout).  The token is also in its
# timeout entry, which tells that entry whether the wait it bounds is still the current one.
_Parked = tuple[int, Task, int, "float | None"]
# (due, token, fd waited on): the timeout of a Wait
_Deadline = tuple[float, int, int]
_Timer = tuple[float, int, int, Task]


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


def _close_all(tasks: Iterable[Task]) -> None:
    for gen in tasks:
        # A task that fails to close must not hide the error that ended the run.
        with contextlib.suppress(Exception):
            gen.close()


class _Parking:
    """The tasks parked on sockets: one selector, and a heap of their timeouts.

    Made at a run's first ``Wait`` (or ``watch``), so CPU and sleep tasks never pay for
    it.  A task's socket stays registered between its waits (a round trip then costs no
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
        # fd -> what to call when it is readable (``Scheduler.watch``)
        self.watched: dict[int, Callable[[], object]] = {}
        self.deadlines: list[_Deadline] = []
        self.stale = 0
        self.tokens = itertools.count()
        # Tasks whose wait timed out, to be resumed with the error (``Scheduler._expire``).
        self.expired: deque[tuple[int, Task, TimeoutError]] = deque()

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
                        raise SchedulerError(
                            f"task {index} waits on descriptor {fd}, "
                            f"which task {other} already waits on"
                        )
                    self.release(other)
                self.selector.register(fd, wait.events)
                self.held[index] = (wait.target, fd, wait.events)
                self.owner[fd] = index
        except (OSError, ValueError, KeyError) as exc:
            raise SchedulerError(f"task {index} cannot wait on descriptor {fd}: {exc!r}") from exc
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

    def watch(self, fd: int, callback: Callable[[], object]) -> None:
        self.selector.register(fd, READ)
        self.watched[fd] = callback

    def _current(self, entry: _Deadline) -> bool:
        parked = self.waiting.get(entry[2])
        return parked is not None and parked[2] == entry[1]

    def wake(self, timeout: float, ready: deque[tuple[int, Task]], precise: bool) -> bool:
        """Wait up to ``timeout`` s; queue the tasks whose socket is ready, and those whose
        wait timed out in ``expired`` (then return True).

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
            elif selected.fd in self.watched:
                self.watched[selected.fd]()
        expired = False
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
                self.expired.append((index, gen, error))
                expired = True
        if self.stale >= _SWEEP_AT and self.stale * 2 >= len(deadlines):
            self.deadlines = [entry for entry in deadlines if self._current(entry)]
            heapq.heapify(self.deadlines)
            self.stale = 0
        return expired

    def tasks(self) -> list[Task]:
        return [parked[1] for parked in self.waiting.values()] + [e[1] for e in self.expired]

    def close(self) -> None:
        self.selector.close()


class _Discard(dict[int, Any]):
    """The results of a run until ``stop()``, which nobody reads: kept nowhere (a server's
    tasks must not pile up), at no cost per task in a run that keeps them."""

    def __setitem__(self, key: int, value: Any) -> None:
        pass


class Scheduler:
    """Generator tasks on one thread: round-robin, a timer heap, readiness on sockets.

    ``limit``: at most that many tasks in flight; the others wait their turn in spawn
    order.  One ``run`` per scheduler.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"Scheduler: limit must be at least 1, got {limit}")
        self.limit = limit
        self._pending: deque[tuple[int, Task]] = deque()
        self._next_id = 0
        self._parking: _Parking | None = None
        self._used = False

    def spawn(self, task: Task) -> int:
        """Queue ``task`` (also while the scheduler runs); its id: 0, 1, ... in spawn order."""
        index = self._next_id
        self._next_id += 1
        self._pending.append((index, task))
        return index

    def spawn_all(self, tasks: Iterable[Task]) -> None:
        """``spawn`` each of ``tasks`` (without a call per task)."""
        queued = len(self._pending)
        self._pending.extend(enumerate(tasks, self._next_id))
        self._next_id += len(self._pending) - queued

    def watch(self, target: int | _HasFileno, callback: Callable[[], object]) -> None:
        """Call ``callback()`` whenever ``target`` is readable: a wake-up for ``stop()``
        (a signal's wake-up descriptor).  ``callback`` must consume what it reads."""
        fd = target if isinstance(target, int) else target.fileno()
        self._parked().watch(fd, callback)

    def _parked(self) -> _Parking:
        if self._parking is None:
            self._parking = _Parking()
        return self._parking

    def run(
        self,
        timeout: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        on_error: Callable[[int, Exception], object] | None = None,
        max_wait: float = math.inf,
    ) -> list[Any]:
        """Run the tasks; without ``stop``, until all have ended: their return values in
        id order.  With ``stop``, until ``stop()`` is true (checked at least every
        ``max_wait`` seconds, which must then be finite): ``[]``, unfinished tasks closed.

        Raises ``SchedulerTimeout`` past ``timeout`` seconds (None: no bound but
        ``stop``).  A task that raises (or yields what it may not) ends the run with
        ``SchedulerError``, or, given ``on_error``, ends alone: ``on_error(task_id, exc)``
        is called and its result is None.
        """
        if self._used:
            raise RuntimeError("Scheduler.run: a scheduler runs once")
        self._used = True
        if stop is not None and not math.isfinite(max_wait):
            raise ValueError("Scheduler.run: a stop() needs a finite max_wait")
        pending = self._pending
        limit = self.limit
        results: dict[int, Any] = {} if stop is None else _Discard()
        ready: deque[tuple[int, Task]] = deque()
        timers: list[_Timer] = []
        parking = self._parking
        seq = itertools.count()
        in_flight = 0
        clock = time.monotonic
        deadline = math.inf if timeout is None else clock() + timeout
        cap = min(max_wait, _LONGEST_WAIT)
        finished = False

        try:
            while True:
                if stop is None:
                    if not (in_flight or pending):
                        break
                elif stop():
                    break
                while pending and (limit is None or in_flight < limit):
                    ready.append(pending.popleft())
                    in_flight += 1
                if parking is not None and (parking.waiting or parking.watched):
                    if ready:
                        # Tasks are ready: only look, without waiting, for ready sockets too.
                        expired = parking.wake(0.0, ready, False)
                    elif timers and timers[0][0] < deadline:
                        # Block until a socket is ready or the first timer (to the µs) is due.
                        pause = max(0.0, timers[0][0] - clock())
                        expired = parking.wake(pause if pause < cap else cap, ready, True)
                    else:
                        pause = max(0.0, deadline - clock())
                        expired = parking.wake(pause if pause < cap else cap, ready, False)
                    if expired:
                        in_flight -= self._expire(parking, ready, timers, seq, results, on_error)
                elif not ready:
                    # Only sleepers left: wait for the earliest timer instead of spinning.
                    due = timers[0][0] if timers else math.inf
                    if due > deadline:
                        raise SchedulerTimeout(f"tasks still sleeping after {timeout} s")
                    pause = due - clock()
                    if pause > 0:
                        time.sleep(pause if pause < cap else cap)
                now = clock()
                while timers and timers[0][0] <= now:
                    _, _, index, gen = heapq.heappop(timers)
                    ready.append((index, gen))
                if now > deadline:
                    raise SchedulerTimeout(f"tasks unfinished after {timeout} s")
                for _ in range(len(ready)):
                    index, gen = ready.popleft()
                    try:
                        op = next(gen)
                    except StopIteration as ended:
                        results[index] = ended.value
                        in_flight -= 1
                        if parking is not None:
                            parking.release(index)
                        continue
                    except Exception as exc:
                        if on_error is None:
                            raise SchedulerError(f"task {index} raised {exc!r}") from exc
                        in_flight -= 1
                        self._drop(index, gen, exc, on_error)
                        continue
                    if op is None:
                        ready.append((index, gen))
                    elif op.__class__ is float:
                        heapq.heappush(timers, (clock() + op, next(seq), index, gen))
                    elif op.__class__ is Wait:
                        if parking is None:
                            parking = self._parked()
                        try:
                            parking.park(index, gen, op)
                        except SchedulerError as exc:
                            in_flight -= 1
                            self._drop(index, gen, exc, on_error)
                    elif op:
                        try:
                            heapq.heappush(timers, (self._due(index, op), next(seq), index, gen))
                        except SchedulerError as exc:
                            in_flight -= 1
                            self._drop(index, gen, exc, on_error)
                    else:
                        ready.append((index, gen))
            finished = stop is None
            if stop is not None:
                return []
            if on_error is None:
                return [results[i] for i in range(self._next_id)]
            return [results.get(i) for i in range(self._next_id)]  # None: ended by on_error
        finally:
            if not finished:
                # Failed, timed out or stopped: close what is left now, so its sockets
                # close now.
                left = [gen for _, gen in ready] + [entry[3] for entry in timers]
                left += [gen for _, gen in pending]
                _close_all(left + (parking.tasks() if parking is not None else []))
            if parking is not None:
                parking.close()

    @staticmethod
    def _due(index: int, op: object) -> float:
        try:
            return time.monotonic() + op  # type: ignore[operator]
        except TypeError:
            raise SchedulerError(
                f"task {index} yielded {op!r}; expected None, seconds to sleep, or a Wait"
            ) from None

    def _drop(
        self,
        index: int,
        gen: Task,
        exc: Exception,
        on_error: Callable[[int, Exception], object] | None,
    ) -> None:
        """End task ``index`` after ``exc``: its socket unwatched, it closed; then the
        run ends with ``exc`` (no ``on_error``), or only the task does."""
        if self._parking is not None:
            self._parking.release(index)
        with contextlib.suppress(Exception):
            gen.close()
        if on_error is None:
            raise exc
        on_error(index, exc)

    def _expire(
        self,
        parking: _Parking,
        ready: deque[tuple[int, Task]],
        timers: list[_Timer],
        seq: Iterator[int],
        results: dict[int, Any],
        on_error: Callable[[int, Exception], object] | None,
    ) -> int:
        """Resume each task whose wait timed out with ``TimeoutError`` raised at its
        ``yield``, here rather than through the ready queue (whose loop only ever calls
        ``next()``, so a switch costs no test for the rare exception); how many ended."""
        ended = 0
        while parking.expired:
            index, gen, error = parking.expired.popleft()
            try:
                op = gen.throw(error)
            except StopIteration as stop:
                results[index] = stop.value
                ended += 1
                parking.release(index)
                continue
            except Exception as exc:
                if on_error is None:
                    raise SchedulerError(f"task {index} raised {exc!r}") from exc
                ended += 1
                self._drop(index, gen, exc, on_error)
                continue
            try:
                if op is None:
                    ready.append((index, gen))
                elif op.__class__ is Wait:
                    assert isinstance(op, Wait)
                    parking.park(index, gen, op)
                elif op:
                    heapq.heappush(timers, (self._due(index, op), next(seq), index, gen))
                else:
                    ready.append((index, gen))
            except SchedulerError as exc:
                ended += 1
                self._drop(index, gen, exc, on_error)
        return ended


def run_tasks(tasks: Iterable[Task], limit: int | None = None, timeout: float = 300.0) -> list[Any]:
    """Drive generator tasks to completion; return their return values in input order.

    At most ``limit`` tasks are in flight at once.  Raises ``SchedulerTimeout`` past
    ``timeout`` seconds and ``SchedulerError`` when a task raises; every unfinished task
    is then closed (its ``finally`` blocks run, so its sockets close).
    """
    scheduler = Scheduler(limit)
    scheduler.spawn_all(tasks)
    return scheduler.run(timeout)


__all__ = [
    "READ",
    "WRITE",
    "Scheduler",
    "SchedulerError",
    "SchedulerTimeout",
    "Task",
    "Wait",
    "run_tasks",
]
