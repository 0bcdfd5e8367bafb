"""The Datadog sink: logs against a loopback server implementing the logs intake v2 (its limits and
answers), metrics against Debian's real VictoriaMetrics, which takes the Datadog series API."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import Request, loopback
from test_sink_otlp import common, invocation, log_event, metric

from shipper.config import Config, SinkConfig, build_router
from shipper.delivery import Status
from shipper.errors import ConfigError
from shipper.sinks import build_sink
from shipper.sinks.datadog import MAX_ITEMS, MAX_PAYLOAD_BYTES
from shipper.testing import FakeTime

from promstack import value, victoria_metrics, vm_flush, wait_for

KEY = "dd-key-0123456789abcdef"


def intake(request: Request) -> tuple[int, bytes, dict[str, str]]:
    """The logs intake v2 as documented: 403 without a valid key, 413 over 5 MB or 1,000 items, else 202."""
    if request.headers.get("DD-API-KEY") != KEY:
        return 403, b'{"errors":["Forbidden"]}', {}
    if request.path == "/api/v2/logs":
        items = orjson.loads(request.body)
        if len(request.body) > MAX_PAYLOAD_BYTES or len(items) > MAX_ITEMS:
            return 413, b'{"errors":["Payload too large"]}', {}
        assert all(isinstance(item, dict) and len(orjson.dumps(item)) <= 1_000_000 for item in items)
        return 202, b"{}", {}
    if request.path == "/api/v1/series":
        assert isinstance(orjson.loads(request.body)["series"], list)
        return 202, b'{"status":"ok"}', {}
    return 404, b"", {}


def router(url: str, tmp_path: Path, metrics_url: str | None = None, **options: Any) -> tuple[Any, FakeTime]:
    time_ = FakeTime()
    options = {
        "api_key": "env:DD_KEY",
        "logs_url": f"{url}/api/v2/logs",
        "metrics_url": metrics_url or f"{url}/api/v1/series",
        "region": "eu-west-1",
        "tags": "env:test",
        **options,
    }
    config = Config(
        (SinkConfig("datadog", "datadog", tuple(options.items())),),
        dead_letter=f"dir:{tmp_path / 'dead'}",
        retry_max_attempts=4,
    )
    return build_router(config, sleep=time_.sleep, clock=time_.clock), time_


def logs(server: Any) -> list[dict[str, Any]]:
    return [item for r in server.requests if r.path == "/api/v2/logs" for item in orjson.loads(r.body)]


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((tmp_path / "dead").glob("*.ndjson")) for line in path.open()]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_KEY", KEY)


def test_logs_carry_the_fields_the_forwarder_sends(tmp_path: Path) -> None:
    events = [log_event(0, fields={"order": {"id": 7}, "message": "not this", "ddtags": "x"}), invocation(1)]
    with loopback(intake) as server:
        routing, _ = router(server.url, tmp_path)
        assert routing.deliver([("a", events)]).statuses == {"a": Status.DELIVERED}
        routing.close()
    first, report = logs(server)
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"
    assert first == {
        "order": {"id": 7},
        "ddsource": "lambda",
        "ddtags": "functionname:orders-api,region:eu-west-1,account_id:123456789012,env:test",
        "service": "orders-api",
        "host": arn,
        "message": "line 0",
        "status": "ERROR",
        "timestamp": 1716222585000,
        "aws": {
            "awslogs": {
                "logGroup": "/aws/lambda/orders-api",
                "logStream": "2024/05/20/[7]4f9b1e2c",
                "owner": "123456789012",
            }
        },
        "lambda": {"arn": arn, "request_id": "req-0"},
    }
    assert report["lambda_event"]["duration_ms"] == 120.5 and report["status"] == "info"
    (series_request,) = [r for r in server.requests if r.path == "/api/v1/series"]
    names = {s["metric"] for s in orjson.loads(series_request.body)["series"]}
    assert {"aws.lambda.enhanced.invocations", "aws.lambda.enhanced.duration"} <= names


def test_a_batch_is_split_to_the_intake_limits_and_an_item_over_1_mb_is_dead_lettered(tmp_path: Path) -> None:
    big = [log_event(i, message="m" * 600_000) for i in range(12)]  # 12 x 600 KB: three 5 MB requests
    huge = log_event(99, message="h" * 1_100_000)
    small = [log_event(100 + i, message="s") for i in range(1500)]
    with loopback(intake) as server:
        routing, _ = router(server.url, tmp_path, metrics_url="none", max_batch_bytes=64 * 1024 * 1024)
        report = routing.deliver([("big", big), ("huge", [huge]), ("small", small)])
        routing.close()
    assert report.statuses == {"big": Status.DELIVERED, "huge": Status.DEAD_LETTERED, "small": Status.DELIVERED}
    sizes = [(len(orjson.loads(r.body)), len(r.body)) for r in server.requests]
    assert all(count <= MAX_ITEMS and size <= MAX_PAYLOAD_BYTES for count, size in sizes)
    assert sum(count for count, _ in sizes) == 12 + 1500
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"] == "Datadog logs intake: 1 log items over the 1,000,000-byte limit of one item, not sent"
    assert [event["event_id"] for event in entry["events"]] == ["e99"]


def test_throttling_and_errors_are_retried_refusals_are_dead_lettered_with_the_answer(tmp_path: Path) -> None:
    with loopback(intake) as server:
        server.plan.extend(["429", "503", "408"])
        routing, time_ = router(server.url, tmp_path)
        assert routing.deliver([("a", [log_event(0)])]).statuses == {"a": Status.DELIVERED}
        assert time_.sleeps[0] >= 3.0 and len(logs(server)) == 4
        server.plan.append("400")
        assert routing.deliver([("b", [log_event(1)])]).statuses == {"b": Status.DEAD_LETTERED}
        routing.close()
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"].startswith("HTTP 400 from http://127.0.0.1")


def test_a_wrong_key_is_refused_for_good_and_the_key_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_KEY", "wrong-key-value")
    with loopback(intake) as server:
        routing, _ = router(server.url, tmp_path)
        assert routing.deliver([("a", [log_event(0)])]).statuses == {"a": Status.DEAD_LETTERED}
        routing.close()
    assert len(server.requests) == 1
    text = str(dead_letters(tmp_path))
    assert "HTTP 403" in text and "wrong-key-value" not in text


def test_a_failed_series_request_resends_only_the_events_that_make_metrics(tmp_path: Path) -> None:
    answers = iter([(202, b"{}", {}), (503, b"busy", {})])

    def respond(request: Request) -> tuple[int, bytes, dict[str, str]]:
        return next(answers, None) or intake(request)

    with loopback(respond) as server:
        routing, _ = router(server.url, tmp_path)
        assert routing.deliver([("a", [log_event(0), metric(1, "orders", 2, "count")])]).statuses == {
            "a": Status.DELIVERED
        }
        routing.close()
    assert [r.path for r in server.requests] == ["/api/v2/logs", "/api/v1/series", "/api/v1/series"]
    assert len(logs(server)) == 1


def test_invocation_and_custom_metrics_are_queried_back_from_victoria_metrics(tmp_path: Path) -> None:
    events = [invocation(i) for i in range(3)] + [common(5, "error", error_type="ValueError", message="boom")]
    events += [metric(6, "orders", 2, "count", tags={"shop": "a"}), metric(7, "orders", 3, "count", tags={"shop": "a"})]
    events += [metric(8, "queue", 4, "gauge"), metric(9, "queue", 9, "gauge")]
    now_ms = int(time.time() * 1000)  # within the server's retention
    events = [{**event, "timestamp": now_ms - 20_000 + i} for i, event in enumerate(events)]
    with loopback(intake) as server, victoria_metrics(tmp_path) as vm:
        routing, _ = router(server.url, tmp_path, metrics_url=f"{vm}/datadog/api/v1/series")
        assert routing.deliver([("a", events)]).statuses == {"a": Status.DELIVERED}
        routing.close()
        vm_flush(vm)

        def get(name: str, **labels: str) -> float | None:
            matchers = ",".join([f'__name__="{name}"', *(f'{k}="{v}"' for k, v in labels.items())])
            return value(vm, f"last_over_time({{{matchers}}}[10m])")

        wait_for(lambda: get("aws.lambda.enhanced.invocations", functionname="orders-api") == 3, "the series")
        assert get("aws.lambda.enhanced.errors", region="eu-west-1", account_id="123456789012") == 1
        assert get("aws.lambda.enhanced.duration", env="test") == pytest.approx(0.1205)
        assert get("orders", shop="a") == 5
        assert get("queue") == 9


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 900_000), min_size=1, max_size=40))
def test_any_mix_of_item_sizes_splits_into_requests_within_the_limits(sizes: list[int]) -> None:
    from shipper.sinks.datadog import _requests

    items = [(i, b"x" * size) for i, size in enumerate(sizes)] + [(99, b"y")] * 1200
    ranges = _requests(items)
    assert [i for start, end in ranges for i in range(start, end)] == list(range(len(items)))
    for start, end in ranges:
        chunk = items[start:end]
        assert len(chunk) <= MAX_ITEMS
        assert 2 + sum(len(item) for _, item in chunk) + len(chunk) - 1 <= MAX_PAYLOAD_BYTES


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="needs api_key"):
        build_sink("datadog", {})
    with pytest.raises(ConfigError, match="Datadog site"):
        build_sink("datadog", {"api_key": "env:X", "site": "evil.com/x"})
    with pytest.raises(ConfigError, match="secret reference"):
        build_sink("datadog", {"api_key": KEY})


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.booleans(),
        st.text(max_size=5),
    )
)
def test_metric_values_out_of_float_range_are_left_out_by_datadog_and_otlp_never_raised(value: Any) -> None:
    """The sinks re-shape metric events themselves: a value beyond float64 (an int of 400 digits, inf,
    nan), or not a number, is left out of the series, never an OverflowError out of the batch."""
    finite = type(value) in (int, float) and -sys.float_info.max <= value <= sys.float_info.max
    events = [
        metric(0, "orders.total", value, "count"),
        {**invocation(1), "duration_ms": value, "max_memory_used_mb": value},
    ]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DD_KEY", KEY)
        datadog = build_sink("datadog", {"api_key": "env:DD_KEY"})
    series = datadog.series(events)  # type: ignore[attr-defined]
    assert any(s["metric"] == "orders.total" for s in series) is finite
    otlp = build_sink("otlp:http://127.0.0.1:9", {})
    names = {
        m.name for rm in otlp.encode_metrics(events).resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }  # type: ignore[attr-defined]
    assert ("orders.total" in names) is finite
