"""AWS sinks against a moto server: what each sink sends is read back from the service and compared."""

from __future__ import annotations

import base64
import gzip
import io
import math
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from aws_kinesis_agg import MAGIC
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from botocore.exceptions import ClientError

from shipper.aws_clients import client as aws_client
from shipper.aws_errors import classify
from shipper.contract import contract_violations
from shipper.errors import ConfigError
from shipper.reject import Reject
from shipper.sinks import SinkError
from shipper.sinks.aws import build_aws_sink
from shipper.sinks.cloudwatch import CloudWatchMetricsSink
from shipper.sinks.cloudwatch_metrics import cloudwatch_unit
from shipper.sinks.emf import EmfSink
from shipper.sinks.firehose import FirehoseSink
from shipper.sinks.kinesis import KinesisSink
from shipper.sinks.packing import Outcome
from shipper.sinks.s3 import S3Sink

REGION = "us-east-1"
NOW_MS = int(time.time() * 1000)
ROOT = Path(__file__).resolve().parent.parent


def common(event_type: str, function: str | None, request_id: str | None, timestamp: int = NOW_MS) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": timestamp,
        "function": function,
        "log_group": f"/aws/lambda/{function}",
        "log_stream": "2024/05/20/[$LATEST]0123456789abcdef",
        "account": "123456789012",
        "request_id": request_id,
        "event_id": "37543283478573485734857348573485734857348573485734",
    }


def log_event(function: str, n: int, message: str = "", timestamp: int = NOW_MS) -> dict[str, Any]:
    text = message or f"line {n} from {function}: naïve café ✓"
    return common("log", function, f"req-{function}-{n}", timestamp) | {
        "level": "INFO",
        "message": text,
        "fields": None,
    }


def invocation(function: str, request_id: str, duration: float, init: float | None = None, ts: int = NOW_MS) -> dict:
    return common("invocation", function, request_id, ts) | {
        "duration_ms": duration,
        "billed_duration_ms": math.ceil(duration),
        "memory_size_mb": 128,
        "max_memory_used_mb": 64,
        "init_duration_ms": init,
        "restore_duration_ms": None,
        "billed_restore_duration_ms": None,
        "cold_start": init is not None,
        "status": "success",
        "error_type": None,
        "xray_trace_id": None,
        "log_format": "text",
        "runtime": None,
    }


def metric(name: str, value: float, *, unit: str | None = "ms", tags: dict[str, str] | None = None, **fields) -> dict:
    event = common("metric", "orders", "req-metric-1") | {
        "name": name,
        "value": value,
        "metric_type": "timer",
        "unit": unit,
        "namespace": None,
        "tags": tags or {},
        "sample_rate": None,
        "format": "statsd",
        "delta": False,
    }
    return event | fields


def signal(event_type: str, function: str, request_id: str) -> dict[str, Any]:
    extra = {
        "cold_start": {"init_duration_ms": 250.0, "restore_duration_ms": None},
        "timeout": {"timeout_s": 3.0, "duration_ms": 3000.0},
        "out_of_memory": {"memory_size_mb": 128, "max_memory_used_mb": 128, "error_type": None, "message": None},
        "error": {"error_type": "ValueError", "message": "boom"},
        "throttle": {"error_code": "ThrottlingException", "message": "Rate exceeded"},
    }[event_type]
    return common(event_type, function, request_id) | extra


def endpoint_options(aws: str) -> dict[str, Any]:
    return {"endpoint_url": aws, "region": REGION}


def client(service: str, aws: str) -> Any:
    return boto3.client(service, endpoint_url=aws, region_name=REGION)


def test_test_events_follow_the_contract() -> None:
    events = [log_event("a", 1), invocation("a", "r", 1.5, 100.0), metric("m", 1.0)]
    events += [signal(kind, "a", "r") for kind in ("cold_start", "timeout", "out_of_memory", "error", "throttle")]
    assert [problem for event in events for problem in contract_violations(event)] == []


# --- imports and building ---------------------------------------------------------------------


def test_importing_shipper_does_not_import_boto3() -> None:
    code = "import sys, shipper, shipper.sinks, shipper.secrets; print([m for m in ('boto3', 'botocore') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("sqs:queue", {}, "unknown AWS sink"),
        ("kinesis:", {}, "names no stream"),
        ("s3://", {}, "names no bucket"),
        ("s3:///prefix", {}, "names no bucket"),
        ("kinesis:stream", {"namespace": "x"}, "unknown option"),
        ("kinesis:stream", {"partition_key": "shard"}, "partition_key"),
        ("firehose:stream", {"record_per_event": "yes"}, "record_per_event must be true or false"),
        ("cloudwatch", {"namespace": "AWS/Lambda"}, "not a valid CloudWatch namespace"),
        ("cloudwatch", {"timeout": 0}, "timeout must be a positive float"),
    ],
)
def test_build_rejects_bad_specs_and_options(spec: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_aws_sink(spec, {"region": REGION, **options})


def test_clients_try_each_call_once() -> None:
    retries = aws_client("kinesis", region=REGION).meta.config.retries
    assert retries == {"total_max_attempts": 1, "mode": "standard"}


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ProvisionedThroughputExceededException", 400, True),
        ("ThrottlingException", 400, True),
        ("SlowDown", 503, True),
        ("LimitExceededException", 400, True),
        ("RequestLimitExceeded", 400, True),
        ("ServiceUnavailable", 503, True),
        ("SomethingNew", 502, True),
        ("AccessDeniedException", 400, False),
        ("AccessDenied", 403, False),
        ("ResourceNotFoundException", 400, False),
        ("NoSuchBucket", 404, False),
        ("ValidationException", 400, False),
        ("InvalidParameterValue", 400, False),
    ],
)
def test_error_classification(code: str, status: int, retryable: bool) -> None:
    error = ClientError(
        {
            "Error": {"Code": code, "Message": "said the service"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {"retry-after": "2"}},
        },
        "PutRecords",
    )
    assert classify(error) == (retryable, f"{code}: said the service", 2.0)


def test_unreachable_endpoint_is_retryable(unreachable_endpoint: str) -> None:
    sink = build_aws_sink("kinesis:stream", {"endpoint_url": unreachable_endpoint, "region": REGION})
    with pytest.raises(SinkError) as caught:
        sink.send([log_event("a", 1)])
    assert caught.value.retryable
    assert caught.value.failed is None


# --- S3 -----------------------------------------------------------------------------------------

KEY_LAYOUT = re.compile(r"^logs/(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{8}T\d{6}\.\d{3}Z)-[0-9a-f]{32}\.ndjson\.gz$")


def read_s3_objects(aws: str, bucket: str, *, gzipped: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The events in each object of a bucket, by key."""
    s3 = client("s3", aws)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    bodies = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}
    if gzipped:
        bodies = {key: gzip.decompress(body) for key, body in bodies.items()}
    return {key: [orjson.loads(line) for line in body.splitlines()] for key, body in bodies.items()}


def by_request(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda event: event["request_id"])


def test_s3_writes_one_gzipped_ndjson_object_per_batch(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="logs-bucket")
    sink = build_aws_sink("s3://logs-bucket/logs/", endpoint_options(aws))
    first = [log_event("a", n) for n in range(50)]
    second = [log_event("b", n) for n in range(3)]
    before = datetime.now(UTC)
    sink.send(first)
    sink.send(second)
    sink.send([])
    sink.close()

    objects = read_s3_objects(aws, "logs-bucket")
    assert sorted(objects.values(), key=len) == [second, first]
    s3 = client("s3", aws)
    for key in objects:
        match = KEY_LAYOUT.match(key)
        assert match, key
        sent = datetime.strptime(match[5], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
        assert before - timedelta(seconds=1) <= sent <= datetime.now(UTC)
        assert match.group(1, 2, 3, 4) == (f"{sent:%Y}", f"{sent:%m}", f"{sent:%d}", f"{sent:%H}")
        head = s3.head_object(Bucket="logs-bucket", Key=key)
        assert (head["ContentType"], head["ContentEncoding"]) == ("application/x-ndjson", "gzip")


def test_s3_key_is_partitioned_by_the_utc_send_hour(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="bkt")
    sent_at = datetime(2024, 5, 20, 23, 59, 58, 123000, tzinfo=UTC).timestamp()
    sink = S3Sink(aws_client("s3", endpoint_url=aws, region=REGION), "bkt", "/dead-letter/", clock=lambda: sent_at)
    assert sink.name == "s3://bkt/dead-letter"
    sink.send([log_event("a", 1)])
    (key,) = read_s3_objects(aws, "bkt")
    assert key.startswith("dead-letter/2024/05/20/23/20240520T235958.123Z-")


def test_s3_takes_dead_letter_entries(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="dlq")
    entries = [
        Reject(
            "bad_base64",
            "record 3 is not base64",
            b"\xff\x00not base64",
            "49590338271490256608559692538361571095921575989136588898",
            "shard-0",
        ).to_dead_letter(),
        Reject("truncated_gzip", "gzip stream ends early", b"\x1f\x8b\x08").to_dead_letter(),
    ]
    build_aws_sink("s3://dlq", endpoint_options(aws)).send(entries)
    assert list(read_s3_objects(aws, "dlq").values()) == [entries]


def test_s3_missing_bucket_fails_the_batch_for_good(aws: str) -> None:
    sink = build_aws_sink("s3://no-such-bucket/x", endpoint_options(aws))
    with pytest.raises(SinkError, match="NoSuchBucket") as caught:
        sink.send([log_event("a", 1), log_event("a", 2)])
    assert not caught.value.retryable
    assert caught.value.failed is None


def test_an_event_that_is_not_json_fails_alone(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="bkt")
    events = [log_event("a", 1), log_event("a", 2) | {"fields": {"raw": b"bytes"}}, log_event("a", 3)]
    with pytest.raises(SinkError, match="not JSON-serialisable") as caught:
        build_aws_sink("s3://bkt", endpoint_options(aws)).send(events)
    assert (caught.value.failed, caught.value.retryable) == ([1], False)
    assert list(read_s3_objects(aws, "bkt").values()) == [[events[0], events[2]]]


# --- Kinesis ------------------------------------------------------------------------------------


def create_stream(aws: str, name: str, shards: int) -> None:
    kinesis = client("kinesis", aws)
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


def read_stream(aws: str, name: str) -> list[dict[str, Any]]:
    """Every record on every shard, as get_records returns them."""
    kinesis = client("kinesis", aws)
    records = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def deaggregate(records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(partition key, event) for every user record inside the aggregated records."""
    users = iter_deaggregate_records(records, data_format="Boto3")
    return [
        (user["kinesis"]["partitionKey"], orjson.loads(base64.b64decode(user["kinesis"]["data"]))) for user in users
    ]


def test_kinesis_aggregates_events_per_function(aws: str) -> None:
    create_stream(aws, "events", shards=2)
    events = [log_event(function, n) for n in range(20) for function in ("alpha", "beta", "gamma")]
    events.append(log_event("x", 0) | {"function": None})
    sink = build_aws_sink("kinesis:events", endpoint_options(aws))
    sink.send(events)
    sink.close()

    records = read_stream(aws, "events")
    assert len(records) == 4  # one aggregated record per partition key
    assert all(record["Data"].startswith(MAGIC) for record in records)
    assert sorted(record["PartitionKey"] for record in records) == ["-", "alpha", "beta", "gamma"]
    users = deaggregate(records)
    assert all(key == (event["function"] or "-") for key, event in users)
    for function in ("alpha", "beta", "gamma", None):
        assert [e for _, e in users if e["function"] == function] == [e for e in events if e["function"] == function]


def test_kinesis_random_partition_keys_keep_each_record_under_one_key(aws: str) -> None:
    create_stream(aws, "spread", shards=4)
    big = "x" * 100_000
    events = [log_event("same", n, message=f"{n} {big}") for n in range(25)]  # about 2.5 MB: several records
    build_aws_sink("kinesis:spread", endpoint_options(aws) | {"partition_key": "random"}).send(events)

    records = read_stream(aws, "spread")
    keys = [record["PartitionKey"] for record in records]
    assert len(records) >= 3 and len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys)
    for record in records:
        assert len(record["Data"]) <= 1024 * 1024
        assert {key for key, _ in deaggregate([record])} == {record["PartitionKey"]}
    assert by_request(e for _, e in deaggregate(records)) == by_request(events)


def test_kinesis_splits_calls_at_the_request_limit(aws: str) -> None:
    create_stream(aws, "large", shards=1)
    events = [log_event(f"fn{n % 8}", n, message="y" * 700_000) for n in range(12)]  # 8.4 MB, over 5 MiB
    sink = KinesisSink(aws_client("kinesis", endpoint_url=aws, region=REGION), "large")
    outcome = Outcome()
    assert sum(record.size for record in sink.pack(events, outcome)) > 5 * 1024 * 1024
    sink.send(events)
    assert by_request(e for _, e in deaggregate(read_stream(aws, "large"))) == by_request(events)


def test_kinesis_event_larger_than_a_record_fails_alone(aws: str) -> None:
    create_stream(aws, "s", shards=1)
    events = [log_event("a", 0), log_event("a", 1, message="z" * (1024 * 1024)), log_event("a", 2)]
    with pytest.raises(SinkError, match="larger than a Kinesis record") as caught:
        build_aws_sink("kinesis:s", endpoint_options(aws)).send(events)
    assert (caught.value.failed, caught.value.retryable) == ([1], False)
    assert [e for _, e in deaggregate(read_stream(aws, "s"))] == [events[0], events[2]]


def test_kinesis_missing_stream_is_not_retryable(aws: str) -> None:
    sink = build_aws_sink("kinesis:no-such-stream", endpoint_options(aws))
    with pytest.raises(SinkError, match="ResourceNotFoundException") as caught:
        sink.send([log_event("a", 1)])
    assert not caught.value.retryable
    assert caught.value.failed is None


def test_kinesis_stream_arn_is_accepted(aws: str) -> None:
    create_stream(aws, "by-arn", shards=1)
    arn = client("kinesis", aws).describe_stream_summary(StreamName="by-arn")["StreamDescriptionSummary"]["StreamARN"]
    build_aws_sink(f"kinesis:{arn}", endpoint_options(aws)).send([log_event("a", 1)])
    assert [e for _, e in deaggregate(read_stream(aws, "by-arn"))] == [log_event("a", 1)]


def put_records_response(records: list, failures: dict[int, str]) -> dict[str, Any]:
    entries = [
        {"ErrorCode": failures[n], "ErrorMessage": "said Kinesis"}
        if n in failures
        else {"SequenceNumber": str(n), "ShardId": "shardId-000000000000"}
        for n in range(len(records))
    ]
    return {"FailedRecordCount": len(failures), "Records": entries}


@pytest.mark.parametrize(
    ("codes", "retryable"),
    [
        ({1: "ProvisionedThroughputExceededException"}, True),
        ({1: "InternalFailure", 2: "ProvisionedThroughputExceededException"}, True),
        ({2: "KMSAccessDeniedException"}, False),
        ({0: "KMSAccessDeniedException", 2: "ProvisionedThroughputExceededException"}, True),
    ],
)
def test_put_records_partial_failure_names_the_events_of_the_failed_records(codes: dict, retryable: bool) -> None:
    functions = ("alpha", "beta", "gamma", "delta")
    events = [log_event(functions[n % 4], n) for n in range(40)]
    outcome = Outcome()
    records = KinesisSink(None, "stream").pack(events, outcome)
    assert [record.key for record in records] == list(functions)

    outcome.entries(records, put_records_response(records, codes)["Records"])
    with pytest.raises(SinkError) as caught:
        outcome.raise_if_failed("kinesis:stream", len(events))
    expected = sorted(n for n, event in enumerate(events) if functions.index(event["function"]) in codes)
    assert caught.value.failed == expected
    assert caught.value.retryable is retryable
    assert all(code in str(caught.value) for code in codes.values())


# --- Firehose -----------------------------------------------------------------------------------


def create_delivery_stream(aws: str, name: str, bucket: str) -> None:
    client("s3", aws).create_bucket(Bucket=bucket)
    client("firehose", aws).create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "fh/",
        },
    )


@pytest.mark.parametrize("record_per_event", [False, True])
def test_firehose_delivers_ndjson_to_its_destination(aws: str, record_per_event: bool) -> None:
    create_delivery_stream(aws, "to-s3", "firehose-bucket")
    events = [log_event(function, n) for n in range(30) for function in ("a", "b")]
    sink = build_aws_sink("firehose:to-s3", endpoint_options(aws) | {"record_per_event": record_per_event})
    assert len(sink.pack(events, Outcome())) == (len(events) if record_per_event else 1)
    sink.send(events)
    sink.close()
    assert list(read_s3_objects(aws, "firehose-bucket", gzipped=False).values()) == [events]


def test_firehose_splits_records_and_calls_at_the_limits(aws: str) -> None:
    create_delivery_stream(aws, "big", "big-bucket")
    events = [log_event("a", n, message=f"{n:03} " + "w" * 300_000) for n in range(20)]  # 6 MB
    sink = FirehoseSink(aws_client("firehose", endpoint_url=aws, region=REGION), "big")
    records = sink.pack(events, Outcome())
    assert all(record.size <= 1000 * 1024 for record in records) and len(records) == 7  # three events a record
    sink.send(events)
    objects = read_s3_objects(aws, "big-bucket", gzipped=False)
    assert len(objects) == 2  # moto writes one object per PutRecordBatch call
    assert by_request(e for lines in objects.values() for e in lines) == by_request(events)


def test_firehose_missing_delivery_stream_is_not_retryable(aws: str) -> None:
    with pytest.raises(SinkError, match="ResourceNotFoundException") as caught:
        build_aws_sink("firehose:nope", endpoint_options(aws)).send([log_event("a", 1)])
    assert not caught.value.retryable


# --- CloudWatch metrics -------------------------------------------------------------------------

INVOCATIONS = [
    invocation("alpha", "11111111-aaaa-4bbb-8ccc-000000000001", 12.5, init=250.0),
    invocation("alpha", "11111111-aaaa-4bbb-8ccc-000000000002", 7.5),
    invocation("alpha", "11111111-aaaa-4bbb-8ccc-000000000003", 7.5),
    invocation("beta", "22222222-aaaa-4bbb-8ccc-000000000001", 100.0),
]
SIGNALS = [
    signal("cold_start", "alpha", "11111111-aaaa-4bbb-8ccc-000000000001"),
    signal("timeout", "beta", "22222222-aaaa-4bbb-8ccc-000000000002"),
    signal("out_of_memory", "beta", "22222222-aaaa-4bbb-8ccc-000000000003"),
    signal("error", "alpha", "11111111-aaaa-4bbb-8ccc-000000000004"),
    signal("throttle", "alpha", "11111111-aaaa-4bbb-8ccc-000000000005"),
    signal("throttle", "alpha", "11111111-aaaa-4bbb-8ccc-000000000006"),
]
CUSTOM = [
    metric("checkout.latency", 40.0, tags={"env": "prod", "request_id": "r-1", "trace_id": "t-1", "flag": ""}),
    metric("checkout.latency", 60.0, tags={"env": "prod", "id": "req-metric-1"}, namespace="Orders"),
    metric("checkout.latency", 60.0, tags={"env": "prod"}, namespace="Orders"),
    metric("payload", 2048, unit="bytes", tags={"env": "prod"}, namespace="Orders", metric_type="gauge"),
    metric("orders", 1, unit=None, tags={"env": "prod"}, namespace="Orders", metric_type="count", sample_rate=0.5),
    metric("visitors", 42, unit=None, namespace="Orders", metric_type="set"),
]
REQUEST_IDS = {e["request_id"] for e in INVOCATIONS + SIGNALS + CUSTOM} | {"r-1", "t-1"}


def statistics(aws: str, namespace: str, name: str, dimensions: dict[str, str]) -> dict[str, Any]:
    start = datetime.fromtimestamp(NOW_MS / 1000, UTC) - timedelta(minutes=2)
    (point,) = client("cloudwatch", aws).get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
        StartTime=start,
        EndTime=start + timedelta(minutes=4),
        Period=600,
        Statistics=["SampleCount", "Sum", "Maximum"],
    )["Datapoints"]
    return point


def test_cloudwatch_puts_invocation_statistics_and_custom_metrics(aws: str) -> None:
    events = [log_event("alpha", 1), *INVOCATIONS, *SIGNALS, *CUSTOM]
    sink = build_aws_sink("cloudwatch", endpoint_options(aws) | {"namespace": "Fleet"})
    sink.send(events)
    sink.close()

    cloudwatch = client("cloudwatch", aws)
    listed = cloudwatch.list_metrics()["Metrics"]
    names = {(m["Namespace"], m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed}
    alpha, beta = (("FunctionName", "alpha"),), (("FunctionName", "beta"),)
    assert names == {
        *(("Fleet", name, alpha) for name in ("Invocations", "Duration", "BilledDuration", "MaxMemoryUsed")),
        *(("Fleet", name, beta) for name in ("Invocations", "Duration", "BilledDuration", "MaxMemoryUsed")),
        ("Fleet", "InitDuration", alpha),
        ("Fleet", "ColdStarts", alpha),
        ("Fleet", "Errors", alpha),
        ("Fleet", "Throttles", alpha),
        ("Fleet", "Timeouts", beta),
        ("Fleet", "OutOfMemory", beta),
        ("Fleet", "checkout.latency", (("env", "prod"),)),
        ("Orders", "checkout.latency", (("env", "prod"),)),
        ("Orders", "payload", (("env", "prod"),)),
        ("Orders", "orders", (("env", "prod"),)),
    }
    dimension_values = {d["Value"] for m in listed for d in m["Dimensions"]}
    assert not dimension_values & REQUEST_IDS

    duration = statistics(aws, "Fleet", "Duration", {"FunctionName": "alpha"})
    assert (duration["SampleCount"], duration["Sum"], duration["Maximum"]) == (3, 27.5, 12.5)
    assert duration["Unit"] == "Milliseconds"
    assert statistics(aws, "Fleet", "Invocations", {"FunctionName": "alpha"})["Sum"] == 3
    assert statistics(aws, "Fleet", "Throttles", {"FunctionName": "alpha"})["Sum"] == 2
    latency = statistics(aws, "Orders", "checkout.latency", {"env": "prod"})
    assert (latency["SampleCount"], latency["Sum"]) == (2, 120.0)
    assert statistics(aws, "Orders", "payload", {"env": "prod"})["Unit"] == "Bytes"
    assert statistics(aws, "Orders", "orders", {"env": "prod"})["Sum"] == 2  # one sampled at 0.5


def test_cloudwatch_splits_calls_and_value_lists_at_the_limits(aws: str) -> None:
    many_names = [metric(f"m{n:04}", 1.0, namespace="Wide") for n in range(1100)]
    many_values = [metric("spread", float(n), namespace="Deep") for n in range(400)]
    cloudwatch = aws_client("cloudwatch", endpoint_url=aws, region=REGION)
    calls: list[tuple[str, list[int]]] = []  # moto does not enforce the limits: watch what goes out

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append((params["Namespace"], [len(datum["Values"]) for datum in params["MetricData"]]))

    cloudwatch.meta.events.register("provide-client-params.cloudwatch.PutMetricData", record)
    CloudWatchMetricsSink(cloudwatch).send(many_names + many_values)
    assert [(namespace, len(datums)) for namespace, datums in calls] == [("Wide", 1000), ("Wide", 100), ("Deep", 3)]
    assert calls[2][1] == [150, 150, 100]

    paginator = client("cloudwatch", aws).get_paginator("list_metrics")
    listed = [m["MetricName"] for page in paginator.paginate(Namespace="Wide") for m in page["Metrics"]]
    assert sorted(listed) == [f"m{n:04}" for n in range(1100)]
    spread = statistics(aws, "Deep", "spread", {})
    assert (spread["SampleCount"], spread["Sum"], spread["Maximum"]) == (400, sum(range(400)), 399)


def test_cloudwatch_rejects_only_the_events_it_cannot_store(aws: str) -> None:
    old = NOW_MS - 15 * 24 * 3600 * 1000
    events = [
        metric("ok", 1.0, namespace="Mixed"),
        metric("nan", math.nan, namespace="Mixed"),
        invocation("alpha", "r", 5.0, ts=old),
        metric("bad name \n", 1.0, namespace="Mixed"),
        metric("ok", 2.0, namespace="Mixed"),
    ]
    with pytest.raises(SinkError) as caught:
        build_aws_sink("cloudwatch", endpoint_options(aws)).send(events)
    assert (caught.value.failed, caught.value.retryable) == ([1, 2, 3], False)
    assert statistics(aws, "Mixed", "ok", {})["Sum"] == 3.0


def test_cloudwatch_sink_over_a_bad_endpoint_fails_retryable(unreachable_endpoint: str) -> None:
    cloudwatch = aws_client("cloudwatch", endpoint_url=unreachable_endpoint, region=REGION)
    with pytest.raises(SinkError) as caught:
        CloudWatchMetricsSink(cloudwatch).send([*INVOCATIONS, log_event("alpha", 1)])
    assert caught.value.retryable
    assert caught.value.failed == [0, 1, 2, 3]  # the log event had nothing to send


@pytest.mark.parametrize(
    ("unit", "metric_type", "expected"),
    [
        ("ms", None, "Milliseconds"),
        ("Milliseconds", None, "Milliseconds"),
        ("second", None, "Seconds"),
        ("bytes", None, "Bytes"),
        ("KB/s", None, "Kilobytes/Second"),
        ("%", None, "Percent"),
        ("requests/s", None, "None"),
        ("furlongs", None, "None"),
        (None, "timer", "Milliseconds"),
        (None, "count", "Count"),
        (None, "gauge", "None"),
    ],
)
def test_cloudwatch_unit(unit: str | None, metric_type: str | None, expected: str) -> None:
    assert cloudwatch_unit(unit, metric_type) == expected


# --- CloudWatch EMF -----------------------------------------------------------------------------

EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_documents(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = io.BytesIO()
    sink = EmfSink(namespace="Fleet", stream=out, clock=lambda: NOW_MS / 1000)
    sink.send(events)
    sink.close()
    assert out.getvalue().endswith(b"\n")
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def check_emf(document: dict[str, Any]) -> list[tuple[str, str, tuple, float]]:
    """Check one document against the EMF specification; return (namespace, name, dimensions, value) per value."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and abs(meta["Timestamp"] - NOW_MS) < 120_000
    values = []
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 255
        assert 1 <= len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            assert all(isinstance(document[key], str) for key in dimension_set)
        dimensions = tuple((key, document[key]) for key in directive["Dimensions"][0])
        for member in directive["Metrics"]:
            assert member["Unit"] in EMF_UNITS
            value = document[member["Name"]]
            listed = value if isinstance(value, list) else [value]
            assert 1 <= len(listed) <= 100 and all(isinstance(v, int | float) for v in listed)
            values += [(directive["Namespace"], member["Name"], dimensions, v) for v in listed]
    return values


def test_emf_documents_carry_the_same_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    documents = emf_documents([log_event("alpha", 1), *INVOCATIONS, *SIGNALS, *CUSTOM])
    values = [value for document in documents for value in check_emf(document)]
    alpha = (("FunctionName", "alpha"),)
    assert sorted(v for ns, name, dims, v in values if (ns, name, dims) == ("Fleet", "Duration", alpha)) == [
        7.5,
        7.5,
        12.5,
    ]
    assert sum(v for ns, name, dims, v in values if (ns, name, dims) == ("Fleet", "Throttles", alpha)) == 2
    assert [v for ns, name, _, v in values if (ns, name) == ("Orders", "orders")] == [2.0]
    assert not {value for document in documents for value in document.values() if isinstance(value, str)} & REQUEST_IDS
    assert capsys.readouterr().out == ""  # the injected stream, not standard output


def test_emf_documents_are_split_at_100_metrics_and_100_values() -> None:
    events = [metric(f"m{n:03}", 1.0) for n in range(150)] + [metric("spread", float(n)) for n in range(250)]
    documents = emf_documents(events)
    values = [value for document in documents for value in check_emf(document)]
    assert Counter(name for _, name, _, _ in values) == {f"m{n:03}": 1 for n in range(150)} | {"spread": 250}
    assert sorted(v for _, name, _, v in values if name == "spread") == [float(n) for n in range(250)]


def test_emf_metric_named_like_a_dimension_fails_alone() -> None:
    out = io.BytesIO()
    events = [metric("env", 1.0, tags={"env": "prod"}), metric("fine", 1.0, tags={"env": "prod"})]
    with pytest.raises(SinkError, match="name of a dimension") as caught:
        EmfSink(stream=out).send(events)
    assert (caught.value.failed, caught.value.retryable) == ([0], False)
    (document,) = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert [v[1] for v in check_emf(document)] == ["fine"]


def test_emf_is_built_without_aws_access(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sink = build_aws_sink("cloudwatch:emf", {"namespace": "Fleet"})
    sink.send(INVOCATIONS[:1])
    (document,) = (orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines())
    assert {name for _, name, _, _ in check_emf(document)} == {
        "Invocations",
        "Duration",
        "BilledDuration",
        "MaxMemoryUsed",
        "InitDuration",
    }


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("nan", None), ("inf", None), ("-5", None), ("1e999", None)]
)
def test_an_aws_retry_after_is_read_as_http_sinks_read_it(header: str, expected: float | None) -> None:
    """A throttled AWS answer's Retry-After goes through the one reader: never NaN, an infinity or negative."""
    response = {
        "Error": {"Code": "ThrottlingException", "Message": "slow down"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {"retry-after": header}},
    }
    retryable, _, retry_after = classify(ClientError(response, "PutRecords"))
    assert retryable and retry_after == expected
