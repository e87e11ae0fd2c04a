"""The catalogue: every benchmark cell of the suite, as data.

``CATALOGUE`` maps each benchmark test (its module's one line names it) to its group:
what workload, which parameters per profile, which models and pool sizes, how many
rounds, which extra facts.  ``benchmarks/_harness.py`` turns an entry into pytest items
and cells in one way for all; ``workloads.runner`` measures the cells.  Adding a
built-in workload group is a workload module plus an entry here.

Profiles: ``quick`` is a smoke run that still shows every effect (~70 s on 2 cores);
``standard`` is the default, the figures in the notes come from it (~5 min); ``full``
has bigger tasks, more task counts, the seed's sleeps at their real 2 s.

Rounds: this host has slow phases of seconds.  A cell's rounds interleave with the other
cells of its batch (warm-ups first, then passes in a random order each), so a slow phase
costs many cells a round each; 5 rounds are the fewest with which the regression check's
rank test can decide, and cells that take seconds get fewer (their medians move little).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from benchmarks._groups import (
    APART,
    SCALE_KIND,
    Cell,
    Group,
    ModelGroup,
    Row,
    Session,
    Variant,
    model_rows,
    scale_limits,
    user_variants,
)
from workloads import get_workload, mixed, resolve_workload, seed
from workloads.convoy import MIN_REQUESTS, POOL_START_METHOD, SWITCH_INTERVALS, round_requests
from workloads.io_socket import CONNECT_MODES
from workloads.models import MODELS, cpu_count, get_model, unavailable_models
from workloads.net import STYLES, unavailable_styles

PROFILES = ("quick", "standard", "full")
DEFAULT_PROFILE = "standard"
# The CPU cells' batch: other CPU-bound cells (the seed's loops, start-ups) join it, so
# their rounds spread over its minute instead of a few seconds of their own.
CPU_BATCH = "benchmarks/test_cpu.py"
WARMUP = {"quick": 1, "standard": 1, "full": 2}


def fixed(rounds: Mapping[str, int], warmup: Mapping[str, int] = WARMUP) -> Any:
    """The same rounds for every cell of a group, per profile."""
    return lambda s, v, model, tasks, workers: (rounds[s.profile], warmup[s.profile])


def variants(workload: str, params: Mapping[str, dict[str, Any]], tasks: Any) -> Any:
    """One variant: ``workload`` with its parameters and task counts per profile."""
    return lambda s: [Variant((), "", workload, counted(s, params[s.profile]), tasks[s.profile])]


# A count run's CPU work is smaller: Valgrind runs Python 20-100 times slower, and a
# count per task compares across sizes.  Loops run a tenth of their iterations, hashing
# a quarter of its rounds (the cell names stay; the parameters are in extra_info).
COUNT_SCALE = {"n": 10, "cpu_iters": 10, "rounds": 4}


def counted(s: Session, params: dict[str, Any]) -> dict[str, Any]:
    if s.measure != "instructions":
        return params
    return {k: max(1, v // COUNT_SCALE[k]) if k in COUNT_SCALE and v else v
            for k, v in params.items()}  # fmt: skip


# -- CPU: cpu_loop holds the GIL, cpu_native releases it; every model -------------------

CPU_TASKS = {"quick": (2,), "standard": (2, 4), "full": (1, 2, 4, 8)}
# ~50 ms a task in standard: this host's speed drifts by tens of percent over seconds,
# so many short interleaved rounds give a steadier median than a few long ones.
CPU_PARAMS = {
    "cpu_loop": {
        "quick": {"n": 300_000, "yield_every": 1_000},
        "standard": {"n": 1_000_000, "yield_every": 1_000},
        "full": {"n": 5_000_000, "yield_every": 1_000},
    },
    "cpu_native": {
        "quick": {"size": 1 << 20, "rounds": 16},
        "standard": {"size": 1 << 20, "rounds": 64},
        "full": {"size": 4 << 20, "rounds": 64},
    },
}
CPU_ROUNDS = {"quick": 5, "standard": 11, "full": 25}


def cpu_group(workload: str) -> ModelGroup:
    return ModelGroup(
        variants=variants(workload, CPU_PARAMS[workload], CPU_TASKS),
        rounds=fixed(CPU_ROUNDS),
        batch=CPU_BATCH,
    )


# -- I/O: io_sleep under every model ---------------------------------------------------

IO_TASKS = {"quick": (10, 100), "standard": (10, 100), "full": (1, 10, 100, 1000)}
# 100 ms tasks in standard: fixed per-run costs (100 submissions, a few ms that move
# with the host) stay ~1-3 % of the ideal, so a median holds within ~1 % between runs.
IO_PARAMS = {"quick": {"k": 2, "d": 0.005}, "standard": {"k": 2, "d": 0.05},
             "full": {"k": 5, "d": 0.02}}  # fmt: skip
ROUNDS = {"quick": 5, "standard": 7, "full": 10}
# Cells that take seconds a round because they cannot overlap much (serial, small pools).
SLOW_ROUNDS = {"quick": 1, "standard": 2, "full": 3}


def io_rounds(s: Session, v: Variant, model: str, tasks: int, workers: int) -> tuple[int, int]:
    """The profile's few slow rounds for a cell whose least time is 0.5 s or more, one
    past 3 s (serial's 100 tasks: 10 s; its median moves by ~0.1 % between runs)."""
    least = (get_workload("io_sleep").task_seconds(**v.params) or 0.0) * math.ceil(tasks / workers)
    if least >= 3.0:
        return 1, 0
    if least >= 0.5:
        return SLOW_ROUNDS[s.profile], 0
    return ROUNDS[s.profile], WARMUP[s.profile]


# -- mixed: a CPU share swept from 0 to 1 (the crossover chart) -------------------------
# Each task does task_s of nominal work in `steps` CPU-then-sleep slices; tasks = 4 x
# cores (1 x in quick); the CPU part is a fixed iteration count per share, never
# re-calibrated.  Rounds: what fits round_budget_s at the cell's expected length,
# between min and max; ideal_s from this session's measured seconds per iteration.

ALL_SHARES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
MIXED = {
    # kind -> shares; tasks per core; (round budget s, min rounds, max rounds)
    "quick": ({"python": (0.0, 1.0), "native": (1.0,)}, 1, (0.0, 1, 1)),
    # 0.1 and 0.25: where processes overtake on a few cores; native only in the middle.
    "standard": ({"python": (0.0, 0.1, 0.25, 0.5, 1.0), "native": (0.5,)}, 4, (0.2, 1, 2)),
    # five rounds: the fewest the regression check judges a cell with
    "full": ({"python": ALL_SHARES, "native": ALL_SHARES}, 4, (1.0, 5, 7)),
}
MIXED_STEPS = 4


def mixed_params(cpu_share: float, cpu_kind: str) -> dict[str, Any]:
    return {
        "cpu_share": cpu_share,
        "task_s": mixed.MIN_TASK_S,
        "steps": MIXED_STEPS,
        "cpu_iters": mixed.cpu_iters_for(cpu_share, mixed.MIN_TASK_S, cpu_kind),
        "cpu_kind": cpu_kind,
    }


def mixed_variants(s: Session) -> list[Variant]:
    shares, per_core, _ = MIXED[s.profile]
    tasks = (per_core * cpu_count(),)
    return [
        Variant(
            (kind, share), f"{kind}-{share}", "mixed", counted(s, mixed_params(share, kind)), tasks
        )
        for kind in mixed.CPU_KINDS
        for share in shares.get(kind, ())
    ]


def expected_seconds(
    model: str, workers: int, tasks: int, cpu_s: float, wait_s: float, cores: int, cpu_kind: str
) -> float:
    """A round's rough length, to size the rounds (never reported)."""
    # How many tasks' CPU runs at once: one GIL, unless processes or GIL-free native work.
    spread = model in ("processes", "asyncio_processes") or (
        model == "threads" and cpu_kind == "native"
    )
    parallel = min(cores, workers) if spread else 1
    # How many tasks wait at once: a pool's workers; a scheduler's tasks all overlap.
    overlap = 1 if model == "serial" else workers if model in ("threads", "processes") else tasks
    return max(tasks * cpu_s / parallel, math.ceil(tasks / overlap) * (cpu_s + wait_s))


def rounds_for(budget: tuple[float, int, int], expected_s: float) -> int:
    budget_s, least, most = budget
    if budget_s <= 0 or expected_s <= 0:
        return least
    # (the small slack: 0.3 / 0.1 is 2.999... in floating point)
    return max(least, min(most, math.floor(budget_s / expected_s + 1e-9)))


def mixed_rounds(s: Session, v: Variant, model: str, tasks: int, workers: int) -> tuple[int, int]:
    # From the documented seconds per iteration, not this session's: a run's rounds do
    # not move with the host's speed.  Pools are warmed when they start: no warm-up.
    cpu_s, wait_s = mixed.mixed_parts(**v.params)
    effective = 1 if model == "serial" else min(workers or tasks, tasks)
    kind = v.params["cpu_kind"]
    expected = expected_seconds(model, effective, tasks, cpu_s, wait_s, cpu_count(), kind)
    return rounds_for(MIXED[s.profile][2], expected), 0


def seconds_per_iter(s: Session, cpu_kind: str) -> float:
    """This session's seconds per iteration of ``cpu_kind``, measured once at planning."""
    key = f"mixed:{cpu_kind}"
    if key not in s.measured:
        s.measured[key] = mixed.measure_seconds_per_iter(cpu_kind)
    value: float = s.measured[key]
    return value


def mixed_extra(s: Session, cell: Cell) -> dict[str, Any]:
    params, tasks = cell.info["params"], cell.info["tasks"]
    per_iter = seconds_per_iter(s, params["cpu_kind"])
    cpu_s, wait_s = mixed.mixed_parts(**params, seconds_per_iter=per_iter)
    return {
        "cpu_share": float(params["cpu_share"]),
        "cpu_kind": params["cpu_kind"],
        "seconds_per_iter": per_iter,
        "ideal_s": mixed.mixed_ideal_seconds(tasks, cpu_s, wait_s, cpu_count()),
    }


# -- io_socket: round trips to a loopback echo server that answers `delay` s late -------
# keep: tasks reuse their process's idle connections; fresh: each task connects anew.

IO_SOCKET_CELLS = {
    # tasks, connects, (k, size, delay), (rounds, warmup, slow rounds, very slow rounds)
    "quick": ((50,), ("keep",), (3, 1024, 0.005), (5, 1, 1, 1)),
    "standard": ((100,), CONNECT_MODES, (5, 1024, 0.005), (7, 1, 2, 1)),
    "full": ((10, 100, 500), CONNECT_MODES, (5, 1024, 0.005), (10, 2, 3, 3)),
}
SERVER_STYLE = "selectors"


def io_socket_variants(s: Session) -> list[Variant]:
    tasks, connects, (k, size, delay), _ = IO_SOCKET_CELLS[s.profile]
    params = {"k": k, "size": size, "delay": delay}
    return [Variant((c,), c, "io_socket", {**params, "connect": c}, tasks) for c in connects]


def io_socket_rounds(
    s: Session, v: Variant, model: str, tasks: int, workers: int
) -> tuple[int, int]:
    # One round's least time: one task's round trips per wave of `workers` tasks.
    least = v.params["k"] * v.params["delay"] * math.ceil(tasks / workers)
    rounds, warmup, slow, very_slow = IO_SOCKET_CELLS[s.profile][3]
    if least > 1.0:
        return very_slow, 0
    return (slow, 0) if least > 0.3 else (rounds, warmup)


# -- scale: per-task cost from 10 to 10,000 tasks (100,000 in full) ---------------------
# The single-process schedulers (every model that runs all its tasks at once in one
# process: generator, gevent, asyncio, uvloop, a plugin's), and threads with one thread
# per task (they stop at 1,000 in standard: 10,000 threads took 14-20 s to start here;
# 10,000 in full, under pid_max).  Processes are capped at 32 workers: not in this group.


def schedulers() -> list[str]:
    return [m for m, cls in MODELS.items()
            if cls.process_scope == "single" and cls.worker_counts("io", 2) == [2]]  # fmt: skip


SCALE_PARAMS = {"quick": {"k": 3, "d": 0.005}, "standard": {"k": 3, "d": 0.05},
                "full": {"k": 3, "d": 0.05}}  # fmt: skip
SCALE = {
    # scheduler tasks, thread tasks, rounds by tasks, warm-up by tasks
    "quick": ((10, 1000), (10, 100), {10: 3, 100: 3, 1000: 3}, {}),
    "standard": ((10, 100, 1000, 10_000), (10, 100, 1000), {10: 2, 100: 3, 1000: 3, 10_000: 2},
                 {}),
    "full": ((10, 100, 1000, 10_000, 100_000), (10, 100, 1000, 10_000),
             {10: 5, 100: 5, 1000: 5, 10_000: 3, 100_000: 3}, {10: 1, 100: 1, 1000: 1}),
}  # fmt: skip


def scale_group(workload: str) -> ModelGroup:
    def scale_variants(s: Session) -> list[Variant]:
        params = {**SCALE_PARAMS[s.profile], **({"spin": 64} if workload == "io_spin" else {})}
        return [Variant((), "", workload, params, ())]

    def models(s: Session, bound: str, tasks: Any) -> list[tuple[str, int, int]]:
        counts, threads, _, _ = SCALE[s.profile]
        return [(m, n, n) for n in counts for m in schedulers()] + [
            ("threads", n, n) for n in threads
        ]

    def rounds(s: Session, v: Variant, model: str, tasks: int, workers: int) -> tuple[int, int]:
        _, _, by_tasks, warmups = SCALE[s.profile]
        return by_tasks.get(tasks, 3), warmups.get(tasks, 0)

    return ModelGroup(
        variants=scale_variants,
        rounds=rounds,
        group=f"scale:{workload}",
        models=models,
        kind=SCALE_KIND,
        refine=scale_limits,
    )


# -- seed: the tutorial's experiments at their shape (group "seed") ---------------------
# CPU: two loops, serial vs generator ping-pong.  I/O: two tasks of three sleeps, serial
# vs gevent (--seed-sleep scales the sleep).  Pools: 4 sleeps on 2 workers, two waves,
# results gathered three ways; each round makes and shuts down its own pool, as the
# tutorial's program does.

SEED = {
    # loop n, sleep s, rounds
    "quick": (1_000_000, 0.05, 3),
    "standard": (10_000_000, 0.2, 5),
    "full": (10_000_000, seed.SEED_SLEEP_S, 5),
}
# sleep s, rounds, warm-up (the warm-up starts the forkserver when no cell has)
SEED_POOLS = {"quick": (0.01, 3, 1), "standard": (0.05, 5, 1), "full": (seed.POOL_SLEEP_S, 3, 0)}
CALL_KIND = "workloads.runner.cells:call"
SEED_CPU = {"serial": "two_loops_serial", "generator": "two_loops_pingpong"}


class SeedCpu(Group):
    argnames = ("model", "tasks", "workers")

    def rows(self, s: Session) -> list[Row]:
        return model_rows(s, [("serial", 2, 1), ("generator", 2, 2)])

    def cell(self, s: Session, model: str, tasks: int, workers: int) -> Cell:
        n, _, rounds = SEED[s.profile]
        n = counted(s, {"n": n})["n"]
        total = n * (n - 1) // 2
        return Cell(
            group="seed",
            rounds=rounds,
            warmup=0,
            info={"bound": "cpu", "workload": "seed_cpu", "model": model,
                  "flavour": "sync" if model == "serial" else "gen", "tasks": tasks,
                  "workers": workers, "params": {"n": n}, "profile": s.profile},
            kind=CALL_KIND,
            kwargs={"target": f"workloads.seed:{SEED_CPU[model]}", "args": [n], "kwargs": {},
                    "expect": [total, total]},
            # Seconds-long CPU rounds: spread among the CPU cells' rounds.
            batch=CPU_BATCH,
        )  # fmt: skip


def seed_io_variants(s: Session) -> list[Variant]:
    sleep = s.seed_sleep or SEED[s.profile][1]
    params = {"k": seed.SEED_SLEEPS, "d": sleep}
    return [Variant((), "", "io_sleep", params, (seed.SEED_TASKS,))]


SEED_IO = ModelGroup(
    variants=seed_io_variants,
    rounds=lambda s, v, model, tasks, workers: (SEED[s.profile][2], 0),
    group="seed",
    models=lambda s, bound, tasks: [("serial", tasks[0], 1), ("gevent", tasks[0], tasks[0])],
    label="seed_io",
)


class SeedPool(Group):
    argnames = ("model", "tasks", "workers", "collect")

    def rows(self, s: Session) -> list[Row]:
        pools = model_rows(s, [(pool, seed.POOL_TASKS, seed.POOL_WORKERS) for pool in seed.POOLS])
        return [
            Row((*r.values, way), f"{r.id}-{way}", r.skip)
            for r in pools
            for way in seed.COLLECT_WAYS
        ]

    def cell(self, s: Session, model: str, tasks: int, workers: int, collect: str) -> Cell:
        sleep_s, rounds, warmup = SEED_POOLS[s.profile]
        start_method = s.settings["start_method"]
        info: dict[str, Any] = {
            "bound": "io", "workload": f"seed_pool_{model}", "model": model, "flavour": "sync",
            "collect": collect, "tasks": tasks, "workers": workers,
            "params": {"sleep_s": sleep_s, "collect": collect},
            "ideal_s": math.ceil(tasks / workers) * sleep_s, "profile": s.profile,
        }  # fmt: skip
        if model == "processes":
            info["start_method"] = start_method
        return Cell(
            group="seed",
            rounds=rounds,
            warmup=warmup,
            info=info,
            kind=CALL_KIND,
            kwargs={"target": "workloads.seed:pool_experiment",
                    "args": [model, collect, tasks, workers, sleep_s],
                    "kwargs": {"start_method": start_method},
                    "expect": [index + 10 for index in range(tasks)],  # the tutorial's name + 10
                    "worker_cpu": True},
        )  # fmt: skip


# -- start-up: each pool model's create, a first result from every worker, shut down ----
# The forkserver itself is started by a warm-up round, as once per session in real use.

STARTUP_ROUNDS = {"quick": 5, "standard": 10, "full": 20}


def spawn_counted(s: Session, variant: dict[str, Any]) -> str | None:
    """A spawn start-up re-imports every worker under Valgrind (a minute or more a
    round): counted in the full profile only."""
    if s.measure == "instructions" and variant.get("start_method") == "spawn":
        return None if s.profile == "full" else "spawn start-ups are counted in --profile full"
    return None


class Startup(Group):
    argnames = ("model", "variant")

    def rows(self, s: Session) -> list[Row]:
        # Every model that declares start-up variants (Model.startup_variants) gets a cell each.
        missing = unavailable_models()
        return [
            Row((model, variant), "-".join([model, *map(str, variant.values())]),
                missing.get(model) or s.uncounted(model) or spawn_counted(s, variant))
            for model, cls in MODELS.items()
            if model in s.models
            for variant in cls.startup_variants
        ]  # fmt: skip

    def cell(self, s: Session, model: str, variant: dict[str, Any]) -> Cell:
        cls = MODELS[model]
        # The session's settings (a dask scheduler's address, say), then the variant's own.
        options = {**s.options(model), **variant}
        profile_rounds = STARTUP_ROUNDS[s.profile]
        return Cell(
            group="startup",
            rounds=min(profile_rounds, cls.startup_rounds or profile_rounds),
            warmup=1,
            info={"bound": "cpu", "workload": "startup", "model": model, "flavour": "sync",
                  "tasks": 1, "workers": get_model(model, **options).workers or 1,
                  "params": options, "profile": s.profile, **options},
            kind="workloads.runner.cells:startup",
            kwargs={"model": model, "options": options},
            # A start-up is mostly CPU (forks, imports): interleaved with the CPU cells.  It
            # runs in a plain runner (no model= here): gevent's start is its worker's.
            batch=f"{APART}{model}" if cls.own_batch else CPU_BATCH,
        )  # fmt: skip


# -- users' workloads (--workload): the cells a built-in workload of their bound gets ---


def user_rounds(s: Session, v: Variant, model: str, tasks: int, workers: int) -> tuple[int, int]:
    slow = resolve_workload(v.workload).bound != "cpu" and model == "serial" and tasks > 10
    return (SLOW_ROUNDS[s.profile], 0) if slow else (ROUNDS[s.profile], WARMUP[s.profile])


USER = ModelGroup(
    variants=lambda s: user_variants(s, {"cpu": CPU_TASKS[s.profile], "io": IO_TASKS[s.profile]}),
    rounds=user_rounds,
    outer=("user",),
)


# -- echo: every server style x payload x connections, over loopback --------------------
# One server process per style (idle in the kernel when not served), one load client;
# each round connects untimed, then times `requests` echoes.  The nonblocking server
# spins a core even while idle, so its cells are a batch of their own.

NET = {
    # payloads, connections, requests by payload, rounds, warm-up, idle window s
    "quick": ((1024,), (10,), {1024: 3000}, 5, 1, 0.3),
    "standard": ((64, 1024, 65536), (1, 10, 100), {64: 1200, 1024: 1200, 65536: 400}, 9, 1, 0.5),
    "full": ((64, 1024, 65536), (1, 10, 100), {64: 15000, 1024: 15000, 65536: 4000}, 5, 1, 2.0),
}
ALONE = ("nonblocking",)


class Echo(Group):
    argnames = ("style", "payload", "connections")

    def rows(self, s: Session) -> list[Row]:
        payloads, connections, *_ = NET[s.profile]
        missing = unavailable_styles()
        return [
            Row((style, payload, n), f"{style}-{payload}-{n}", missing.get(style))
            for style in STYLES
            for payload in payloads
            for n in connections
        ]

    def cell(self, s: Session, style: str, payload: int, connections: int) -> Cell:
        _, _, by_payload, rounds, warmup, idle_window = NET[s.profile]
        requests = by_payload[payload]
        return Cell(
            group=f"echo:{payload}B:{connections}c",
            rounds=rounds,
            warmup=warmup,
            # docs/contract.md: a connection is a task, all in flight at once; the
            # client's processes are a fact of their own (client_processes).
            info={"bound": "net", "workload": "echo", "model": style,
                  "flavour": STYLES[style].flavour, "tasks": connections,
                  "workers": connections, "style": style, "connections": connections,
                  "params": {"payload": payload, "connections": connections,
                             "requests": requests},
                  "profile": s.profile, "payload": payload, "requests": requests,
                  "client": "processes"},
            kind="workloads.netcells:echo",
            kwargs={"style": style, "payload": payload, "connections": connections,
                    "requests": requests, "idle_window": idle_window},
            batch=f"benchmarks/test_net.py::{style if style in ALONE else 'servers'}",
        )  # fmt: skip


# -- convoy: a server thread's echo latency while CPU workers share its process ---------
# threads (pure Python, at switch intervals of 5, 1 and 0.1 ms), native (hashlib, GIL
# released) or processes.  Each cell's request count is fixed, sized from what a request
# takes here (``convoy.round_requests``).

DEFAULT_INTERVAL = SWITCH_INTERVALS[0]
CONVOY_PAYLOAD = 64


def threads(intervals: tuple[float, ...], counts: tuple[int, ...]) -> list[tuple[str, int, float]]:
    return [("threads", n, i) for i in intervals for n in counts]


def off_gil(intervals: tuple[float, ...], counts: tuple[int, ...]) -> list[tuple[str, int, float]]:
    return [(p, n, i) for p in ("native", "processes") for i in intervals for n in counts]


CONVOY = {
    # cells (placement, CPU workers, switch interval), rounds, warm-up, requests x
    "quick": ([*threads((DEFAULT_INTERVAL,), (0, 1)), ("threads", 1, SWITCH_INTERVALS[-1]),
               *off_gil((DEFAULT_INTERVAL,), (1,))], 5, 1, 0.5),
    "standard": ([*threads(SWITCH_INTERVALS, (0, 1, 2, 4)), *off_gil((DEFAULT_INTERVAL,), (1, 4))],
                 5, 1, 1.0),
    "full": ([*threads(SWITCH_INTERVALS, (0, 1, 2, 4)), *off_gil(SWITCH_INTERVALS, (1, 2, 4))],
             7, 1, 3.0),
}  # fmt: skip


class Convoy(Group):
    argnames = ("cpu_placement", "cpu_threads", "switch_interval_s")

    def rows(self, s: Session) -> list[Row]:
        return [Row(key, f"{key[0]}-{key[1]}-{key[2]:g}") for key in CONVOY[s.profile][0]]

    def cell(
        self, s: Session, cpu_placement: str, cpu_threads: int, switch_interval_s: float
    ) -> Cell:
        _, rounds, warmup, scale = CONVOY[s.profile]
        requests = max(
            MIN_REQUESTS,
            round(scale * round_requests(cpu_placement, cpu_threads, switch_interval_s)),
        )
        params = {"cpu_threads": cpu_threads, "switch_interval_s": switch_interval_s,
                  "cpu_placement": cpu_placement, "requests": requests,
                  "payload": CONVOY_PAYLOAD, "connections": 1}  # fmt: skip
        info: dict[str, Any] = {
            "bound": "net", "workload": "convoy",
            # the server's model: a thread per connection; a connection is a task
            "model": "threads", "flavour": "sync", "tasks": 1, "workers": 1, "connections": 1,
            "cpu_threads": cpu_threads, "switch_interval_s": switch_interval_s,
            "cpu_placement": cpu_placement, "params": params, "profile": s.profile,
            "payload": CONVOY_PAYLOAD, "requests": requests, "client": "processes",
        }  # fmt: skip
        if cpu_placement == "processes":
            info["start_method"] = POOL_START_METHOD
        return Cell(
            group="convoy",
            rounds=rounds,
            warmup=warmup,
            info=info,
            kind="workloads.netcells:convoy",
            kwargs={"placement": cpu_placement, "cpu_threads": cpu_threads,
                    "switch_interval": switch_interval_s, "requests": requests,
                    "payload": CONVOY_PAYLOAD, "connections": 1},
        )  # fmt: skip


# -- the catalogue: test -> group ------------------------------------------------------

CATALOGUE: dict[str, Group] = {
    "test_cpu_loop": cpu_group("cpu_loop"),
    "test_cpu_native": cpu_group("cpu_native"),
    "test_io_sleep": ModelGroup(variants=variants("io_sleep", IO_PARAMS, IO_TASKS),
                                rounds=io_rounds),
    "test_mixed": ModelGroup(variants=mixed_variants, rounds=mixed_rounds,
                             outer=("cpu_kind", "cpu_share"), group="mixed:{cpu_kind}",
                             extra=mixed_extra),
    "test_io_socket": ModelGroup(variants=io_socket_variants, rounds=io_socket_rounds,
                                 outer=("connect",), group="{workload}:{connect}:tasks={tasks}",
                                 kind="workloads.netcells:io_socket",
                                 kwargs={"server_style": SERVER_STYLE}),
    "test_scale_io_sleep": scale_group("io_sleep"),
    "test_scale_io_spin": scale_group("io_spin"),
    "test_seed_cpu": SeedCpu(),
    "test_seed_io": SEED_IO,
    "test_seed_pool": SeedPool(),
    "test_startup": Startup(),
    "test_workload": USER,
    "test_echo": Echo(),
    "test_convoy": Convoy(),
}  # fmt: skip
