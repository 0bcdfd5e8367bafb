"""`shipper consume`, in process, against the moto server: checkpoints (file and DynamoDB), shard lineage,
checkpointing only after delivery, the per-shard read limits and throttling backoff."""

from __future__ import annotations

import http.server
import itertools
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.awsrequest import AWSResponse

from shipper.aws_clients import client as aws_client
from shipper.checkpoint import SHARD_END, DynamoDBCheckpoints, FileCheckpoints
from shipper.cli import main
from shipper.config import build_router, merge_cli
from shipper.consume import _READ_BACKOFF, MIN_READ_INTERVAL_S, Consumer, ShardState, readable
from shipper.errors import ConfigError
from shipper.pipeline import Pipeline
from shipper.telemetry import Telemetry

from helpers import cwl_document, gz
from promstack import wait_for

STREAM = "central-logs"


def put_orders(kinesis: Any, numbers: range, stream: str = STREAM) -> dict[str, tuple[str, str]]:
    """One gzip'd DATA_MESSAGE record per order: {message: (shard, sequence number)}."""
    where = {}
    for number in numbers:
        message = f"order {number} processed"
        answer = kinesis.put_record(
            StreamName=stream, Data=gz(cwl_document([f"{message}\n"])), PartitionKey=f"k{number}"
        )
        where[message] = (answer["ShardId"], answer["SequenceNumber"])
    return where


def delivered_messages(path: Path) -> list[str]:
    return [orjson.loads(line)["message"] for line in path.read_bytes().splitlines()] if path.exists() else []


@contextmanager
def consuming(consumer: Consumer, stop: threading.Event) -> Iterator[Consumer]:
    """Run the consumer in a thread for the block; stop it and wait for it afterwards."""
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive()
        consumer.router.close()


def make_consumer(endpoint: str, sinks: list[str], checkpoints: Any, stop: threading.Event, **options: Any) -> Consumer:
    router = build_router(
        merge_cli(None, sinks=sinks, retry_max_attempts=options.pop("attempts", 5), retry_base_s=0.01)
    )
    client = aws_client("kinesis", endpoint_url=endpoint)
    options.setdefault("idle_s", 0.2)
    return Consumer(client, STREAM, Pipeline(), router, checkpoints, stop, Telemetry(), **options)


@pytest.fixture
def kinesis(aws: str) -> Any:
    return boto3.client("kinesis", endpoint_url=aws)


# --- checkpoints -----------------------------------------------------------------------------------


def test_file_checkpoints_are_replaced_whole_and_read_back(tmp_path):
    store = FileCheckpoints(tmp_path / "cp", STREAM)
    assert store.load() == {}
    store.save("shardId-000000000000", "49650001")
    store.save("shardId-000000000001", "49650002")
    store.save("shardId-000000000000", SHARD_END)
    again = FileCheckpoints(tmp_path / "cp", STREAM)
    assert again.load() == {"shardId-000000000000": SHARD_END, "shardId-000000000001": "49650002"}
    assert os.listdir(tmp_path / "cp") == [f"{STREAM}.json"]  # no temporary file left behind
    assert orjson.loads((tmp_path / "cp" / f"{STREAM}.json").read_bytes())["stream"] == STREAM


def test_a_damaged_checkpoint_file_stops_the_consumer_instead_of_rereading_everything(tmp_path):
    (tmp_path / f"{STREAM}.json").write_text('{"shards": {"shardId-000000000000": ')
    with pytest.raises(ConfigError, match="cannot be read"):
        FileCheckpoints(tmp_path, STREAM).load()


def test_dynamodb_checkpoints_create_their_table_and_keep_streams_apart(aws):
    dynamodb = boto3.client("dynamodb", endpoint_url=aws)
    store = DynamoDBCheckpoints(dynamodb, "shipper-checkpoints", STREAM)
    other = DynamoDBCheckpoints(dynamodb, "shipper-checkpoints", "other-stream")
    store.save("shardId-000000000000", "1")
    store.save("shardId-000000000000", "7")
    store.save("shardId-000000000001", SHARD_END)
    other.save("shardId-000000000000", "3")
    assert store.load() == {"shardId-000000000000": "7", "shardId-000000000001": SHARD_END}
    assert other.load() == {"shardId-000000000000": "3"}


def test_a_dynamodb_table_with_other_keys_is_refused(aws):
    dynamodb = boto3.client("dynamodb", endpoint_url=aws)
    dynamodb.create_table(
        TableName="wrong",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ConfigError, match="needs stream"):
        DynamoDBCheckpoints(dynamodb, "wrong", STREAM)


# --- shard lineage ---------------------------------------------------------------------------------


def _ids(shards: list[ShardState]) -> list[str]:
    return [shard.shard_id for shard in shards]


def test_children_are_read_only_after_every_parent_is_finished():
    shards = {
        "p0": ShardState("p0", (), closed=True),
        "p1": ShardState("p1", (), closed=True),
        "split-a": ShardState("split-a", ("p0",), closed=False),
        "split-b": ShardState("split-b", ("p0",), closed=False),
        "merged": ShardState("merged", ("p1", "split-a"), closed=False),
    }
    assert _ids(readable(shards, set())) == ["p0", "p1"]
    assert _ids(readable(shards, {"p0"})) == ["p1", "split-a", "split-b"]
    assert _ids(readable(shards, {"p0", "p1"})) == ["split-a", "split-b"]
    assert _ids(readable(shards, {"p0", "p1", "split-a"})) == ["split-b", "merged"]
    # a parent trimmed from the stream (past retention) no longer holds its children back
    del shards["p1"]
    assert _ids(readable(shards, {"p0", "split-a"})) == ["split-b", "merged"]


def test_after_a_merge_the_parents_are_read_to_their_end_before_the_child(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    put_orders(kinesis, range(12))
    kinesis.merge_shards(
        StreamName=STREAM, ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001"
    )
    iterators: list[str] = []
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop)
    consumer.client.meta.events.register(
        "before-parameter-build.kinesis.GetShardIterator", lambda params, **_: iterators.append(params["ShardId"])
    )
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 24, "the parents' and the child's records")
        wait_for(lambda: "shardId-000000000002" in checkpoints.load(), "the child's checkpoint")
    # moto's merge copies the parents' records into the child (Kinesis does not): the first 12 events
    # come from the parents, all of them before anything of the child.
    messages = delivered_messages(output)
    assert sorted(messages[:12]) == sorted(f"order {n} processed" for n in range(12))
    assert messages[12:] and set(messages[12:]) <= set(messages[:12])
    assert iterators.index("shardId-000000000002") > max(
        iterators.index("shardId-000000000000"), iterators.index("shardId-000000000001")
    )
    positions = checkpoints.load()
    assert positions["shardId-000000000000"] == positions["shardId-000000000001"] == SHARD_END
    assert positions["shardId-000000000002"] not in ("", SHARD_END)


# --- delivery and checkpoints ----------------------------------------------------------------------


def test_every_record_is_delivered_once_and_each_shard_checkpointed_at_its_last_record(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    where = put_orders(kinesis, range(40))
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop, max_records=7)
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 40, "40 events")
        last = {shard: max((seq for s, seq in where.values() if s == shard), key=int) for shard, _ in where.values()}
        wait_for(lambda: checkpoints.load() == last, "checkpoints at each shard's last record")
    assert Counter(delivered_messages(output)) == Counter({message: 1 for message in where})
    for shard in {shard for shard, _ in where.values()}:  # each shard's events reach the sink in sequence order
        sequence = [int(where[m][1]) for m in delivered_messages(output) if where[m][0] == shard]
        assert sequence == sorted(sequence)
    registry = consumer.telemetry.registry
    assert registry.get_sample_value("shipper_records_processed_total", {"outcome": "delivered"}) == 40
    assert registry.get_sample_value("shipper_consumer_lag_seconds", {"shard": "shardId-000000000001"}) == 0


def test_a_restarted_consumer_resumes_from_its_dynamodb_checkpoints(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    put_orders(kinesis, range(5))
    dynamodb = boto3.client("dynamodb", endpoint_url=aws)
    output = tmp_path / "events.ndjson"
    for run in (1, 2):
        stop = threading.Event()
        checkpoints = DynamoDBCheckpoints(dynamodb, "shipper-checkpoints", STREAM)
        with consuming(make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop), stop):
            wait_for(lambda run=run: len(delivered_messages(output)) >= 5 * run, f"run {run}'s events")
        if run == 1:
            put_orders(kinesis, range(5, 10))
    assert sorted(delivered_messages(output)) == sorted(f"order {n} processed" for n in range(10))


class _FlakyIngest(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` POSTs, then 200; keeps the bodies it accepted."""

    failures = 1
    accepted: list[bytes]
    on_failure: Callable[[], None]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.failures > 0:
            cls.failures -= 1
            cls.on_failure()
            self.send_response(503)
        else:
            cls.accepted.append(body)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_a_batch_is_checkpointed_only_once_the_sink_took_it(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    where = put_orders(kinesis, range(5))
    checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
    seen_at_failure: list[dict[str, str]] = []
    handler = type("Ingest", (_FlakyIngest,), {"failures": 2, "accepted": []})
    handler.on_failure = lambda: seen_at_failure.append(checkpoints.load())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        stop = threading.Event()
        url = f"http://127.0.0.1:{server.server_port}/ingest"
        consumer = make_consumer(aws, [url], checkpoints, stop, attempts=1)
        with consuming(consumer, stop):
            wait_for(lambda: handler.accepted, "the sink to take the batch after two refusals")
            last = max((seq for _, seq in where.values()), key=int)
            wait_for(lambda: checkpoints.load() == {"shardId-000000000000": last}, "the last checkpoint")
    finally:
        server.shutdown()
        server.server_close()
    assert seen_at_failure == [{}, {}]  # while the sink refused, nothing was checkpointed
    assert checkpoints.load() == {"shardId-000000000000": max((seq for _, seq in where.values()), key=int)}
    messages = [orjson.loads(line)["message"] for body in handler.accepted for line in body.splitlines()]
    assert sorted(messages) == sorted(where)  # each event taken once
    stats = consumer.router.stats()["sinks"]["http"]
    # refused: the batch of 5, then its first record alone (the shard holds there until it passes)
    assert stats["not_delivered_events"] == 6 and stats["sent_events"] == 5


# --- where a shard without a checkpoint starts ----------------------------------------------------


def _iterators_made(consumer: Consumer) -> bool:
    return bool(consumer.shards) and all(shard.iterator is not None for shard in consumer.shards.values())


def test_latest_reads_only_what_arrives_after_the_consumer_starts(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    put_orders(kinesis, range(5))
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    consumer = make_consumer(
        aws, [f"jsonl:{output}"], FileCheckpoints(tmp_path / "cp", STREAM), stop, starting_position="LATEST"
    )
    with consuming(consumer, stop):
        wait_for(lambda: _iterators_made(consumer), "an iterator on every shard")
        put_orders(kinesis, range(5, 10))
        wait_for(lambda: len(delivered_messages(output)) >= 5, "the 5 new events")
        time.sleep(0.5)  # room for anything that should not come
    assert sorted(delivered_messages(output)) == sorted(f"order {n} processed" for n in range(5, 10))


def test_with_latest_a_refused_first_batch_is_read_again_from_its_first_record(aws, kinesis, tmp_path):
    """No checkpoint yet, and the first batch fails: the re-read must not jump to LATEST past it."""
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    put_orders(kinesis, range(3))
    handler = type("Ingest", (_FlakyIngest,), {"failures": 2, "accepted": [], "on_failure": lambda: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        stop = threading.Event()
        url = f"http://127.0.0.1:{server.server_port}/ingest"
        checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
        consumer = make_consumer(aws, [url], checkpoints, stop, attempts=1, starting_position="LATEST")
        with consuming(consumer, stop):
            wait_for(lambda: _iterators_made(consumer), "an iterator on the shard")
            where = put_orders(kinesis, range(3, 8))
            last = max((seq for _, seq in where.values()), key=int)
            wait_for(lambda: checkpoints.load() == {"shardId-000000000000": last}, "the last checkpoint")
    finally:
        server.shutdown()
        server.server_close()
    messages = [orjson.loads(line)["message"] for body in handler.accepted for line in body.splitlines()]
    assert sorted(messages) == sorted(where)


def test_a_starting_time_reads_what_arrived_from_then(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    put_orders(kinesis, range(5))
    time.sleep(0.3)
    start = datetime.now(UTC)
    time.sleep(0.3)
    put_orders(kinesis, range(5, 10))
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    consumer = make_consumer(
        aws, [f"jsonl:{output}"], FileCheckpoints(tmp_path / "cp", STREAM), stop, starting_position=start
    )
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 5, "the 5 later events")
        time.sleep(0.5)
    assert sorted(delivered_messages(output)) == sorted(f"order {n} processed" for n in range(5, 10))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "must be TRIM_HORIZON, LATEST or an ISO 8601 time"),
        ("2024-05-20T16:00:00", "needs a time zone"),
    ],
)
def test_a_bad_starting_position_is_a_configuration_error(aws, kinesis, tmp_path, capsys, value, message):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with pytest.raises(SystemExit) as stopped:
        main(["consume", "--stream", STREAM, "--endpoint-url", aws, "--checkpoint-dir", str(tmp_path),
              "--sink", "null", "--starting-position", value])  # fmt: skip
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


# --- read limits -----------------------------------------------------------------------------------


def _throttled(times: int) -> Callable[..., Any]:
    """A before-call hook answering GetRecords with ProvisionedThroughputExceededException `times` times."""
    left = [times]

    def hook(**_: Any) -> Any:
        if left[0] <= 0:
            return None
        left[0] -= 1
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded for shard"}}
        return AWSResponse("https://kinesis", 400, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    return hook


def test_reads_stay_within_five_a_second_per_shard_and_back_off_when_throttled(aws, kinesis, tmp_path):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    put_orders(kinesis, range(10))
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop, max_records=2, rng=random.Random(3))
    rng = random.Random(3)  # the waits the consumer draws after the 1st, 2nd and 3rd throttle in a row
    backoffs = [max(MIN_READ_INTERVAL_S, _READ_BACKOFF.backoff(attempt, rng)) for attempt in (1, 2, 3)]
    calls: list[float] = []
    events = consumer.client.meta.events
    events.register_first("before-call.kinesis.GetRecords", lambda **_: calls.append(time.monotonic()))
    events.register("before-call.kinesis.GetRecords", _throttled(3))
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 10, "10 events")
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert len(calls) >= 3 + 5
    assert min(gaps) >= MIN_READ_INTERVAL_S - 0.01
    assert all(gap >= wait - 0.01 for gap, wait in zip(gaps[:3], backoffs, strict=True)), (gaps[:3], backoffs)
    assert sum(backoffs) > 3 * MIN_READ_INTERVAL_S  # the backoff grows past the plain read interval
    assert sorted(delivered_messages(output)) == sorted(f"order {n} processed" for n in range(10))
    errors = {"shard": "shardId-000000000000", "code": "ProvisionedThroughputExceededException"}
    assert consumer.telemetry.registry.get_sample_value("shipper_consumer_read_errors_total", errors) == 3


def test_an_unknown_stream_is_a_configuration_error(aws, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(
            ["consume", "--stream", "nope", "--endpoint-url", aws, "--checkpoint-dir", str(tmp_path), "--sink", "null"]
        )
    assert stopped.value.code == 2
    assert "no Kinesis stream named 'nope'" in capsys.readouterr().err


def test_a_metrics_port_in_use_is_a_configuration_error(aws, kinesis, tmp_path, capsys):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as stopped:
            main(["consume", "--stream", STREAM, "--endpoint-url", aws, "--checkpoint-dir", str(tmp_path),
                  "--sink", "null", "--metrics-port", port, "--metrics-address", "127.0.0.1"])  # fmt: skip
    assert stopped.value.code == 2
    assert f"--metrics-port: cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err


# --- a record that cannot pass, a checkpoint that cannot be written ---------------------------------

SHARD_0, SHARD_1 = "shardId-000000000000", "shardId-000000000001"
_HASH_KEY = {SHARD_0: "0", SHARD_1: str(2**127 + 1)}  # where the two shards of a 2-shard stream start


def put_to(kinesis: Any, shard: str, data: bytes) -> str:
    """Put one record into `shard` (by explicit hash key); its sequence number."""
    answer = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="k", ExplicitHashKey=_HASH_KEY[shard])
    assert answer["ShardId"] == shard
    return answer["SequenceNumber"]


def put_all_to(kinesis: Any, shard: str, records: list[bytes]) -> str:
    """Put `records` into `shard` in one request, so that a reader finds all of them or none; the last's
    sequence number."""
    entries = [{"Data": data, "PartitionKey": "k", "ExplicitHashKey": _HASH_KEY[shard]} for data in records]
    answer = kinesis.put_records(StreamName=STREAM, Records=entries)
    assert not answer.get("FailedRecordCount") and {r["ShardId"] for r in answer["Records"]} == {shard}
    return answer["Records"][-1]["SequenceNumber"]


def order(number: int) -> bytes:
    return gz(cwl_document([f"order {number} processed\n"]))


def _stalled(consumer: Consumer, shard: str, cause: str) -> float | None:
    labels = {"shard": shard, "cause": cause}
    return consumer.telemetry.registry.get_sample_value("shipper_consumer_shard_stalled", labels)


def test_a_record_that_cannot_pass_stops_its_shard_there_and_the_other_shard_goes_on(aws, kinesis, tmp_path):
    """No dead letter: the unreadable record holds its shard; what follows it is never delivered meanwhile."""
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    before = [put_to(kinesis, SHARD_0, order(n)) for n in range(3)]
    bad = put_to(kinesis, SHARD_0, b"\x1f\x8b not really gzip")
    for n in range(3, 8):
        put_to(kinesis, SHARD_0, order(n))
    for n in range(100, 105):
        put_to(kinesis, SHARD_1, order(n))
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    checkpoints = FileCheckpoints(tmp_path / "cp", STREAM)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop, rng=random.Random(1))
    limits: list[int] = []
    consumer.client.meta.events.register(
        "before-parameter-build.kinesis.GetRecords", lambda params, **_: limits.append(params["Limit"])
    )
    with consuming(consumer, stop):
        wait_for(lambda: limits.count(1) >= 3, "the blocked record to be read alone three times")
        assert _stalled(consumer, SHARD_0, "record") == 1
        assert consumer.shards[SHARD_0].blocked == bad
    delivered = Counter(delivered_messages(output))
    expected = [f"order {n} processed" for n in (0, 1, 2, 100, 101, 102, 103, 104)]
    assert delivered == Counter(dict.fromkeys(expected, 1))  # nothing after the bad record, the rest once
    assert checkpoints.load()[SHARD_0] == before[-1]
    assert _stalled(consumer, SHARD_1, "record") is None

    # Restarted with a dead letter, the record is dead-lettered and the shard reads on, each record once.
    stop = threading.Event()
    router = build_router(merge_cli(None, sinks=[f"jsonl:{output}"], dead_letter=f"jsonl:{tmp_path / 'dead.ndjson'}"))
    consumer = Consumer(consumer.client, STREAM, Pipeline(), router, checkpoints, stop, Telemetry(), idle_s=0.2)
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 13, "the records after the bad one")
        wait_for(lambda: consumer.shards[SHARD_0].position is not None, "a checkpoint")
    delivered = Counter(delivered_messages(output))
    assert delivered == Counter({f"order {n} processed": 1 for n in [*range(8), *range(100, 105)]})
    assert (tmp_path / "dead.ndjson").read_bytes().count(b"\n") == 1
    assert _stalled(consumer, SHARD_0, "record") is None


def test_a_checkpoint_that_cannot_be_written_stops_the_shard_until_it_is(aws, kinesis, tmp_path):
    """The checkpoint directory is replaced by a file mid-run (writes fail, as on a full disk), then restored."""
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    for n in range(4):
        put_to(kinesis, SHARD_0, order(n))
    output = tmp_path / "events.ndjson"
    directory = tmp_path / "cp"
    stop = threading.Event()
    checkpoints = FileCheckpoints(directory, STREAM)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop, max_records=2, rng=random.Random(2))
    failures = {"shard": SHARD_0}
    with consuming(consumer, stop):
        wait_for(lambda: len(delivered_messages(output)) >= 4, "the first 4 events")
        wait_for(lambda: consumer.shards[SHARD_0].failures == 0, "their checkpoint")
        directory.rename(tmp_path / "away")
        directory.write_text("not a directory")
        last = put_all_to(kinesis, SHARD_0, [order(n) for n in range(4, 10)])  # a read takes the first two
        registry = consumer.telemetry.registry
        wait_for(
            lambda: (registry.get_sample_value("shipper_consumer_checkpoint_failures_total", failures) or 0) >= 3,
            "three failed checkpoint writes",
        )
        assert len(delivered_messages(output)) == 6  # one more batch (2 records), then nothing new
        assert _stalled(consumer, SHARD_0, "checkpoint") == 1
        assert "checkpoint of shard" in (consumer.health() or "")
        directory.unlink()
        (tmp_path / "away").rename(directory)
        wait_for(lambda: checkpoints.load() == {SHARD_0: last}, "the checkpoint at the last record")
        assert consumer.health() is None
    assert Counter(delivered_messages(output)) == Counter({f"order {n} processed": 1 for n in range(10)})
    assert _stalled(consumer, SHARD_0, "checkpoint") is None


def test_file_checkpoints_that_fail_before_their_first_write_raise_an_os_error_to_retry(tmp_path):
    """Loaded at start, then the directory goes: the write fails as an OSError (retried), not a ConfigError."""
    store = FileCheckpoints(tmp_path / "cp", STREAM)
    store.load()
    (tmp_path / "cp").rmdir()
    (tmp_path / "cp").write_text("not a directory")
    with pytest.raises(OSError):
        store.save(SHARD_0, "1")
    (tmp_path / "cp").unlink()
    (tmp_path / "cp").mkdir()
    store.save(SHARD_0, "1")
    assert FileCheckpoints(tmp_path / "cp", STREAM).load() == {SHARD_0: "1"}
