"""The progress bar: shown on a terminal, never when standard error is not one, never with --quiet."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from exports import fleet, tail

ROOT = Path(__file__).resolve().parent.parent
BAR = re.compile(rb"[\d,]+ events \([\d,]+/s\)")
"""The bar's events column: how many log events were read, and how many a second."""


def _stderr_of(arguments: list[str], terminal: bool) -> bytes:
    command = [sys.executable, "-m", "shipper.cli", "run", *arguments, "--sink", "null"]
    if not terminal:
        return subprocess.run(command, capture_output=True, cwd=ROOT, check=False).stderr
    controller, terminal_end = pty.openpty()
    child = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal_end, cwd=ROOT
    )
    os.close(terminal_end)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    child.wait(timeout=60)
    os.close(controller)
    return b"".join(chunks)


def test_progress_shows_bytes_events_and_rates_on_a_terminal_only(tmp_path):
    streams, _ = fleet(4000, seed=41)
    path = tmp_path / "aws" / "lambda" / "fleet.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(tail(streams))
    on_terminal = _stderr_of([str(path)], terminal=True)
    assert BAR.search(on_terminal)
    assert b"\x1b[" in on_terminal  # drawn, then cleared (transient)
    assert b"Invocations (durations in ms)" in on_terminal  # the report follows it

    piped = _stderr_of([str(path)], terminal=False)
    assert not BAR.search(piped) and b"\x1b[" not in piped
    assert b"Invocations (durations in ms)" in piped

    quiet = _stderr_of([str(path), "--quiet"], terminal=True)
    assert quiet == b""
