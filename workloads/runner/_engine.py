"""A runner's cells by key: what the protocol serves, and the conductor's in-process
stand-in calls directly."""

from __future__ import annotations

from typing import Any

from ._bench import CELL_ERRORS, Bench, Cell, count, judged_round
from .cells import load


def prepare(bench: Bench, kind: str, kwargs: dict[str, Any]) -> Cell:
    """The cell ``kind(bench, **kwargs)`` makes: ready for its rounds."""
    made: Cell = load(kind)(bench, **kwargs)
    return made


class Engine:
    """Prepares cells from their data, runs their rounds one request at a time, keeps the
    measured rounds' times and results, and summarises each cell once at its end."""

    def __init__(self, timeout: float) -> None:
        self.bench = Bench(timeout)
        self.cells: dict[str, Cell] = {}
        self.seconds: dict[str, list[float]] = {}
        self.results: dict[str, list[Any]] = {}
        self.voids: dict[str, list[str]] = {}

    def prepare(self, key: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Start what the cell needs (models, servers) before any round: ``{}`` or
        ``{"error": why}``."""
        try:
            self.cells[key] = prepare(self.bench, kind, kwargs)
        except (*CELL_ERRORS, TypeError) as exc:  # TypeError: kwargs the kind does not take
            return {"error": f"could not prepare the cell: {type(exc).__name__}: {exc}"}
        self.seconds[key], self.results[key], self.voids[key] = [], [], []
        return {}

    def round(self, key: str, keep: bool) -> dict[str, Any]:
        """One judged round: its seconds and CPU, void rounds thrown away meanwhile, or
        the error that fails the cell.  ``keep``: a measured round (not a warm-up)."""
        voids = self.voids[key]
        before = len(voids)
        try:
            done, problem = judged_round(self.cells[key], voids)
        except CELL_ERRORS as exc:
            return {"error": str(exc), "voids": voids[before:]}
        if done is None:
            return {"error": problem, "voids": voids[before:]}
        if keep:
            self.seconds[key].append(done.seconds)
            self.results[key].append(done.result)
        reply = {"seconds": done.seconds, "cpu_s": done.cpu_s, "voids": voids[before:]}
        counter = count()
        if counter is not None:  # a count run: the round's instructions, every process's
            reply["instructions"] = sum(counter.last.values())
            reply["counted_processes"] = len(counter.last)
        return reply

    def finish(self, key: str) -> dict[str, Any]:
        """More ``extra_info`` from the measured rounds, or the error after them."""
        try:
            extra = self.cells[key].finish(self.seconds[key], self.results[key])
        except CELL_ERRORS as exc:
            return {"error": f"after its rounds: {exc}"}
        finally:
            self.results[key] = []
        return {"extra": extra}

    def close(self) -> None:
        self.bench.close()
        self.cells.clear()
