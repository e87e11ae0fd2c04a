"""The style registry and ``python -m workloads.net serve``'s face."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net_helpers import Servers, no_leaks, served, style_params
from workloads.net import STYLES, available_styles, get_style, unavailable_styles
from workloads.net._launch import child_env


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


def test_unknown_style_is_a_usage_error() -> None:
    done = _serve("--style", "twisted")
    assert done.returncode == 2
    assert "invalid choice: 'twisted'" in done.stderr
    for name in STYLES:
        assert name in done.stderr
    assert done.stdout == ""


def test_missing_style_is_a_usage_error() -> None:
    done = _serve()
    assert done.returncode == 2
    assert "--style" in done.stderr


@pytest.mark.parametrize("style", style_params())
def test_first_line_is_the_address(servers: Servers, style: str) -> None:
    server = servers.start(style)
    assert server.host == "127.0.0.1"
    assert 0 < server.port < 65536
    assert served(server.address)
    assert server.stop() == 0


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
