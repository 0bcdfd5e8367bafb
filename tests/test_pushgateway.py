"""The Lambda side: after each invocation, push to Debian's real Pushgateway (one group per shipper
function and shard) and/or write one EMF line; a failed push never fails the invocation."""

from __future__ import annotations

import io
import itertools
import logging
import re
import time

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_http_sink import serve
from test_prometheus import LAMBDA_LINES

from shipper.config import build_router, merge_cli
from shipper.errors import ConfigError
from shipper.handler import KinesisHandler
from shipper.pipeline import Pipeline
from shipper.telemetry import LambdaTelemetry, TelemetryConfig, lambda_telemetry_from_env

from helpers import cwl_document, gz, kinesis_event
from promstack import free_port, http_get, pushgateway

SHIPPER = "shipper-prod"
_BATCHES = itertools.count()


def _event(shard: str) -> dict:
    """Two records: three invocations (one cold start, one timeout, one throttle) and a custom metric."""
    batch = next(_BATCHES)
    # new request ids, of Lambda's shape: the batch number in their last group
    lines = [re.sub(r"0ce6b2e64a0([123])\b", rf"0ce6b2e6{batch:03d}\1", line) for line in LAMBDA_LINES]
    event = kinesis_event([gz(cwl_document(lines)), gz(cwl_document(["orders.processed:2|c|#env:prod\n"]))])
    for record in event["Records"]:
        record["eventID"] = f"{shard}:{record['kinesis']['sequenceNumber']}"
    return event


class _Context:
    aws_request_id = "invocation-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _function(telemetry: LambdaTelemetry) -> KinesisHandler:
    """The handler a container holds: one pipeline and router, and the LambdaTelemetry it reports to."""
    return KinesisHandler(build_router(merge_cli(None, sinks=["null"])), Pipeline(), telemetry=telemetry)


def _pushed(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = http_get(f"{url}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _group(shard: str, **labels: str) -> tuple[tuple[str, str], ...]:
    group = {"job": "shipper", "shipper_function": SHIPPER, "shard": shard, "instance": "", **labels}
    return tuple(sorted(group.items()))


def test_each_invocation_pushes_its_shards_metrics_to_a_group_of_its_own(tmp_path):
    with pushgateway(tmp_path) as url:
        function = _function(LambdaTelemetry(TelemetryConfig(labels=("env",)), function_name=SHIPPER, gateway=url))
        function(_event("shardId-000000000003"), _Context())
        function(_event("shardId-000000000003"), _Context())
        function(_event("shardId-000000000001"), _Context())
        pushed = _pushed(url)
    three, one = "shardId-000000000003", "shardId-000000000001"
    fn = {"function": "orders-api"}
    assert pushed[("shipper_lambda_cold_starts_total", _group(three, **fn))] == 2
    assert pushed[("shipper_lambda_cold_starts_total", _group(one, **fn))] == 1
    assert pushed[("shipper_lambda_timeouts_total", _group(three, **fn))] == 2
    throttles = _group(three, **fn, error_code="ProvisionedThroughputExceededException")
    assert pushed[("shipper_lambda_throttles_total", throttles)] == 2
    assert pushed[("app_orders_processed_total", _group(three, **fn, env="prod"))] == 4
    # the shipper's own counters are per shard too, though the container's pipeline is shared
    assert pushed[("shipper_records_received_total", _group(three))] == 4
    assert pushed[("shipper_records_received_total", _group(one))] == 2
    # 8 events: 3 invocations, a cold start, a timeout, the error line's log and throttle, a metric
    assert pushed[("shipper_sink_events_sent_total", _group(one, sink="null"))] == 8
    assert ("push_time_seconds", _group(three)) in pushed


def test_the_environment_turns_push_and_emf_on():
    assert lambda_telemetry_from_env({}) is None
    emf = lambda_telemetry_from_env(
        {"SHIPPER_METRICS_EMF": "true", "AWS_LAMBDA_FUNCTION_NAME": SHIPPER, "SHIPPER_METRICS_EMF_NAMESPACE": "Acme"}
    )
    assert emf is not None
    assert (emf.gateway, emf.emf_namespace, emf.function_name) == (None, "Acme", SHIPPER)
    push = lambda_telemetry_from_env(
        {
            "SHIPPER_PUSHGATEWAY_URL": "http://127.0.0.1:9091",
            "SHIPPER_METRICS_LABELS": "env",
            "SHIPPER_METRICS_PREFIX": "acme_",
        }
    )
    assert push is not None
    assert (push.gateway, push.emf_namespace, push.job, push.config.labels, push.config.prefix) == (
        "http://127.0.0.1:9091",
        None,
        "shipper",
        ("env",),
        "acme_",
    )
    with pytest.raises(ConfigError, match="SHIPPER_PUSHGATEWAY_URL"):
        lambda_telemetry_from_env({"SHIPPER_PUSHGATEWAY_URL": "pushgateway:9091"})


def test_emf_reports_what_each_invocation_did():
    stream = io.BytesIO()
    telemetry = LambdaTelemetry(TelemetryConfig(), function_name=SHIPPER, emf_namespace="Acme", stream=stream)
    function = _function(telemetry)
    function(_event("shardId-000000000003"), _Context())
    function(_event("shardId-000000000003"), _Context())
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Acme"
    assert directive["Dimensions"] == [["ShipperFunction", "Shard"]]
    assert {metric["Name"] for metric in directive["Metrics"]} >= {"RecordsReceived", "EventsSent", "BatchDuration"}
    for document in (first, second):  # increments, not totals: CloudWatch adds them up
        assert (document["ShipperFunction"], document["Shard"]) == (SHIPPER, "shardId-000000000003")
        assert document["RecordsReceived"] == 2
        assert document["EventsSent"] == document["EventsEmitted"] == 8
        assert document["Rejects"] == document["RecordsNotDelivered"] == 0


def test_an_unreachable_pushgateway_is_logged_and_the_invocation_goes_on(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    function = _function(LambdaTelemetry(TelemetryConfig(), function_name=SHIPPER, gateway=url, push_timeout_s=1.0))
    with caplog.at_level(logging.WARNING):
        function(_event("shardId-000000000003"), _Context())
    assert "push for shard shardId-000000000003 failed" in caplog.text


def test_the_handler_built_from_the_environment_pushes_after_each_invocation(tmp_path):
    with pushgateway(tmp_path) as url:
        environ = {"SHIPPER_SINKS": "null", "SHIPPER_PUSHGATEWAY_URL": url, "AWS_LAMBDA_FUNCTION_NAME": SHIPPER}
        function = KinesisHandler.from_env(environ)
        assert function(_event("shardId-000000000002"), _Context()) == {"batchItemFailures": []}
        pushed = _pushed(url)
    assert pushed[("shipper_lambda_cold_starts_total", _group("shardId-000000000002", function="orders-api"))] == 1


@pytest.mark.parametrize("behaviour", ["garbage", "drop", "reset", "drip", "chunked-forever", "huge-500", "500"])
def test_a_broken_pushgateway_never_fails_the_invocation_nor_holds_it(behaviour, caplog):
    """The batch is delivered once, the partial-batch response is right, and the push gives up within its budget."""
    gateways, destinations = serve(), serve()
    gateway, gateway_url = next(gateways)
    destination, sink_url = next(destinations)
    try:
        gateway.plan.append(behaviour)
        telemetry = LambdaTelemetry(TelemetryConfig(), function_name=SHIPPER, gateway=gateway_url, push_timeout_s=1.0)
        function = KinesisHandler(
            build_router(merge_cli(None, sinks=[f"{sink_url}/ingest"])), Pipeline(), telemetry=telemetry
        )
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            response = function(_event("shardId-000000000003"), _Context())
        assert time.monotonic() - started < 2.5
        assert response == {"batchItemFailures": []}
        assert sum(destination.stored.values()) == 8 and len(destination.requests) == 1  # delivered once
        assert telemetry.failures == {"push": 1}
        assert "push for shard shardId-000000000003 failed" in caplog.text
        function(_event("shardId-000000000003"), _Context())  # and the next push goes through
        assert gateway.pushes == 1
    finally:
        gateways.close()
        destinations.close()
