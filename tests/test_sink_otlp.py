"""The OTLP/HTTP sink against a loopback collector that decodes every request with the official
opentelemetry-proto messages and checks the semantic conventions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import Request, Server, loopback
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from test_handler import Context, kinesis_event, record

from shipper.config import Config, SinkConfig, build_router
from shipper.delivery import Status
from shipper.errors import ConfigError
from shipper.handler import KinesisHandler
from shipper.sinks import build_sink
from shipper.testing import FakeTime

START = 1716222585000


def collector(partial: dict[str, tuple[int, str]] | None = None) -> Any:
    """Answers like an OTLP collector; `partial` maps a path to (rejected, message) for a partial success."""

    def respond(request: Request) -> tuple[int, bytes, dict[str, str]]:
        assert request.headers["Content-Type"] == "application/x-protobuf"
        if request.path == "/v1/logs":
            ExportLogsServiceRequest.FromString(request.body)  # decodes, or the test fails
            answer: Any = ExportLogsServiceResponse()
            if partial and "/v1/logs" in partial:
                answer.partial_success.rejected_log_records, answer.partial_success.error_message = partial["/v1/logs"]
        elif request.path == "/v1/metrics":
            ExportMetricsServiceRequest.FromString(request.body)
            answer = ExportMetricsServiceResponse()
            if partial and "/v1/metrics" in partial:
                answer.partial_success.rejected_data_points, answer.partial_success.error_message = partial[
                    "/v1/metrics"
                ]
        else:
            return 404, b"not found", {}
        return 200, answer.SerializeToString(), {"Content-Type": "application/x-protobuf"}

    return respond


def attributes(message: Any) -> dict[str, Any]:
    """A protobuf attribute list as a dict of plain values."""
    return {kv.key: plain(kv.value) for kv in message}


def plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def logs_of(server: Server) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, log record) for every record the collector received."""
    return [
        (attributes(rl.resource.attributes), log_record)
        for request in server.requests
        if request.path == "/v1/logs"
        for rl in ExportLogsServiceRequest.FromString(request.body).resource_logs
        for sl in rl.scope_logs
        for log_record in sl.log_records
    ]


def metrics_of(server: Server) -> list[tuple[dict[str, Any], Any]]:
    return [
        (attributes(rm.resource.attributes), metric)
        for request in server.requests
        if request.path == "/v1/metrics"
        for rm in ExportMetricsServiceRequest.FromString(request.body).resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    ]


def common(i: int, event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": START + i,
        "function": "orders-api",
        "log_group": "/aws/lambda/orders-api",
        "log_stream": "2024/05/20/[7]4f9b1e2c",
        "account": "123456789012",
        "request_id": f"req-{i}",
        "event_id": f"e{i}",
        **fields,
    }


def log_event(i: int, **fields: Any) -> dict[str, Any]:
    return common(i, "log", **{"level": "ERROR", "message": f"line {i}", "fields": {"order": {"id": i}}, **fields})


def invocation(i: int, status: str = "success") -> dict[str, Any]:
    return common(
        i, "invocation", duration_ms=120.5, billed_duration_ms=121, memory_size_mb=128, max_memory_used_mb=64,
        init_duration_ms=None, restore_duration_ms=None, billed_restore_duration_ms=None, cold_start=False,
        status=status, error_type=None, xray_trace_id=None, log_format="text",
    )  # fmt: skip


def metric(i: int, name: str, value: float, metric_type: str, **fields: Any) -> dict[str, Any]:
    defaults = {"unit": None, "namespace": None, "tags": {}, "sample_rate": None, "format": "statsd", "delta": False}
    return common(i, "metric", name=name, value=value, metric_type=metric_type, **{**defaults, **fields})


def router(url: str, tmp_path: Path, attempts: int = 4, **options: Any) -> tuple[Any, FakeTime]:
    time_ = FakeTime()
    config = Config(
        (SinkConfig(f"otlp:{url}", "otlp", tuple(options.items())),),
        dead_letter=f"dir:{tmp_path / 'dead'}",
        retry_max_attempts=attempts,
    )
    return build_router(config, sleep=time_.sleep, clock=time_.clock), time_


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((tmp_path / "dead").glob("*.ndjson")) for line in path.open()]


def test_logs_and_metrics_arrive_with_the_faas_and_cloud_semantic_conventions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    events = [log_event(0), log_event(1, level="info"), invocation(2), invocation(3, "timeout")]
    events += [common(4, "timeout", timeout_s=3.0, duration_ms=3000.0), common(5, "cold_start", init_duration_ms=250.0)]
    events += [metric(6, "orders", 2, "count", tags={"shop": "a"}), metric(7, "orders", 3, "count", tags={"shop": "a"})]
    events += [metric(8, "latency", 0.2, "timer", unit="s"), metric(9, "latency", 2.0, "timer", unit="s")]
    events += [metric(10, "queue", 7, "gauge"), metric(11, "queue", 5, "gauge")]
    with loopback(collector()) as server:
        routing, _ = router(server.url, tmp_path)
        report = routing.deliver([("seq-1", events)])
        routing.close()

    assert report.statuses == {"seq-1": Status.DELIVERED}
    assert [r.headers.get("Content-Encoding") for r in server.requests] == ["gzip", "gzip"]
    logs = logs_of(server)
    assert [plain_attr(r, "log.record.uid") for _, r in logs] == ["e0", "e1", "e4"]
    resource, first = logs[0]
    assert resource == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "cloud.account.id": "123456789012",
        "faas.name": "orders-api",
        "service.name": "orders-api",
        "faas.version": "7",
        "faas.instance": "2024/05/20/[7]4f9b1e2c",
        "aws.log.stream.names": ["2024/05/20/[7]4f9b1e2c"],
        "aws.log.group.names": ["/aws/lambda/orders-api"],
    }
    assert first.body.string_value == "line 0"
    assert (first.severity_text, first.severity_number) == ("ERROR", 17)
    assert first.time_unix_nano == START * 1_000_000
    assert attributes(first.attributes) == {"faas.invocation_id": "req-0", "log.record.uid": "e0", "order": {"id": 0}}
    assert logs[1][1].severity_number == 9
    assert logs[2][1].event_name == "aws.lambda.timeout"

    metrics = {m.name: m for _, m in metrics_of(server)}
    invocations = metrics["faas.invocations"].sum
    assert invocations.is_monotonic and invocations.aggregation_temporality == 1  # DELTA
    assert {plain_attr(p, "faas.invocation.status"): p.as_double for p in invocations.data_points} == {
        "success": 1.0,
        "timeout": 1.0,
    }
    duration = metrics["faas.invoke_duration"]
    assert (duration.unit, duration.histogram.data_points[0].count) == ("s", 2)
    assert duration.histogram.data_points[0].sum == pytest.approx(0.241)
    assert metrics["faas.timeouts"].sum.data_points[0].as_double == 1
    assert metrics["faas.coldstarts"].sum.data_points[0].as_double == 1
    (orders,) = metrics["orders"].sum.data_points  # aggregated per batch: one point for two events
    assert (orders.as_double, attributes(orders.attributes)) == (5.0, {"shop": "a"})
    assert metrics["latency"].histogram.data_points[0].count == 2
    assert [p.as_double for p in metrics["queue"].gauge.data_points] == [5.0]


def plain_attr(message: Any, key: str) -> Any:
    return attributes(message.attributes).get(key)


def test_throttling_and_unavailability_are_retried_after_retry_after_other_errors_are_dead_lettered(
    tmp_path: Path,
) -> None:
    with loopback(collector()) as server:
        server.plan.extend(["429", "503", "drop"])
        routing, time_ = router(server.url, tmp_path, read_timeout_s=2)
        report = routing.deliver([("a", [log_event(i) for i in range(5)])])
        assert report.statuses == {"a": Status.DELIVERED}
        assert time_.sleeps[0] >= 3.0  # Retry-After: 3
        assert [plain_attr(r, "log.record.uid") for _, r in logs_of(server)].count("e0") == 4

        for status in ("500", "400", "413"):  # the OTLP specification: not retryable
            server.requests.clear()
            server.plan.append(status)
            report = routing.deliver([(status, [log_event(9)])])
            assert report.statuses == {status: Status.DEAD_LETTERED}
            assert len(server.requests) == 1
        routing.close()
    reasons = [entry["reason"] for entry in dead_letters(tmp_path)]
    assert [reason.split(":")[0] for reason in reasons] == [
        "HTTP 500 from http",
        "HTTP 400 from http",
        "HTTP 413 from http",
    ]


def test_a_partial_success_dead_letters_that_request_s_events_with_the_collector_s_message(tmp_path: Path) -> None:
    events = [log_event(0), log_event(1), invocation(2)]
    with loopback(collector({"/v1/logs": (1, "record 1: attribute too long")})) as server:
        routing, _ = router(server.url, tmp_path)
        report = routing.deliver([("a", events[:2]), ("b", events[2:])])
        routing.close()
    assert report.statuses == {"a": Status.DEAD_LETTERED, "b": Status.DEAD_LETTERED}
    assert len(server.requests) == 1  # a partial success is never retried
    (entry,) = dead_letters(tmp_path)
    assert "1 log_records rejected: record 1: attribute too long" in entry["reason"]
    assert [event["event_id"] for event in entry["events"]] == ["e0", "e1", "e2"]


def test_a_failed_metrics_request_resends_only_the_events_that_make_metrics(tmp_path: Path) -> None:
    with loopback(_fail_metrics_once(collector())) as server:
        routing, _ = router(server.url, tmp_path)
        report = routing.deliver([("a", [log_event(0), log_event(1), invocation(2)])])
        routing.close()
    assert report.statuses == {"a": Status.DELIVERED}
    assert [r.path for r in server.requests] == ["/v1/logs", "/v1/metrics", "/v1/metrics"]
    assert Counter(plain_attr(r, "log.record.uid") for _, r in logs_of(server)) == {"e0": 1, "e1": 1}
    points = [p.as_double for _, m in metrics_of(server) if m.name == "faas.invocations" for p in m.sum.data_points]
    assert points == [1.0, 1.0]  # the first request was refused, the second is the one that counts


def _fail_metrics_once(respond: Any) -> Any:
    state = {"failed": False}

    def answer(request: Request) -> tuple[int, bytes, dict[str, str]]:
        if request.path == "/v1/metrics" and not state["failed"]:
            state["failed"] = True
            return 503, b"busy", {}
        return respond(request)

    return answer


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(st.text(), min_size=1, max_size=8),
    fields=st.lists(st.dictionaries(st.text(max_size=10), _json, max_size=5) | st.none(), min_size=8, max_size=8),
    levels=st.lists(st.none() | st.text(max_size=10), min_size=8, max_size=8),
    deep=st.integers(0, 400),
)
def test_any_log_event_is_encoded_and_arrives_exactly_once(
    messages: list[str], fields: list[Any], levels: list[Any], deep: int
) -> None:
    nested: Any = "bottom"
    for _ in range(deep):
        nested = {"x": [nested]}
    sink = build_sink("otlp:http://127.0.0.1:9", {})
    events = [
        log_event(i, message=message, level=levels[i], fields={**(fields[i] or {}), "nested": nested})
        for i, message in enumerate(messages)
    ]
    decoded = ExportLogsServiceRequest.FromString(sink.encode_logs(events).SerializeToString())  # type: ignore[attr-defined]
    records = [r for rl in decoded.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert [r.body.string_value for r in records] == messages
    assert [attributes(r.attributes)["log.record.uid"] for r in records] == [f"e{i}" for i in range(len(messages))]


def test_the_lambda_handler_ships_logs_and_invocation_metrics_to_otlp(tmp_path: Path) -> None:
    report_line = (
        "REPORT RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 250.10 ms\t\n"
    )
    with loopback(collector()) as server:
        handler = KinesisHandler.from_env(
            {"SHIPPER_SINKS": f"otlp:{server.url} region=us-east-2", "SHIPPER_DEAD_LETTER": f"dir:{tmp_path}/dead"}
        )
        event = kinesis_event([record(["hello from the function\n", report_line], stream="abc")])
        assert handler(event, Context()) == {"batchItemFailures": []}
        handler.router.close()
    (resource, log_record), *_ = logs_of(server)
    assert log_record.body.string_value == "hello from the function"
    assert resource["cloud.region"] == "us-east-2" and resource["faas.version"] == "$LATEST"
    names = {m.name for _, m in metrics_of(server)}
    assert {"faas.invocations", "faas.invoke_duration", "faas.coldstarts", "faas.init_duration"} <= names


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="signals"):
        build_sink("otlp:http://127.0.0.1:4318", {"signals": "traces"})
    with pytest.raises(ConfigError, match="unknown OTLP sink option"):
        build_sink("otlp:http://127.0.0.1:4318", {"preset": "webhook"})
    with pytest.raises(ConfigError, match="needs the collector"):
        build_sink("otlp:", {})
