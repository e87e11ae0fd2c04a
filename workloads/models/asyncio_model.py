"""asyncio and uvloop: the ``coro`` flavour gathered on one event loop made at start."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from .._spec import Workload
from ._base import Model, ModelTimeout


async def _bounded(coro: Coroutine[Any, Any, Any], limit: asyncio.Semaphore | None) -> Any:
    if limit is None:
        return await coro
    async with limit:
        return await coro


class AsyncioModel(Model):
    name = "asyncio"
    flavour = "coro"
    colour_seed = 5
    process_scope = "single"
    descriptors = 4

    def __init__(self, workers: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(workers, timeout)
        self.loop: asyncio.AbstractEventLoop | None = None

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def start(self) -> AsyncioModel:
        self.loop = self.new_loop()
        super().start()
        return self

    async def _gather(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        fn = workload.task(self.flavour, **params)
        limit = asyncio.Semaphore(self.workers) if self.workers else None
        return await asyncio.wait_for(
            asyncio.gather(*(_bounded(fn(i), limit) for i in range(tasks))), self.timeout
        )

    def run(self, workload: Workload, params: dict[str, Any], tasks: int) -> list[Any]:
        if self.loop is None:
            raise self._fail("not started")
        try:
            return self.loop.run_until_complete(self._gather(workload, params, tasks))
        except TimeoutError as exc:
            # The loop survives a cancelled gather, but a fresh one is cheap and certain.
            raise self._fail(f"tasks unfinished after {self.timeout} s", ModelTimeout) from exc

    def close(self) -> None:
        loop, self.loop = self.loop, None
        if loop is not None:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        super().close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "loop": type(self.loop).__module__ if self.loop else None}


class UvloopModel(AsyncioModel):
    name = "uvloop"
    colour_seed = 6
    libraries = ("uvloop",)
    requires = ("uvloop", "pip install 'boundbench[uvloop]'")

    def new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
