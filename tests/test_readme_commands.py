"""The README's two commands: what a new user types first, on the Python they have.

They must work as written on a Python its distribution marks as externally managed
(PEP 668: Debian 12's and Ubuntu 24.04's ``python3`` refuse a bare ``pip install``), and
``.ci/run`` must run the second one as written.  The end-to-end test copies this checkout
to a new folder and runs both there with ``python3`` being such a Python (Debian's
``/usr/bin/python3`` here), narrowed by ``PYTEST_ADDOPTS`` to a few cells and tests so it
takes about a minute and a half; ``BOUNDBENCH_REQUIRE_EXTERNALLY_MANAGED=1`` (set by
``.ci/run``) turns its skip, when no such Python is found, into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ENV = "BOUNDBENCH_REQUIRE_EXTERNALLY_MANAGED"
# Where a distribution's own Python lives (pyenv's, conda's and venvs' are not managed).
CANDIDATES = ("/usr/bin/python3",)
FIND_MANAGED = (
    "import os, sys, sysconfig\n"
    "marker = os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')\n"
    "in_venv = sys.prefix != sys.base_prefix\n"
    "print(int(os.path.isfile(marker) and not in_venv))\n"
)


def readme_commands() -> tuple[str, str]:
    """(main job, tests): the command lines of the README's first shell block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, "the README starts with no ```bash block"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 2, f"the README's first block should hold two commands: {lines}"
    return lines[0], lines[1]


def test_the_readme_starts_with_a_main_command_and_a_test_command() -> None:
    main, tests = readme_commands()
    assert "pytest benchmarks/" in main
    assert "--benchmark-autosave" in main
    assert main.endswith("python -m reports")
    assert tests.endswith("python -m pytest")
    for command in (main, tests):
        # Into a virtual environment, from the lock: never the interpreter's own site.
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
        assert "pip install -r requirements-lock.txt" in command


def test_ci_runs_the_readme_test_command_as_written() -> None:
    _, tests = readme_commands()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in script.splitlines(), ".ci/run does not run the README's test command"


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    lock = (ROOT / "requirements-lock.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==", lock, re.MULTILINE)
    assert pins, "requirements-lock.txt pins nothing"
    for name in ("pytest", "pytest-benchmark", "gevent", "pandas", "matplotlib", "uvloop"):
        assert name in pins, f"{name} is not in the lock"
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    unhashed = [e.split()[0] for e in entries if "==" in e and "--hash=sha256:" not in e]
    assert not unhashed, f"entries without hashes: {unhashed}"
    assert "file://" not in lock, "the lock names a path of this machine"


def externally_managed_python() -> str | None:
    for path in CANDIDATES:
        if not os.access(path, os.X_OK):
            continue
        done = subprocess.run(
            [path, "-c", FIND_MANAGED], capture_output=True, text=True, timeout=30, check=False
        )
        venv_ok = subprocess.run(
            [path, "-c", "import ensurepip, venv"], capture_output=True, timeout=30, check=False
        )
        if done.stdout.strip() == "1" and venv_ok.returncode == 0:
            return path
    return None


def copy_checkout(dest: Path) -> None:
    """The files git knows (tracked, or new and not ignored), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


@pytest.mark.slow
def test_both_readme_commands_work_on_an_externally_managed_python(tmp_path: Path) -> None:
    python = externally_managed_python()
    if python is None:
        message = f"no externally managed Python with venv among {', '.join(CANDIDATES)}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1): install Debian's python3-venv")
        pytest.skip(message)
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    checkout = tmp_path / "boundbench"
    copy_checkout(checkout)
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYENV_VERSION", "PYTEST_ADDOPTS", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    # pip's own setting, not the commands': the same packages are installed, only not
    # byte-compiled at install time (a third of the install's 45 s here); Python
    # compiles what it imports.
    env["PIP_NO_COMPILE"] = "1"

    # The Python really is externally managed: a bare pip install is refused.
    refused = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-deps", "six"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if "No module named pip" not in refused.stderr:
        assert refused.returncode != 0
        assert "externally-managed-environment" in refused.stderr + refused.stdout

    main, tests = readme_commands()
    narrowed = {
        # A handful of cells and tests: the commands' install and run steps are what
        # this test is about, not the figures.
        main: "--profile quick --models serial,threads -k cpu_loop -p no:cacheprovider",
        tests: "-k 'test_readme_starts or test_the_lock' -p no:cacheprovider",
    }
    for command, addopts in narrowed.items():
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=checkout,
            env={**env, "PYTEST_ADDOPTS": addopts},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{output[-3000:]}"
        assert "passed" in output, output[-3000:]
    venv_python = checkout / ".venv" / "bin" / "python"
    base = subprocess.run(
        [str(venv_python), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert Path(base) == Path(python).resolve().parent.parent  # /usr: Debian's own Python
    saved = list((checkout / ".benchmarks").rglob("*.json"))
    assert saved, "the main command saved no run"
    assert (checkout / "reports" / "out" / "index.html").is_file()
