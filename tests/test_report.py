"""The report's numbers, checked against values each test computes on its own from what it generated."""

from __future__ import annotations

import itertools
import math
import random
import re
import sys
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.cli import EXIT_OK
from shipper.report import (
    PRICE_GB_SECOND_ARM64,
    PRICE_GB_SECOND_X86_64,
    PRICE_REQUEST,
    FleetReport,
    Prices,
    Quantiles,
    memory_hint,
)

from exports import by_log_group, filter_log_events, fleet
from run_helpers import run, write

STREAM = "2024/05/20/[$LATEST]{:032x}"


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _report(tmp_path, *arguments):
    status, events = run(tmp_path, *arguments, "--report", str(tmp_path / "report.json"))
    assert status == EXIT_OK
    return orjson.loads((tmp_path / "report.json").read_bytes()), events


def test_fleet_report_matches_the_generator_truth(tmp_path):
    streams, truth = fleet(6000, seed=31)
    for group, members in by_log_group(streams).items():
        write(tmp_path / "in" / f"{group.strip('/')}.json", filter_log_events(members))
    report, _ = _report(tmp_path, str(tmp_path / "in"))
    functions = {f["function"]: f for f in report["functions"]}
    assert functions.keys() == truth["functions"].keys()
    for name, expected in truth["functions"].items():
        got = functions[name]
        assert got["invocations"] == expected["invocations"], name
        assert got["cold_starts"] == expected["cold_starts"], name
        assert got["cold_start_pct"] == pytest.approx(100 * expected["cold_starts"] / expected["invocations"])
        assert got["timeouts"] == expected["timeouts"], name
        assert got["out_of_memory"] == expected["out_of_memory"], name
        assert sum(got["errors"].values()) == expected["errors"], name
        assert sum(got["throttles"].values()) == expected["throttles"], name
        assert sum(got["init_errors"].values()) == expected["init_errors"], name
        assert got["memory"]["configured_mb"] == expected["memory_size_mb"], name
        durations = expected["durations_ms"]
        for key, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            assert got["duration_ms"][key] == pytest.approx(nearest_rank(durations, q), rel=0.005), (name, key)
        assert got["duration_ms"]["max"] == max(durations)
        if expected["out_of_memory"]:  # an out-of-memory kill uses the whole size
            assert got["memory"]["max_used_mb"] == expected["memory_size_mb"]
            assert got["memory"]["hint"].startswith("at its limit")
    totals = report["totals"]
    assert totals["invocations"] == truth["invocations"]
    assert totals["cold_starts"] == truth["cold_starts"]
    assert report["run"]["log_events"] == truth["log_events"]


def _report_line(request: str, duration: float, billed: int, memory: int, used: int, init: float | None) -> str:
    line = (
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {used} MB\t"
    )
    return line + (f"Init Duration: {init:.2f} ms\t" if init is not None else "")


def test_costs_memory_percentiles_hints_and_failure_breakdowns(tmp_path):
    rng = random.Random(5)
    truth = {}
    lines = {}
    for name, memory, used_range, count in (("resize", 2048, (150, 700), 300), ("ingest", 512, (200, 500), 120)):
        invocations = []
        for i in range(count):
            duration = round(rng.lognormvariate(4, 1), 2)
            billed = math.ceil(duration)
            used = rng.randint(*used_range)
            init = round(rng.uniform(100, 900), 2) if i % 10 == 0 else None
            invocations.append((f"{i:08d}-{name[:4]}-4000-8000-{count:012d}", duration, billed, memory, used, init))
        if name == "ingest":  # once at its limit
            invocations[-1] = (*invocations[-1][:4], memory, None)
        truth[name] = invocations
        body = [
            f"2024-05-20T16:{i // 60:02d}:{i % 60:02d}.000Z {_report_line(*inv)}\n" for i, inv in enumerate(invocations)
        ]
        lines[name] = body
    ingest_failures = [
        "[ERROR] ClientError: An error occurred (ThrottlingException) when calling the PutItem operation: Rate exceeded",
        "[ERROR] ClientError: An error occurred (ThrottlingException) when calling the Query operation: Rate exceeded",
        "[ERROR] ClientError: An error occurred (ProvisionedThroughputExceededException) when calling the PutRecord operation",
    ]
    extra = [
        f"2024-05-20T17:00:0{i}.000Z START RequestId: {i:08d}-xmpl-4000-8000-000000000000 Version: $LATEST\n"
        for i in range(3)
    ]
    extra += [f"2024-05-20T17:00:0{i}.001Z {line}\n" for i, line in enumerate(ingest_failures)]
    extra += [
        "2024-05-20T17:00:09.000Z 2024-05-20T17:00:09.000Z 00000009-xmpl-4000-8000-000000000000 Task timed out after 30.00 seconds\n"
    ]
    for name, body in lines.items():
        more = extra if name == "ingest" else []
        write(
            tmp_path / "in" / "aws" / "lambda" / name / STREAM.format(len(name)) / "000000",
            "".join(body + more).encode(),
        )
    prices = (
        "--price-gb-second-x86-64",
        "0.00002",
        "--price-gb-second-arm64",
        "0.000015",
        "--price-request",
        "0.0000004",
    )
    report, _ = _report(tmp_path, str(tmp_path / "in"), "--format", "export", *prices)
    functions = {f["function"]: f for f in report["functions"]}
    for name, invocations in truth.items():
        got = functions[name]
        gb_seconds = sum(billed / 1000 * memory / 1024 for _, _, billed, memory, _, _ in invocations)
        assert got["billed_gb_seconds"] == pytest.approx(gb_seconds)
        assert got["cost_usd"]["x86_64"] == pytest.approx(gb_seconds * 0.00002 + len(invocations) * 0.0000004)
        assert got["cost_usd"]["arm64"] == pytest.approx(gb_seconds * 0.000015 + len(invocations) * 0.0000004)
        used = [inv[4] for inv in invocations]
        assert got["memory"]["max_used_mb"] == max(used)
        assert got["memory"]["p95_used_mb"] == nearest_rank(used, 0.95)  # whole MB: exact
        inits = [inv[5] for inv in invocations if inv[5] is not None]
        assert got["cold_starts"] == len(inits)
        assert got["init_duration_ms"]["p50"] == pytest.approx(nearest_rank(inits, 0.5), rel=0.005)
        assert got["init_duration_ms"]["p95"] == pytest.approx(nearest_rank(inits, 0.95), rel=0.005)
    assert (
        functions["resize"]["memory"]["hint"]
        == f"never used half ({max(i[4] for i in truth['resize'])} of 2,048 MB at most): try 896 MB"
    )
    assert functions["ingest"]["memory"]["hint"].startswith("at its limit")
    assert functions["ingest"]["throttles"] == {"ThrottlingException": 2, "ProvisionedThroughputExceededException": 1}
    assert functions["ingest"]["timeouts"] == 1
    assert report["totals"]["cost_usd"]["x86_64"] == pytest.approx(
        sum(f["cost_usd"]["x86_64"] for f in functions.values())
    )
    assert report["functions"][0]["function"] == "resize"  # the costliest first


def test_default_prices_are_the_public_on_demand_rates():
    assert PRICE_GB_SECOND_X86_64 == 0.0000166667
    assert PRICE_GB_SECOND_ARM64 == 0.0000133334
    assert pytest.approx(0.20) == PRICE_REQUEST * 1_000_000


@pytest.mark.parametrize(
    ("configured", "max_used", "oom", "hint"),
    [
        (1024, 300, 0, "never used half (300 of 1,024 MB at most): try 384 MB"),
        (256, 60, 0, "never used half (60 of 256 MB at most): try 128 MB"),
        (1024, 600, 0, None),
        (512, 512, 0, "at its limit (512 of 512 MB used): raise memory"),
        (512, 480, 2, "at its limit (480 of 512 MB used, 2 out-of-memory kills): raise memory"),
        (None, 10, 0, None),
    ],
)
def test_memory_hints(configured, max_used, oom, hint):
    assert memory_hint(configured, max_used, oom) == hint


def test_quantiles_stay_within_half_a_percent_in_constant_memory():
    rng = random.Random(9)
    values = [rng.lognormvariate(3, 2) for _ in range(50_000)]
    sketch = Quantiles()
    for value in values:
        sketch.add(value)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 0.999):
        assert sketch.quantile(q) == pytest.approx(nearest_rank(values, q), rel=0.005)
    assert sketch.quantile(1.0) == max(values)
    assert len(sketch.buckets) < 2500  # buckets, not values
    assert Quantiles().quantile(0.5) is None


def test_top_custom_metrics(tmp_path):
    lines = [f"1716222585{i:03d} MONITORING|1716222585|{i % 7}|count|orders.placed|#env:prod\n" for i in range(30)]
    lines += [f"1716222586{i:03d} checkout.latency:{10 + i}|ms|#env:prod\n" for i in range(12)]
    write(tmp_path / "aws" / "lambda" / "orders-api.log", "".join(lines).encode())
    report, events = _report(tmp_path, str(tmp_path / "aws"), "--top-metrics", "1")
    assert Counter(e["name"] for e in events if e["type"] == "metric") == {"orders.placed": 30, "checkout.latency": 12}
    [top] = report["metrics"]
    assert (top["name"], top["values"], top["sum"], top["max"]) == (
        "orders.placed",
        30,
        sum(i % 7 for i in range(30)),
        6,
    )
    assert top["functions"] == ["orders-api"]
    assert report["metric_names"] == 2


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.just(10**400) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200)
@given(st.lists(st.tuples(_JSON, _JSON), min_size=1, max_size=5))
def test_metric_events_of_any_json_name_and_value_are_counted_or_set_aside(pairs):
    """A name that is not text or a value that is not a finite float64 never stops the report."""
    report = FleetReport()
    report.add([{"type": "metric", "name": name, "value": value, "timestamp": 0} for name, value in pairs])
    summary = report.to_dict(Prices())
    finite = [type(v) in (int, float) and -sys.float_info.max <= v <= sys.float_info.max for _, v in pairs]
    assert summary["metric_values_not_kept"] == sum(type(name) is not str for name, _ in pairs)
    assert sum(m["values"] for m in summary["metrics"]) == sum(
        ok for (name, _), ok in zip(pairs, finite, strict=True) if type(name) is str
    )


_VERSION_NAMES = [f"v{i}" for i in range(25)]
_STAMPS = st.one_of(
    st.integers(-(10**15), 2 * 10**14),
    st.just(10**14 - 1),
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
    st.text(),
)
_STREAMS = st.one_of(
    st.sampled_from(_VERSION_NAMES).map(lambda name: f"2024/05/20/[{name}]abc"),
    st.sampled_from(["no version", "[]", "a[" + "x" * 65 + "]"]),
    st.none(),
    st.integers(),
)


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["log", "invocation", "error", "timeout", "out_of_memory", "metric"]),
                "timestamp": _STAMPS,
                "log_stream": _STREAMS,
            }
        ),
        max_size=60,
    ),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_property_window_and_versions_are_those_of_each_event_in_turn(events, cuts):
    """However events are batched, the time window spans exactly their int timestamps in [0, 1e14), and each
    invocation and failure counts for the version its own log stream names (the first 20 names, then (other))."""
    for event in events:
        event.update(function="f", name="m", value=1)
    report = FleetReport()
    bounds = [0, *sorted(cuts), len(events)]
    for start, end in itertools.pairwise(bounds):
        report.add(events[start:end])
    data = report.to_dict(Prices())

    stamps = [e["timestamp"] for e in events if type(e["timestamp"]) is int and 0 <= e["timestamp"] < 10**14]
    expected_window = (min(stamps), max(stamps)) if stamps else (None, None)
    assert (report.first_ms, report.last_ms) == expected_window
    versions: dict[str, list[int]] = {}
    for event in events:
        if event["type"] in ("log", "metric") or type(event["log_stream"]) is not str:
            continue
        if (found := re.search(r"\[([^\]]{1,64})\]", event["log_stream"])) is None:
            continue
        name = found.group(1) if found.group(1) in versions or len(versions) < 20 else "(other)"
        counts = versions.setdefault(name, [0, 0])
        counts[0 if event["type"] == "invocation" else 1] += 1
    rows = data["functions"][0]["versions"] if data["functions"] else []
    assert {row["version"]: [row["invocations"], row["failed_invocations"]] for row in rows} == {
        name: [invocations, min(failures, invocations)] for name, (invocations, failures) in versions.items()
    }
