"""`shipper consume` as a process: killed mid-stream it loses nothing and repeats only the last
uncheckpointed batch of a shard; stopped with SIGTERM it checkpoints everything it delivered."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import orjson
import pytest
from test_consume import STREAM, put_orders

from promstack import running, wait_for

RECORDS = 60
MAX_RECORDS = 4


def _messages(path: Path) -> list[str]:
    return [orjson.loads(line)["message"] for line in path.read_bytes().splitlines()] if path.exists() else []


def _positions(checkpoint_dir: Path) -> dict[str, str]:
    path = checkpoint_dir / f"{STREAM}.json"
    return orjson.loads(path.read_bytes())["shards"] if path.exists() else {}


@pytest.fixture
def stream(aws: str) -> dict[str, tuple[str, str]]:
    kinesis = boto3.client("kinesis", endpoint_url=aws)
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    return put_orders(kinesis, range(RECORDS))


@contextmanager
def consumer(aws: str, tmp_path: Path, run: int) -> Iterator[subprocess.Popen[bytes]]:
    args = [
        sys.executable, "-m", "shipper.cli", "consume", "--stream", STREAM, "--endpoint-url", aws,
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--sink", f"jsonl:{tmp_path / 'events.ndjson'}",
        "--max-records", str(MAX_RECORDS), "--idle-s", "0.2",
    ]  # fmt: skip
    with running(args, tmp_path / f"consumer-{run}.log") as process:
        yield process


def _wait_for_some(tmp_path: Path, process: subprocess.Popen[bytes], run: int) -> None:
    log = tmp_path / f"consumer-{run}.log"
    wait_for(
        lambda: process.poll() is not None or len(_messages(tmp_path / "events.ndjson")) >= 12,
        "the consumer to deliver a few batches",
    )
    assert process.poll() is None, log.read_text()


def test_killed_mid_stream_it_resumes_and_repeats_only_the_last_uncheckpointed_batch(aws, stream, tmp_path):
    output = tmp_path / "events.ndjson"
    with consumer(aws, tmp_path, 1) as first:
        _wait_for_some(tmp_path, first, 1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    at_kill = _positions(tmp_path / "checkpoints")
    before = _messages(output)
    assert 0 < len(before) < RECORDS, "the kill should land mid-stream"

    with consumer(aws, tmp_path, 2) as second:
        wait_for(lambda: set(_messages(output)) == set(stream), "every event after the restart", timeout=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0, (tmp_path / "consumer-2.log").read_text()

    delivered = Counter(_messages(output))
    assert set(delivered) == set(stream)  # nothing lost
    repeated = [message for message, count in delivered.items() if count > 1]
    assert all(delivered[message] == 2 for message in repeated)
    per_shard: Counter[str] = Counter()
    for message in repeated:
        shard, sequence = stream[message]
        # a repeat was delivered before the kill but not yet checkpointed: after its shard's checkpoint
        assert message in before
        assert shard not in at_kill or int(sequence) > int(at_kill[shard]), (message, at_kill)
        per_shard[shard] += 1
    assert all(count <= MAX_RECORDS for count in per_shard.values()), per_shard  # one batch at most


def test_sigterm_flushes_and_checkpoints_what_was_delivered_so_a_restart_repeats_nothing(aws, stream, tmp_path):
    output = tmp_path / "events.ndjson"
    with consumer(aws, tmp_path, 1) as first:
        _wait_for_some(tmp_path, first, 1)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    log = (tmp_path / "consumer-1.log").read_text()
    assert "stopped; checkpoints in" in log
    positions = _positions(tmp_path / "checkpoints")
    before = _messages(output)
    assert len(before) < RECORDS, "the stop should land mid-stream"
    for message in before:
        shard, sequence = stream[message]
        assert int(sequence) <= int(positions[shard])  # every delivered record is checkpointed

    with consumer(aws, tmp_path, 2) as second:
        wait_for(lambda: len(_messages(output)) >= RECORDS, "the rest of the events", timeout=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    assert Counter(_messages(output)) == Counter(dict.fromkeys(stream, 1))  # exactly once


def test_killed_while_checkpoints_fail_it_repeats_at_most_one_batch_per_shard(aws, stream, tmp_path):
    """The checkpoint directory turns into a file mid-run (every write fails, as on a full disk)."""
    output = tmp_path / "events.ndjson"
    directory = tmp_path / "checkpoints"
    with consumer(aws, tmp_path, 1) as first:
        _wait_for_some(tmp_path, first, 1)
        directory.rename(tmp_path / "away")
        directory.write_text("not a directory")
        log = tmp_path / "consumer-1.log"
        wait_for(lambda: log.read_text().count("checkpoint of shard") >= 4, "checkpoint writes to fail")
        time.sleep(1.0)  # room for reads that should not happen
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    directory.unlink()
    (tmp_path / "away").rename(directory)
    at_kill = _positions(directory)
    before = _messages(output)
    assert len(before) < RECORDS, "the checkpoints should fail mid-stream"

    with consumer(aws, tmp_path, 2) as second:
        wait_for(lambda: set(_messages(output)) == set(stream), "every event after the restart", timeout=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0, (tmp_path / "consumer-2.log").read_text()
    delivered = Counter(_messages(output))
    per_shard = Counter(stream[message][0] for message, count in delivered.items() if count > 1)
    assert all(delivered[message] <= 2 for message in delivered)
    assert all(count <= MAX_RECORDS for count in per_shard.values()), (per_shard, at_kill)  # one batch at most
