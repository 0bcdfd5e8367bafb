"""SIGTERM and Ctrl-C stop `shipper run` and `shipper consume` within a second or two, even while a
sink waits out a 60 s Retry-After: the waiting batch is reported not delivered, nothing more is sent,
and the summary is printed as usual. Real processes against a loopback server answering 429."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from test_consume import STREAM, put_orders
from test_http_sink import Endpoint, serve

from shipper.delivery import Delivery, RetryPolicy, Status
from shipper.runner import EXIT_INTERRUPTED
from shipper.stopping import grace_deadline, interruptible_sleep
from shipper.testing import ScriptedSink, fail


@pytest.fixture
def throttling() -> Iterator[tuple[Endpoint, str]]:
    """A destination that answers every POST 429 with Retry-After: 60."""
    for endpoint, url in serve():
        endpoint.plan.extend(["429-long"] * 100)
        yield endpoint, url


def _start(tmp_path: Path, *arguments: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(
        [sys.executable, "-m", "shipper.cli", *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ, cwd=tmp_path,
    )  # fmt: skip


def _stop_while_waiting(process: subprocess.Popen[str], endpoint: Endpoint, signum: int) -> tuple[float, str]:
    """Once the first batch was throttled, send `signum`; (seconds to exit, stderr)."""
    deadline = time.monotonic() + 30
    while not endpoint.requests:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    time.sleep(0.3)  # now in the 60 s wait
    process.send_signal(signum)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    return time.monotonic() - sent, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_shipper_run_stops_within_a_second_during_a_retry_after_wait(
    throttling: tuple[Endpoint, str], tmp_path: Path, signum: int
) -> None:
    endpoint, url = throttling
    (tmp_path / "input.log").write_text("".join(f"line {n}\n" for n in range(50)))
    process = _start(tmp_path, "run", "input.log", "--log-group", "/aws/lambda/f", "--sink", f"{url}/ingest",
                     "--batch-max-wait-s", "0", "--retry-after-max-s", "300")  # fmt: skip
    seconds, stderr = _stop_while_waiting(process, endpoint, signum)
    assert seconds < 2.5, stderr
    assert process.returncode == EXIT_INTERRUPTED
    assert endpoint.stored == Counter()
    assert "sink http: 0 sent" in stderr
    assert "50 not delivered" in stderr
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_shipper_consume_stops_within_a_second_during_a_retry_after_wait(
    aws: str, throttling: tuple[Endpoint, str], tmp_path: Path
) -> None:
    endpoint, url = throttling
    kinesis = boto3.client("kinesis", endpoint_url=aws)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    put_orders(kinesis, range(3))
    process = _start(tmp_path, "consume", "--stream", STREAM, "--endpoint-url", aws, "--checkpoint-dir", "cp",
                     "--sink", f"{url}/ingest", "--idle-s", "0.2")  # fmt: skip
    seconds, stderr = _stop_while_waiting(process, endpoint, signal.SIGTERM)
    assert seconds < 2.5, stderr
    assert process.returncode == 0, stderr
    assert endpoint.stored == Counter()
    assert "not delivered" in stderr and "stopped; checkpoints in" in stderr
    assert not list((tmp_path / "cp").glob("*.json"))  # nothing checkpointed: it is all read again next time


def test_shipper_run_in_process_gives_the_signal_handlers_back(tmp_path: Path) -> None:
    """A program (or test runner) that calls the CLI keeps its own Ctrl-C handling afterwards."""
    from shipper.cli import main

    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    (tmp_path / "input.log").write_text("one line\n")
    assert main(["run", str(tmp_path / "input.log"), "--log-group", "/aws/lambda/f", "--sink", "null", "--quiet"]) == 0
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_stop_during_a_retry_wait_sends_no_retry_though_the_grace_to_flush_is_left() -> None:
    """The 5 s left to flush after a stop are for what is buffered, not for hitting a throttling server again."""
    stop = threading.Event()
    sink = ScriptedSink(fail(retryable=True, retry_after=2.0))
    delivery = Delivery(sink, retry=RetryPolicy(3, 0.1, 2.0), sleep=interruptible_sleep(stop))
    delivery.add({"event_id": "e1", "type": "log"}, "origin-1")
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()
    [settled] = delivery.flush(grace_deadline(stop))
    timer.join()
    assert time.monotonic() - started < 1.5
    assert settled.status is Status.NOT_DELIVERED and "stopped before retrying" in (settled.reason or "")
    assert len(sink.batches) == 1 and not sink.delivered
