"""scripts/build_pythons.py on a fake machine: no network, no apt, no compiler.

A fake runner stands for apt-get, apt-cache, dpkg-query, configure, make and the new
interpreter; the tarballs are tiny real ones.  What is proved: the version the suite
serves is picked (newest that downloads), apt only ever reads the private configuration,
every failure is one line and a non-zero exit, a failed build leaves nothing where it
could be found, a matching install is reused and a newer served version replaces it.
"""

from __future__ import annotations

import importlib.util
import io
import json
import stat
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bp() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "boundbench_build_pythons_test", ROOT / "scripts" / "build_pythons.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def make_tarball(folder: Path, package: str, upstream: str) -> Path:
    """A real, tiny upstream tarball: ``Python-X/configure``."""
    path = folder / f"{package}_{upstream}.orig.tar.xz"
    with tarfile.open(path, "w:xz") as archive:
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo(f"Python-{upstream.replace('~', '')}/configure")
        info.size = len(data)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(data))
    return path


def stanza(package: str, version: str) -> str:
    return f"Package: {package}\nBinary: {package}\nVersion: {version}\nFormat: 3.0 (quilt)\n"


class FakeMachine:
    """Answers the commands build_pythons runs, and records them."""

    def __init__(self, served: Sequence[str], downloadable: Sequence[str]) -> None:
        self.package = "python3.14"
        self.served = list(served)  # what the suite's index lists
        self.downloadable = set(downloadable)  # what the archive really serves
        self.missing: set[str] = set()  # Debian packages not installed
        self.update_fails = False
        self.fail_step: str | None = None  # "configure", "make", "make install"
        self.gil_enabled_in_ft = False
        self.calls: list[list[str]] = []
        self.configured: dict[str, list[str]] = {}  # source folder -> configure flags

    def commands(self, word: str) -> list[list[str]]:
        return [cmd for cmd in self.calls if word in cmd]

    def __call__(
        self,
        cmd: Sequence[str],
        *,
        log: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = list(cmd)
        self.calls.append(cmd)
        out, code = "", 0
        if cmd[0] == "dpkg-query":
            names = cmd[4:]
            out = "".join(f"{name} ii \n" for name in names if name not in self.missing)
            code = 1 if self.missing else 0
        elif cmd[:2] == ["apt-get", "install"]:
            pass
        elif cmd[0] == "apt-get" and "update" in cmd:
            if self.update_fails:
                out, code = "E: Could not resolve the archive's address\n", 100
        elif cmd[0] == "apt-cache":
            out = "\n".join(stanza(self.package, version) for version in self.served)
        elif cmd[0] == "apt-get" and "source" in cmd:
            version = cmd[-1].split("=", 1)[1]
            upstream = version.rpartition("-")[0]
            assert cwd is not None
            if version in self.downloadable:
                make_tarball(cwd, self.package, upstream)
                (cwd / f"{self.package}_{version}.dsc").write_text("dsc\n")
                (cwd / f"{self.package}_{upstream}.orig.tar.xz.asc").write_text("sig\n")
            else:
                out = (
                    "E: Failed to fetch http://archive.invalid/debian/pool/main/p/"
                    f"{self.package}/{self.package}_{version}.dsc  404  Not Found "
                    "[IP: 192.0.2.1 80]\nE: Failed to fetch some archives.\n"
                )
                code = 100
        elif "./configure" in cmd:
            assert cwd is not None
            self.configured[str(cwd)] = [arg for arg in cmd if arg.startswith("--")]
            code = 1 if self.fail_step == "configure" else 0
            out = "configure: error: no acceptable C compiler\n" if code else ""
        elif "make" in cmd and "install" in cmd:
            assert cwd is not None
            if self.fail_step == "make install":
                out, code = "make: *** [install] Error 2\n", 2
            else:
                flags = self.configured[str(cwd)]
                prefix = Path(flags[0].split("=", 1)[1])
                destdir = Path(next(a for a in cmd if a.startswith("DESTDIR=")).split("=", 1)[1])
                ft = "--disable-gil" in flags
                bin_dir = destdir / prefix.relative_to(prefix.anchor) / "bin"
                bin_dir.mkdir(parents=True)
                exe = bin_dir / f"python3.14{'t' if ft else ''}"
                exe.write_text("#!/bin/sh\n")
                exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        elif "make" in cmd:
            if self.fail_step == "make":
                out, code = "gcc: fatal error: Killed signal terminated program cc1\n", 2
        elif len(cmd) == 3 and cmd[1] == "-c":  # the new interpreter's probe
            exe = Path(cmd[0])
            name = exe.parent.parent.name
            ft = name.endswith("t")
            answer = {
                "version": name.rstrip("t"),
                "free_threaded": ft,
                "gil_enabled": (not ft) or self.gil_enabled_in_ft,
                "config_args": "",
                "cc": "gcc",
                "opt": "-O3",
            }
            out = json.dumps(answer) + "\n"
        else:
            raise AssertionError(f"unexpected command {cmd}")
        if log is not None:
            with log.open("a") as handle:
                handle.write(f"$ {' '.join(cmd)}\n{out}")
            return subprocess.CompletedProcess(cmd, code, "", "")
        return subprocess.CompletedProcess(cmd, code, out, "")


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A machine's /etc/apt in deb822 form: the archive, its security archive, a third party."""
    folder = tmp_path / "etc-apt"
    (folder / "sources.list.d").mkdir(parents=True)
    (folder / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://archive.invalid/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://archive.invalid/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
    )
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BOUNDBENCH_PYTHONS_CACHE", str(folder))
    monkeypatch.delenv("BOUNDBENCH_DEBIAN_MIRROR", raising=False)
    return folder


def call(bp: ModuleType, machine: FakeMachine, etc: Path, *args: str) -> int:
    code: int = bp.main(list(args), runner=machine, etc=etc)
    return code


def leftovers(cache: Path) -> list[str]:
    """Temporary folders left in the cache (builds, downloads, retired installs)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob(".*") if p.is_dir())


# -- versions ----------------------------------------------------------------------------


def test_the_newest_listed_version_comes_first(bp: ModuleType) -> None:
    text = "\n".join(stanza("python3.14", v) for v in ("3.14.9-1", "3.14.10-1", "3.14.0~rc3-1"))
    text += "\n" + stanza("python3.13", "3.13.99-1")
    assert bp.served_versions(text, "python3.14") == ["3.14.10-1", "3.14.9-1", "3.14.0~rc3-1"]


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("3.14.9-1", "3.14.10-1"),
        ("3.14.0~rc3-1", "3.14.0-1"),
        ("3.14.10-1", "3.14.10-2"),
        ("3.14.10-1", "1:3.14.1-1"),
        ("3.14.1-1", "3.14.1+dfsg-1"),
    ],
)
def test_debian_versions_order_as_dpkg_does(bp: ModuleType, older: str, newer: str) -> None:
    assert bp.compare_debian_versions(older, newer) < 0
    assert bp.compare_debian_versions(newer, older) > 0
    assert bp.compare_debian_versions(newer, newer) == 0


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("python3.14_3.14.10.orig.tar.xz", "3.14.10"),
        ("python3.14_3.14.0~rc1.orig.tar.gz", "3.14.0rc1"),
        ("python3.14_3.14.2+dfsg.orig.tar.xz", "3.14.2"),
        ("python3.14_3.14.10.orig.tar.xz.asc", None),
        ("python3.14_3.14.10-1.debian.tar.xz", None),
        ("python3.14_3.14.10-1.dsc", None),
        ("python3.13_3.13.5.orig.tar.xz", None),
    ],
)
def test_the_version_comes_from_the_tarball_name(
    bp: ModuleType, name: str, version: str | None
) -> None:
    assert bp.tarball_version(name, "python3.14") == version


# -- the machine's archive and the private apt -------------------------------------------


def test_the_archive_is_the_machines_not_its_security_one(bp: ModuleType, etc: Path) -> None:
    archive = bp.find_archive(etc, os_release=Path("/nonexistent"), environ={})
    assert archive.uri == "http://archive.invalid/debian"
    assert archive.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_one_line_sources_and_third_party_repositories(bp: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "vendor.list").write_text(
        "deb https://vendor.invalid/apt cloud-sdk-trixie main\n"
    )
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian/ trixie main\n"
    )
    os_release = tmp_path / "os-release"
    os_release.write_text('VERSION_CODENAME="trixie"\n')
    archive = bp.find_archive(tmp_path, os_release, environ={})
    assert (archive.uri, archive.keyring) == ("http://mirror.invalid/debian", "/k.gpg")
    override = {"BOUNDBENCH_DEBIAN_MIRROR": "http://other.invalid/debian/"}
    assert bp.find_archive(tmp_path, os_release, override).uri == "http://other.invalid/debian"


def test_no_archive_is_one_line(bp: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(bp.Failure) as caught:
        bp.find_archive(tmp_path, tmp_path / "os-release", environ={})
    assert caught.value.code == bp.FETCH_FAILED
    assert "\n" not in str(caught.value)


def test_apt_reads_only_the_private_configuration(bp: ModuleType, etc: Path, cache: Path) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    assert call(bp, machine, etc) == 0
    apt_calls = [cmd for cmd in machine.calls if cmd[0] in ("apt-get", "apt-cache")]
    assert [cmd[-1] for cmd in apt_calls] == ["update", "python3.14", "python3.14=3.14.1-1"]
    private = cache / "apt"
    for cmd in apt_calls:
        options = dict(cmd[i + 1].split("=", 1) for i, arg in enumerate(cmd) if arg == "-o")
        assert options["Dir::Etc::sourcelist"] == str(private / "etc" / "sources.list")
        assert options["Dir::Etc::sourceparts"] == "-"  # /etc/apt/sources.list.d unread
        assert options["Dir::State::Lists"] == str(private / "lists")
        assert options["Dir::Cache"] == str(private / "cache")
        assert not any(value.startswith(("/etc/apt", "/var/lib/apt", "/var/cache/apt"))
                       for value in options.values())  # fmt: skip
    line = (private / "etc" / "sources.list").read_text()
    assert line == (
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://archive.invalid/debian unstable main\n"
    )


# -- fetch --------------------------------------------------------------------------------


def test_a_listed_version_the_archive_does_not_serve_is_passed_over(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine(["3.14.10-1", "3.14.9-1"], ["3.14.9-1"])
    assert call(bp, machine, etc) == 0
    out = capsys.readouterr().out
    assert "3.14.10-1 is listed but not served (python3.14_3.14.10-1.dsc: 404 Not Found)" in out
    assert "archive.invalid" not in out
    assert sorted(p.name for p in (cache / "tarballs").iterdir()) == [
        "python3.14_3.14.9.orig.tar.xz"  # only the upstream tarball is kept
    ]
    assert (cache / "3.14.9" / "bin" / "python3.14").is_file()
    assert (cache / "3.14.9t" / "bin" / "python3.14t").is_file()


@pytest.mark.parametrize("broken", ["update", "download", "unlisted"])
def test_a_failed_fetch_is_one_line(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    machine = FakeMachine(["3.14.10-1", "3.14.9-1"], [])
    machine.update_fails = broken == "update"
    if broken == "unlisted":
        machine.served = []
    assert call(bp, machine, etc) == bp.FETCH_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("build_pythons: fetch failed: ")
    assert "Traceback" not in err
    if broken == "download":
        assert "3.14.10-1: python3.14_3.14.10-1.dsc: 404 Not Found" in err
        assert "3.14.9-1: python3.14_3.14.9-1.dsc: 404 Not Found" in err
    assert not machine.commands("./configure")
    assert bp.installed_builds(cache) == []
    assert leftovers(cache) == []


def test_offline_uses_the_cached_tarball(bp: ModuleType, etc: Path, cache: Path) -> None:
    (cache / "tarballs").mkdir(parents=True)
    make_tarball(cache / "tarballs", "python3.14", "3.14.3")
    machine = FakeMachine([], [])
    assert call(bp, machine, etc, "--offline", "--only", "ft") == 0
    assert not [cmd for cmd in machine.calls if cmd[0] in ("apt-get", "apt-cache")]
    assert [f.name for f, _ in bp.installed_builds(cache)] == ["3.14.3t"]


# -- build --------------------------------------------------------------------------------


def test_both_builds_are_made_alike_and_recorded(bp: ModuleType, etc: Path, cache: Path) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    assert call(bp, machine, etc) == 0
    configures = machine.commands("./configure")
    assert [cmd[:3] for cmd in configures] == [["nice", "-n", "19"]] * 2
    assert [cmd[4:] for cmd in configures] == [
        [f"--prefix={cache / '3.14.1'}"],
        [f"--prefix={cache / '3.14.1t'}", "--disable-gil"],
    ]
    makes = [cmd[3:5] for cmd in machine.calls if cmd[:4] == ["nice", "-n", "19", "make"]]
    assert makes == [["make", "-j2"], ["make", "install"]] * 2
    for name, ft in (("3.14.1", False), ("3.14.1t", True)):
        record = json.loads((cache / name / "boundbench-build.json").read_text())
        assert record["version"] == "3.14.1"
        assert record["free_threaded"] is ft
        assert record["configure_flags"] == [arg for arg in configures[ft][4:]]
        assert record["pgo"] is False
        assert record["lto"] is False
        assert record["build_seconds"] >= 0
        assert list(record["step_seconds"]) == ["configure", "make", "make install"]
        assert record["built_at"]
        assert record["source"] == {"tarball": "python3.14_3.14.1.orig.tar.xz",
                                    "debian_version": "3.14.1-1"}  # fmt: skip
    assert leftovers(cache) == []


@pytest.mark.parametrize("step", ["configure", "make", "make install", "gil"])
def test_a_failed_build_is_one_line_and_leaves_nothing(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str], step: str
) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    if step == "gil":
        machine.gil_enabled_in_ft = True
    else:
        machine.fail_step = step
    assert call(bp, machine, etc, "--only", "ft") == bp.BUILD_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    if step == "gil":
        assert "3.14.1t: the GIL is enabled at start-up" in err
    else:
        assert f"build of 3.14.1t failed at {step}" in err
        assert str(cache / "logs" / "3.14.1t.log") in err
    assert not (cache / "3.14.1t").exists()
    assert bp.installed_builds(cache) == []
    assert leftovers(cache) == []


def test_a_failed_rebuild_keeps_the_working_install(bp: ModuleType, etc: Path, cache: Path) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    assert call(bp, machine, etc, "--only", "gil") == 0
    machine.served, machine.downloadable = ["3.14.2-1", "3.14.1-1"], {"3.14.2-1", "3.14.1-1"}
    machine.fail_step = "make"
    assert call(bp, machine, etc, "--only", "gil") == bp.BUILD_FAILED
    assert [f.name for f, _ in bp.installed_builds(cache)] == ["3.14.1"]
    assert leftovers(cache) == []


def test_a_matching_install_is_reused(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    assert call(bp, machine, etc) == 0
    (cache / "tarballs" / "python3.14_3.14.1.orig.tar.xz").unlink()
    machine.calls.clear()
    capsys.readouterr()
    assert call(bp, machine, etc) == 0
    assert not machine.commands("./configure")
    assert not machine.commands("source")  # nothing to download either
    out = capsys.readouterr().out
    assert "3.14.1: already built with the same flags, reused" in out
    assert "3.14.1t: already built with the same flags, reused" in out


def test_a_newer_served_version_is_built_and_replaces_the_old(
    bp: ModuleType, etc: Path, cache: Path
) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    assert call(bp, machine, etc) == 0
    machine.served, machine.downloadable = ["3.14.2-1", "3.14.1-1"], {"3.14.2-1"}
    machine.calls.clear()
    assert call(bp, machine, etc) == 0
    assert len(machine.commands("./configure")) == 2
    assert [f.name for f, _ in bp.installed_builds(cache)] == ["3.14.2", "3.14.2t"]
    assert not (cache / "3.14.1").exists()
    assert [p.name for p in (cache / "tarballs").iterdir()] == ["python3.14_3.14.2.orig.tar.xz"]
    assert leftovers(cache) == []


def test_a_half_built_folder_is_never_listed(bp: ModuleType, tmp_path: Path) -> None:
    staged = tmp_path / ".build-3.14.1t-x" / "stage" / "3.14.1t"
    (staged / "bin").mkdir(parents=True)
    (staged / "bin" / "python3.14t").write_text("")
    (staged / "boundbench-build.json").write_text(
        json.dumps({"version": "3.14.1", "python": "bin/python3.14t"})
    )
    (tmp_path / "3.14.2" / "bin").mkdir(parents=True)  # no record: not finished
    (tmp_path / "3.14.2" / "bin" / "python3.14").write_text("")
    assert bp.installed_builds(tmp_path) == []


# -- build dependencies -------------------------------------------------------------------


def test_a_missing_required_package_is_one_line(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    machine.missing = {"libssl-dev", "libgdbm-dev"}
    assert call(bp, machine, etc) == bp.DEPS_MISSING
    err = capsys.readouterr().err
    assert err == (
        "build_pythons: missing build dependencies: libssl-dev libgdbm-dev "
        "(apt-get install libssl-dev libgdbm-dev, or rerun with --install-deps as root)\n"
    )
    assert not [cmd for cmd in machine.calls if cmd[0] == "apt-get"]


def test_a_missing_optional_package_is_named_and_the_build_goes_on(
    bp: ModuleType, etc: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    machine.missing = {"libzstd-dev"}
    assert call(bp, machine, etc, "--only", "gil") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "build_pythons: build dependencies: missing libzstd-dev, so no compression.zstd "
        "(3.14+) (apt-get install libzstd-dev, or --install-deps as root)"
    )


def test_install_deps_asks_apt_for_the_missing_ones(bp: ModuleType, etc: Path, cache: Path) -> None:
    machine = FakeMachine(["3.14.1-1"], ["3.14.1-1"])
    machine.missing = {"libssl-dev"}
    real = machine.__call__

    def runner(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if list(cmd[:2]) == ["apt-get", "install"]:
            machine.missing.clear()
        return real(cmd, **kwargs)

    assert bp.main(["--install-deps", "--only", "gil"], runner=runner, etc=etc) == 0
    installs = [cmd for cmd in machine.calls if cmd[:2] == ["apt-get", "install"]]
    assert installs == [["apt-get", "install", "-y", "-q", "--no-install-recommends", "libssl-dev"]]


# -- where -----------------------------------------------------------------------------


def test_the_cache_folder(bp: ModuleType, tmp_path: Path) -> None:
    assert bp.cache_root({"BOUNDBENCH_PYTHONS_CACHE": str(tmp_path)}) == tmp_path
    assert bp.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "boundbench" / "pythons"
    assert bp.cache_root({}) == Path.home() / ".cache" / "boundbench" / "pythons"


def test_usage_errors_exit_2(bp: ModuleType, etc: Path, cache: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        bp.main(["--series", "three"], runner=FakeMachine([], []), etc=etc)
    assert caught.value.code == 2
