"""The Lambda handler called in-process with a real clock-driven context: responses, dead letters, time, logs."""

from __future__ import annotations

import gc
import io
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.errors import ConfigError
from shipper.handler import BatchFailed, InvalidEvent, KinesisHandler, configure_logging

from helpers import cwl_document, gz, kinesis_event, kpl_aggregate

FIRST = 49652374810316455386124873493651468935098264726135504898
OWN_GROUP = "/aws/lambda/log-shipper"


class Context:
    """A Lambda context whose deadline is `remaining_ms` after it is made, on the monotonic clock."""

    def __init__(self, remaining_ms: int = 30_000, request_id: str = "8f6c4d1e-0000-4000-8000-000000000001") -> None:
        self.aws_request_id = request_id
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build(tmp_path: Path, **environ: str) -> KinesisHandler:
    env = {
        "SHIPPER_SINKS": f"jsonl:{tmp_path / 'events.ndjson'}",
        "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dead-letter'}",
        "AWS_LAMBDA_LOG_GROUP_NAME": OWN_GROUP,
        **environ,
    }
    return KinesisHandler.from_env(env)


def shipped(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "events.ndjson"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((tmp_path / "dead-letter").glob("*.ndjson")) for line in path.open()]


def record(messages: list[str], log_group: str = "/aws/lambda/orders-api", stream: str = "s1") -> bytes:
    return gz(cwl_document(messages, log_group=log_group, log_stream=f"2024/05/20/[$LATEST]{stream}"))


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_a_batch_is_shipped_and_no_record_is_reported_failed(tmp_path: Path) -> None:
    handler = build(tmp_path)
    event = kinesis_event([record([f"order {i} placed\n"], stream=f"s{i}") for i in range(3)])

    assert handler(event, Context()) == {"batchItemFailures": []}
    assert [e["message"] for e in shipped(tmp_path)] == ["order 0 placed", "order 1 placed", "order 2 placed"]


def test_a_malformed_record_goes_to_the_dead_letter_and_counts_as_processed(tmp_path: Path) -> None:
    handler = build(tmp_path)
    event = kinesis_event([record(["before\n"]), b"\x1f\x8b\x08 truncated", record(["after\n"])])

    assert handler(event, Context()) == {"batchItemFailures": []}
    assert [e["message"] for e in shipped(tmp_path)] == ["before", "after"]
    [entry] = dead_letters(tmp_path)
    assert entry["sequence_number"] == str(FIRST + 1)
    assert entry["code"] in ("bad_gzip", "truncated_gzip")


def test_a_record_whose_dead_letter_cannot_be_written_is_reported_failed(tmp_path: Path, aws: str) -> None:
    handler = build(tmp_path, SHIPPER_DEAD_LETTER="s3://no-such-bucket/dead-letter")
    event = kinesis_event([record(["first\n"]), b"not a log batch", record(["third\n"])])

    assert failures(handler(event, Context())) == [str(FIRST + 1)]
    assert [e["message"] for e in shipped(tmp_path)] == ["first", "third"]


def test_kpl_aggregated_records_fail_by_their_parent_sequence_number(tmp_path: Path, aws: str) -> None:
    handler = build(tmp_path, SHIPPER_DEAD_LETTER="s3://no-such-bucket/dead-letter")
    good = kpl_aggregate([record(["kpl a\n"], stream="a"), record(["kpl b\n"], stream="b")])
    poisoned = kpl_aggregate([record(["kpl c\n"], stream="c"), b"garbage inside an aggregate"])
    event = kinesis_event([good, record(["plain\n"]), poisoned])

    assert failures(handler(event, Context())) == [str(FIRST + 2)]
    assert sorted(e["message"] for e in shipped(tmp_path)) == ["kpl a", "kpl b", "kpl c", "plain"]
    assert handler.pipeline.counts["kpl_subrecords"] == 4


def test_the_shippers_own_log_group_is_skipped_and_counted(tmp_path: Path) -> None:
    handler = build(tmp_path)
    own_line = '{"level":"INFO","logger":"shipper.handler","message":"batch done"}\n'
    event = kinesis_event([record([own_line], log_group=OWN_GROUP), record(["an application line\n"])])

    assert handler(event, Context()) == {"batchItemFailures": []}
    assert [e["log_group"] for e in shipped(tmp_path)] == ["/aws/lambda/orders-api"]
    assert handler.pipeline.counts["log_group_batches_skipped"] == 1


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"detail-type": "Scheduled Event"}, "it has no Records list (keys: detail-type)"),
        ({"Records": "not a list"}, "it has no Records list (keys: Records)"),
        ([1, 2], "got list"),
        ("text", "got str"),
        ({"awslogs": {"data": "H4sI"}}, "direct CloudWatch Logs subscription"),
    ],
)
def test_an_event_that_is_not_a_kinesis_batch_fails_the_invocation_saying_why(
    tmp_path: Path, event: Any, says: str
) -> None:
    handler = build(tmp_path)
    with pytest.raises(InvalidEvent, match="not a Kinesis batch") as raised:
        handler(event, Context())
    assert says in str(raised.value)
    assert shipped(tmp_path) == []


def test_a_failed_record_without_a_sequence_number_fails_the_whole_batch(tmp_path: Path, aws: str) -> None:
    handler = build(tmp_path, SHIPPER_DEAD_LETTER="s3://no-such-bucket/dead-letter")
    event = kinesis_event([record(["fine\n"])])
    event["Records"].append({"kinesis": {"data": "!!! not base64 !!!"}})

    with pytest.raises(BatchFailed):
        handler(event, Context())


def test_when_time_is_already_short_no_record_is_started_and_all_are_listed(tmp_path: Path) -> None:
    handler = build(tmp_path, SHIPPER_TIMEOUT_MARGIN_S="1")
    event = kinesis_event([record([f"line {i}\n"]) for i in range(4)])

    started = time.monotonic()
    response = handler(event, Context(remaining_ms=1500))

    assert time.monotonic() - started < 0.5
    assert failures(response) == [str(FIRST + i) for i in range(4)]
    assert shipped(tmp_path) == []


@pytest.mark.parametrize("value", ["soon", "-1", "61", "nan"])
def test_a_bad_timeout_margin_is_a_configuration_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="SHIPPER_TIMEOUT_MARGIN_S"):
        build(tmp_path, SHIPPER_TIMEOUT_MARGIN_S=value)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The shipper's logs as configure_logging sends them, into a buffer; logging is restored afterwards."""
    logger = logging.getLogger("shipper")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    stream = io.StringIO()
    configure_logging("INFO", stream)
    yield stream
    logger.handlers[:], logger.level, logger.propagate = saved


def test_the_handler_logs_one_json_object_a_line_with_the_request_id(tmp_path: Path, json_logs: io.StringIO) -> None:
    handler = build(tmp_path)
    handler(kinesis_event([record(["ok\n"]), b"junk"]), Context(request_id="req-42"))

    lines = [orjson.loads(line) for line in json_logs.getvalue().splitlines()]
    assert {line["request_id"] for line in lines} == {"req-42"}
    rejected, done = lines
    assert (rejected["level"], rejected["code"], rejected["sequence_number"]) == (
        "WARNING",
        "unknown_format",
        str(FIRST + 1),
    )
    assert done["message"] == "batch done"
    assert (done["records"], done["events"], done["rejects"], done["delivered"], done["dead_lettered"]) == (
        2,
        1,
        1,
        1,
        1,
    )


def test_a_bad_log_level_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="SHIPPER_LOG_LEVEL"):
        configure_logging("LOUD")


def test_importing_the_handler_does_not_load_boto3_protobuf_snappy_or_the_http_client() -> None:
    """What only some sinks need is imported when one is configured; http.client, ssl and email (15 ms of
    the handler's import) come with the HTTP sinks and when an AWS error's Retry-After is read."""
    heavy = ("boto3", "botocore", "google", "opentelemetry", "cramjam", "snappy", "http", "ssl", "email")
    code = f"import sys, shipper.handler; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_an_invocation_leaves_the_young_generation_to_reference_counting_and_puts_the_collector_back(
    tmp_path: Path,
) -> None:
    """As `shipper run` does: events die by reference counting, so the collector is not run every 700
    allocations while a batch is handled, and the thresholds found are restored after it."""
    handler = build(tmp_path)
    lines = [f"[INFO]\t2024-05-20T16:29:45.009Z\treq-{n}\tprocessed order {n}\n" for n in range(20_000)]
    event = kinesis_event([record(lines)])
    before = gc.get_threshold()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        assert handler(event, Context()) == {"batchItemFailures": []}
    finally:
        gc.callbacks.remove(count)
    assert len(collections) <= 5, f"{len(collections)} collections for 20,000 events"
    assert gc.get_threshold() == before


@pytest.fixture(scope="module")
def many_records() -> dict[str, Any]:
    """One Kinesis event of the generated fleet: 44 records that make 1,201 events, more than a POST held at
    1,000 events."""
    from generate import build_corpus

    return build_corpus(3000, seed=1).kinesis_events[0]


def endpoint_served() -> Any:
    """The HTTP sink tests' loopback endpoint, as a context manager: (Endpoint, URL)."""
    from test_http_sink import serve

    return contextmanager(serve)()


@pytest.mark.parametrize("gzip_body", ["false", "true"])
def test_the_events_of_one_invocation_go_to_an_http_endpoint_in_one_post(
    tmp_path: Path, many_records: dict[str, Any], gzip_body: str
) -> None:
    """An HTTP batch is bound by its bytes first: a Kinesis batch that makes more than 1,000 events is one
    POST, so the function waits for one answer rather than one per thousand events."""
    with endpoint_served() as (endpoint, url):
        handler = build(tmp_path, SHIPPER_SINKS=f"{url}/ingest gzip={gzip_body}")
        response = handler(many_records, Context())
        sent = handler.router.stats()["sinks"]["http"]["sent_events"]
        handler.router.close()

    assert response == {"batchItemFailures": []}
    assert sent > 1000  # more than one request took before batches were bound by bytes first
    assert len(endpoint.requests) == 1
    assert sum(endpoint.stored.values()) == sent


@pytest.mark.parametrize("gzip_body", ["false", "true"])
def test_an_endpoint_that_takes_less_than_a_batch_gets_it_in_parts_and_loses_nothing(
    tmp_path: Path, many_records: dict[str, Any], gzip_body: str
) -> None:
    """An endpoint that answers 413 past a body size (nginx's default is 1 MB) gets the batch in halves, each
    halved again while it is refused: every event arrives once, and the invocation reports no failure."""
    with endpoint_served() as (endpoint, url):
        endpoint.max_body = 20 * 1024 if gzip_body == "true" else 100 * 1024
        handler = build(tmp_path, SHIPPER_SINKS=f"{url}/ingest gzip={gzip_body}")
        response = handler(many_records, Context())
        counters = handler.router.stats()["sinks"]["http"]
        handler.router.close()

    assert response == {"batchItemFailures": []}
    assert counters["sent_events"] == counters["received_events"] > 1000
    assert counters["dead_lettered_events"] == counters["not_delivered_events"] == 0
    assert sum(endpoint.stored.values()) == counters["sent_events"]
    refused = [body for _, _, body in endpoint.requests if len(body) > endpoint.max_body]
    assert refused and len(endpoint.requests) == 2 * len(refused) + 1  # each refused batch went as two halves
