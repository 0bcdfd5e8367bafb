"""`shipper run --report FILE.html`: the page people look at, checked in a real browser and against hostile logs."""

from __future__ import annotations

import base64
import math
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shipper.cli import EXIT_OK
from shipper.report import FleetReport, Prices, bounded_name
from shipper.report_html import COLUMNS, html_report
from shipper.timeline import Timeline

from browser import render, screenshot
from exports import by_log_group, filter_log_events, fleet
from helpers import cwl_document, gz
from run_helpers import run, write

START_MS = 1716222585000


class Page(HTMLParser):
    """What a browser would build from the page: elements with their attributes, the text, the charts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.charts: list[list[tuple[str, dict[str, str]]]] = []
        self._in_chart = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if tag == "svg" and attributes.get("class") == "chart":
            self.charts.append([])
            self._in_chart = 1
        elif self._in_chart:
            self.charts[-1].append((tag, attributes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_chart = 0

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def drawn(chart: list[tuple[str, dict[str, str]]]) -> bool:
    """A chart drew its data: a mark with a path or a size."""
    return any(
        attributes.get("class") == "m" and (attributes.get("d") or float(attributes.get("width", "0")) > 0)
        for _, attributes in chart
    )


def expected_charts(report: dict) -> int:
    """The charts the page must have, from the JSON report of the same run."""
    count = 1  # the fleet over time
    for f in report["functions"]:
        failures = f["timeouts"] + f["out_of_memory"] + sum(f["errors"].values())
        failures += sum(f["throttles"].values()) + sum(f["init_errors"].values())
        count += 1  # invocations, cold starts and errors over time
        count += f["duration_ms"]["p50"] is not None
        count += f["init_duration_ms"]["p50"] is not None
        count += f["memory"]["max_used_mb"] is not None
        count += 1  # cost
        count += failures > 0
    return count + min(len(report["metrics"]), 10)


def _fleet_run(tmp_path: Path) -> tuple[dict, Path]:
    streams, _ = fleet(6000, seed=31)
    for group, members in by_log_group(streams).items():
        write(tmp_path / "in" / f"{group.strip('/')}.json", filter_log_events(members))
    page = tmp_path / "report.html"
    status, _ = run(tmp_path, str(tmp_path / "in"), "--report", str(tmp_path / "report.json"), "--report", str(page))
    assert status == EXIT_OK
    return orjson.loads((tmp_path / "report.json").read_bytes()), page


def test_the_fleet_page_loads_in_chromium_with_every_chart_drawn(tmp_path):
    report, page = _fleet_run(tmp_path)
    assert len(report["functions"]) >= 5 and report["metrics"]
    shown = render(page, tmp_path)
    assert shown.console == []
    dom = Page(shown.dom)
    assert len(dom.charts) == expected_charts(report)
    assert all(drawn(chart) for chart in dom.charts)
    # the overview links every function to its section, by number
    ids = {attributes["id"] for _, attributes in dom.elements if "id" in attributes}
    links = [attributes["href"] for tag, attributes in dom.elements if tag == "a"]
    assert len(links) >= 3 * min(len(report["functions"]), 15) - 2
    assert all(link.startswith("#fn-") and link[1:] in ids for link in links)
    text = " ".join(dom.text)
    for f in report["functions"]:
        assert f["function"] in text
    png = screenshot(page, tmp_path, tmp_path / "report.png")
    print(f"screenshot: {png}")


def test_console_messages_are_seen(tmp_path):
    """The check above can fail: a page that writes to the console or loads anything is caught."""
    page = tmp_path / "noisy.html"
    page.write_text('<!DOCTYPE html><p>x</p><script>console.error("from the page")</script>')
    assert any("from the page" in message for message in render(page, tmp_path).console)


HOSTILE = [
    "<script>console.error('xss')</script>",
    "</svg><script>console.error(1)</script><svg>",
    "</title></h2><img src=x onerror=console.error(2)>",
    '" onmouseover="console.error(3)" x="',
    "' autofocus onfocus='console.error(4)",
    "javascript:console.error(5)",
    "#fn-1",
    "]]><!--",
    "\x00\x1b[2J\x07\u202e\u2066",
    "&lt;&amp;",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=3).map("".join),
    st.text(min_size=1, max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=2000, max_size=3000),
)


def _hostile_input(names: list[str]) -> dict:
    """One function per name, each with an error of that type and a custom metric of that name and unit."""
    records = []
    for number, name in enumerate(names):
        request = f"r{number}"
        messages = [
            f"START RequestId: {request} Version: $LATEST\n",
            orjson.dumps(
                {"log_level": "ERROR", "requestId": request, "errorType": name, "errorMessage": name}
            ).decode(),
            "Rate exceeded\n",
            orjson.dumps(
                {
                    "_aws": {
                        "Timestamp": START_MS,
                        "CloudWatchMetrics": [
                            {"Namespace": "n", "Dimensions": [[]], "Metrics": [{"Name": name, "Unit": "Count"}]}
                        ],
                    },
                    name: 3,
                }
            ).decode(),
            f"REPORT RequestId: {request}\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 60 MB\tInit Duration: 100.1 ms\t\n",
        ]
        document = cwl_document(messages, log_group=f"/aws/lambda/{name}", start_ms=START_MS + number * 60_000)
        records.append({"kinesis": {"data": base64.b64encode(gz(document)).decode()}})
    return {"Records": records}


def assert_inert(text: str) -> Page:
    """Nothing in the page runs, loads or links outside it; ids are the sections' own, links go to functions."""
    page = Page(text)
    tags = {tag for tag, _ in page.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "base", "form", "foreignobject"}
    for _, attributes in page.elements:
        assert not [name for name in attributes if name.startswith("on") or name == "autofocus"]
        assert re.fullmatch(r"fn-\d+|metrics", attributes.get("id", "metrics"))
        assert re.fullmatch(r"#fn-\d+", attributes.get("href", "#fn-0"))
    return page


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(hostile_text, min_size=1, max_size=3, unique=True))
def test_text_from_logs_is_shown_as_text_never_as_markup(tmp_path, names):
    write(tmp_path / "in" / "event.json", orjson.dumps(_hostile_input(names)))
    page = tmp_path / "report.html"
    status, _ = run(tmp_path, str(tmp_path / "in"), "--report", str(page), "--report", str(tmp_path / "r.json"))
    assert status == EXIT_OK
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert {f["function"] for f in report["functions"]} == {bounded_name(name) for name in names}  # they reached it
    parsed = assert_inert(page.read_text())
    text = "".join(parsed.text)
    for name in names:
        if len(name) < 60 and name.isprintable():
            assert name in text


def test_hostile_names_render_inertly_in_chromium(tmp_path):
    write(tmp_path / "in" / "event.json", orjson.dumps(_hostile_input(HOSTILE)))
    page = tmp_path / "report.html"
    status, _ = run(tmp_path, str(tmp_path / "in"), "--report", str(page))
    assert status == EXIT_OK
    shown = render(page, tmp_path)
    assert shown.console == []
    dom = Page(shown.dom)
    assert not {tag for tag, _ in dom.elements} & {"script", "img"}
    assert all(drawn(chart) for chart in dom.charts)


hostile_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1e-300, 1e300, 1e308, sys.float_info.max, 2**63, math.inf, -math.inf, math.nan]),
)
positive = st.one_of(st.floats(min_value=1e-300, max_value=1e300), st.integers(min_value=1, max_value=10**15))


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.one_of(positive, st.sampled_from([0, -5.0])), min_size=1, max_size=20),
    memory=st.lists(st.integers(min_value=0, max_value=10**20), min_size=1, max_size=5),
    timestamps=st.lists(st.one_of(st.integers(min_value=-(10**30), max_value=10**30), hostile_number), max_size=20),
    metric_values=st.lists(hostile_number, max_size=10),
    overrides=st.lists(hostile_number, min_size=6, max_size=6),
)
@example(durations=[1.0], memory=[0], timestamps=[], metric_values=[1e308], overrides=[0.0] * 6)
def test_any_number_leaves_a_page_of_finite_coordinates(durations, memory, timestamps, metric_values, overrides):
    fleet_report, timeline = FleetReport(), Timeline()
    events = []
    for n, duration in enumerate(durations):
        used = memory[n % len(memory)]
        event = {"type": "invocation", "function": "f", "timestamp": START_MS + n * 1000, "cold_start": n == 0}
        event.update(duration_ms=duration, billed_duration_ms=13, memory_size_mb=memory[0], max_memory_used_mb=used)
        event.update(init_duration_ms=duration if n == 0 else None)
        events.append(event)
    events += [{"type": "error", "function": "f", "timestamp": t, "error_type": "E"} for t in timestamps]
    events += [{"type": "metric", "name": "m", "value": v, "timestamp": START_MS} for v in metric_values]
    fleet_report.add([e for e in events if e["type"] != "metric" or _finite_number(e["value"])])
    timeline.add(events)
    data = fleet_report.to_dict(Prices())
    f = data["functions"][0]
    f["cost_usd"]["x86_64"], f["cost_usd"]["arm64"], f["duration_ms"]["p99"] = overrides[:3]
    f["cold_start_pct"], data["totals"]["cost_usd"]["x86_64"], f["duration_ms"]["max"] = overrides[3:]
    page = html_report(data, fleet_report, timeline).decode()
    parsed = assert_inert(page)
    for _, attributes in parsed.elements:
        for name in ("x", "y", "width", "height", "d", "viewBox"):
            value = attributes.get(name, "")
            assert not re.search(r"nan|inf", value, re.IGNORECASE), (name, value)
            assert all(abs(float(n)) <= 1e5 for n in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", value))


@pytest.mark.parametrize("value", ["1e308", "1.7976931348623157e308", "-1.7976931348623157e308", "9e307"])
def test_metric_values_at_the_edge_of_float64_leave_a_page_of_finite_coordinates(tmp_path, value):
    """A metric line's value may be any finite float64; the page's axes round up from the largest one, and a
    round number past 1.8e308 is no float (it crashed `run --report page.html` with an OverflowError)."""
    messages = [
        f"big.gauge:{value}|g\n",
        f"MONITORING|1716222585|{value}|count|big.count|#env:prod\n",
        orjson.dumps(
            {
                "_aws": {
                    "Timestamp": START_MS,
                    "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [[]], "Metrics": [{"Name": "big.emf"}]}],
                },
                "big.emf": float(value),
            }
        ).decode(),
    ]
    document = cwl_document(messages, log_group="/aws/lambda/edge", start_ms=START_MS)
    write(
        tmp_path / "in" / "event.json",
        orjson.dumps({"Records": [{"kinesis": {"data": base64.b64encode(gz(document)).decode()}}]}),
    )
    page, data = tmp_path / "report.html", tmp_path / "report.json"
    status, _ = run(tmp_path, str(tmp_path / "in"), "--report", str(page), "--report", str(data))
    assert status == EXIT_OK
    assert {metric["name"] for metric in orjson.loads(data.read_bytes())["metrics"]} >= {"big.gauge", "big.emf"}
    for _, attributes in assert_inert(page.read_text()).elements:
        for name in ("x", "y", "width", "height", "d", "viewBox"):
            assert not re.search(r"nan|inf", attributes.get(name, ""), re.IGNORECASE), (name, attributes[name])


def _finite_number(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def test_a_long_busy_run_makes_a_small_page_quickly():
    """A week of a thousand functions and metrics: bounded state, and a page of a few MB in about a second."""
    timeline, fleet_report = Timeline(), FleetReport()
    week_s = 7 * 86_400
    events = []
    for second in range(0, week_s, 7):
        function = f"function-{second % 1000:04d}-" + "x" * 40
        events.append({"type": "invocation", "function": function, "timestamp": START_MS + second * 1000})
        events.append({"type": "metric", "name": f"metric-{second % 1000}", "value": 1.5, "timestamp": START_MS})
        if len(events) >= 10_000:
            timeline.add(events)
            fleet_report.add(events)
            events = []
    assert sum(len(b) for b in timeline.functions.names.values()) <= timeline.functions.limit
    started = time.perf_counter()
    page = html_report(fleet_report.to_dict(Prices(), top_metrics=10), fleet_report, timeline)
    elapsed = time.perf_counter() - started
    assert len(page) < 3_000_000, len(page)
    assert elapsed < 5, elapsed
    assert Page(page.decode()).charts


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=30 * 86_400_000), min_size=1, max_size=300),
    limit=st.sampled_from([8, 64, 1 << 15]),
)
def test_time_buckets_account_for_every_event(offsets, limit):
    """However the buckets coarsen, every event is in one shown bucket or counted as outside the window."""
    timeline = Timeline()
    timeline.functions.limit = limit
    events = [{"type": "invocation", "function": f"f{o % 3}", "timestamp": START_MS + o} for o in offsets]
    events.append({"type": "invocation", "function": "f0", "timestamp": 12})  # before 2014
    timeline.add(events)
    view = timeline.view(COLUMNS)
    shown = sum(sum(series["invocations"]) for series in view["functions"].values())
    assert view["out_of_range"] == 1
    assert shown + view["outside_window"] == len(offsets)
    assert 1 <= view["columns"] <= COLUMNS
    assert sum(len(b) for b in timeline.functions.names.values()) <= max(limit, 3 * 2)
    # each shown bucket holds exactly the events whose time falls in it
    counts = [0] * view["columns"]
    for o in offsets:
        index = (START_MS + o - view["start_ms"]) // view["bucket_ms"]
        if 0 <= index < view["columns"]:
            counts[index] += 1
    assert [sum(c) for c in zip(*(s["invocations"] for s in view["functions"].values()), strict=True)] == counts


def test_a_few_far_timestamps_do_not_stretch_the_window():
    timeline = Timeline()
    events = [{"type": "invocation", "function": "f", "timestamp": START_MS + n * 3_600} for n in range(1000)]
    events.append({"type": "error", "function": "f", "timestamp": START_MS + 5 * 365 * 86_400_000})
    timeline.add(events)
    view = timeline.view(COLUMNS)
    assert view["outside_window"] == 1
    assert view["columns"] * view["bucket_ms"] <= 2 * 3_600_000  # the hour of the invocations, not five years
    assert sum(view["functions"]["f"]["invocations"]) == 1000
