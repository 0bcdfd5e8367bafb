"""Custom metrics written as log lines: every format in formats.md §6, the decisions taken, hostile input."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper import metrics
from shipper.contract import contract_violations
from shipper.metrics import (
    MAX_TAGS_PER_LINE,
    MAX_VALUES_PER_LINE,
    MAX_VALUES_PER_METRIC,
    MalformedMetric,
    parse_metric_object,
    parse_metric_text,
)

TS = 1716222585009  # the log event's time, epoch ms
REQ = "4b142fc3-17b8-4cdb-a46b-a8dbe7918715"
NODE_PREFIX = f"2024-05-20T16:29:45.009Z\t{REQ}\tINFO\t"
METRIC_KEYS = {
    "timestamp",
    "name",
    "value",
    "metric_type",
    "unit",
    "namespace",
    "tags",
    "sample_rate",
    "format",
    "delta",
    "request_id",
}


def metric(name: str, value: float, metric_type: str, fmt: str, **fields: Any) -> dict[str, Any]:
    """An expected metric dict: defaults for the optional fields, `fields` override them."""
    expected = {
        "timestamp": TS,
        "name": name,
        "value": value,
        "metric_type": metric_type,
        "unit": None,
        "namespace": None,
        "tags": {},
        "sample_rate": 1.0 if fmt == "statsd" else None,
        "format": fmt,
        "delta": False,
        "request_id": None,
    }
    assert fields.keys() <= expected.keys()
    expected.update(fields)
    return expected


def check_result(result: Any) -> None:
    """What every answer must be: None, a reasoned MalformedMetric, or metric dicts that fit the contract."""
    if result is None:
        return
    if isinstance(result, MalformedMetric):
        assert isinstance(result.reason, str)
        assert result.reason
        return
    assert isinstance(result, list)
    assert result
    for item in result:
        assert set(item) == METRIC_KEYS
        assert isinstance(item["value"], float)
        assert math.isfinite(item["value"])
        assert isinstance(item["timestamp"], int)
        assert not isinstance(item["timestamp"], bool)
        assert item["sample_rate"] is None or isinstance(item["sample_rate"], float)
        event = {"type": "metric", "function": None, "log_group": None, "log_stream": None, "account": None}
        event |= {"event_id": None, **item}
        assert contract_violations(event) == []


def text(body: str) -> Any:
    result = parse_metric_text(body, TS)
    check_result(result)
    return result


def obj(document: Any) -> Any:
    result = parse_metric_object(document, TS)
    check_result(result)
    return result


def malformed(result: Any, *words: str) -> None:
    """`result` is a MalformedMetric whose reason says each of `words`."""
    assert isinstance(result, MalformedMetric), result
    for word in words:
        assert word in result.reason, (word, result.reason)


# The samples of formats.md §6, with their exact metric dicts.

SAMPLE_LINES = [
    ("gorets:1|c", [metric("gorets", 1.0, "count", "statsd")]),
    ("glork:320|ms|@0.1", [metric("glork", 320.0, "timer", "statsd", unit="Milliseconds", sample_rate=0.1)]),
    ("gaugor:-10|g", [metric("gaugor", -10.0, "gauge", "statsd", delta=True)]),
    ("uniques:765|s", [metric("uniques", 765.0, "set", "statsd")]),
    (
        "page.views:1|c|#env:prod,service:web",
        [metric("page.views", 1.0, "count", "statsd", tags={"env": "prod", "service": "web"})],
    ),
    (
        "song.length:240:180:300|h|@0.5|#genre:rock",
        [
            metric("song.length", value, "histogram", "statsd", sample_rate=0.5, tags={"genre": "rock"})
            for value in (240.0, 180.0, 300.0)
        ],
    ),
    (
        "orders.latency:42.7|d|#env:prod|c:ci-4a2b7c9d|T1716222585",
        [metric("orders.latency", 42.7, "distribution", "statsd", tags={"env": "prod"}, timestamp=1716222585000)],
    ),
    (
        "users.online:1|c|@0.5|#country:china",
        [metric("users.online", 1.0, "count", "statsd", sample_rate=0.5, tags={"country": "china"})],
    ),
    (
        "MONITORING|1716222585|1|count|orders.processed|#env:prod,service:orders",
        [
            metric(
                "orders.processed",
                1.0,
                "count",
                "datadog",
                timestamp=1716222585000,
                tags={"env": "prod", "service": "orders"},
            )
        ],
    ),
    (
        "MONITORING|1|Count|request_count|theburningmonk.com|service=content-item,region=eu-west-1",
        [
            metric(
                "request_count",
                1.0,
                "count",
                "lumigo",
                unit="Count",
                namespace="theburningmonk.com",
                tags={"service": "content-item", "region": "eu-west-1"},
            )
        ],
    ),
    (
        NODE_PREFIX + "MONITORING|42.7|Milliseconds|latency|theburningmonk.com|service=content-item,region=eu-west-1\n",
        [
            metric(
                "latency",
                42.7,
                "timer",
                "lumigo",
                unit="Milliseconds",
                namespace="theburningmonk.com",
                tags={"service": "content-item", "region": "eu-west-1"},
            )
        ],
    ),
]


@pytest.mark.parametrize(("line", "expected"), SAMPLE_LINES, ids=[line[:40] for line, _ in SAMPLE_LINES])
def test_sample_lines(line: str, expected: list[dict[str, Any]]) -> None:
    assert text(line) == expected
    assert text(line + "\n") == expected


def test_sample_statsd_packet_is_one_dict_per_line() -> None:
    packet = "gorets:1|c\nglork:320|ms|@0.1\ngaugor:-10|g\nuniques:765|s\n"
    assert text(packet) == [expected[0] for _, expected in SAMPLE_LINES[:4]]


def test_sample_datadog_json() -> None:
    document = {
        "m": "orders.processed",
        "v": 1,
        "e": 1716222585,
        "t": ["env:prod", "service:orders", "dd_lambda_layer:datadog-python312_6.104.0"],
    }
    assert obj(document) == [
        metric(
            "orders.processed",
            1.0,
            "distribution",
            "datadog",
            timestamp=1716222585000,
            tags={"env": "prod", "service": "orders", "dd_lambda_layer": "datadog-python312_6.104.0"},
        )
    ]


def emf_sample() -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": 1716222585009,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Orders",
                    "Dimensions": [["Service", "Operation"]],
                    "Metrics": [
                        {"Name": "Latency", "Unit": "Milliseconds", "StorageResolution": 60},
                        {"Name": "Processed", "Unit": "Count"},
                    ],
                }
            ],
        },
        "Service": "orders-api",
        "Operation": "PutOrder",
        "Latency": [12.5, 48.1, 7.9],
        "Processed": 3,
        "requestId": REQ,
    }


def test_sample_emf_array_values_and_two_metrics() -> None:
    tags = {"Service": "orders-api", "Operation": "PutOrder"}
    common = {"namespace": "Orders", "tags": tags, "request_id": REQ, "timestamp": 1716222585009}
    assert parse_metric_object(emf_sample(), 0) == [
        *(metric("Latency", value, "timer", "emf", unit="Milliseconds", **common) for value in (12.5, 48.1, 7.9)),
        metric("Processed", 3.0, "count", "emf", unit="Count", **common),
    ]


# StatsD / DogStatsD decisions


@pytest.mark.parametrize(
    ("line", "value", "delta"),
    [("g:+5|g", 5.0, True), ("g:-5|g", -5.0, True), ("g:5|g", 5.0, False), ("g:-0.5|g", -0.5, True)],
)
def test_signed_gauge_is_a_delta_that_keeps_its_sign(line: str, value: float, delta: bool) -> None:
    [parsed] = text(line)
    assert (parsed["value"], parsed["delta"]) == (value, delta)


@pytest.mark.parametrize("line", ["c:-3|c", "t:+3|ms", "h:-1|h", "d:-2.5|d"])
def test_only_gauges_have_deltas(line: str) -> None:
    [parsed] = text(line)
    assert parsed["delta"] is False
    assert parsed["value"] == float(line.split(":")[1].split("|")[0])


def test_packed_gauge_marks_each_value() -> None:
    assert [(m["value"], m["delta"]) for m in text("g:1:-2:+3|g")] == [(1.0, False), (-2.0, True), (3.0, True)]


def test_packed_values_give_one_dict_each_with_its_own_tags() -> None:
    parsed = text("lat:1:2.5:3e2|ms|@0.25|#env:prod")
    assert [m["value"] for m in parsed] == [1.0, 2.5, 300.0]
    assert all(m["sample_rate"] == 0.25 and m["unit"] == "Milliseconds" for m in parsed)
    parsed[0]["tags"]["added"] = "x"
    assert parsed[1]["tags"] == {"env": "prod"}


def test_packing_a_set_is_malformed() -> None:
    malformed(text("users:1:2|s"), "set")


def test_non_numeric_set_member_is_malformed_and_says_why() -> None:
    malformed(text("users:alice|s"), "not a number", "set members must be numbers")
    malformed(text("users:user_17|s"), "set members must be numbers")


def test_bare_tags_and_first_colon_split() -> None:
    [parsed] = text("req:1|c|#env:prod,canary,url:http://host:8080/a,ratio:1:2")
    assert parsed["tags"] == {"env": "prod", "canary": "", "url": "http://host:8080/a", "ratio": "1:2"}


def test_timestamp_section_sets_the_time_in_ms() -> None:
    [parsed] = text("x:1|c|T1716222585")
    assert parsed["timestamp"] == 1716222585000
    [parsed] = text("x:1|c")
    assert parsed["timestamp"] == TS


@pytest.mark.parametrize("section", ["T", "Tabc", "T-5", "T1.5", "T1716222585000"])
def test_bad_timestamp_section_is_malformed(section: str) -> None:
    malformed(text(f"x:1|c|{section}"), "timestamp")


def test_container_external_and_cardinality_sections_are_accepted_and_not_kept() -> None:
    plain = text("x:1|c|#a:b")
    assert text("x:1|c|#a:b|c:ci-4a2b7c9d|e:it-false,cn-app|card:orchestrator") == plain
    assert text("x:1|c|c:in-123|#a:b") == plain


def test_sample_rate_defaults_to_one() -> None:
    [parsed] = text("x:1|c")
    assert parsed["sample_rate"] == 1.0
    [parsed] = text("x:1|c|@1")
    assert parsed["sample_rate"] == 1.0


@pytest.mark.parametrize("rate", ["@0", "@1.5", "@-0.5", "@abc", "@", "@nan"])
def test_sample_rate_outside_zero_one_is_malformed(rate: str) -> None:
    malformed(text(f"x:1|c|{rate}"), "Sample rate")


@pytest.mark.parametrize("section", ["x", "#a|#b", "@0.5|@0.5", "c", "k:v", ""])
def test_unknown_empty_or_repeated_section_is_malformed(section: str) -> None:
    assert isinstance(text(f"x:1|c|{section}"), MalformedMetric)


def test_unknown_section_reason_names_it() -> None:
    malformed(text("x:1|c|zz"), "'zz'")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "abc", "0x10", "1_000", "1::2"])
def test_non_finite_or_non_numeric_value_is_malformed(value: str) -> None:
    malformed(text(f"x:{value}|g"), "not a finite number")


def test_packet_of_metric_lines() -> None:
    assert [m["name"] for m in text("a:1|c\n\nb:2:3|h\n")] == ["a", "b", "b"]


def test_packet_with_a_non_metric_line_is_malformed() -> None:
    malformed(text("a:1|c\nhello world|x"), "Line 2", "not a metric line")


def test_packet_with_a_bad_metric_line_names_the_line() -> None:
    malformed(text("a:1|c\nb:x|c"), "Line 2", "'x'")


def test_multiline_log_without_a_metric_head_is_not_a_metric() -> None:
    assert text("Traceback (most recent call last):\n  a | b\n  File x, line 3") is None


NOT_METRICS = [
    "",
    "\n",
    "hello world",
    "error: 5|3 retries",
    "time: 12:30|x",
    "ratio 3:1|c",
    "http://example.com/a|c",
    "https://example.com:8443/path?q=1|g",
    "see https://example.com/x|y for details",
    "a|b|c",
    "| table | row |",
    "key: value | other: thing",
    "x:1|gauge",
    "x:1|C",
    "x:1|c2",
    " x:1|c",
    "1x:1|c",
    "_e{5,4}:title|text",
    "_sc|my.check|0",
    "[INFO]\t2024-05-20T16:29:45.009Z\treq\tprocessed 3 items | took 12ms",
    "user=alice status=200 path=/api|v2",
    "see MONITORING| in the docs",
    "grep MONITORING|1|2 logs",
]


@pytest.mark.parametrize("line", NOT_METRICS)
def test_ordinary_lines_are_not_metrics(line: str) -> None:
    assert text(line) is None


# MONITORING| lines: Datadog and Lumigo


def test_datadog_text_without_tags_and_other_types() -> None:
    for metric_type in ("count", "gauge", "histogram", "distribution"):
        assert text(f"MONITORING|1716222585|-2.5|{metric_type}|a.b") == [
            metric("a.b", -2.5, metric_type, "datadog", timestamp=1716222585000)
        ]


def test_datadog_text_bare_tag() -> None:
    [parsed] = text("MONITORING|1716222585|1|count|x|#cold_start,env:prod")
    assert parsed["tags"] == {"cold_start": "", "env": "prod"}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("MONITORING|1716222585|1|count", ["4 fields", "Datadog needs 5 or 6"]),
        ("MONITORING|1716222585|1|count|x|#a|b", ["7 fields", "Datadog needs 5 or 6"]),
        ("MONITORING|1716222585000|1|count|x", ["epoch seconds"]),
        ("MONITORING|1716222585|1e999|count|x", ["not a finite number"]),
        ("MONITORING|1716222585|1|count|9lives", ["name"]),
        ("MONITORING|1716222585|1|count|x|env:prod", ["must start with #"]),
        ("MONITORING|1716222585|1|count|x|#:prod", ["empty name"]),
    ],
)
def test_bad_datadog_text_is_malformed(line: str, words: list[str]) -> None:
    malformed(text(line), *words)


@pytest.mark.parametrize(
    ("unit", "metric_type"),
    [
        ("Count", "count"),
        ("count", "count"),
        ("COUNT", "count"),
        ("Seconds", "timer"),
        ("milliseconds", "timer"),
        ("Microseconds", "timer"),
        ("Bytes", "gauge"),
        ("Count/Second", "gauge"),
        ("Percent", "gauge"),
        ("None", "gauge"),
    ],
)
def test_lumigo_and_emf_take_the_metric_type_from_the_unit(unit: str, metric_type: str) -> None:
    [lumigo] = text(f"MONITORING|1|{unit}|n|ns|")
    assert (lumigo["unit"], lumigo["metric_type"]) == (unit, metric_type)
    document = emf_sample()
    document["_aws"]["CloudWatchMetrics"][0]["Metrics"] = [{"Name": "Processed", "Unit": unit}]
    [emf] = obj(document)
    assert (emf["unit"], emf["metric_type"]) == (unit, metric_type)


def test_lumigo_empty_dimensions_and_value_with_equals() -> None:
    assert text("MONITORING|0.5|Bytes|mem|ns|") == [metric("mem", 0.5, "gauge", "lumigo", unit="Bytes", namespace="ns")]
    [parsed] = text("MONITORING|1|Count|n|ns|query=a=b,k=")
    assert parsed["tags"] == {"query": "a=b", "k": ""}


@pytest.mark.parametrize(
    "body",
    [
        "INFO MONITORING|3|Count|n|ns|k=v",
        NODE_PREFIX + "MONITORING|3|Count|n|ns|k=v",
        "[INFO]\tsent MONITORING|3|Count|n|ns|k=v to the collector",
        "first line\nMONITORING|3|Count|n|ns|k=v\nlast line",
        "see MONITORING| in the docs, then MONITORING|3|Count|n|ns|k=v",
    ],
)
def test_lumigo_is_found_anywhere_in_the_body(body: str) -> None:
    assert text(body) == [metric("n", 3.0, "count", "lumigo", unit="Count", namespace="ns", tags={"k": "v"})]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("MONITORING|1|2|3", ["4 fields", "Datadog needs 5 or 6, Lumigo 6"]),
        ("MONITORING|", ["2 fields"]),
        ("MONITORING|1|Count|n|ns", ["5 fields", "Lumigo needs 6"]),
        ("MONITORING|1|Count|n|ns|k=v|x", ["7 fields", "Lumigo needs 6"]),
        ("MONITORING|1|Count|n|ns|k=v|x|y|z|" + "|" * 10_000, ["10010 fields", "Lumigo needs 6"]),
        ("MONITORING|abc|Count|n|ns|k=v", ["neither form", "Datadog", "Lumigo"]),
        ("MONITORING|nan|Count|n|ns|k=v", ["neither form"]),
        ("MONITORING|1716222585|1|sum|n|#a", ["neither form"]),
        ("MONITORING|1e999|Count|n|ns|k=v", ["not a finite number"]),
        ("MONITORING|1|Count|n|ns|region", ["key=value"]),
        ("MONITORING|1|Count||ns|k=v", ["empty metric name"]),
        ("MONITORING|1|Count|n||k=v", ["empty namespace"]),
        ("MONITORING|1||n|ns|k=v", ["empty unit"]),
        (NODE_PREFIX + "MONITORING|oops", ["2 fields"]),
    ],
)
def test_bad_or_ambiguous_monitoring_lines_are_malformed(line: str, words: list[str]) -> None:
    malformed(text(line), *words)


def test_monitoring_forms_are_told_apart_by_their_fields() -> None:
    # Field 1 all digits, field 2 a number and field 3 a Datadog type: Datadog, even with a small epoch.
    [datadog] = text("MONITORING|5|7|gauge|g")
    assert (datadog["format"], datadog["timestamp"], datadog["value"]) == ("datadog", 5000, 7.0)
    # Field 1 a number and field 2 not one: Lumigo, even when field 1 is all digits.
    [lumigo] = text("MONITORING|1716222585|count|gauge|ns|")
    assert (lumigo["format"], lumigo["value"], lumigo["name"]) == ("lumigo", 1716222585.0, "gauge")


# Datadog JSON objects


def dd(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"m": "orders.processed", "v": 2.5, "e": 1716222585, "t": ["env:prod"]}
    document.update(fields)
    return document


def test_datadog_json_int_value_bare_tags_and_empty_tags() -> None:
    [parsed] = obj(dd(v=3, t=["cold_start", "k:a:b"]))
    assert (parsed["value"], parsed["tags"]) == (3.0, {"cold_start": "", "k": "a:b"})
    [parsed] = obj(dd(t=[]))
    assert parsed["tags"] == {}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (dd(v=True), ["v"]),
        (dd(v="1"), ["v"]),
        (dd(v=None), ["v"]),
        (dd(v=float("nan")), ["not a finite number"]),
        (dd(v=float("inf")), ["not a finite number"]),
        (dd(v=10**400), ["not a finite number"]),
        (dd(e=-1716222585.5), ["epoch seconds"]),
        (dd(e=True), ["epoch seconds"]),
        (dd(e=-1), ["epoch seconds"]),
        (dd(e=1716222585000), ["epoch seconds"]),
        (dd(t="env:prod"), ["not a list"]),
        (dd(t=["env:prod", 5]), ["not a string"]),
        (dd(m=""), ["m"]),
        (dd(m=5), ["m"]),
        ({"m": "x", "v": 1}, ["'e'"]),
        ({"m": "x", "v": 1, "e": 1716222585}, ["'t'"]),
        (dd(level="info"), ["other than m, v, e and t"]),
    ],
)
def test_bad_datadog_json_is_malformed(document: dict[str, Any], words: list[str]) -> None:
    malformed(obj(document), *words)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"level": "INFO", "message": "processed order", "order_id": 17},
        {"m": "only m"},
        {"v": 1, "e": 2},
        {"timestamp": "2024-05-20T16:29:45.009Z", "level": "ERROR", "message": "MONITORING|1|2|3"},
        {"msg": "a:1|c", "metric": {"name": "x", "value": 1}},
    ],
)
def test_json_app_logs_are_not_metrics(document: dict[str, Any]) -> None:
    assert obj(document) is None


@pytest.mark.parametrize("document", [[1, 2], "a:1|c", 5, None])
def test_non_object_json_is_not_a_metric(document: Any) -> None:
    assert parse_metric_object(document, TS) is None


# CloudWatch EMF


def test_emf_two_dimension_sets_tag_every_named_key() -> None:
    document = emf_sample()
    document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [["Service"], ["Service", "Operation"], []]
    document["Region"] = "eu-west-1"  # a root member no dimension names: not a tag
    parsed = obj(document)
    assert all(m["tags"] == {"Service": "orders-api", "Operation": "PutOrder"} for m in parsed)


def test_emf_two_directives_and_no_unit() -> None:
    document = emf_sample()
    document["_aws"]["CloudWatchMetrics"].append(
        {"Namespace": "Billing", "Dimensions": [], "Metrics": [{"Name": "Cost"}]}
    )
    document["Cost"] = 0.25
    del document["requestId"]
    document["function_request_id"] = "fn-req"
    parsed = obj(document)
    assert [(m["namespace"], m["name"]) for m in parsed] == [("Orders", "Latency")] * 3 + [
        ("Orders", "Processed"),
        ("Billing", "Cost"),
    ]
    assert parsed[-1] == metric("Cost", 0.25, "gauge", "emf", namespace="Billing", request_id="fn-req")
    assert {m["request_id"] for m in parsed} == {"fn-req"}


def test_emf_tags_are_separate_per_dict_and_request_id_optional() -> None:
    document = emf_sample()
    del document["requestId"]
    parsed = obj(document)
    assert {m["request_id"] for m in parsed} == {None}
    parsed[0]["tags"]["x"] = "y"
    assert "x" not in parsed[1]["tags"]


def emf_with(change: Any) -> dict[str, Any]:
    document = emf_sample()
    change(document)
    return document


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(*path: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


DIRECTIVE = ("_aws", "CloudWatchMetrics", 0)

BAD_EMF = [
    (_delete("_aws", "Timestamp"), ["Timestamp"]),
    (_set(("_aws", "Timestamp"), "1716222585009"), ["Timestamp"]),
    (_set(("_aws", "Timestamp"), 1716222585.009), ["Timestamp"]),
    (_set(("_aws", "Timestamp"), True), ["Timestamp"]),
    (_set(("_aws", "Timestamp"), -1), ["Timestamp"]),
    (_set(("_aws",), "yes"), ["_aws"]),
    (_set(("_aws", "CloudWatchMetrics"), []), ["CloudWatchMetrics"]),
    (_set(("_aws", "CloudWatchMetrics"), {"Namespace": "x"}), ["CloudWatchMetrics"]),
    (_set(DIRECTIVE, "Orders"), ["directive"]),
    (_delete(*DIRECTIVE, "Namespace"), ["Namespace"]),
    (_set((*DIRECTIVE, "Namespace"), 5), ["Namespace"]),
    (_delete(*DIRECTIVE, "Dimensions"), ["Dimensions"]),
    (_set((*DIRECTIVE, "Dimensions"), ["Service"]), ["Dimensions"]),
    (_set((*DIRECTIVE, "Dimensions"), [[1]]), ["dimension name"]),
    (_delete(*DIRECTIVE, "Metrics"), ["Metrics"]),
    (_set((*DIRECTIVE, "Metrics"), []), ["no metric values"]),
    (_set((*DIRECTIVE, "Metrics", 0), "Latency"), ["definition"]),
    (_delete(*DIRECTIVE, "Metrics", 0, "Name"), ["Name"]),
    (_set((*DIRECTIVE, "Metrics", 0, "Unit"), 5), ["Unit"]),
    (_set((*DIRECTIVE, "Metrics", 0, "StorageResolution"), 5), ["StorageResolution"]),
    (_set((*DIRECTIVE, "Metrics", 0, "StorageResolution"), True), ["StorageResolution"]),
    (_delete("Latency"), ["'Latency'", "no value"]),
    (_set(("Latency",), "12.5"), ["'Latency'", "not a finite number"]),
    (_set(("Latency",), True), ["'Latency'", "not a finite number"]),
    (_set(("Latency",), [1.0, "2"]), ["'Latency'", "not a finite number"]),
    (_set(("Latency",), [1.0, float("nan")]), ["not a finite number"]),
    (_set(("Processed",), float("inf")), ["'Processed'", "not a finite number"]),
    (_set(("Latency",), []), []),  # Processed still has a value: handled below
    (_set(("Service",), 5), ["'Service'", "int", "string"]),
    (_delete("Operation"), ["'Operation'", "missing"]),
]


@pytest.mark.parametrize(("change", "words"), [case for case in BAD_EMF if case[1]])
def test_bad_emf_is_malformed(change: Any, words: list[str]) -> None:
    malformed(obj(emf_with(change)), *words)


def test_emf_empty_value_array_gives_no_dicts_for_that_metric() -> None:
    assert [m["name"] for m in obj(emf_with(_set(("Latency",), [])))] == ["Processed"]
    document = emf_with(_set(("Latency",), []))
    document["Processed"] = []
    malformed(obj(document), "no metric values")


# Bounds


def test_values_per_metric_bound() -> None:
    assert len(text("x:" + ":".join(["1"] * MAX_VALUES_PER_METRIC) + "|h")) == MAX_VALUES_PER_METRIC
    malformed(text("x:" + ":".join(["1"] * (MAX_VALUES_PER_METRIC + 1)) + "|h"), "1001 values", "limit is 1000")
    assert len(obj(emf_with(_set(("Latency",), [1.0] * MAX_VALUES_PER_METRIC)))) == MAX_VALUES_PER_METRIC + 1
    malformed(obj(emf_with(_set(("Latency",), [1.0] * (MAX_VALUES_PER_METRIC + 1)))), "1001 values", "limit is 1000")


def test_values_per_line_bound_holds_however_the_values_are_named() -> None:
    packed = ":".join(["1"] * MAX_VALUES_PER_METRIC)
    lines = MAX_VALUES_PER_LINE // MAX_VALUES_PER_METRIC
    assert len(text("\n".join(f"x:{packed}|h" for _ in range(lines)))) == MAX_VALUES_PER_LINE
    malformed(text("\n".join(f"x:{packed}|h" for _ in range(lines + 1))), "more than 10,000 metric values")
    # One member named by many definitions: 28 KB of JSON that would be two million metrics.
    document = emf_with(_set(("Latency",), [1.0] * MAX_VALUES_PER_METRIC))
    document["_aws"]["CloudWatchMetrics"][0]["Metrics"] = [{"Name": "Latency"}] * 2000
    started = time.monotonic()
    malformed(obj(document), "more than 10,000 metric values")
    assert time.monotonic() - started < 1


def tag_list(count: int, separator: str = ":") -> list[str]:
    return [f"k{i}{separator}v" for i in range(count)]


def test_tags_per_line_bound() -> None:
    at_limit, over = tag_list(MAX_TAGS_PER_LINE), tag_list(MAX_TAGS_PER_LINE + 1)
    reason = "has 1001 tags; the limit is 1000"
    assert len(text("x:1|c|#" + ",".join(at_limit))[0]["tags"]) == MAX_TAGS_PER_LINE
    malformed(text("x:1|c|#" + ",".join(over)), reason)
    malformed(text("MONITORING|1716222585|1|count|x|#" + ",".join(over)), reason)
    lumigo = "MONITORING|1|Count|n|ns|"
    assert len(text(lumigo + ",".join(tag_list(MAX_TAGS_PER_LINE, "=")))[0]["tags"]) == MAX_TAGS_PER_LINE
    malformed(text(lumigo + ",".join(tag_list(MAX_TAGS_PER_LINE + 1, "="))), reason)
    malformed(obj(dd(t=over)), reason)
    keys = [f"D{i}" for i in range(MAX_TAGS_PER_LINE + 1)]
    document = emf_sample() | dict.fromkeys(keys, "v")
    document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [keys[:500], keys[500:]]
    malformed(obj(document), reason)


def test_hostile_long_fields_do_not_bloat_the_reason() -> None:
    result = text("x:1|c|" + "z" * 100_000)
    malformed(result, "section")
    assert len(result.reason) < 200
    result = text("MONITORING|" + "9" * 100_000 + "|1|count|x")
    malformed(result, "epoch seconds")
    assert len(result.reason) < 200


# Property tests

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TAG_VALUES = st.text(alphabet="abcXYZ019:._-/", max_size=12)
COLON_TAGS = st.dictionaries(NAMES, TAG_VALUES, max_size=6)
EPOCH_SECONDS = st.integers(min_value=0, max_value=10**11 - 1)
STATSD_TYPES = {"c": "count", "ms": "timer", "g": "gauge", "s": "set", "h": "histogram", "d": "distribution"}


def colon_tag_text(tags: dict[str, str]) -> str:
    return ",".join(f"{key}:{value}" if value else key for key, value in tags.items())


def signed(value: float, plus: bool) -> str:
    written = repr(value)
    return "+" + written if plus and not written.startswith("-") else written


@st.composite
def statsd_lines(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    name = draw(NAMES)
    code = draw(st.sampled_from(sorted(STATSD_TYPES)))
    metric_type = STATSD_TYPES[code]
    count = 1 if code == "s" else draw(st.integers(min_value=1, max_value=5))
    values = draw(st.lists(FLOATS, min_size=count, max_size=count))
    written = [signed(value, draw(st.booleans())) for value in values]
    rate = draw(st.none() | st.floats(min_value=0.0, max_value=1.0, exclude_min=True))
    tags = draw(st.none() | COLON_TAGS)
    seconds = draw(st.none() | EPOCH_SECONDS)
    sections = [f"{name}:{':'.join(written)}", code]
    if rate is not None:
        sections.append(f"@{rate!r}")
    if tags is not None:
        sections.append("#" + colon_tag_text(tags))
    sections += draw(st.lists(st.sampled_from(["c:ci-4a2b7c9d", "e:it-false", "card:high"]), unique=True))
    if seconds is not None:
        sections.append(f"T{seconds}")
    expected = [
        metric(
            name,
            value,
            metric_type,
            "statsd",
            unit="Milliseconds" if code == "ms" else None,
            tags=tags or {},
            sample_rate=1.0 if rate is None else rate,
            timestamp=TS if seconds is None else seconds * 1000,
            delta=code == "g" and raw[0] in "+-",
        )
        for raw, value in zip(written, values, strict=True)
    ]
    return "|".join(sections), expected


@given(st.lists(statsd_lines(), min_size=1, max_size=4), st.sampled_from(["", "\n"]))
def test_generated_statsd_packets_parse_back(lines: list[tuple[str, list[dict[str, Any]]]], end: str) -> None:
    body = "\n".join(line for line, _ in lines) + end
    assert text(body) == [expected for _, metrics in lines for expected in metrics]


@given(EPOCH_SECONDS, FLOATS, st.sampled_from(["count", "gauge", "histogram", "distribution"]), NAMES)
def test_generated_datadog_text_parses_back(seconds: int, value: float, metric_type: str, name: str) -> None:
    line = f"MONITORING|{seconds}|{value!r}|{metric_type}|{name}"
    expected = metric(name, value, metric_type, "datadog", timestamp=seconds * 1000)
    assert text(line) == [expected]


@given(EPOCH_SECONDS, FLOATS, NAMES, COLON_TAGS)
def test_generated_datadog_text_with_tags_parses_back(seconds: int, value: float, name: str, tags: dict) -> None:
    line = f"MONITORING|{seconds}|{value!r}|gauge|{name}|#{colon_tag_text(tags)}"
    assert text(line) == [metric(name, value, "gauge", "datadog", timestamp=seconds * 1000, tags=tags)]


FIELD = st.text(alphabet=st.characters(exclude_characters="|=,", exclude_categories=["Z", "C"]), min_size=1)
UNITS = st.sampled_from(["Count", "count", "Milliseconds", "Seconds", "Bytes", "Percent", "Count/Second", "None"])


@given(
    FLOATS,
    UNITS | st.from_regex(r"[A-Za-z][A-Za-z/]{0,10}", fullmatch=True),
    FIELD,
    FIELD,
    st.dictionaries(FIELD, st.text(alphabet="abc=:/.-0129", max_size=8), max_size=6),
    st.sampled_from(["", NODE_PREFIX, "INFO ", "[INFO]\tqueue drained; "]),
)
def test_generated_lumigo_lines_parse_back(
    value: float, unit: str, name: str, namespace: str, tags: dict[str, str], prefix: str
) -> None:
    dimensions = ",".join(f"{key}={tag}" for key, tag in tags.items())
    line = f"{prefix}MONITORING|{value!r}|{unit}|{name}|{namespace}|{dimensions}\n"
    metric_type = {"count": "count", "milliseconds": "timer", "seconds": "timer"}.get(unit.lower(), "gauge")
    expected = metric(name, value, metric_type, "lumigo", unit=unit, namespace=namespace, tags=tags)
    assert text(line) == [expected]


JSON_NUMBERS = st.integers(min_value=-(2**63), max_value=2**63 - 1) | FLOATS


@given(st.text(min_size=1), JSON_NUMBERS, EPOCH_SECONDS, COLON_TAGS)
def test_generated_datadog_json_parses_back(name: str, value: float, seconds: int, tags: dict[str, str]) -> None:
    document = {"m": name, "v": value, "e": seconds, "t": [f"{k}:{v}" if v else k for k, v in tags.items()]}
    expected = metric(name, float(value), "distribution", "datadog", timestamp=seconds * 1000, tags=tags)
    assert obj(document) == [expected]


@st.composite
def emf_documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reserved = {"_aws", "requestId", "function_request_id"}
    keys = draw(st.lists(NAMES.filter(lambda key: key not in reserved), min_size=2, max_size=12, unique=True))
    split = draw(st.integers(min_value=1, max_value=len(keys) - 1))
    metric_names, dimension_keys = keys[:split], keys[split:]
    timestamp = draw(st.integers(min_value=0, max_value=10**14 - 1))
    request_id = draw(st.none() | st.text(max_size=36))
    document: dict[str, Any] = {key: draw(st.text(max_size=10)) for key in dimension_keys}
    if request_id is not None:
        document["requestId"] = request_id
    directives, expected = [], []
    for name in metric_names:
        document[name] = draw(JSON_NUMBERS | st.lists(JSON_NUMBERS, min_size=1, max_size=5))
    groups = draw(st.lists(st.lists(st.sampled_from(metric_names), min_size=1, unique=True), min_size=1, max_size=3))
    for names in groups:
        namespace = draw(st.text(min_size=1, max_size=20))
        dimension_sets = draw(st.lists(st.lists(st.sampled_from(dimension_keys), max_size=4), max_size=3))
        definitions = []
        for name in names:
            unit = draw(st.none() | UNITS)
            definitions.append({"Name": name} if unit is None else {"Name": name, "Unit": unit})
            raw = document[name]
            metric_type = {"count": "count", "milliseconds": "timer", "seconds": "timer"}.get((unit or "").lower())
            tags = {key: document[key] for dimension_set in dimension_sets for key in dimension_set}
            expected += [
                metric(
                    name,
                    float(value),
                    metric_type or "gauge",
                    "emf",
                    unit=unit,
                    namespace=namespace,
                    tags=tags,
                    timestamp=timestamp,
                    request_id=request_id,
                )
                for value in (raw if isinstance(raw, list) else [raw])
            ]
        directives.append({"Namespace": namespace, "Dimensions": dimension_sets, "Metrics": definitions})
    document["_aws"] = {"Timestamp": timestamp, "CloudWatchMetrics": directives}
    return document, expected


@given(emf_documents())
def test_generated_emf_documents_parse_back(case: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    document, expected = case
    assert obj(document) == expected


METRICISH = st.lists(
    st.sampled_from(
        [
            *("MONITORING|", "|", ":", "#", "@", "T", "c:", "e:", "card:", "1", "-", "+", ".", "e5", "1e999", "nan"),
            *("\n", "\t", ",", "=", "a", "x.y", "count", "Count", "gauge", "ms", "g", "s", "1716222585", "0.5", " "),
        ]
    )
    | st.text(max_size=3),
    max_size=30,
).map("".join)


@settings(max_examples=500)
@given(st.text() | METRICISH)
def test_parse_metric_text_never_raises(body: str) -> None:
    check_result(parse_metric_text(body, TS))


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["Count", "Service", "Latency", "env:prod", 1, 60])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["_aws", "m", "v", "e", "t", "Timestamp", "CloudWatchMetrics", "Namespace", "Dimensions"])
KEYS |= st.sampled_from(["Metrics", "Name", "Unit", "StorageResolution", "Service", "Latency", "requestId"])
EMF_LIKE = st.recursive(
    JSON_LEAVES, lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=6)
)


@settings(max_examples=500)
@given(JSON_VALUES | st.dictionaries(KEYS, EMF_LIKE, max_size=8))
def test_parse_metric_object_never_raises(document: Any) -> None:
    check_result(parse_metric_object(document, TS))


@given(emf_documents(), st.data())
def test_mutated_emf_documents_never_raise(case: tuple[dict[str, Any], list[dict[str, Any]]], data: Any) -> None:
    document, _ = case
    key = data.draw(st.sampled_from(sorted(document)))
    document[key] = data.draw(JSON_VALUES)
    check_result(parse_metric_object(document, TS))


# The fast paths for common shapes must agree with the general parsers wherever they answer.

_fast_name = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,12}", fullmatch=True)
_fast_decimal = st.from_regex(r"[+-]?[0-9]{1,6}(\.[0-9]{1,4})?", fullmatch=True)
_fast_tags = st.lists(st.from_regex(r"[a-z]{0,5}(:[a-z0-9:]{0,5})?", fullmatch=True), max_size=4).map(",".join)


@settings(max_examples=300, deadline=None)
@given(
    name=_fast_name,
    values=st.lists(_fast_decimal, min_size=1, max_size=4),
    type_code=st.sampled_from(["c", "ms", "g", "h", "d"]),
    rate=st.none() | st.from_regex(r"0?\.[0-9]{1,3}|1(\.0)?|0", fullmatch=True),
    tags=st.none() | _fast_tags,
    container=st.booleans(),
    epoch=st.none() | st.integers(0, 99_999_999_999),
)
def test_statsd_fast_path_agrees_with_the_general_parser(name, values, type_code, rate, tags, container, epoch):
    line = f"{name}:{':'.join(values)}|{type_code}"
    line += "" if rate is None else f"|@{rate}"
    line += "" if tags is None else f"|#{tags}"
    line += "|c:ci-1" if container else ""
    line += "" if epoch is None else f"|T{epoch}"
    match = metrics._STATSD_COMMON.fullmatch(line)
    assert match is not None
    fast = metrics._statsd_common(match, 5)
    general = metrics._parse_statsd_line(line, 5)
    if fast is None:
        assert isinstance(general, MalformedMetric)
    else:
        assert fast == general


@settings(max_examples=300, deadline=None)
@given(
    first=st.from_regex(r"[0-9]{1,11}|[+-]?[0-9]{1,4}(\.[0-9]{1,3})?", fullmatch=True),
    second=st.from_regex(r"[+-]?[0-9]{1,4}(\.[0-9]{1,3})?|[A-Za-z][A-Za-z%/]{0,8}", fullmatch=True),
    third=st.sampled_from(["count", "gauge", "histogram", "distribution", "latency", "x"]),
    rest=st.lists(st.from_regex(r"#?[a-z=:,]{0,8}", fullmatch=True), max_size=3),
    prefix=st.sampled_from(["", "2024-05-20T16:29:45.009Z\tabc\tINFO\t", "note "]),
)
def test_monitoring_fast_path_agrees_with_the_general_parser(first, second, third, rest, prefix):
    body = prefix + "MONITORING|" + "|".join([first, second, third, *rest])
    fast = metrics._parse_monitoring_common(body, 5)
    if fast is not None:
        assert fast == metrics._parse_monitoring(body, 5)
