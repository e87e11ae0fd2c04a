"""A user's workload, as a user writes it: parse a JSON document, hash it, wait on a service.

Run it under every model (from the project's root)::

    PYTHONPATH=examples pytest benchmarks/ --workload user_workload:ORDERS
    PYTHONPATH=examples pytest benchmarks/ --workload user_workload:ORDERS,orders=500,wait_s=0.01

Each task parses a batch of ``orders`` JSON orders (CPU, holding the GIL), hashes the
canonical form of each (C, mostly without the GIL), then waits ``wait_s`` seconds for a
pretend remote service (a sleep: for real socket I/O see the ``io_socket`` workload).
``sync`` is all a workload needs; the ``coro`` flavour lets asyncio and uvloop run it
too (the ``gen`` one is left out here, so the generator model skips it and says why).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

from workloads import make_workload

N_ORDERS = 200
WAIT_S = 0.005


def _document(task_id: int, orders: int) -> str:
    items = [
        {
            "id": task_id * orders + i,
            "sku": f"SKU-{i % 97:03d}",
            "qty": i % 7 + 1,
            "price": i * 0.25,
        }
        for i in range(orders)
    ]
    return json.dumps({"task": task_id, "orders": items})


def _digest(document: str) -> str:
    parsed = json.loads(document)
    digest = hashlib.sha256()
    for order in parsed["orders"]:
        digest.update(json.dumps(order, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def orders_sync(task_id: int, orders: int = N_ORDERS, wait_s: float = WAIT_S) -> tuple[int, str]:
    digest = _digest(_document(task_id, orders))
    time.sleep(wait_s)  # the remote service answers
    return task_id, digest


async def orders_coro(
    task_id: int, orders: int = N_ORDERS, wait_s: float = WAIT_S
) -> tuple[int, str]:
    digest = _digest(_document(task_id, orders))
    await asyncio.sleep(wait_s)
    return task_id, digest


# ``--workload user_workload:ORDERS`` names this object.
ORDERS = make_workload("orders", orders_sync, bound="mixed", coro=orders_coro)
