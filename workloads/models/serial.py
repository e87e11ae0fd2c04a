"""serial: the tasks one after another in this thread; the baseline of every speedup."""

from __future__ import annotations

from typing import Any

from .._spec import Workload
from ._base import Model


class SerialModel(Model):
    name = "serial"
    flavour = "sync"
    colour_seed = 0
    process_scope = "single"

    @classmethod
    def worker_counts(cls, bound: str, tasks: int) -> list[int]:
        return [1]

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task(self.flavour, **params)
        return [fn(task_id) for task_id in range(tasks)]
