"""Profiles: how big each cell is and how many rounds it gets.

- ``quick``: a smoke run that still shows every effect (61-68 s on 2 cores with every
  group, ~19 s of it Dask's cells and cluster start-ups).
- ``standard``: the default; the figures in the notes come from it (5.0-5.4 min).
- ``full``: bigger tasks, more task counts, the seed's sleeps at their real 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROFILE_NAMES = ("quick", "standard", "full")
DEFAULT_PROFILE = "standard"


@dataclass(frozen=True)
class Profile:
    name: str
    # workload -> parameters
    params: dict[str, dict[str, Any]]
    cpu_tasks: tuple[int, ...]
    io_tasks: tuple[int, ...]
    rounds: int
    warmup: int
    # rounds of the CPU cells: their rounds spread by tens of percent with the host's
    # speed, so they get many short rounds rather than a few long ones
    cpu_rounds: int
    # rounds for cells that take seconds (serial I/O with many tasks, the seed)
    slow_rounds: int
    seed_loop_n: int
    seed_sleep_s: float
    startup_rounds: int
    # rounds of the seed's experiments (seconds each)
    seed_rounds: int


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        params={
            "cpu_loop": {"n": 300_000, "yield_every": 1_000},
            "cpu_native": {"size": 1 << 20, "rounds": 16},
            "io_sleep": {"k": 2, "d": 0.005},
        },
        cpu_tasks=(2,),
        io_tasks=(10, 100),
        # 5 rounds: the fewest with which the check's rank test can reach p < 0.01.
        rounds=5,
        warmup=1,
        cpu_rounds=5,
        slow_rounds=1,
        seed_loop_n=1_000_000,
        seed_sleep_s=0.05,
        startup_rounds=5,
        seed_rounds=3,
    ),
    "standard": Profile(
        name="standard",
        params={
            # ~50 ms per task: this host's speed drifts by tens of percent over seconds,
            # so many short interleaved rounds give a steadier median than a few long ones.
            "cpu_loop": {"n": 1_000_000, "yield_every": 1_000},
            "cpu_native": {"size": 1 << 20, "rounds": 64},
            # 100 ms per task: fixed per-run costs (100 submissions, a pipe round trip,
            # a few ms that move with the host's speed) stay ~1-3 % of the ideal, so a
            # cell's median holds within ~1 % from run to run (with 50 ms tasks: 3 %).
            # Serial's 100 tasks take 10 s: one round (``test_io.VERY_SLOW_CELL_S``).
            "io_sleep": {"k": 2, "d": 0.05},
        },
        cpu_tasks=(2, 4),
        io_tasks=(10, 100),
        # 7 rounds: this VM has slow phases of a second or so; a median of 7 rides them out.
        rounds=7,
        warmup=1,
        cpu_rounds=11,
        slow_rounds=2,
        seed_loop_n=10_000_000,
        seed_sleep_s=0.2,
        startup_rounds=10,
        seed_rounds=5,
    ),
    "full": Profile(
        name="full",
        params={
            "cpu_loop": {"n": 5_000_000, "yield_every": 1_000},
            "cpu_native": {"size": 4 << 20, "rounds": 64},
            "io_sleep": {"k": 5, "d": 0.02},
        },
        cpu_tasks=(1, 2, 4, 8),
        io_tasks=(1, 10, 100, 1000),
        rounds=10,
        warmup=2,
        cpu_rounds=25,
        slow_rounds=3,
        seed_loop_n=10_000_000,
        seed_sleep_s=2.0,
        startup_rounds=20,
        seed_rounds=5,
    ),
}
