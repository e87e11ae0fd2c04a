"""The style registry and ``python -m workloads.net serve``'s face."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net_helpers import Servers, no_leaks, served, style_params
from workloads._children import child_env
from workloads.net import STYLES, available_styles, get_style, unavailable_styles


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Servers:
    return Servers(request, tmp_path)


def test_registry() -> None:
    assert list(STYLES) == [
        "threaded",
        "gevent",
        "nonblocking",
        "select",
        "selectors",
        "generator",
        "asyncio",
        "asyncio_protocol",
        "uvloop",
    ]
    for name, style in STYLES.items():
        assert style.name == name
        assert style.flavour in ("sync", "gen", "coro")
    assert set(available_styles()) | set(unavailable_styles()) == set(STYLES)
    for reason in unavailable_styles().values():
        assert "Install it with: pip install" in reason
    with pytest.raises(LookupError, match="unknown style 'nope'; valid: threaded"):
        get_style("nope")


@pytest.mark.parametrize("style", style_params())
def test_every_style_module_has_a_serve_function(style: str) -> None:
    if get_style(style).own_process:
        # Never imported here: it is run as a script so it can patch before any import.
        spec = importlib.util.find_spec(get_style(style).module)
        assert spec is not None
        assert spec.origin is not None
        tree = ast.parse(Path(spec.origin).read_text())
        body = [node for node in tree.body if not isinstance(node, ast.Expr)]  # docstring
        assert isinstance(body[0], ast.ImportFrom)
        assert body[0].module == "__future__"
        # Next, before any other import: patch, when run as a script.
        assert ast.unparse(body[1]).startswith(
            "if __name__ == '__main__':\n    from gevent import monkey\n    monkey.patch_all()"
        )
        return
    module = importlib.import_module(get_style(style).module)
    assert callable(module.serve)
    assert style == module.STYLE
    assert module.__doc__


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workloads.net", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        start_new_session=True,
        check=False,
    )


@pytest.mark.slow
def test_unknown_style_is_a_usage_error() -> None:
    done = _serve("--style", "twisted")
    assert done.returncode == 2
    assert "invalid choice: 'twisted'" in done.stderr
    for name in STYLES:
        assert name in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_missing_style_is_a_usage_error() -> None:
    done = _serve()
    assert done.returncode == 2
    assert "--style" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("style", style_params())
def test_first_line_is_the_address(servers: Servers, style: str) -> None:
    server = servers.start(style)
    assert server.host == "127.0.0.1"
    assert 0 < server.port < 65536
    assert served(server.address)
    assert server.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "load"])
@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_a_host_off_the_loopback_is_a_usage_error(command: str, host: str) -> None:
    args = ["--style", "select"] if command == "serve" else ["--port", "9", "--requests", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "workloads.net", command, "--host", host, *args],
        capture_output=True, text=True, timeout=30, env=child_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"'{host}' is not a loopback address" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_python_api_refuses_a_host_off_the_loopback() -> None:
    from workloads.net import run_load, run_thread_clients
    from workloads.net._common import make_listener

    with pytest.raises(ValueError, match="not a loopback address"):
        make_listener("0.0.0.0")
    with pytest.raises(ValueError, match="not a loopback address"):
        run_load("192.0.2.1", 9, connections=1, requests=1, size=1)
    with pytest.raises(ValueError, match="not a loopback address"):
        run_thread_clients("192.0.2.1", 9, connections=1, requests=1, size=1)
    make_listener("localhost").close()


def _net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workloads.net", *args],
        capture_output=True, text=True, timeout=60, env=child_env(),
        start_new_session=True, check=False,
    )  # fmt: skip


def _one_line_error(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert why in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--port", "99999"], "--port: must be 0..65535, got 99999"),
        (["--port", "-1"], "--port: must be 0..65535, got -1"),
        (["--port", "http"], "--port: not an integer: 'http'"),
        (["--backlog", "0"], "--backlog: must be 1..65536, got 0"),
        (["--stall-timeout", "nan"], "--stall-timeout: must be a finite number above 0"),
        (["--high-water", "0"], "--high-water: must be at least 1, got 0"),
    ],
)
@pytest.mark.parametrize("style", ["select", "gevent"])
def test_serve_bad_option_values_exit_2_in_one_line(style: str, args: list[str], why: str) -> None:
    _one_line_error(_net("serve", "--style", style, *args), why)


@pytest.mark.slow
@pytest.mark.parametrize("style", style_params(["selectors", "gevent"]))
def test_serve_on_a_port_in_use_exits_2_in_one_line(style: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = _net("serve", "--style", style, "--port", str(port))
    _one_line_error(done, f"cannot listen on 127.0.0.1:{port}: Address already in use")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--port", "99999"], "--port: must be 1..65535, got 99999"),
        (["--port", "0"], "--port: must be 1..65535, got 0"),
        (["--port", "9", "--size", "0"], "--size: must be 1..67108864, got 0"),
        (["--port", "9", "--size", str(10**12)], "--size: must be 1..67108864"),
        (["--port", "9", "--connections", "10000000"], "--connections: must be 1..10000"),
        (["--port", "9", "--requests", "0"], "--requests: must be at least 1, got 0"),
        (["--port", "9", "--duration", "inf"], "--duration: must be a finite number above 0"),
        (["--port", "9", "--duration", "-3"], "--duration: must be a finite number above 0"),
        (["--port", "9", "--rate", "0"], "--rate: must be a finite number above 0"),
        (["--port", "9", "--processes", "0"], "--processes: must be 1..256, got 0"),
        (["--port", "9", "--timeout", "nan"], "--timeout: must be a finite number above 0"),
        (["--port", "9", "--rate", "10", "--client", "threads"], "--rate needs --client"),
    ],
)
def test_load_bad_option_values_exit_2_in_one_line(args: list[str], why: str) -> None:
    _one_line_error(_net("load", *args), why)


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])  # nothing listens there once closed


@pytest.mark.slow
@pytest.mark.parametrize("client", ["processes", "threads"])
def test_load_against_nothing_listening_is_unreachable_exit_3(client: str) -> None:
    port = _free_port()
    done = _net("load", "--port", str(port), "--requests", "10", "--client", client)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1
    assert f"cannot connect to 127.0.0.1:{port}" in done.stderr
    assert "is a server listening there?" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_load_help_documents_the_exit_statuses() -> None:
    done = _net("load", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for words in ("0 every request echoed exactly", "1 a request failed", "2 bad option value",
                  "3 server unreachable", "4 the load client itself failed", "--rate"):  # fmt: skip
        assert words in text
    assert "exit status" in _net("serve", "--help").stdout


def test_an_unknown_style_is_refused_in_one_line_in_this_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quick, in-process half of the usage errors above (each there a process)."""
    from workloads.net.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--style", "twisted"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert "invalid choice: 'twisted'" in err
    assert err.count("\n") == 1
    assert out == ""
