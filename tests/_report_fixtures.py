"""Small, realistic pytest-benchmark runs for the report tests.

``python -m tests._report_fixtures`` rewrites the committed JSON under
``tests/fixtures/reports/``; the tests read those files, and build larger synthetic
sets (the 500-benchmark timing) with :func:`synthetic_run` in a temporary folder.
Numbers are made up but shaped like the real thing: a deterministic seed, the GIL
flattening pure-Python threads, sleeps overlapping, a little noise.
"""

from __future__ import annotations

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


def _stats(rng: random.Random, median: float, rounds: int, spread: float) -> dict[str, Any]:
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
    return _bench(
        f"test_{workload}", ids, group or workload, info, _stats(rng, wall, 7, spread), param
    )


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


def _net(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    base = {"threads": 9000.0, "selectors": 12000.0, "asyncio": 10000.0, "gevent": 11000.0}
    for style in NET_STYLES:
        for payload in (64, 4096):
            for connections in (1, 16):
                requests = 2000
                rps = base[style] * (1.6 if connections > 1 else 1.0) / (1 + payload / 16384)
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
) -> dict[str, Any]:
    return {
        "machine_info": machine_info(node, python, free=free, gil=gil, cpus=cpus),
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
        document = run_document(
            synthetic_run(seed=i, scale=1.0 + 0.1 * i), node="bench-a", when=stamp, commit=commit
        )
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
