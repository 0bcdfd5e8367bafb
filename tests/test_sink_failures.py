"""Local sinks under crashes, full disks and closed pipes: every event ends in exactly one state.

Delivered means in the output, whole; not delivered means reported back to be sent again, and never
also in the output or in the dead letter. The failures are real where a test can make them so:
SIGKILL at random points, a file size limit (RLIMIT_FSIZE), /dev/full, a pipe whose reader left.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import random
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_consume import STREAM, put_orders

from shipper.delivery import Delivery, RetryPolicy, Status
from shipper.runner import EXIT_UNDELIVERED
from shipper.sinks import DirectorySink, JsonLinesFileSink, StdoutSink, build_sink
from shipper.sinks.base import SinkError
from shipper.testing import ScriptedSink

from promstack import wait_for

PYTHON = [sys.executable, "-m", "shipper.cli"]
FAULTS = ("limit", "short", "zero", errno.ENOSPC, errno.EPIPE, errno.EIO)


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of a jsonl output, plain or gzip, read to its end: each must be whole, valid JSON."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    assert not data or data.endswith(b"\n"), "a torn last line"
    return [orjson.loads(line) for line in data.splitlines()]


def batch(number: int, size: int) -> list[dict[str, Any]]:
    return [{"type": "log", "event_id": f"{number}-{i}", "message": "m" * (i * 37 % 300)} for i in range(size)]


@contextmanager
def failing_writes(path: Path, allowed: int, fault: str | int) -> Iterator[None]:
    """Writes to `path`'s file take `allowed` bytes in all, then fail with `fault`: "limit" is a real file
    size limit (RLIMIT_FSIZE: EFBIG for this process), an errno fails `os.write`, "zero" makes no progress;
    "short" never fails but takes at most `allowed` (at least 1) bytes per call."""
    if fault == "limit":
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + allowed, limits[1]))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        return
    real_write = os.write
    inode = path.stat().st_ino
    left = allowed

    def write(fd: int, data: Any) -> int:
        nonlocal left
        if os.fstat(fd).st_ino != inode:
            return real_write(fd, data)
        if fault == "short":
            return real_write(fd, data[: max(1, allowed)])
        if left == 0:
            if fault == "zero":
                return 0
            raise OSError(fault, os.strerror(int(fault)))
        written = real_write(fd, data[:left])
        left -= written
        return written

    with mock.patch.object(os, "write", write):
        yield


def deliver(delivery: Delivery, events: list[dict[str, Any]]) -> dict[str, Status]:
    """Send events through the delivery layer, one origin per event; the status of each."""
    statuses: dict[str, Status] = {}
    for event in events:
        for settled in delivery.add(event, origin=event["event_id"]):
            statuses[settled.origin] = settled.status
    for settled in delivery.flush():
        statuses[settled.origin] = settled.status
    return statuses


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gz=st.booleans(),
    plan=st.lists(
        st.tuples(st.integers(1, 40), st.none() | st.tuples(st.integers(0, 6000), st.sampled_from(FAULTS))),
        min_size=1,
        max_size=6,
    ),
)
def test_a_file_holds_exactly_the_delivered_events_whatever_write_fails_where(tmp_path_factory, gz, plan):
    directory = tmp_path_factory.mktemp("out")
    path = directory / ("events.ndjson.gz" if gz else "events.ndjson")
    dead = ScriptedSink(name="dead letter")  # in memory: the file size limit must not stop it
    sink = JsonLinesFileSink(str(path))
    delivery = Delivery(sink, retry=RetryPolicy(max_attempts=2), sleep=lambda _: None, dead_letter=Delivery(dead))
    statuses: dict[str, Status] = {}
    sent: list[dict[str, Any]] = []
    for number, (size, fault) in enumerate(plan):
        events = batch(number, size)
        sent += events
        if fault is None:
            statuses |= deliver(delivery, events)
        else:
            with failing_writes(path, *fault):
                statuses |= deliver(delivery, events)
        delivered = [event for event in sent if statuses[event["event_id"]] is Status.DELIVERED]
        assert lines_of(path) == delivered  # whole, in order, nothing else
        if fault is not None and fault[1] == "short":
            assert all(statuses[event["event_id"]] is Status.DELIVERED for event in events)
    assert set(statuses) == {event["event_id"] for event in sent}
    assert set(statuses.values()) <= {Status.DELIVERED, Status.NOT_DELIVERED}  # a full disk is not the data's fault
    assert dead.taken == []
    counters = delivery.counters
    assert counters.sent_events + counters.not_delivered_events == len(sent) and counters.dead_lettered_events == 0

    again = [event for event in sent if statuses[event["event_id"]] is Status.NOT_DELIVERED]
    assert set(deliver(delivery, again).values()) <= {Status.DELIVERED}
    sink.close()
    assert sorted(event["event_id"] for event in lines_of(path)) == sorted(event["event_id"] for event in sent)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 40), allowed=st.integers(0, 6000), fault=st.sampled_from(FAULTS))
def test_standard_output_counts_as_delivered_only_the_lines_written_whole(tmp_path_factory, size, allowed, fault):
    path = tmp_path_factory.mktemp("out") / "stdout"
    with path.open("wb") as stream:
        delivery = Delivery(StdoutSink(stream), retry=RetryPolicy(max_attempts=2), sleep=lambda _: None)
        events = batch(0, size)
        with failing_writes(path, allowed, fault):
            statuses = deliver(delivery, events)
    whole = [orjson.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]
    assert whole == [event for event in events if statuses[event["event_id"]] is Status.DELIVERED]
    assert set(statuses.values()) <= {Status.DELIVERED, Status.NOT_DELIVERED}
    assert len(statuses) == size


# --- Opening a file a crash left behind ------------------------------------------------------------------


def test_a_torn_last_line_is_cut_on_open_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    with caplog.at_level(logging.WARNING):
        sink = JsonLinesFileSink(str(path))
    assert "cut 5 bytes" in caplog.text
    sink.send(batch(0, 2))
    sink.close()
    assert [line.get("event_id") for line in lines_of(path)] == [None, None, "0-0", "0-1"]


@pytest.mark.parametrize("cut", [1, 9, 20, -9, -1])
def test_an_incomplete_last_gzip_member_is_cut_on_open(tmp_path: Path, cut: int, caplog) -> None:
    path = tmp_path / "events.ndjson.gz"
    sink = JsonLinesFileSink(str(path))
    sink.send(batch(0, 50))
    sink.close()
    whole = path.stat().st_size
    member = gzip.compress(orjson.dumps({"torn": True}) + b"\n" * 5000)
    path.write_bytes(path.read_bytes() + member[:cut])
    with caplog.at_level(logging.WARNING):
        again = JsonLinesFileSink(str(path))
    assert f"cut {len(member[:cut])} bytes" in caplog.text
    assert path.stat().st_size == whole
    again.send(batch(1, 3))
    again.close()
    assert [event["event_id"] for event in lines_of(path)][-4:] == ["0-49", "1-0", "1-1", "1-2"]


def test_zero_padding_after_the_last_member_is_cut_and_large_old_members_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    old = gzip.compress(os.urandom(9 * 1024 * 1024).hex().encode()[: 17 * 1024 * 1024])  # one member past 16 MiB
    path.write_bytes(old + b"\0" * 4096)
    JsonLinesFileSink(str(path)).close()
    assert path.read_bytes() == old


@pytest.mark.parametrize("content", [b"plain text, not gzip\n", b"\x1f\x8b\x08garbage" * 10, b'{"a":1}\n'])
def test_a_gz_path_holding_something_else_is_refused_not_cut(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(content)
    with pytest.raises(SinkError, match=r"will not append .* not gzip from byte 0"):
        JsonLinesFileSink(str(path))
    assert path.read_bytes() == content


def test_a_directory_or_a_file_in_use_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.ndjson").mkdir()
    with pytest.raises(SinkError, match="cannot open"):
        build_sink(f"jsonl:{tmp_path / 'd.ndjson'}")
    first = build_sink(f"jsonl:{tmp_path / 'x.ndjson'}")
    with pytest.raises(SinkError, match="already being written"):
        build_sink(f"jsonl:{tmp_path / 'x.ndjson'}")
    first.close()
    build_sink(f"jsonl:{tmp_path / 'x.ndjson'}").close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_dev_full_leaves_the_batch_not_delivered_and_not_dead_lettered(tmp_path: Path) -> None:
    dead = ScriptedSink(name="dead letter")
    with open("/dev/full", "wb") as stream:
        for sink in (build_sink("jsonl:/dev/full"), StdoutSink(stream)):
            delivery = Delivery(sink, sleep=lambda _: None, dead_letter=Delivery(dead))
            assert set(deliver(delivery, batch(0, 5)).values()) == {Status.NOT_DELIVERED}
    assert dead.taken == []


# --- Real crashes -----------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from shipper.delivery import Delivery, Status
    from shipper.files import write_durably
    from shipper.sinks import build_sink

    output, checkpoint, batches = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    first = int(checkpoint.read_text()) if checkpoint.exists() else 0
    delivery = Delivery(build_sink("jsonl:" + output))
    for number in range(first, batches):
        for i in range(300):
            delivery.add({"type": "log", "event_id": f"{number}-{i}", "message": "m" * (i * 37 % 700)}, number)
        (settled,) = delivery.flush()
        assert settled.status is Status.DELIVERED, settled
        write_durably(checkpoint, str(number + 1).encode())
    """
)


@pytest.mark.parametrize("name", ["events.ndjson", "events.ndjson.gz"])
def test_killed_at_random_points_the_file_stays_whole_and_loses_nothing(tmp_path: Path, name: str) -> None:
    output, checkpoint = tmp_path / name, tmp_path / "checkpoint"
    rng = random.Random(name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def child(batches: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", CHILD, str(output), str(checkpoint), str(batches)], env=env)

    kills = 12
    for kill in range(kills):
        size = output.stat().st_size if output.exists() else 0
        running = child(10**6)  # never done: each run ends killed
        if kill % 2:  # while it writes
            wait_for(lambda size=size: output.exists() and output.stat().st_size > size, "it to write", timeout=10)
            time.sleep(rng.uniform(0, 0.05))
        else:  # anywhere, starting and cutting a torn tail included
            time.sleep(rng.uniform(0, 0.2))
        running.send_signal(signal.SIGKILL)
        running.wait()
        if output.exists():
            JsonLinesFileSink(str(output)).close()  # what the next start does: cut a torn tail
            lines_of(output)  # then readable to the end
    batches = (int(checkpoint.read_text()) if checkpoint.exists() else 0) + 5
    assert child(batches).wait() == 0

    seen = Counter(event["event_id"] for event in lines_of(output))
    expected = {f"{number}-{i}" for number in range(batches) for i in range(300)}
    assert set(seen) == expected  # nothing lost
    repeats: Counter[str] = Counter()  # per batch: how many extra copies of it the file holds
    for event_id, count in seen.items():
        batch_number = event_id.split("-")[0]
        repeats[batch_number] = max(repeats[batch_number], count - 1)
    assert sum(repeats.values()) <= kills  # at most the batch in flight at each kill is repeated


def test_shipper_run_killed_at_random_points_leaves_a_readable_gzip_file(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"2024-05-20T10:00:00.000Z line {i:06d} {'x' * 80}\n" for i in range(30_000)))
    output = tmp_path / "events.ndjson.gz"
    command = [*PYTHON, "run", "--quiet", "--format", "text", "--log-group", "/aws/lambda/fn", str(source)]
    command += ["--sink", f"jsonl:{output}"]
    rng = random.Random(3)
    for _ in range(10):
        child = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert subprocess.run(command).returncode == 0
    messages = Counter(event["message"] for event in lines_of(output))
    assert len(messages) == 30_000  # the last run's events, after whatever whole batches earlier runs left


# --- A full disk and a closed pipe, through `shipper run` ----------------------------------------------------


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _sink_line(stderr: str, sink: str) -> tuple[int, int, int]:
    found = re.search(
        rf"sink {re.escape(sink)}: ([\d,]+) sent, .* ([\d,]+) dead-lettered, ([\d,]+) not delivered", stderr
    )
    assert found, stderr
    sent, dead, undelivered = (int(group.replace(",", "")) for group in found.groups())
    return sent, dead, undelivered


@pytest.mark.parametrize(("name", "limit"), [("events.ndjson", 4_000_000), ("events.ndjson.gz", 1_200_000)])
def test_a_file_size_limit_leaves_whole_batches_and_fails_the_run(tmp_path: Path, name: str, limit: int) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"2024-05-20T10:00:00.000Z line {i:06d} {os.urandom(60).hex()}\n" for i in range(25_000)))
    output = tmp_path / name
    command = [*PYTHON, "run", "--quiet", "--format", "text", "--log-group", "/aws/lambda/fn", str(source)]
    command += ["--sink", f"jsonl:{output}", "--dead-letter", f"dir:{tmp_path / 'dead'}"]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=lambda: _limit_file_size(limit))
    assert done.returncode == EXIT_UNDELIVERED, done.stderr
    assert "Traceback" not in done.stderr
    written = lines_of(output)
    assert 0 < len(written) < 25_000
    assert len({event["message"] for event in written}) == len(written)
    assert not list((tmp_path / "dead").glob("*.ndjson"))  # not dead-lettered: the disk is full, not the data bad
    assert "File too large" in done.stderr


@pytest.mark.parametrize("sink", ["stdout", "cloudwatch:emf"])
def test_a_reader_that_leaves_early_fails_the_run_without_a_traceback(tmp_path: Path, sink: str) -> None:
    source = tmp_path / "in.ndjson"
    now_ms = int(time.time() * 1000)
    source.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "timestamp": now_ms,
                    "message": f"REPORT RequestId: 6f1c0ae4-2b7d-4c57-9a8e-{i:012d}\t"
                    f"Duration: {i % 90 + 1}.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
                    "Max Memory Used: 1 MB\t\n",
                }
            )
            + b"\n"
            for i in range(9_000)  # one batch: before, its short write was counted as sent
        )
    )
    command = [*PYTHON, "run", "--log-group", "/aws/lambda/fn", str(source), "--sink", sink]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.readline()
    child.stdout.close()  # like `| head -1`
    stderr = child.stderr.read().decode()
    assert child.wait() == EXIT_UNDELIVERED, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    sent, dead, undelivered = _sink_line(stderr, sink.partition(":")[0])
    received = int(re.search(r"-> ([\d,]+) events", stderr).group(1).replace(",", ""))
    assert undelivered > 0 and dead == 0 and sent + undelivered == received


def test_shipper_consume_on_a_full_file_checkpoints_only_what_the_file_holds(aws: str, tmp_path: Path) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=aws)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    stream = put_orders(kinesis, range(40))
    output, checkpoints = tmp_path / "events.ndjson", tmp_path / "checkpoints"
    command = [*PYTHON, "consume", "--stream", STREAM, "--endpoint-url", aws, "--checkpoint-dir", str(checkpoints)]
    command += ["--sink", f"jsonl:{output}", "--max-records", "3", "--idle-s", "0.2"]
    log = tmp_path / "consume.log"
    with log.open("wb") as sink_log:
        full = subprocess.Popen(
            command, stdout=sink_log, stderr=subprocess.STDOUT, preexec_fn=lambda: _limit_file_size(4000)
        )
    try:
        wait_for(lambda: log.read_text().count("not delivered") >= 2, "the file to fill up", timeout=30)
    finally:
        full.send_signal(signal.SIGTERM)
        full.wait(timeout=15)
    held = {event["message"] for event in lines_of(output)}
    (position,) = orjson.loads((checkpoints / f"{STREAM}.json").read_bytes())["shards"].values()
    assert 0 < len(held) < len(stream)
    assert {message for message, (_, sequence) in stream.items() if int(sequence) <= int(position)} <= held

    with log.open("ab") as sink_log:
        resumed = subprocess.Popen(command, stdout=sink_log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(lines_of(output)) >= len(stream), "the rest of the events", timeout=30)
    finally:
        resumed.send_signal(signal.SIGTERM)
        resumed.wait(timeout=15)
    assert Counter(event["message"] for event in lines_of(output)) == Counter(dict.fromkeys(stream, 1))


def test_a_jsonl_path_that_is_a_pipe_fails_when_its_reader_leaves(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    delivery = Delivery(build_sink(f"jsonl:{fifo}"), sleep=lambda _: None)
    os.close(reader)  # the reader leaves: shipper must not be reading its own output and block
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked writing to a pipe without a reader"))
    signal.alarm(10)
    try:
        statuses = deliver(delivery, batch(0, 2000))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert set(statuses.values()) == {Status.NOT_DELIVERED}


def test_a_failed_write_after_someone_truncated_the_file_does_not_regrow_it(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    delivery = Delivery(JsonLinesFileSink(str(path)), sleep=lambda _: None)
    deliver(delivery, batch(0, 50))
    os.truncate(path, 0)  # copytruncate log rotation
    with failing_writes(path, 100, "limit"):
        assert set(deliver(delivery, batch(1, 50)).values()) == {Status.NOT_DELIVERED}
    assert path.read_bytes() == b""


def test_a_directory_sink_on_a_full_disk_leaves_the_batch_not_delivered_and_no_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    dead = ScriptedSink(name="dead letter")
    delivery = Delivery(DirectorySink(str(tmp_path / "out")), sleep=lambda _: None, dead_letter=Delivery(dead))
    with failing_writes(tmp_path / "out", 100, "limit"):
        assert set(deliver(delivery, batch(0, 200)).values()) == {Status.NOT_DELIVERED}
    assert os.listdir(tmp_path / "out") == [] and dead.taken == []
