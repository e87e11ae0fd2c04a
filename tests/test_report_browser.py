"""The report page in a real browser: headless Chromium loads every image, logs nothing.

Chromium (Debian's ``chromium`` package) prints the page's DOM after the load event
(``--dump-dom``); the page sets markers there: each image's natural width and any error
it caught (a script error, an image that failed to load).  With
``--enable-logging=stderr`` every console message of the page shows on stderr as a
``CONSOLE`` line; the page logs nothing, so any such line is a failure.

Without chromium the test skips with its reason, unless ``BOUNDBENCH_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from reports import _page
from reports._draw import Chart
from reports._frame import build_frame
from reports._palette import make_palette
from reports._runs import load_runs
from tests._report_fixtures import FIXTURES

BROWSER_TIMEOUT = 60
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--enable-logging=stderr",
    "--v=0",
    # Let the page finish loading (and fire 'load') before the DOM is dumped.
    "--virtual-time-budget=10000",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    reason = "headless Chromium not found (apt-get install chromium)"
    if os.environ.get("BOUNDBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; BOUNDBENCH_REQUIRE_BROWSER=1 makes it mandatory")
    pytest.skip(reason)


def _run_browser(browser: str, url: str, profile: Path) -> tuple[str, str]:
    """The dumped DOM and stderr; the whole process group is gone afterwards."""
    proc = subprocess.Popen(
        [browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT} s")
    finally:
        # Chromium's helpers (zygote, renderer) share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return out, err


@pytest.mark.slow
def test_report_page_loads_every_image_without_errors(
    tmp_path: Path, full_report: dict[str, object]
) -> None:
    """The page of the session's report over every fixture run (and the bad inputs it
    lists as skipped), as test_report.py's tests read it."""
    browser = _chromium()
    assert full_report["code"] == 0
    page = Path(str(full_report["out"])) / "index.html"
    expected = page.read_text(encoding="utf-8").count("<img ")
    assert expected >= 8

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    dom, stderr = _run_browser(browser, page.as_uri(), profile)

    assert 'data-loaded="yes"' in dom, f"load event never fired; stderr:\n{stderr[-2000:]}"
    widths = re.search(r'data-images="([^"]*)"', dom)
    assert widths is not None
    sizes = [int(w) for w in widths.group(1).split(",") if w]
    assert len(sizes) == expected
    assert all(size > 100 for size in sizes), f"images that did not load: {sizes}"
    errors = re.search(r'data-errors="([^"]*)"', dom)
    assert errors is not None
    assert errors.group(1) == "", errors.group(1)
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], "\n".join(console)


def test_the_page_carries_the_markers_the_browser_reads(tmp_path: Path) -> None:
    """The quick, in-process half: the page written from the fixture runs (one made-up
    chart) watches for errors before its first image and sets, once loaded, exactly the
    markers the browser test reads from the DOM."""
    runs, problems = load_runs([FIXTURES / "runs"])
    assert problems == []
    frame = build_frame(runs)
    chart = Chart("demo", "A demo chart", "One sentence about it.")
    (tmp_path / chart.png).write_bytes(b"\x89PNG\r\n\x1a\n not drawn here")
    page = _page.write_page(
        tmp_path, title="t", runs=runs, frame=frame, charts=[chart], problems=[],
        palette=make_palette(frame),
    )  # fmt: skip
    html = page.read_text(encoding="utf-8")
    assert html.count("<img ") == 1
    assert html.index(_page.ERROR_WATCH) < html.index("<img ") < html.index(_page.LOAD_MARKER)
    for marker in ("'data-loaded', 'yes'", "'data-images'", "'data-errors'", "naturalWidth"):
        assert marker in _page.LOAD_MARKER, marker
