"""Debian's headless Chromium for tests: a page's rendered DOM, its console messages and a screenshot.

A missing `chromium` fails the test under CI (CI=true: .ci/run installs it) and skips it, with the
reason, elsewhere. Every run gets a fresh profile under the test's tmp_path and no network features.
Console messages are read from Chromium's log on standard error (`--enable-logging=stderr`): it shows
every message without its level, which is enough for pages that have no script, where any message
(a blocked script or load, a parse error) is a fault.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from promstack import binary

INSTALL_HINT = "apt-get install -y chromium"
_CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def chromium() -> str:
    """The path of Chromium; fails under CI and skips elsewhere when it is not installed."""
    return binary("chromium", INSTALL_HINT)


@dataclass
class Rendered:
    dom: str
    console: list[str]


def _run(page: Path, work: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    command = [chromium(), *_FLAGS, f"--user-data-dir={profile}", *arguments, page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def render(page: Path, work: Path) -> Rendered:
    """The DOM after loading `page`, and every console message it caused."""
    done = _run(page, work, "--dump-dom")
    return Rendered(done.stdout, [m.group(1) for m in _CONSOLE.finditer(done.stderr)])


def screenshot(page: Path, work: Path, png: Path, width: int = 1280, height: int = 800) -> Path:
    """`page` drawn in a window of width x height, saved as `png`."""
    _run(page, work, f"--screenshot={png}", f"--window-size={width},{height}")
    assert png.stat().st_size > 0
    return png
