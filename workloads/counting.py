"""Counted, not timed: instructions per round under Valgrind's callgrind (issue #20).

Wall time on a shared machine moves by tens of percent between runs; the number of
instructions a round executes does not.  A runner started under ``command()`` runs
every process it starts (fork, forkserver, spawn, subprocess) under callgrind; around
one measured round it zeroes the counts (``Counter.zero``, ``zero_pids``), runs the
round, dumps them under one tag (``Counter.dump``, ``dump_pids``); ``read_counts``
then gives the instructions (Ir) of each process for that tag, and their sum is the
round's count.

- The counted process itself uses client requests (a 3-function C shim, compiled once
  into a cache with ``cc``): exact to the instruction, and nothing runs in between.
- Its worker processes are reached with ``vgdb`` (monitor commands ``zero``, ``dump``):
  they sit idle between rounds, so the instant vgdb reaches them does not matter.
- Start-up, imports and pool start-up fall outside zero/dump: collection stays on
  (``--collect-atstart=yes``) because vgdb can zero and dump but not switch collection
  on, and the workers are reachable by vgdb alone.
- Determinism: no address randomisation (``setarch -R``), one hash seed, and the
  interpreter variables that change what runs neutralised (``PINNED_ENV``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

TOOL = "callgrind"
# Children run with these argv entries are not counted (nor slowed down): the echo
# servers (``python -m workloads.net serve ...``), the load client's workers
# (``python -m workloads.net._load_worker``), the convoy server, and multiprocessing's
# resource tracker (no task runs there).  Valgrind matches a pattern (``*`` and ``?``
# wildcards) against each whole argv entry of an exec'd child, never the first process.
SKIP_ARGS = (
    "workloads.net",
    "workloads.net.*",
    "workloads._convoy_server",
    "from multiprocessing.resource_tracker import *",
)
# Executables never run under valgrind: vgdb (it cannot work under valgrind), valgrind
# itself (``--version``) and the compiler of the shim, should a counted process run them.
SKIP_EXES = ("*/vgdb", "*/valgrind", "*/cc", "*/gcc", "*/gcc-[0-9]*")
# The argument that marks the relay of vgdb calls (always skipped, see ``_vgdb``).
RELAY_MARK = "boundbench-vgdb-relay"
# Environment for every counted process (its children inherit it): one hash seed (str
# hashes order dicts and sets; setarch -R does not fix them), one locale, and nothing a
# developer's shell may switch on that changes what a round runs (empty means unset).
PINNED_ENV = {
    "PYTHONHASHSEED": "0",
    "PYTHONMALLOC": "",
    "PYTHONDEVMODE": "",
    "PYTHONASYNCIODEBUG": "",
    "PYTHONTRACEMALLOC": "",
    "PYTHONPROFILEIMPORTTIME": "",
    "PYTHONOPTIMIZE": "",
    "LC_ALL": "C.UTF-8",
}
# The GIL switch interval a counted runner should set (``sys.setswitchinterval``) before
# its first round: the default 5 ms of wall time is ~30-45 times fewer instructions under
# callgrind, so threads switch that much more often than natively and their counts move
# with the machine's speed (4 CPU-bound threads: spread 0.04 % at 5 ms, 0.001 % at 1 s).
SWITCH_INTERVAL_S = 1.0
# Set by ``command()`` for the counted processes: the compiled shim, the vgdb prefix.
SHIM_ENV = "BOUNDBENCH_COUNTING_SHIM"
PREFIX_ENV = "BOUNDBENCH_COUNTING_VGDB_PREFIX"
# Valgrind's default is 500: an I/O cell's one thread per task can need more.
MAX_THREADS = 4096
# The bound on one zero_pids/dump_pids call (its vgdb calls run at once).  Measured: 0.25
# to 0.45 s for 1 to 4 idle workers, ~1 s for 32, on a loaded 2-core machine.
VGDB_TIMEOUT_S = 30.0
# vgdb forces its way (ptrace) into a process blocked in a system call after this many
# ms (its default, 100, only adds to every call); one that computes answers at its poll.
VGDB_INVOKE_MS = 10

SHIM_SOURCE = """\
#include <valgrind/callgrind.h>
int bb_on_valgrind(void) { return (int)RUNNING_ON_VALGRIND; }
void bb_zero(void) { CALLGRIND_ZERO_STATS; }
void bb_dump(const char *tag) { CALLGRIND_DUMP_STATS_AT(tag); }
"""


class CountingUnavailable(RuntimeError):
    """This machine cannot count: valgrind (or the C compiler for the shim) is missing."""


class CountingError(RuntimeError):
    """A count could not be taken or read (vgdb failed, a tag has no dump, ...)."""


# -- the machine -----------------------------------------------------------------------
def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CountingUnavailable(
            f"counting instructions needs {name}, which is not on PATH: apt-get install {package}"
        )
    return path


def valgrind() -> str:
    """The valgrind executable; ``CountingUnavailable`` when it is not installed."""
    path = _tool("valgrind", "valgrind")
    _tool("vgdb", "valgrind")
    return path


def valgrind_version(path: str | None = None) -> str:
    done = subprocess.run(
        [path or valgrind(), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip()


def cpu_model() -> dict[str, str]:
    """The CPU's model name and a digest of its feature flags: valgrind reports the host's
    CPUID, and glibc picks its string and memory routines by it, so counts compare only
    between machines that agree on both."""
    model, features = "unknown", ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not features:
                features = value.strip()
    digest = hashlib.sha256(features.encode()).hexdigest()[:12]
    return {"cpu_model": model, "cpu_flags": digest}


_PROBE = (
    "import platform, sys\n"
    "print(sys.executable, sys.version.split()[0], '-'.join(platform.libc_ver()), sep='\\n')"
)


def interpreter(python: str = sys.executable) -> dict[str, str]:
    """The interpreter ``python`` runs, asked: a pyenv shim is a shell script (valgrind
    would count the shell and the interpreter it starts), so it is run once, natively,
    and its ``sys.executable`` is what runs under valgrind."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CountingError(f"cannot run the interpreter {python}: {exc}") from exc
    executable, version, libc = done.stdout.split("\n")[:3]
    return {
        "python": executable,
        "python_real_path": os.path.realpath(executable),
        "python_version": version,
        "libc": libc,
    }


def _setarch() -> list[str]:
    return [_tool("setarch", "util-linux"), platform.machine(), "-R"]


def flags(outdir: str, skip_args: Sequence[str] = SKIP_ARGS, fair_sched: bool = False) -> list[str]:
    """Valgrind's options for a count whose files go to ``outdir``."""
    return [
        "-q",
        f"--tool={TOOL}",
        f"--callgrind-out-file={outdir}/callgrind.%p",
        # Zero and dump bound what is counted; collecting from the start costs nothing
        # that is kept, and vgdb has no command that would switch collection on.
        "--collect-atstart=yes",
        # Exec'd children (spawn, forkserver, subprocesses) are counted too; forked ones
        # always are.  Servers and load clients are not (by argument), nor vgdb.
        "--trace-children=yes",
        f"--trace-children-skip-by-arg={','.join([*skip_args, RELAY_MARK])}",
        f"--trace-children-skip={','.join(SKIP_EXES)}",
        "--vgdb=yes",
        f"--vgdb-prefix={outdir}/vgdb",
        f"--max-threads={MAX_THREADS}",
        f"--fair-sched={'yes' if fair_sched else 'no'}",
    ]


def command(
    outdir: str | os.PathLike[str],
    python: str = sys.executable,
    skip_args: Sequence[str] = SKIP_ARGS,
    *,
    fair_sched: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """``(argv_prefix, env)`` to start a counted process: ``[*argv_prefix, "-c", code]``.

    ``argv_prefix`` ends with the interpreter itself (a shim resolved to the real one):
    a ``RunnerProcess`` takes ``wrapper=argv_prefix[:-1], python=argv_prefix[-1]``.
    ``env`` is what to add to the environment (pinned variables, where the shim and the
    vgdb FIFOs are).  Creates ``outdir``; use a fresh one for each runner (callgrind
    names files by pid).  ``skip_args``: argv patterns of children not to count."""
    for part in skip_args:
        if "," in part:
            raise ValueError(f"a skip pattern cannot hold a comma: {part!r}")
    path = valgrind()
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        *_setarch(),
        path,
        *flags(str(out), skip_args, fair_sched),
        interpreter(python)["python"],
    ]
    env = {**PINNED_ENV, SHIM_ENV: str(shim()), PREFIX_ENV: f"{out}/vgdb"}
    return argv, env


def facts(
    python: str = sys.executable,
    skip_args: Sequence[str] = SKIP_ARGS,
    *,
    fair_sched: bool = False,
) -> dict[str, Any]:
    """What a count run records beside its counts (counts compare only when these
    agree); ``CountingUnavailable`` when valgrind is missing."""
    path = valgrind()
    setarch, *personality = _setarch()
    return {
        "tool": TOOL,
        "valgrind": valgrind_version(path),
        "valgrind_path": os.path.realpath(path),
        "wrapper": [os.path.basename(setarch), *personality],
        "flags": flags("<outdir>", skip_args, fair_sched),
        "env": dict(PINNED_ENV),
        "switch_interval_s": SWITCH_INTERVAL_S,
        **cpu_model(),
        **interpreter(python),
    }


# -- the shim: client requests from Python -------------------------------------------------
def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "boundbench" / "counting"


def shim() -> Path:
    """The compiled client-request shim (compiled on first use, then cached by a digest
    of its source, the machine and valgrind's version)."""
    key = f"{SHIM_SOURCE}\0{platform.machine()}\0{valgrind_version()}"
    target = _cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
    if target.exists():
        return target
    compiler = _tool("cc", "gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / "shim.c"
        source.write_text(SHIM_SOURCE)
        built = Path(tmp) / "shim.so"
        done = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O1", "-o", str(built), str(source)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise CountingUnavailable(
                f"cannot compile the callgrind shim ({last}): apt-get install valgrind gcc"
            )
        os.replace(built, target)  # atomic: a concurrent compile leaves one whole file
    return target


class Counter:
    """Client requests of the process it lives in: ``zero()`` and ``dump(tag)`` cover
    every thread of this process and nothing else.  Outside valgrind both do nothing
    (``on_valgrind`` says which).  ``prefix``: the vgdb prefix ``command()`` set."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        found = path or os.environ.get(SHIM_ENV) or shim()
        self.lib = ctypes.CDLL(os.fspath(found))
        self.lib.bb_on_valgrind.restype = ctypes.c_int
        self.lib.bb_zero.restype = None
        self.lib.bb_dump.restype = None
        self.lib.bb_dump.argtypes = [ctypes.c_char_p]
        self.prefix = os.environ.get(PREFIX_ENV)

    def on_valgrind(self) -> bool:
        return bool(self.lib.bb_on_valgrind())

    def zero(self) -> None:
        self.lib.bb_zero()

    def dump(self, tag: str) -> None:
        self.lib.bb_dump(_checked(tag).encode())


def _checked(tag: str) -> str:
    if not re.fullmatch(r"[\w.:+-]{1,200}", tag):
        raise ValueError(f"a count tag is 1-200 letters, digits and _.:+- only, not {tag!r}")
    return tag


# -- other processes, through vgdb ---------------------------------------------------------
def _send(pids: list[int], words: list[str], prefix: str, timeout: float) -> dict[str, str]:
    """Run one vgdb a pid, all at once; what failed, by pid (run natively, by the relay)."""
    base = [
        _tool("vgdb", "valgrind"),
        f"--vgdb-prefix={prefix}",
        f"--max-invoke-ms={VGDB_INVOKE_MS}",
        f"--cmd-time-out={max(1, int(timeout))}",
    ]
    started = time.monotonic()
    pipe, null = subprocess.PIPE, subprocess.DEVNULL
    calls = {
        pid: subprocess.Popen([*base, f"--pid={pid}", *words], stdin=null, stdout=pipe, stderr=pipe)
        for pid in pids
    }
    failures = {}
    for pid, call in calls.items():
        try:
            out, err = call.communicate(timeout=max(0.0, started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            call.kill()
            call.communicate()
            failures[str(pid)] = f"no answer in {timeout} s"
            continue
        if call.returncode != 0:
            said = (err or out).decode(errors="replace").strip().splitlines()
            failures[str(pid)] = said[-1] if said else f"vgdb exit {call.returncode}"
    return failures


def _relay(args: list[str]) -> None:
    prefix, timeout, words, pids = args[0], float(args[1]), json.loads(args[2]), json.loads(args[3])
    print(json.dumps(_send(pids, words, prefix, timeout)))


# The relay: a native interpreter that loads this file alone (not the package) and runs
# the vgdb calls.  Each process a counted process starts costs it ~0.1 s (fork under
# valgrind); one relay costs that once, whatever the number of pids.
_RELAY_BOOT = (
    "import importlib.util as u, sys\n"
    "spec = u.spec_from_file_location('boundbench_counting_relay', sys.argv[1])\n"
    "module = u.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module._relay(sys.argv[3:])\n"
)


def _vgdb(pids: Iterable[int], words: list[str], prefix: str | None, timeout: float) -> float:
    """Send one monitor command to every pid at once; its wall time in seconds."""
    prefix = prefix or os.environ.get(PREFIX_ENV)
    if not prefix:
        raise CountingError(f"no vgdb prefix given, and {PREFIX_ENV} is not set")
    wanted = list(dict.fromkeys(pids))
    if not wanted:
        return 0.0
    started = time.monotonic()
    relay = [sys.executable, "-c", _RELAY_BOOT, __file__, RELAY_MARK]
    args = [prefix, repr(timeout), json.dumps(words), json.dumps(wanted)]
    try:
        done = subprocess.run(
            [*relay, *args],
            stdin=subprocess.DEVNULL,  # a runner's stdin is its protocol
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=True,
        )
        failures = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        said = getattr(exc, "stderr", None) or ""
        raise CountingError(f"the vgdb relay failed: {exc} {said[-500:]}") from exc
    if failures:
        said = "; ".join(f"pid {pid}: {why}" for pid, why in failures.items())
        raise CountingError(f"vgdb {' '.join(words)} failed (is it under valgrind?): {said}")
    return time.monotonic() - started


def zero_pids(
    pids: Iterable[int], prefix: str | None = None, timeout: float = VGDB_TIMEOUT_S
) -> float:
    """Zero the counts of these processes (run under ``command()``); the seconds it took."""
    return _vgdb(pids, ["zero"], prefix, timeout)


def dump_pids(
    pids: Iterable[int], tag: str, prefix: str | None = None, timeout: float = VGDB_TIMEOUT_S
) -> float:
    """Dump the counts of these processes under ``tag``; the seconds it took."""
    return _vgdb(pids, ["dump", _checked(tag)], prefix, timeout)


# -- reading ------------------------------------------------------------------------------
_PART = re.compile(r"callgrind\.\d+\.\d+(-\d+)?$")
# Headers read so far, by path, with the (mtime, size) they were read at: a run reads
# every dump's header once, not once per round (a reused pid rewrites its files).
_HEADERS: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def _header(path: str) -> dict[str, str]:
    """A dump's header: ``pid``, ``trigger`` (``desc: Trigger:``), ``events``, ``summary``."""
    stat = os.stat(path)
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _HEADERS.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    fields: dict[str, str] = {}
    with open(path, "rb") as part:
        for raw in part:
            key, sep, value = raw.decode(errors="replace").partition(":")
            if key == "desc" and value.strip().startswith("Trigger:"):
                key, value = "trigger", value.strip().removeprefix("Trigger:")
            if sep and key in ("pid", "trigger", "events", "summary"):
                fields[key] = value.strip()
            if key == "summary":
                break
    _HEADERS[path] = (stamp, fields)
    return fields


def read_counts(outdir: str | os.PathLike[str], tag: str) -> dict[int, int]:
    """Instructions (Ir) per pid in the dumps tagged ``tag`` (by ``Counter.dump`` or
    ``dump_pids``): the round's count is their sum.  ``CountingError`` if none has it."""
    wanted = {f"Client Request: {_checked(tag)}", f"dump {tag}"}
    counts: dict[int, int] = {}
    for path in sorted(glob.glob(os.path.join(os.fspath(outdir), "callgrind.*"))):
        if not _PART.search(path):
            continue
        fields = _header(path)
        if fields.get("trigger") not in wanted:
            continue
        events = fields.get("events", "").split()
        if "Ir" not in events or "summary" not in fields:
            raise CountingError(f"{path}: no events or summary line (a dump cut short?)")
        pid = int(fields["pid"])
        if pid in counts:
            raise CountingError(f"pid {pid} has two dumps tagged {tag!r} in {outdir}")
        counts[pid] = int(fields["summary"].split()[events.index("Ir")])
    if not counts:
        raise CountingError(f"no callgrind dump tagged {tag!r} in {outdir}")
    return counts


def take_exits(outdir: str | os.PathLike[str]) -> dict[int, int]:
    """Instructions per pid of the processes that ended since the last call (their
    final dumps, "Program termination"), each file removed once read.

    A process that starts and ends inside a round (a start-up cell's pool, the seed's
    pools) is counted this way.  callgrind's fork semantics: a forked child starts with
    its parent's counts since the parent's last zero or dump, so a fork start-up counts
    the parent's part of the round before each fork once more (fixed, deterministic)."""
    counts: dict[int, int] = {}
    for path in sorted(glob.glob(os.path.join(os.fspath(outdir), "callgrind.*"))):
        if not re.search(r"callgrind\.\d+(\.\d+)?(-\d+)?$", path):
            continue
        fields = _header(path)
        if fields.get("trigger") != "Program termination":
            continue
        events = fields.get("events", "").split()
        if "Ir" in events and "summary" in fields:
            pid = int(fields["pid"])
            counts[pid] = counts.get(pid, 0) + int(fields["summary"].split()[events.index("Ir")])
        _HEADERS.pop(path, None)
        os.remove(path)
    return counts
