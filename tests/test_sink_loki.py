"""The Loki sink against a loopback server implementing Loki's push API: protobuf (snappy) and JSON
bodies, 204 on success, and its 400 / 429 / 5xx answers.

The protobuf body is read here with a wire-format reader written from Loki's push.proto field numbers,
independent of the descriptors the sink builds its messages from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import Request, loopback
from test_sink_otlp import invocation, log_event

from shipper.config import Config, SinkConfig, build_router
from shipper.delivery import Status
from shipper.errors import ConfigError
from shipper.sinks import build_sink
from shipper.sinks.loki import LEVELS, MAX_FIELD_ENTRIES, metadata
from shipper.testing import FakeTime


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def wire(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of one message: varints as int, length-delimited as bytes."""
    fields, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, at = _varint(data, at)
        elif kind == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        else:
            raise AssertionError(f"unexpected wire type {kind}")
        fields.append((number, value))
    return fields


def push_request(body: bytes) -> list[dict[str, Any]]:
    """Loki's PushRequest (streams = 1; StreamAdapter: labels = 1, entries = 2; EntryAdapter: timestamp = 1
    {seconds = 1, nanos = 2}, line = 2, structuredMetadata = 3 {name = 1, value = 2}) as the JSON shape."""
    streams = []
    for number, stream in wire(body):
        assert number == 1
        fields = wire(stream)
        labels = next(value.decode() for n, value in fields if n == 1)
        values = []
        for entry in (value for n, value in fields if n == 2):
            parts = wire(entry)
            stamp = dict(wire(next(value for n, value in parts if n == 1)))
            line = next((value.decode() for n, value in parts if n == 2), "")
            meta = {}
            for pair in (value for n, value in parts if n == 3):
                named = dict(wire(pair))
                meta[named.get(1, b"").decode()] = named.get(2, b"").decode()
            ns = stamp.get(1, 0) * 1_000_000_000 + stamp.get(2, 0)
            values.append([str(ns), line, meta] if meta else [str(ns), line])
        streams.append({"stream": labels, "values": values})
    return streams


def selector(labels: str) -> dict[str, str]:
    """{a="x", b="y"} as a dict (values here hold no quotes)."""
    pairs = [pair.split("=", 1) for pair in labels.strip("{}").split(", ")]
    return {name: orjson.loads(value) for name, value in pairs}


def loki(request: Request) -> tuple[int, bytes, dict[str, str]]:
    """Loki's push endpoint: 204, or 400 for an entry older than 2020 (reject_old_samples)."""
    assert request.path == "/loki/api/v1/push"
    for stream in streams(request):
        for entry in stream["values"]:
            if int(entry[0]) < 1577836800 * 10**9:
                return 400, f"entry for stream '{stream['stream']}' has timestamp too old".encode(), {}
    return 204, b"", {}


def streams(request: Request) -> list[dict[str, Any]]:
    if request.headers["Content-Type"] == "application/x-protobuf":
        assert request.headers["Content-Encoding"] == "snappy"
        found = push_request(request.body)
        return [{"stream": selector(s["stream"]), "values": s["values"]} for s in found]
    assert request.headers["Content-Type"] == "application/json"
    return orjson.loads(request.body)["streams"]


def router(url: str, tmp_path: Path, **options: Any) -> tuple[Any, FakeTime]:
    time_ = FakeTime()
    config = Config(
        (SinkConfig(f"loki:{url}", "loki", tuple(options.items())),),
        dead_letter=f"dir:{tmp_path / 'dead'}",
        retry_max_attempts=4,
    )
    return build_router(config, sleep=time_.sleep, clock=time_.clock), time_


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((tmp_path / "dead").glob("*.ndjson")) for line in path.open()]


@pytest.mark.parametrize("format", ["protobuf", "json"])
def test_streams_are_labelled_by_few_fields_entries_ordered_and_the_rest_is_structured_metadata(
    format: str, tmp_path: Path
) -> None:
    events = [log_event(3, level="INFO"), log_event(1, level="INFO"), log_event(2, level="made-up-level")]
    events += [invocation(0)]
    with loopback(loki) as server:
        routing, _ = router(server.url, tmp_path, format=format, tenant="team-a", **{"label.env": "prod"})
        assert routing.deliver([("a", events)]).statuses == {"a": Status.DELIVERED}
        routing.close()
    (request,) = server.requests
    assert request.headers["X-Scope-OrgID"] == "team-a"
    got = {tuple(sorted(s["stream"].items())): s["values"] for s in streams(request)}
    base = {"env": "prod", "function": "orders-api", "log_group": "/aws/lambda/orders-api"}
    info = tuple(sorted({**base, "type": "log", "level": "info"}.items()))
    other = tuple(sorted({**base, "type": "log", "level": "other"}.items()))
    report = tuple(sorted({**base, "type": "invocation"}.items()))
    assert set(got) == {info, other, report}
    assert [entry[1] for entry in got[info]] == ["line 1", "line 3"]  # in time order
    ns, _, meta = got[info][0]
    assert ns == str((1716222585000 + 1) * 1_000_000)
    assert meta == {
        "request_id": "req-1",
        "event_id": "e1",
        "log_stream": "2024/05/20/[7]4f9b1e2c",
        "account": "123456789012",
        "fields": '{"order":{"id":1}}',
    }
    assert orjson.loads(got[report][0][1])["duration_ms"] == 120.5


def test_throttling_is_retried_a_refusal_is_dead_lettered_with_loki_s_message(tmp_path: Path) -> None:
    with loopback(loki) as server:
        server.plan.extend(["429", "500", "drop"])
        routing, time_ = router(server.url, tmp_path, read_timeout_s=2)
        assert routing.deliver([("a", [log_event(0)])]).statuses == {"a": Status.DELIVERED}
        assert time_.sleeps[0] >= 3.0 and len(server.requests) == 4
        old = {**log_event(1), "timestamp": 1_000}
        assert routing.deliver([("b", [old])]).statuses == {"b": Status.DEAD_LETTERED}
        routing.close()
    (entry,) = dead_letters(tmp_path)
    assert "HTTP 400" in entry["reason"] and "timestamp too old" in entry["reason"]
    assert len(server.requests) == 5  # a 400 is not retried


def test_a_line_over_the_limit_is_dead_lettered_and_the_rest_is_pushed(tmp_path: Path) -> None:
    events = [log_event(0), log_event(1, message="x" * 2000), log_event(2)]
    with loopback(loki) as server:
        routing, _ = router(server.url, tmp_path, max_line_bytes=1000)
        report = routing.deliver([("a", events[:1]), ("b", events[1:2]), ("c", events[2:])])
        routing.close()
    assert report.statuses == {"a": Status.DELIVERED, "b": Status.DEAD_LETTERED, "c": Status.DELIVERED}
    (request,) = server.requests
    assert [entry[1] for s in streams(request) for entry in s["values"]] == ["line 0", "line 2"]
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"] == "Loki: 1 lines over the 1,000-byte limit of one item, not sent"
    assert [event["event_id"] for event in entry["events"]] == ["e1"]


_JSON_INTEGERS = st.integers(-(2**63), 2**64 - 1)
"""The integers an event's fields can hold: they are parsed from log lines by orjson, which reads any other
integer as a float."""


@given(st.integers())
def test_the_integers_of_parsed_fields_are_those_of_json_integers(number: int) -> None:
    value = orjson.loads(str(number))
    assert type(value) is float or (type(value) is int and -(2**63) <= value < 2**64)


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.none() | st.text(max_size=12), min_size=1, max_size=20),
    functions=st.lists(st.text(max_size=20), min_size=20, max_size=20),
    fields=st.dictionaries(st.text(max_size=10), st.text(max_size=5) | _JSON_INTEGERS | st.none(), max_size=60),
)
def test_hostile_levels_and_fields_make_few_streams_and_bounded_metadata(
    levels: list[Any], functions: list[str], fields: dict[str, Any]
) -> None:
    sink = build_sink("loki:http://127.0.0.1:9", {"format": "json"})
    events = [log_event(i, level=level, function=functions[i], fields=fields) for i, level in enumerate(levels)]
    labels = [sink.stream_labels(event) for event in events]  # type: ignore[attr-defined]
    assert {label.get("level") for label in labels} <= {None, "other", *LEVELS}
    assert all(set(label) <= {"function", "log_group", "type", "level"} for label in labels)
    for event in events:
        meta = metadata(event, ("function", "log_group", "type", "level"))
        assert len(meta) <= MAX_FIELD_ENTRIES + 1
        assert "request_id" in meta and all(isinstance(v, str) for v in meta.values())


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="labels are chosen among"):
        build_sink("loki:http://127.0.0.1:3100", {"labels": "function,request_id"})
    with pytest.raises(ConfigError, match="snappy"):
        build_sink("loki:http://127.0.0.1:3100", {"gzip": True})
    with pytest.raises(ConfigError, match="protobuf or json"):
        build_sink("loki:http://127.0.0.1:3100", {"format": "xml"})
    assert build_sink("loki:http://127.0.0.1:3100", {"format": "json", "gzip": True}).format == "json"  # type: ignore[attr-defined]
