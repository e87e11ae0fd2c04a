"""Small, realistic pytest-benchmark runs for the report tests.

``python -m tests._report_fixtures`` rewrites the committed JSON under
``tests/fixtures/reports/``; the tests read those files, and build larger synthetic
sets (the 500-benchmark timing) with :func:`synthetic_run` in a temporary folder.
Numbers are made up but shaped like the real thing: a deterministic seed, the GIL
flattening pure-Python threads, sleeps overlapping, a little noise.
"""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
# One small run per schema of the saved results: old runs must stay readable.
SCHEMA_FIXTURES = Path(__file__).parent / "fixtures" / "schema"

CPU_MODELS = ("serial", "generator", "threads", "processes", "gevent", "asyncio")
IO_MODELS = ("serial", "generator", "threads", "processes", "gevent", "asyncio", "uvloop")
NET_STYLES = ("threads", "selectors", "asyncio", "gevent")
FLAVOUR = {
    "serial": "sync",
    "generator": "gen",
    "threads": "sync",
    "processes": "sync",
    "gevent": "sync",
    "asyncio": "coro",
    "uvloop": "coro",
}


def machine_info(
    node: str, python: str = "3.11.7", *, free: bool = False, gil: bool = True, cpus: int = 2
) -> dict[str, Any]:
    return {
        "node": node,
        "processor": "x86_64",
        "machine": "x86_64",
        "python_compiler": "GCC 12.2.0",
        "python_implementation": "CPython",
        "python_implementation_version": python,
        "python_version": python,
        "python_build": ["main", "Nov 28 2024 10:00:00"],
        "release": "6.1.0-27-amd64",
        "system": "Linux",
        "cpu": {"arch": "X86_64", "count": cpus, "brand_raw": "Synthetic CPU"},
        "boundbench": {
            "cpu_count": cpus,
            "cpu_usable": cpus,
            "python_version": python,
            "python_implementation": "CPython",
            "python_build": "main Nov 28 2024 10:00:00",
            "free_threading_build": free,
            "gil_enabled": gil,
            "switch_interval": 0.005,
            "default_start_method": "forkserver",
            "start_methods": ["fork", "spawn", "forkserver"],
        },
    }


def _stats(
    rng: random.Random, median: float, rounds: int, spread: float, *, save_data: bool = False
) -> dict[str, Any]:
    data = sorted(median * math.exp(rng.gauss(0.0, spread)) for _ in range(rounds))
    if rounds >= 2:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    else:
        q1 = q3 = data[0]
    mean = statistics.fmean(data)
    return {
        "min": data[0],
        "max": data[-1],
        "mean": mean,
        "stddev": statistics.stdev(data) if rounds >= 2 else 0.0,
        "rounds": rounds,
        "median": statistics.median(data),
        "iqr": q3 - q1,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": 0,
        "stddev_outliers": 1,
        "outliers": "1;0",
        "ld15iqr": data[0],
        "hd15iqr": data[-1],
        "ops": 1.0 / mean,
        "total": sum(data),
        "iterations": 1,
        # --benchmark-save-data: every round, in the order they ran.
        **({"data": rng.sample(data, len(data))} if save_data else {}),
    }


def _bench(
    test: str,
    ids: list[str],
    group: str,
    extra: dict[str, Any],
    stats: dict[str, Any],
    param: dict[str, Any],
) -> dict[str, Any]:
    name = f"{test}[{'-'.join(ids)}]"
    return {
        "group": group,
        "name": name,
        "fullname": f"benchmarks/bench_{group}.py::{name}",
        "params": param,
        "param": "-".join(ids),
        "extra_info": extra,
        "options": {
            "disable_gc": False,
            "timer": "perf_counter",
            "min_rounds": 5,
            "max_time": 1.0,
            "min_time": 5e-06,
            "warmup": False,
        },
        "stats": stats,
    }


def _cell(
    rng: random.Random,
    *,
    bound: str,
    workload: str,
    model: str,
    tasks: int,
    workers: int,
    params: dict[str, Any],
    wall: float,
    cpu: float,
    ideal: float | None = None,
    extra: dict[str, Any] | None = None,
    group: str | None = None,
    spread: float = 0.03,
    rounds: int = 7,
    save_data: bool = False,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "bound": bound,
        "workload": workload,
        "model": model,
        "flavour": FLAVOUR.get(model, "sync"),
        "tasks": tasks,
        "workers": workers,
        "params": params,
        "cpu_s": round(cpu * math.exp(rng.gauss(0.0, 0.02)), 6),
        "profile": "quick",
    }
    if ideal is not None:
        info["ideal_s"] = ideal
    if model == "processes":
        info["start_method"] = "forkserver"
    info.update(extra or {})
    ids = [model, f"tasks{tasks}", f"workers{workers}"]
    ids += [f"{key}{value}" for key, value in sorted(params.items())]
    param = {"model": model, "tasks": tasks, "workers": workers}
    ids += [str(info[key]) for key in ("collect", "cpu_placement") if key in info]
    stats = _stats(rng, wall, rounds, spread, save_data=save_data)
    return _bench(f"test_{workload}", ids, group or workload, info, stats, param)


def synthetic_run(
    seed: int = 0,
    *,
    cpus: int = 2,
    gil: bool = True,
    scale: float = 1.0,
    task_counts: tuple[int, ...] = (4,),
    net: bool = True,
    extras: bool = True,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """The benchmarks of one run; ``repeat`` multiplies the cells by parameter sets."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for rep in range(repeat):
        for tasks in task_counts:
            n = 200_000 * (rep + 1)
            one = 0.02 * scale * (rep + 1)
            for workload, bound, native in (
                ("cpu_loop", "cpu", False),
                ("cpu_native", "cpu", True),
            ):
                params = {"n": n, "yield_every": 1000} if not native else {"size": n}
                serial = one * tasks
                for model in CPU_MODELS:
                    workers = (
                        1
                        if model in ("serial", "generator", "gevent", "asyncio")
                        else (min(tasks, cpus))
                    )
                    if model == "threads":
                        parallel = min(workers, cpus) if (native or not gil) else 1
                        wall = serial / parallel * 1.04
                    elif model == "processes":
                        wall = serial / min(workers, cpus) * 1.08 + 0.004
                    else:
                        wall = (
                            serial
                            * {"serial": 1.0, "generator": 1.12, "gevent": 1.05, "asyncio": 1.09}[
                                model
                            ]
                        )
                    cpu = wall * (min(workers, cpus) if model == "processes" else 1.0)
                    out.append(
                        _cell(
                            rng,
                            bound=bound,
                            workload=workload,
                            model=model,
                            tasks=tasks,
                            workers=workers,
                            params=params,
                            wall=wall,
                            cpu=cpu,
                        )
                    )
            k, d = 2, 0.02 * (rep + 1)
            for model in IO_MODELS:
                workers = 1 if model == "serial" else (2 if model == "processes" else tasks)
                ideal = k * d * math.ceil(tasks / workers)
                if model == "serial":
                    wall = ideal * 1.004
                else:
                    wall = (
                        ideal * 1.01
                        + {
                            "generator": 0.0004,
                            "threads": 0.0008,
                            "processes": 0.003,
                            "gevent": 0.0006,
                            "asyncio": 0.0005,
                            "uvloop": 0.0003,
                        }[model]
                    )
                cpu = {
                    "serial": 0.0004,
                    "generator": 0.0009,
                    "threads": 0.003,
                    "processes": 0.02,
                    "gevent": 0.002,
                    "asyncio": 0.002,
                    "uvloop": 0.0012,
                }[model] * tasks
                out.append(
                    _cell(
                        rng,
                        bound="io",
                        workload="io_sleep",
                        model=model,
                        tasks=tasks,
                        workers=workers,
                        params={"k": k, "d": d},
                        wall=wall,
                        cpu=cpu,
                        ideal=ideal,
                        spread=0.01,
                    )
                )
    if extras:
        out.extend(_extras(rng, scale))
    if net:
        out.extend(_net(rng))
    return out


def _extras(rng: random.Random, scale: float) -> list[dict[str, Any]]:
    out = []
    for model, factor in (("serial", 1.0), ("generator", 1.15)):
        out.append(
            _cell(
                rng,
                bound="cpu",
                workload="seed_cpu",
                model=model,
                tasks=3,
                workers=1,
                params={"n": 100_000},
                wall=0.03 * scale * factor,
                cpu=0.03 * scale * factor,
                group="seed",
            )
        )
    for model, wall in (("serial", 0.3), ("gevent", 0.1015)):
        out.append(
            _cell(
                rng,
                bound="io",
                workload="seed_io",
                model=model,
                tasks=3,
                workers=1 if model == "serial" else 3,
                params={"d": 0.1},
                wall=wall,
                cpu=0.001,
                ideal=0.1,
                group="seed",
            )
        )
    for model, method, wall in (
        ("threads", None, 0.0004),
        ("processes", "fork", 0.006),
        ("processes", "forkserver", 0.03),
        ("processes", "spawn", 0.09),
        ("gevent", None, 0.15),
    ):
        params = {"start_method": method} if method else {}
        extra = {"start_method": method} if method else {}
        out.append(
            _cell(
                rng,
                bound="cpu",
                workload="startup",
                model=model,
                tasks=1,
                workers=2,
                params=params,
                wall=wall,
                cpu=wall * 0.8,
                extra=extra,
                group="startup",
                spread=0.08,
            )
        )
    return out


def _net(
    rng: random.Random,
    styles: tuple[str, ...] = NET_STYLES,
    payloads: tuple[int, ...] = (64, 4096),
    connections_swept: tuple[int, ...] = (1, 16),
) -> list[dict[str, Any]]:
    out = []
    base = {"threads": 9000.0, "selectors": 12000.0, "asyncio": 10000.0, "gevent": 11000.0}
    for style in styles:
        for payload in payloads:
            for connections in connections_swept:
                requests = 2000
                rps = (base.get(style, 10000.0) * (1.6 if connections > 1 else 1.0)
                       / (1 + payload / 16384))  # fmt: skip
                rps *= math.exp(rng.gauss(0.0, 0.03))
                p50 = connections / rps * 1000.0
                extra = {
                    "payload": payload,
                    "connections": connections,
                    "requests": requests,
                    "throughput_rps": rps,
                    "throughput_mb_s": rps * payload * 2 / 1e6,
                    "latency_p50_ms": p50,
                    "latency_p90_ms": p50 * 1.6,
                    "latency_p99_ms": p50 * (3.0 if style == "threads" else 2.2),
                    "latency_p999_ms": p50 * 4.0,
                    "latency_max_ms": p50 * 6.0,
                    "errors": 0,
                    "server_cpu_s": requests / rps * 0.7,
                    "client_cpu_s": requests / rps * 0.5,
                }
                cell = _cell(
                    rng,
                    bound="net",
                    workload="echo",
                    model=style,
                    tasks=connections,
                    workers=connections,
                    params={"payload": payload, "requests": requests},
                    wall=requests / rps,
                    cpu=requests / rps * 1.2,
                    extra=extra,
                    group="net",
                )
                cell["extra_info"]["flavour"] = "coro" if style == "asyncio" else "sync"
                out.append(cell)
    return out


# --- the sweeps with charts of their own, and the newer groups -----------------------

MIXED_SHARES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
# Seconds per iteration the suite sizes ``cpu_iters`` from (workloads/mixed.py).
DOCUMENTED_ITER_S = 50e-9
SINGLE = ("serial", "generator", "threads", "gevent", "asyncio", "uvloop")
MULTI = ("processes", "asyncio_processes", "interpreters", "dask")


def mixed_cell(
    rng: random.Random,
    *,
    model: str,
    share: float,
    wall: float,
    kind: str = "python",
    tasks: int = 8,
    workers: int = 1,
    cpus: int = 2,
    task_s: float = 0.2,
    spread: float = 0.02,
    save_data: bool = True,
    per_iter: float = DOCUMENTED_ITER_S,
    exact_cpu: bool = False,
) -> dict[str, Any]:
    """One cell of the crossover sweep (group ``mixed:KIND``), as docs/contract.md says.

    ``cpu_iters`` is the suite's fixed count for the share asked for; ``per_iter`` is what
    an iteration took on the host (half the documented 50 ns on a host twice as fast), so
    the CPU part, ``cpu_s`` and the ideal follow the host.  ``exact_cpu``: ``cpu_s``
    without its 2 % noise (the measured share is then exactly the one asked for).
    """
    iters = round(share * task_s / DOCUMENTED_ITER_S)
    cpu, wait = iters * per_iter, (1.0 - share) * task_s
    params = {"cpu_share": share, "task_s": task_s, "steps": 4, "cpu_iters": iters,
              "cpu_kind": kind}  # fmt: skip
    extra = {"cpu_share": share, "cpu_kind": kind, "seconds_per_iter": per_iter}
    cell = _cell(
        rng,
        bound="mixed",
        workload="mixed",
        model=model,
        tasks=tasks,
        workers=workers,
        params=params,
        wall=wall,
        cpu=tasks * cpu,
        ideal=max(tasks * cpu / cpus, cpu + wait),
        extra=extra,
        group=f"mixed:{kind}",
        spread=spread,
        rounds=9,
        save_data=save_data,
    )
    if exact_cpu:
        cell["extra_info"]["cpu_s"] = tasks * cpu
    return cell


def mixed_sweep(
    rng: random.Random,
    *,
    tasks: int = 8,
    cpus: int = 2,
    task_s: float = 0.2,
    per_iter: float = DOCUMENTED_ITER_S,
) -> list[dict[str, Any]]:
    """A plausible crossover sweep on a GIL build: both kinds, every model.

    Python CPU: single-process models overlap only the waits (one GIL), so the pools of
    processes win once the CPU parts add up (between 10% and 25% here).  Native CPU:
    threads run the hashing in parallel and keep up with the process pools.  On a host
    where an iteration takes ``per_iter`` (25 ns: twice as fast), every share asked for
    is a smaller share of the work.
    """
    out = []
    for kind in ("python", "native"):
        for share in MIXED_SHARES:
            cpu = share * task_s * (per_iter / DOCUMENTED_ITER_S)
            wait = (1.0 - share) * task_s
            one = max(tasks * cpu, cpu + wait)
            cores = max(tasks * cpu / cpus, cpu + wait)
            walls: dict[tuple[str, int], float] = {
                ("serial", 1): tasks * (cpu + wait),
                ("generator", 1): one * 1.06 + 0.002,
                ("gevent", 1): one * 1.05 + 0.003,
                ("asyncio", 1): one * 1.04 + 0.002,
                ("uvloop", 1): one * 1.03 + 0.002,
                ("threads", cpus): max(tasks * cpu, tasks * (cpu + wait) / cpus) * 1.05,
                ("threads", tasks): (cores if kind == "native" else one) * 1.05 + 0.004,
                ("processes", cpus): tasks * (cpu + wait) / cpus * 1.08 + 0.004,
                ("processes", tasks): cores * 1.12 + 0.01,
                ("asyncio_processes", cpus): cores * 1.09 + 0.006,
                ("interpreters", cpus): tasks * (cpu + wait) / cpus * 1.06 + 0.004,
                ("dask", cpus): tasks * (cpu + wait) / cpus * 1.1 + 0.05,
            }
            for (model, workers), wall in walls.items():
                # Serial's cells measure the share (its CPU time ÷ wall time): steady here,
                # so the work has exactly the share asked for on the documented host.
                steady = model == "serial"
                out.append(mixed_cell(rng, model=model, share=share, wall=wall, kind=kind,
                                      tasks=tasks, workers=workers, cpus=cpus, task_s=task_s,
                                      spread=0.0 if steady else 0.02, per_iter=per_iter,
                                      exact_cpu=steady))  # fmt: skip
    return out


# Efficiency at 10 / 100 / 1,000 / 10,000 / 100,000 tasks (issue 10's throwaway figures);
# None: no cell (threads stop at an OS limit).
SCALE_EFFICIENCY = {
    "generator": (0.995, 0.99, 0.98, 0.82, 0.61),
    "threads": (0.97, 0.85, 0.36, None, None),
    "gevent": (0.98, 0.90, 0.83, 0.22, None),
    "asyncio": (0.99, 0.93, 0.87, 0.37, 0.12),
    "uvloop": (0.99, 0.96, 0.91, 0.52, 0.2),
}
SCALE_KB = {"generator": 0.9, "threads": 9.5, "gevent": 4.1, "asyncio": 1.3, "uvloop": 1.1}
SCALE_TASKS = (10, 100, 1_000, 10_000, 100_000)


def scale_sweep(
    rng: random.Random, *, efficiency: Any = None, spread: float = 0.02
) -> list[dict[str, Any]]:
    """Groups ``scale:io_sleep`` and ``scale:io_spin``: 3 sleeps of 50 ms per task."""
    table = SCALE_EFFICIENCY if efficiency is None else efficiency
    out = []
    k, d = 3, 0.05
    for variant, spin in (("io_sleep", 0.0), ("io_spin", 5e-6)):
        for model, figures in table.items():
            for tasks, eff in zip(SCALE_TASKS, figures, strict=True):
                if eff is None:
                    continue
                ideal = k * d + (tasks * k * spin if spin else 0.0)
                wall = ideal / eff
                kb = SCALE_KB.get(model, 2.0) * (1.0 + 10.0 / tasks)
                extra = {
                    "us_per_task": (wall - ideal) / tasks * 1e6,
                    "cpu_us_per_task": 3.0 + (wall - ideal) / tasks * 1e6 * 0.8,
                    # the memory figure may be missing (a platform without /proc)
                    "kb_per_task": None if variant == "io_spin" and model == "gevent" else kb,
                }
                params = {"k": k, "d": d} | ({"spin_s": spin} if spin else {})
                out.append(_cell(rng, bound="io", workload="io_sleep", model=model, tasks=tasks,
                                 workers=tasks if model == "threads" else 1, params=params,
                                 wall=wall, cpu=wall * 0.3, ideal=ideal, extra=extra,
                                 group=f"scale:{variant}", spread=spread, rounds=5,
                                 save_data=True))  # fmt: skip
    return out


# Echo throughput (req/s) beside 0, 1, 2, 4 CPU threads, per placement and switch interval.
CONVOY_ALONE = 30_000.0
CONVOY_ONE_THREAD = {
    ("threads", 0.005): 100.0,
    ("threads", 0.001): 480.0,
    ("threads", 0.0001): 3_200.0,
    ("native", 0.005): 24_000.0,
    ("native", 0.001): 24_500.0,
    ("native", 0.0001): 25_000.0,
    ("processes", 0.005): 27_000.0,
    ("processes", 0.001): 27_000.0,
    ("processes", 0.0001): 27_000.0,
}


def convoy_sweep(
    rng: random.Random, *, one_thread: Any = None, alone: float = CONVOY_ALONE
) -> list[dict[str, Any]]:
    """Group ``convoy``: an echo server thread beside 0, 1, 2 and 4 CPU-bound threads."""
    table = CONVOY_ONE_THREAD if one_thread is None else one_thread
    out = []
    requests = 2000
    for (placement, switch), with_one in table.items():
        for threads in (0, 1, 2, 4):
            rps = alone if threads == 0 else with_one / (1.0 if threads == 1 else threads * 0.6)
            p50 = 1000.0 / rps
            extra = {
                "cpu_threads": threads,
                "switch_interval_s": switch,
                "cpu_placement": placement,
                "throughput_rps": rps,
                "latency_p50_ms": p50,
                "latency_p99_ms": p50 * (2.0 if threads == 0 else 3.5),
            }
            params = {"cpu_threads": threads, "switch_interval_s": switch, "requests": requests}
            out.append(_cell(rng, bound="net", workload="convoy", model="threads", tasks=1,
                             workers=1, params=params, wall=requests / rps, cpu=requests / rps,
                             extra=extra, group="convoy", spread=0.02, rounds=5,
                             save_data=True))  # fmt: skip
    return out


def newer_cells(
    rng: random.Random,
    *,
    tasks: int = 100,
    connects: tuple[str, ...] = ("keep",),
    size: int = 64,
    pool: int = 2,
    seed_pools: bool = True,
) -> list[dict[str, Any]]:
    """io_socket cells (every model, interpreters and dask too; per connect mode) and the
    tutorial's pools.  ``pool``: the process pools' workers; below ``tasks`` and above 2
    the harness capped them (``workers_cap``), as it does at 32."""
    out = []
    k, delay = 5, 0.005
    ideal = k * delay
    overhead = {"serial": None, "generator": 0.0012, "threads": 0.004, "gevent": 0.002,
                "asyncio": 0.0025, "uvloop": 0.0012, "processes": None,
                "interpreters": None, "dask": None}  # fmt: skip
    for connect in connects:
        for model, extra_s in overhead.items():
            extra: dict[str, Any] = {}
            if model == "serial":
                workers, wall = 1, tasks * ideal * 1.02
            elif extra_s is None:
                workers = pool
                wall = (math.ceil(tasks / workers) * ideal * 1.03
                        + (0.08 if model == "dask" else 0.01))  # fmt: skip
                if 2 < pool < tasks:
                    extra["workers_cap"] = pool
            else:
                workers, wall = (tasks if model == "threads" else 1), ideal + extra_s
            out.append(_cell(rng, bound="io", workload="io_socket", model=model, tasks=tasks,
                             workers=workers,
                             params={"k": k, "size": size, "delay": delay, "connect": connect},
                             wall=wall, cpu=wall * 0.2, ideal=ideal, extra=extra,
                             group=f"io_socket:{connect}:tasks={tasks}",
                             save_data=True))  # fmt: skip
    # The tutorial's pools (benchmarks/test_seed.py): three ways to gather the results.
    for model in ("threads", "processes") if seed_pools else ():
        for collect, factor in (("callback", 1.0), ("result", 1.01), ("as_completed", 1.02)):
            wall = (0.203 if model == "threads" else 0.24) * factor
            out.append(_cell(rng, bound="io", workload=f"seed_pool_{model}", model=model,
                             tasks=2, workers=2, params={"sleep_s": 0.2, "collect": collect},
                             wall=wall, cpu=wall * 0.1, ideal=0.2, extra={"collect": collect},
                             group="seed", save_data=True))  # fmt: skip
    return out


def sweep_cells(seed: int = 20) -> list[dict[str, Any]]:
    """Every newer kind of cell, from its own seed (the older cells stay as they were)."""
    rng = random.Random(seed)
    return [*mixed_sweep(rng), *scale_sweep(rng), *convoy_sweep(rng), *newer_cells(rng)]


def as_plugin(
    benchmarks: list[dict[str, Any]], name: str, *, like: str, factor: float = 1.0
) -> list[dict[str, Any]]:
    """Cells of a plugin model ``name`` the suite does not know: copies of ``like``'s
    cells (workers, parameters, groups), each round ``factor`` times as long."""
    out = []
    for bench in benchmarks:
        extra = bench["extra_info"]
        if extra.get("model") != like or extra.get("bound") == "net":
            continue
        cell = copy.deepcopy(bench)
        cell["extra_info"].update(model=name, flavour="sync")
        cell["extra_info"].pop("start_method", None)
        cell["extra_info"].get("params", {}).pop("start_method", None)
        cell["name"] = cell["name"].replace(f"[{like}-", f"[{name}-")
        cell["fullname"] = cell["fullname"].replace(f"[{like}-", f"[{name}-")
        cell["param"] = cell["param"].replace(like, name, 1)
        cell["params"]["model"] = name
        stats = cell["stats"]
        for key in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev", "total"):
            stats[key] *= factor
        stats["ops"] /= factor
        if "data" in stats:
            stats["data"] = [value * factor for value in stats["data"]]
        cell["extra_info"]["cpu_s"] *= factor
        out.append(cell)
    # One start-up cell, whatever start methods ``like`` had.
    startups = [c for c in out if c["extra_info"]["workload"] == "startup"]
    return [c for c in out if c["extra_info"]["workload"] != "startup"] + startups[:1]


# The longest parameters the suite's profiles give each workload (benchmarks/: the full
# profile's cpu_loop and cpu_native, io_sleep's k and d, io_socket's 1 KiB round trips
# over fresh connections), the server styles of workloads.net and the echo profiles'
# payloads and connection counts: what the charts' labels must hold.
LONGEST_PARAMS: dict[str, dict[str, Any]] = {
    "cpu_loop": {"n": 5_000_000, "yield_every": 1_000},
    "cpu_native": {"size": 4 << 20, "rounds": 64},
    "io_sleep": {"k": 5, "d": 0.02},
}
ALL_STYLES = ("threaded", "gevent", "nonblocking", "select", "selectors", "generator",
              "asyncio", "asyncio_protocol", "uvloop")  # fmt: skip
LONG_PLUGIN = "loky_process_pool"


def longest_cells(seed: int, *, gil: bool = True) -> list[dict[str, Any]]:
    """One run of every kind of cell, every built-in model and a plugin, with the longest
    parameter strings, task counts and server styles the suite makes."""
    rng = random.Random(seed)
    cells = synthetic_run(seed, gil=gil, task_counts=(1, 2, 4, 8), net=False)
    for cell in cells:
        extra = cell["extra_info"]
        if extra["workload"] in LONGEST_PARAMS:
            extra["params"] = dict(LONGEST_PARAMS[extra["workload"]])
    work = [c for c in cells if c["extra_info"]["workload"] in LONGEST_PARAMS]
    cpu = [c for c in work if c["extra_info"]["bound"] == "cpu"]  # uvloop has its I/O cells
    cells += as_plugin(cpu, "uvloop", like="asyncio", factor=0.98)
    for name, factor in (("asyncio_processes", 1.03), ("interpreters", 1.05), ("dask", 1.3),
                         (LONG_PLUGIN, 0.97)):  # fmt: skip
        cells += as_plugin(cells, name, like="processes", factor=factor)
    for tasks in (10, 100, 500):
        cells += newer_cells(rng, tasks=tasks, connects=("keep", "fresh"), size=1024, pool=32,
                             seed_pools=tasks == 10)  # fmt: skip
    cells += _net(rng, ALL_STYLES, payloads=(64, 1024, 65536), connections_swept=(1, 10, 100))
    return [*cells, *mixed_sweep(rng), *scale_sweep(rng), *convoy_sweep(rng)]


def run_document(
    benchmarks: list[dict[str, Any]],
    *,
    node: str,
    when: str,
    commit: str,
    python: str = "3.11.7",
    free: bool = False,
    gil: bool = True,
    cpus: int = 2,
    models: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A saved run; ``models``: what ``workloads.models.report_facts()`` saves (runs made
    before it have none)."""
    info = machine_info(node, python, free=free, gil=gil, cpus=cpus)
    if models is not None:
        info["boundbench"]["models"] = models
    return {
        "machine_info": info,
        "commit_info": {
            "id": commit,
            "time": when,
            "author_time": when,
            "dirty": False,
            "project": "boundbench",
            "branch": "main",
        },
        "benchmarks": benchmarks,
        "datetime": when,
        "version": "5.2.3",
    }


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=4) + "\n", encoding="utf-8")
    return path


def write_fixtures(root: Path = FIXTURES) -> None:
    machine = root / "runs" / "Linux-CPython-3.11-64bit"
    commits = (
        "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
        "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
    )
    when = ("2025-01-10T09:00:00.000001+00:00", "2025-01-17T09:00:00.000001+00:00")
    for i, (commit, stamp) in enumerate(zip(commits, when, strict=True)):
        benchmarks = synthetic_run(seed=i, scale=1.0 + 0.1 * i)
        if i == 1:  # the latest run has every newer kind of cell too
            benchmarks += sweep_cells()
        document = run_document(benchmarks, node="bench-a", when=stamp, commit=commit)
        write(
            machine / f"{i + 1:04d}_{commit[:8]}_{stamp[:10].replace('-', '')}_uncommited.json",
            document,
        )
    free = run_document(
        synthetic_run(seed=7, gil=False, net=False, extras=False),
        node="bench-a",
        when="2025-01-17T10:00:00.000001+00:00",
        commit=commits[1],
        python="3.13.1",
        free=True,
        gil=False,
    )
    write(root / "runs" / "Linux-CPython-3.13-64bit" / "0001_2b3c4d5e_20250117.json", free)
    bad = root / "bad"
    good_text = json.dumps(
        run_document(
            synthetic_run(seed=3, net=False, extras=False),
            node="bench-b",
            when=when[0],
            commit=commits[0],
        ),
        indent=4,
    )
    (bad / "truncated.json").parent.mkdir(parents=True, exist_ok=True)
    (bad / "truncated.json").write_text(good_text[: len(good_text) // 3], encoding="utf-8")
    (bad / "not_json.json").write_text("this is not JSON\n", encoding="utf-8")
    plain = run_document(
        synthetic_run(seed=4, net=False, extras=False)[:3],
        node="bench-b",
        when=when[0],
        commit=commits[0],
    )
    for bench in plain["benchmarks"]:
        bench["extra_info"] = {}
    write(bad / "plain_pytest_benchmark.json", plain)
    no_serial = [
        b
        for b in synthetic_run(seed=5, net=False, extras=False)
        if b["extra_info"]["model"] != "serial" or b["extra_info"]["workload"] == "io_sleep"
    ]
    write(
        bad / "no_serial.json",
        run_document(no_serial, node="bench-b", when=when[1], commit=commits[1]),
    )


def schema_run(version: int, seed: int = 11) -> dict[str, Any]:
    """A small run as schema ``version`` wrote it (1: before schema_version existed)."""
    benchmarks = [
        b for b in synthetic_run(seed=seed, extras=False) if b["extra_info"]["bound"] != "cpu"
    ]
    benchmarks += [
        b
        for b in synthetic_run(seed=seed, net=False, extras=False)
        if b["extra_info"]["workload"] == "cpu_loop"
    ]
    for bench in benchmarks:
        extra = bench["extra_info"]
        if extra["bound"] == "net":
            # schema 1: `workers` held the load client's processes; 2 names them apart.
            if version == 1:
                extra["workers"] = 2
            else:
                extra["client_processes"] = 2
                extra["workers"] = extra["connections"]
        if version >= 2 and extra["model"] == "processes" and extra["bound"] == "io":
            extra["workers_cap"] = extra["workers"]
    document = run_document(
        benchmarks,
        node="bench-a",
        when=f"2025-02-0{version}T09:00:00.000001+00:00",
        commit=f"{version}" * 40,
    )
    if version >= 2:
        document["machine_info"]["boundbench"].update(
            schema_version=version,
            libraries={"pytest-benchmark": "5.2.3", "gevent": "25.5.1", "uvloop": "0.21.0"},
            load_avg_start=[0.2, 0.3, 0.3],
            load_avg_end=[1.9, 1.2, 0.7],
            cpu_count=2,
        )
    return document


def write_schema_fixtures(root: Path = SCHEMA_FIXTURES) -> None:
    for version in (1, 2):
        write(root / f"schema{version}" / f"000{version}_schema{version}.json", schema_run(version))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "schema":
        write_schema_fixtures()
    else:
        write_fixtures(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES)
