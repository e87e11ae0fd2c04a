"""Command-line options, shared fixtures and the machine-info hook of boundbench.

``--profile`` sizes the benchmark cells, ``--models`` picks models by registry name;
both reject unknown names with a usage error that lists the valid ones.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import threading
from typing import Any

import pytest

from benchmarks import _ab
from benchmarks._groups import Session
from benchmarks._harness import RunnerProcesses, Trials, gevent_patched, parametrize
from benchmarks.catalogue import DEFAULT_PROFILE, PROFILES
from workloads import (
    WORKLOADS,
    UserWorkload,
    WorkloadSpecError,
    entry_point_workloads,
    machine_facts,
    resolve_spec,
)
from workloads.machine import library_versions, load_average, other_cpu_share
from workloads.models import (
    BROKEN_PLUGINS,
    DEFAULT_START_METHOD,
    MODELS,
    PLUGINS,
    START_METHODS,
    report_facts,
)
from workloads.models.dask_model import check_scheduler_address
from workloads.runner import PROTOCOL
from workloads.runner import _hooks as hooks

# Version of the keys boundbench writes into saved runs (docs/contract.md); the report
# and the check read older versions too.
SCHEMA_VERSION = 3
TRIALS = pytest.StashKey[Trials]()
SESSION = pytest.StashKey[Session]()
# Session options models take as constructor keywords (``Model.settings``).
SETTINGS = ("start_method", "dask_scheduler")
LOAD_AT_START = pytest.StashKey[list[float] | None]()
OTHER_CPU_AT_START = pytest.StashKey[float | None]()
OLD_SIGTERM = pytest.StashKey[Any]()
# --measure: what a round records; a count run's facts (workloads.counting.facts)
MEASURES = ("time", "instructions")
COUNT_FACTS = pytest.StashKey[dict[str, Any]]()
# an A/B session's sides (--ab-*: benchmarks/_ab.py)
AB = pytest.StashKey[dict[str, _ab.Side]]()
AB_HINT = "pytest reads a TREE apart from its option as a test path, and loads its conftest.py"
# Benchmark tests measure their whole batch in the first one; every wait inside is
# bounded by --cell-timeout, so pytest-timeout's per-test limit only has to be generous.
BATCH_TIMEOUT_S = 3600


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # pytest takes a path given apart from its option for a test path before it knows the
    # option, and loads that path's conftest.py: another checkout's, with these options.
    config = pluginmanager.get_plugin("pytestconfig")
    if "--ab-base" in getattr(getattr(config, "invocation_params", None), "args", ()):
        raise pytest.UsageError(f"--ab-base: write --ab-base=TREE ({AB_HINT})")
    try:
        _add_options(parser)
    except ValueError as exc:  # the other checkout's conftest.py came first
        raise pytest.UsageError(f"{exc}: {AB_HINT}; write --ab-base=TREE") from None


def _add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("boundbench")
    group.addoption(
        "--profile",
        choices=PROFILES,
        default=DEFAULT_PROFILE,
        help=f"size of the benchmark cells: {', '.join(PROFILES)} (default {DEFAULT_PROFILE})",
    )
    group.addoption(
        "--models",
        default="",
        metavar="NAMES",
        help=f"comma-separated models to run (default: all): {', '.join(MODELS)}",
    )
    group.addoption(
        "--seed-sleep",
        type=float,
        default=None,
        metavar="SECONDS",
        help="length of each sleep in the seed's gevent experiment (the tutorial used 2.0; "
        "default: the profile's)",
    )
    group.addoption(
        "--start-method",
        choices=START_METHODS,
        default=DEFAULT_START_METHOD,
        help=f"start method of the processes model's pool (default {DEFAULT_START_METHOD}); "
        "recorded in each cell's extra_info",
    )
    group.addoption(
        "--dask-scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the dask model on this existing cluster (default: a LocalCluster it "
        "starts on loopback)",
    )
    group.addoption(
        "--workload",
        action="append",
        default=[],
        metavar="MODULE:NAME[,KEY=VALUE...]",
        help="also run this workload (a workloads.Workload object, a registered name or "
        "an entry point of group boundbench.workloads) under every model; repeatable",
    )
    group.addoption(
        "--list-workloads",
        action="store_true",
        default=False,
        help="list the registered and installed workloads and exit",
    )
    group.addoption(
        "--trial-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random order in which interleaved rounds run (default 0); recorded",
    )
    group.addoption(
        "--measure",
        choices=MEASURES,
        default="time",
        help="time: wall time per round (default); instructions: instructions executed by"
        " every process that does a cell's work, counted under Valgrind (a count run)",
    )
    group.addoption(
        "--ab-base",
        default=None,
        metavar="TREE",
        help="an A/B session: side A's runners come from the checkout in TREE (e.g. a git "
        "worktree of the base commit), side B's from this one; every pass runs each cell "
        "once on each side, back to back (docs/ab.md)",
    )
    for side in "ab":
        group.addoption(
            f"--ab-python-{side}",
            default=None,
            metavar="PATH",
            help=f"an A/B session: side {side.upper()}'s interpreter (default: this one)",
        )
        group.addoption(
            f"--ab-env-{side}",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"an A/B session: set this in side {side.upper()}'s runners (PYTHONPATH: "
            "after the tree's own path); repeatable",
        )
    group.addoption(
        "--cell-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up on a cell (and fail it) after this long (default 300)",
    )


def _saves_results(config: pytest.Config) -> bool:
    """Whether pytest-benchmark will write this session's figures somewhere."""
    if getattr(config.option, "benchmark_disable", False):
        return False
    return any(
        getattr(config.option, name, None)
        for name in ("benchmark_autosave", "benchmark_save", "benchmark_json")
    )


def selected_models(config: pytest.Config) -> list[str]:
    raw = config.getoption("models") or ""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or list(MODELS)


def check_options(config: pytest.Config) -> None:
    """Every option value (and test hook) a run cannot use: a usage error in one line,
    before anything starts (a timeout of 0 failed every cell, then pytest-benchmark's
    fixture at teardown)."""
    timeout = config.getoption("cell_timeout")
    if not (math.isfinite(timeout) and timeout > 0):
        raise pytest.UsageError(
            f"--cell-timeout: must be a number of seconds above 0, got {timeout}"
        )
    seed_sleep = config.getoption("seed_sleep")
    if seed_sleep is not None and not (math.isfinite(seed_sleep) and seed_sleep >= 0.001):
        raise pytest.UsageError(f"--seed-sleep: must be at least 0.001 seconds, got {seed_sleep}")
    try:
        hooks.slowdowns(os.environ.get(hooks.SLOWDOWN_ENV, ""))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("measure") == "instructions":
        from workloads import counting

        try:
            config.stash[COUNT_FACTS] = {"kind": "instructions", **counting.facts()}
            counting.shim()  # compiled now: a missing compiler is a usage error too
        except counting.CountingUnavailable as exc:
            raise pytest.UsageError(f"--measure instructions: {exc}") from None
    victim = hooks.kill_worker_model()
    if victim is not None and victim not in MODELS:
        raise pytest.UsageError(
            f"{hooks.KILL_ENV}: unknown model {victim!r}; valid: {', '.join(MODELS)}"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    broken = [BROKEN_PLUGINS[name] for name in selected_models(config) if name in BROKEN_PLUGINS]
    if broken:
        raise pytest.UsageError("--models: " + "; ".join(broken))
    unknown = [name for name in selected_models(config) if name not in MODELS]
    if unknown:
        raise pytest.UsageError(
            f"--models: unknown model(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(MODELS)}"
        )
    scheduler = config.getoption("dask_scheduler")
    if scheduler is not None:
        try:
            check_scheduler_address(scheduler)
        except ValueError as exc:
            raise pytest.UsageError(f"--dask-scheduler: {exc}") from None
    # Users' workloads are imported and their flavours checked once, before any timing.
    user: list[UserWorkload] = []
    for spec in config.getoption("workload"):
        try:
            user.append(resolve_spec(spec))
        except WorkloadSpecError as exc:
            raise pytest.UsageError(str(exc)) from None
    check_options(config)
    seed_sleep = config.getoption("seed_sleep")
    # The regression check wants every round's time, not only the summary.
    if hasattr(config.option, "benchmark_save_data"):
        config.option.benchmark_save_data = True
    config.stash[LOAD_AT_START] = load_average()
    if _saves_results(config):
        # Half a second of watching what else runs: only for runs that keep their figures.
        config.stash[OTHER_CPU_AT_START] = other_cpu_share()
    # A CI runner that times out sends SIGTERM: end the session as Ctrl-C does, through
    # the teardown that stops every pool, worker and server (bounded), not past it.
    if threading.current_thread() is threading.main_thread():
        config.stash[OLD_SIGTERM] = signal.signal(signal.SIGTERM, _terminate)
    config.stash[TRIALS] = Trials(seed=config.getoption("trial_seed"))
    settings = {name: config.getoption(name) for name in SETTINGS}
    config.stash[SESSION] = Session(
        profile=config.getoption("profile"),
        models=selected_models(config),
        settings={name: value for name, value in settings.items() if value is not None},
        seed_sleep=seed_sleep,
        user=user,
        measure=config.getoption("measure"),
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize(metafunc, metafunc.config.stash[SESSION])


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("list_workloads", default=False):
        if config.option.help or config.option.version:
            return None
        sides = _ab.sides(config)
        if sides is None:
            return None
        why = _ab.probe(sides)
        if why is not None:  # a base from before the runner or of another protocol
            return _ab.fallback(config, sides, why)
        config.stash[AB] = sides
        return None

    def write(line: str) -> None:
        print(line)  # before the session: no terminal reporter yet

    write("registered workloads:")
    for name, spec in WORKLOADS.items():
        write(f"  {name:<16} {spec.bound:<6} flavours {', '.join(spec.flavours())}")
    offered = entry_point_workloads()
    write(f"installed (entry-point group boundbench.workloads): {'' if offered else 'none'}")
    for name, ref in offered.items():
        write(f"  {name:<16} {ref}")
    write("run one with: pytest benchmarks/ --workload NAME  (or --workload module:OBJECT)")
    return 0


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    # Users' workloads only run when asked for: no empty, skipped test otherwise.
    if collection_path.name == "test_user.py" and not config.getoption("workload"):
        return True
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    # Said even with -q: a plugin left out changes what the run measures.
    write = session.config.get_terminal_writer().line
    for problem in BROKEN_PLUGINS.values():
        write(f"boundbench: {problem}; skipped", yellow=True)
    if PLUGINS:
        write(f"boundbench: plugin models: {', '.join(PLUGINS)}")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_unconfigure(config: pytest.Config) -> None:
    old = config.stash.get(OLD_SIGTERM, None)
    if old is not None:
        signal.signal(signal.SIGTERM, old)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Last, so that only the cells that will really run (after -k, --models...) are planned.
    trials = config.stash[TRIALS]
    once = bool(getattr(config.option, "benchmark_disable", False))
    count = config.getoption("measure") == "instructions"
    trials.plan(items, config.stash[SESSION], once=once, count=count)
    for item in items:
        if item.nodeid in trials.cells:
            item.add_marker(pytest.mark.timeout(BATCH_TIMEOUT_S))
            # pytest-benchmark's documented per-test timer: the cell's replayed rounds.
            item.add_marker(pytest.mark.benchmark(timer=trials.clocks[item.nodeid]))


@pytest.fixture(scope="session")
def trials(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Trials:
    """The planned cells; their batches are measured as their first tests ask, each by
    runner processes started for it."""
    plan = pytestconfig.stash[TRIALS]
    count_root = None
    if pytestconfig.getoption("measure") == "instructions":
        count_root = str(tmp_path_factory.mktemp("counts"))
    plan.opener = RunnerProcesses(
        pytestconfig.getoption("cell_timeout"), count_root, pytestconfig.stash.get(AB, None)
    )
    return plan


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    facts = machine_facts()
    facts["schema_version"] = SCHEMA_VERSION
    facts["profile"] = config.getoption("profile")
    facts["libraries"] = library_versions()
    facts["models"] = report_facts()
    facts["measure"] = config.stash.get(COUNT_FACTS, {"kind": "time"})
    if AB in config.stash:
        facts["measure"] = _ab.facts(config.stash[AB])
    facts["method"] = {
        "rounds": "interleaved",
        "trial_seed": config.getoption("trial_seed"),
        "start_method": config.getoption("start_method"),
    }
    machine_info["boundbench"] = facts


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
) -> None:
    # A busy host moves every figure: say how busy it was around the run.  Not in
    # machine_info: pytest-benchmark compares that whole with a saved run's and warns
    # on any difference, and the load differs every time.  The reports read it there.
    output_json["boundbench_host"] = {
        "load_avg_start": config.stash.get(LOAD_AT_START, None),
        "load_avg_end": load_average(),
        "other_cpu_start": config.stash.get(OTHER_CPU_AT_START, None),
    }
    handoffs = sorted(config.stash[TRIALS].handoffs)
    if handoffs:
        # What carrying each round to and from its runner cost, outside the round.
        output_json["boundbench_runners"] = {
            "protocol": PROTOCOL,
            "rounds": len(handoffs),
            "handoff_median_s": statistics.median(handoffs),
            "handoff_p90_s": handoffs[int(0.9 * (len(handoffs) - 1))],
        }
    # A run made with a test hook (a slowdown, a killed worker) says so: it is never a
    # baseline (merged into machine_info["boundbench"] by the reports, as the rest here).
    active = hooks.active()
    if active:
        output_json["boundbench_host"]["test_hooks"] = active


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    handoffs = sorted(config.stash[TRIALS].handoffs)
    if handoffs:
        median, p90 = statistics.median(handoffs), handoffs[int(0.9 * (len(handoffs) - 1))]
        terminalreporter.write_line(
            f"boundbench: {len(handoffs)} rounds measured in runner processes; hand-off per "
            f"round (outside the timed region) median {median * 1e6:.0f} us, p90 {p90 * 1e6:.0f} us"
        )
    if AB in config.stash:
        measure = _ab.facts(config.stash[AB])
        terminalreporter.write_line(
            f"boundbench: A/B session: A = {measure['a']['label']} ({measure['a']['tree']}),"
            f" B = {measure['b']['label']} ({measure['b']['tree']}); each saved cell keeps"
            " both sides' rounds in extra_info['ab'], its statistics are side B's"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The gevent model patches only its own worker; a patched pytest process would make
    # every other model's figures silently wrong.
    patched = gevent_patched()
    if patched:
        session.config.get_terminal_writer().line(
            f"boundbench: ERROR: gevent patched the pytest process: {', '.join(patched)}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
