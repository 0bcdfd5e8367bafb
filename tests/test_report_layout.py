"""The report's tables at any terminal width: every name and every number shown whole, nothing cut."""

from __future__ import annotations

import io
import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from shipper.report import FleetReport, Prices, render

WIDTHS = (60, 80, 120, 200)
_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=32)


def _events(name: str, index: int, invocations: int) -> list[dict]:
    stream = f"2024/05/20/[{index if index % 2 else '$LATEST'}]abc{index}"
    common = {"function": name, "log_group": f"/aws/lambda/{name}", "log_stream": stream, "request_id": "r"}
    events = [
        {
            "type": "invocation",
            "timestamp": 1_716_220_800_000 + 60_000 * (index + n),
            **common,
            "duration_ms": 1234.5 * (n + 1) + index,
            "billed_duration_ms": 1300 * (n + 1),
            "memory_size_mb": 128 * (index + 1),
            "max_memory_used_mb": 100 + index,
            "init_duration_ms": 456.7 if n == 0 else None,
            "cold_start": n == 0,
            "status": "success",
            "runtime": f"python:3.1{index % 10}.v{index}",
        }
        for n in range(invocations)
    ]
    events.append({"type": "timeout", "timestamp": 1_716_220_800_000, **common})
    events.append({"type": "error", "timestamp": 1_716_220_800_000, **common, "error_type": f"Error{index}Exception"})
    events.append({"type": "throttle", "timestamp": 1_716_220_800_000, **common, "error_code": "ThrottlingException"})
    return events


def _rendered(report: dict, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    render(report, console)
    return console.export_text()


def _numbers_of(report: dict) -> set[str]:
    """Every number a function row shows, as the report formats them (pulled from a wide rendering)."""
    text = _rendered(report, 400)
    return set(re.findall(r"\$?[0-9][0-9,]*(?:\.[0-9]+)?%?", text))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NAME, min_size=1, max_size=6, unique=True), st.integers(1, 40))
def test_every_name_and_number_is_shown_whole_at_every_width(names, invocations):
    fleet = FleetReport()
    for index, name in enumerate(names):
        fleet.add(_events(name, index, invocations))
    report = fleet.to_dict(Prices())
    numbers = _numbers_of(report)
    for width in WIDTHS:
        text = _rendered(report, width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), width
        assert "…" not in text
        cells = {cell.strip() for line in lines for cell in re.split(r"[│┃]", line)}
        for name in names:
            assert name in cells, (width, name)
        shown = set(re.findall(r"\$?[0-9][0-9,]*(?:\.[0-9]+)?%?", text))
        assert numbers <= shown, (width, numbers - shown)


def test_a_name_wider_than_the_terminal_wraps_whole_rather_than_being_cut():
    name = "orders-" + "x" * 90
    fleet = FleetReport()
    fleet.add(_events(name, 1, 3))
    text = _rendered(fleet.to_dict(Prices()), 60)
    assert "…" not in text
    pieces = [
        cell.strip()
        for line in text.splitlines()
        if "orders-" in line or "xxxx" in line
        for cell in line.split("│")[1:2]
    ]
    assert "".join(pieces).startswith(name)


def test_costs_keep_significant_digits_and_the_window_projects_them_to_30_days():
    fleet = FleetReport()
    fleet.add(_events("tiny", 0, 2))  # two 1.3 s and 2.6 s invocations at 128 MB, one minute apart
    report = fleet.to_dict(Prices())
    assert report["window"]["seconds"] == 60.0
    cost = report["functions"][0]["cost_usd"]["x86_64"]
    assert report["functions"][0]["cost_usd_30_days"]["x86_64"] == cost * 30 * 86_400 / 60
    text = _rendered(report, 120)
    assert re.search(r"\$0\.0000(?![0-9])", text) is None
    assert f"${cost:.{2 - math.floor(math.log10(cost))}f}" in text  # three significant digits
    assert "2024-05-20T16:00:00.000+00:00" in text
