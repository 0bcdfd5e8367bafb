"""The handler inside the real Lambda runtime loop (awslambdaric), fed by Kinesis as the event source mapping would.

All on 127.0.0.1: a moto server holds the log groups, the stream and the buckets; CloudWatch Logs (moto)
delivers subscription data to the stream; the batches read back from the shard go to the function
through a local Runtime API server; what the sinks wrote is read back from moto or a local HTTP server.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from lambda_runtime import EventSourceMapping, FunctionProcess, RuntimeApi

from shipper.cli import main

STREAM = "central-logs"
ROLE_ARN = "arn:aws:iam::123456789012:role/cloudwatch-logs-to-kinesis"
OWN_GROUP = "/aws/lambda/log-shipper"
LOG_STREAM = "2024/05/20/[$LATEST]0123456789abcdef0123456789abcdef"


@pytest.fixture
def stream(aws: str) -> str:
    """A one-shard Kinesis stream; its ARN."""
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    return kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]


def make_log_group(name: str) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName=LOG_STREAM)


def subscribed_log_group(name: str, stream: str) -> None:
    """A log group with one stream, subscribed to the Kinesis `stream` as CloudWatch Logs would be."""
    make_log_group(name)
    boto3.client("logs").put_subscription_filter(
        logGroupName=name, filterName="shipper", filterPattern="", destinationArn=stream, roleArn=ROLE_ARN
    )


def put_lines(group: str, lines: list[str]) -> list[str]:
    """PutLogEvents with one event per line, now; the ids CloudWatch Logs gave them (one subscription batch)."""
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    logs = boto3.client("logs")
    logs.put_log_events(logGroupName=group, logStreamName=LOG_STREAM, logEvents=events)
    stored = logs.filter_log_events(logGroupName=group, logStreamNames=[LOG_STREAM])["events"]
    return [event["eventId"] for event in stored[-len(lines) :]]


def s3_lines(bucket: str, prefix: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    body = b"".join(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys)
    return [orjson.loads(line) for line in body.splitlines()]


def s3_environment(bucket: str, dead_letter_bucket: str | None = None) -> dict[str, str]:
    return {
        "SHIPPER_SINKS": f"s3://{bucket}/events",
        "SHIPPER_DEAD_LETTER": f"s3://{dead_letter_bucket or bucket}/dead-letter",
        "SHIPPER_RETRY_MAX_ATTEMPTS": "2",
        "SHIPPER_RETRY_BASE_S": "0.01",
    }


def json_log_lines(function: FunctionProcess) -> list[dict[str, Any]]:
    lines = function.log_lines()
    parsed = [orjson.loads(line) for line in lines]  # every line the function wrote is one JSON object
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


def request(number: int) -> str:
    return f"4b142fc3-17b8-4cdb-a46b-{number:012d}"


def test_log_groups_reach_s3_through_kinesis_and_the_lambda_runtime(stream: str, tmp_path: Path) -> None:
    s3, kinesis, logs = boto3.client("s3"), boto3.client("kinesis"), boto3.client("logs")
    for bucket in ("shipped-events", "shipper-dead-letter"):
        s3.create_bucket(Bucket=bucket)
    for group in ("/aws/lambda/orders-api", "/aws/lambda/billing-worker", OWN_GROUP):
        make_log_group(group)
    subscribe = ["subscribe", "--destination-arn", stream, "--role-arn", ROLE_ARN, "--shipper-log-group", OWN_GROUP]
    assert main([*subscribe, "--prefix", "/aws/lambda/"]) == 0
    assert logs.describe_subscription_filters(logGroupName=OWN_GROUP)["subscriptionFilters"] == []
    # What an account-level subscription policy would do (moto has none): the shipper's own group is sent too.
    logs.put_subscription_filter(
        logGroupName=OWN_GROUP, filterName="account", filterPattern="", destinationArn=stream, roleArn=ROLE_ARN
    )
    order_ids = put_lines(
        "/aws/lambda/orders-api",
        [
            f"START RequestId: {request(1)} Version: $LATEST\n",
            f"[INFO]\t2024-05-20T14:30:55.123Z\t{request(1)}\torder 1 placed\n",
            f"END RequestId: {request(1)}\n",
            f"REPORT RequestId: {request(1)}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 40 MB\tInit Duration: 150.20 ms\t\n",
        ],
    )
    put_lines(
        "/aws/lambda/billing-worker",
        [
            f"START RequestId: {request(2)} Version: $LATEST\n",
            f"2024-05-20T16:30:15.011Z {request(2)} Task timed out after 3.00 seconds\n\n",
            f"END RequestId: {request(2)}\n",
            f"REPORT RequestId: {request(2)}\tDuration: 3003.16 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 50 MB\tStatus: timeout\n",
        ],
    )
    put_lines(OWN_GROUP, ['{"level":"INFO","logger":"shipper.handler","message":"batch done"}\n'])
    garbage = kinesis.put_record(StreamName=STREAM, Data=b"not a log batch", PartitionKey="another-producer")

    with (
        RuntimeApi() as api,
        FunctionProcess(api, s3_environment("shipped-events", "shipper-dead-letter"), tmp_path) as function,
    ):
        invocations = EventSourceMapping(kinesis, STREAM, api.invoke, batch_size=2).drain()
    logs_written = json_log_lines(function)

    assert [len(invocation.sequence_numbers) for invocation in invocations] == [2, 2]
    assert [invocation.answer.body for invocation in invocations] == [{"batchItemFailures": []}] * 2
    events = s3_lines("shipped-events", "events/")
    assert Counter(event["type"] for event in events) == {"invocation": 2, "cold_start": 1, "timeout": 1, "log": 1}
    assert OWN_GROUP not in {event["log_group"] for event in events}
    [log_event] = [event for event in events if event["type"] == "log"]
    assert (log_event["message"], log_event["request_id"], log_event["event_id"]) == (
        "order 1 placed",
        request(1),
        order_ids[1],
    )
    [dead_letter] = s3_lines("shipper-dead-letter", "dead-letter/")
    assert (dead_letter["code"], dead_letter["sequence_number"]) == ("unknown_format", garbage["SequenceNumber"])
    summaries = [line for line in logs_written if line.get("message") == "batch done"]
    assert sum(summary["own_log_group_batches_skipped"] for summary in summaries) == 1
    assert {summary["request_id"] for summary in summaries} == {
        invocation.answer.request_id for invocation in invocations
    }


def test_a_sink_down_for_part_of_the_run_loses_and_repeats_nothing(stream: str, tmp_path: Path) -> None:
    kinesis = boto3.client("kinesis")
    subscribed_log_group("/aws/lambda/orders-api", stream)
    event_ids = [
        i
        for batch in range(5)
        for i in put_lines("/aws/lambda/orders-api", [f"batch {batch} line {n}\n" for n in range(3)])
    ]

    # The bucket (sink and dead letter alike) does not exist until the first batch has failed.
    with RuntimeApi() as api, FunctionProcess(api, s3_environment("late-bucket"), tmp_path):
        mapping = EventSourceMapping(kinesis, STREAM, api.invoke, batch_size=2)
        first = mapping.step()
        boto3.client("s3").create_bucket(Bucket="late-bucket")
        rest = mapping.drain()

    assert first is not None and first.failures == first.sequence_numbers
    assert rest[0].sequence_numbers == first.sequence_numbers  # sent again, from the lowest failure
    assert all(invocation.failures == [] for invocation in rest)
    assert sum(len(invocation.sequence_numbers) for invocation in rest) == 5
    delivered = Counter(event["event_id"] for event in s3_lines("late-bucket", "events/"))
    assert delivered == Counter(event_ids)  # every log event exactly once


class SlowCollector(BaseHTTPRequestHandler):
    """An HTTP sink endpoint that takes `delay_s` to answer each batch and keeps what it was sent."""

    delay_s = 0.3
    received: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay_s)
        self.received.extend(orjson.loads(line) for line in body.splitlines())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def slow_collector() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Collector", (SlowCollector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_with_little_time_left_the_handler_answers_before_the_deadline_listing_what_it_did_not_do(
    stream: str, tmp_path: Path, slow_collector: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = slow_collector
    kinesis = boto3.client("kinesis")
    subscribed_log_group("/aws/lambda/orders-api", stream)
    ids_by_record = [
        put_lines("/aws/lambda/orders-api", [f"record {r} line {n}\n" for n in range(2)]) for r in range(12)
    ]
    environment = {
        "SHIPPER_SINKS": f"{url} max_batch_events=2",  # one POST, taking 0.3 s, per record
        "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dead-letter'}",
        "SHIPPER_TIMEOUT_MARGIN_S": "0.5",
    }

    with RuntimeApi() as api, FunctionProcess(api, environment, tmp_path) as function:
        api.invoke({"Records": []})  # a first, empty batch: the process has started and built its sinks
        mapping = EventSourceMapping(kinesis, STREAM, lambda event: api.invoke(event, timeout_ms=2500), batch_size=100)
        invocation = mapping.step()
    assert invocation is not None

    answer = invocation.answer
    assert answer.kind == "response"
    assert answer.answered_ms < answer.deadline_ms - 250  # it answered, with time to spare, instead of timing out
    failed = invocation.failures
    numbers = invocation.sequence_numbers
    assert 0 < len(failed) < len(numbers)
    assert failed == numbers[numbers.index(failed[0]) :]  # the records from the first one not done, in order
    done = numbers.index(failed[0])
    assert sorted(event["event_id"] for event in received) == sorted(i for ids in ids_by_record[:done] for i in ids)
    [summary] = [line for line in json_log_lines(function) if line["message"].startswith("batch partly failed")]
    assert summary["records_not_started"] > 0
    assert summary["records_failed"] == len(failed)


def test_a_configuration_error_fails_the_init_phase_naming_the_variable(aws: str, tmp_path: Path) -> None:
    with RuntimeApi() as api, FunctionProcess(api, {"SHIPPER_SINKS": ""}, tmp_path) as function:
        error = api.init_errors.get(timeout=30)
        assert function.wait(timeout=30) != 0
    assert "SHIPPER_SINKS is not set" in error["errorMessage"]
    assert any(line["level"] == "CRITICAL" and "SHIPPER_SINKS" in line["message"] for line in json_log_lines(function))


def test_an_event_that_is_not_a_kinesis_batch_fails_that_invocation_and_the_next_one_runs(
    aws: str, tmp_path: Path
) -> None:
    environment = {
        "SHIPPER_SINKS": f"jsonl:{tmp_path / 'events.ndjson'}",
        "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dl'}",
    }
    with RuntimeApi() as api, FunctionProcess(api, environment, tmp_path):
        failed = api.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
        after = api.invoke({"Records": []})
    assert failed.kind == "error"
    assert failed.body["errorType"] == "InvalidEvent"
    assert "not a Kinesis batch" in failed.body["errorMessage"]
    assert (after.kind, after.body) == ("response", {"batchItemFailures": []})
