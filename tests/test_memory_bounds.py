"""Memory that must not grow with the input: the classifier's state, the report, a compressible batch.

Each test runs the real code in-process under tracemalloc and asserts the peak of what Python
allocated (not RSS, which the allocator and the test process blur) against a stated bound, or
against the same run over a quarter of the input.
"""

from __future__ import annotations

import base64
import gzip
import io
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from shipper import classify
from shipper.checkpoint import FileCheckpoints
from shipper.classify import Classifier
from shipper.config import build_router, load_config_from_env
from shipper.consume import Consumer, ShardState
from shipper.contract import EVENT_TYPES
from shipper.handler import KinesisHandler
from shipper.inputs import ReadOptions
from shipper.pipeline import Pipeline
from shipper.report import MAX_FUNCTIONS, FleetReport, Prices, render
from shipper.runner import RunOptions, run

from generate import build_corpus

MB = 1024 * 1024
UUID = "8f6c4d1e-{:04x}-4000-8000-{:012x}"


def peak_bytes(work: Callable[[], Any]) -> int:
    """The most memory Python held at once while `work` ran, above what it held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def document(stream: str, messages: list[str], group: str = "/aws/lambda/orders-api") -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 1716220800000 + i, "message": m} for i, m in enumerate(messages)],
    }


def test_request_state_is_bounded_and_stops_growing_once_full() -> None:
    """300,000 invocations each seen with a cold start: each request id is remembered, up to the bound."""
    classifier = Classifier()

    def requests(first: int) -> None:
        for n in range(first, first + 300_000):
            classifier._first_sighting(("orders-api", UUID.format(1, n)), "cold_start")

    tracemalloc.start()
    try:
        requests(0)
        first = tracemalloc.get_traced_memory()[1]
        requests(300_000)
        second = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first < 24 * MB
    assert second - first < 2 * MB  # full: each new request replaces an old one


def test_stream_state_is_bounded_by_count() -> None:
    classifier = Classifier()

    def streams() -> None:
        for n in range(300_000):
            state = classifier._stream_state("/aws/lambda/orders-api", f"2024/05/20/[$LATEST]{n:032x}")
            state.request_id = UUID.format(0, n)

    assert peak_bytes(streams) < 16 * MB


def test_stream_state_holds_no_long_text_from_the_logs() -> None:
    """A stream's state keeps its request in progress between documents, but never a long one."""
    long_id = "x" * 4000

    def streams() -> None:
        classifier = Classifier()
        for n in range(30_000):
            classifier.classify(document(f"{n:08d}", [f"START RequestId: {n}{long_id} Version: $LATEST"]), [], [])

    assert peak_bytes(streams) < 16 * MB


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(2, 16), keys=st.lists(st.integers(0, 40), max_size=300))
def test_the_classifiers_memory_keeps_the_keys_used_last_and_never_more_than_its_capacity(capacity, keys) -> None:
    """Eviction drops a whole generation (O(1), no scan over entries; its cost is measured in
    bench/bench_memory.py): at most `capacity` entries are held, and the `capacity // 2` keys used last are
    always among them."""
    recent: classify._Recent[int] = classify._Recent(capacity)
    used: list[int] = []
    for key in keys:
        if recent.get(key) is None:
            recent.put(key, key)
        used.append(key)
        assert len(recent.young) + len(recent.old) <= capacity
        last = list(dict.fromkeys(reversed(used)))[: capacity // 2]
        assert all(recent.young.get(k, recent.old.get(k)) == k for k in last)


def test_a_report_over_300000_functions_stays_small_and_its_totals_exact() -> None:
    report = FleetReport()
    count = 300_000
    invocation = {"type": "invocation", "duration_ms": 10.0, "billed_duration_ms": 11, "memory_size_mb": 128}
    error = {"type": "error", "error_type": "TypeError"}
    events = [invocation, error]

    def add() -> dict[str, Any]:
        for n in range(count):
            invocation["function"] = error["function"] = f"function-{n:06d}"
            report.add(events)
        return report.to_dict(Prices())

    result: dict[str, Any] = {}
    assert peak_bytes(lambda: result.update(add())) < 24 * MB
    rows = result["functions"]
    assert len(rows) == MAX_FUNCTIONS + 1
    other = rows[-1]
    assert other["folded_functions"] == result["functions_folded"] == 50_000
    assert other["folded_functions_at_least"]
    assert other["invocations"] == count - MAX_FUNCTIONS
    assert result["totals"]["invocations"] == result["totals"]["errors"] == count
    assert result["totals"]["billed_gb_seconds"] == pytest.approx(count * 0.011 * 128 / 1024)
    shown = io.StringIO()
    render(result, Console(file=shown, width=200))
    assert "other functions (at least 50,000 more)" in shown.getvalue()


def test_long_names_are_cut_in_the_report() -> None:
    report = FleetReport()
    name = "f" * 100_000
    report.add([{"type": "error", "function": name, "error_type": "E" * 100_000}])
    report.add([{"type": "metric", "function": name, "name": "m" * 100_000, "value": 1.0, "unit": "u" * 100_000}])
    data = report.to_dict(Prices())
    text = orjson.dumps(data)
    assert len(text) < 4000
    assert data["functions"][0]["function"].endswith("…")


# --- a compressible batch: what is held is one record, never the batch ------------------------------


def kinesis_records(count: int, line: str, lines: int) -> list[dict[str, Any]]:
    """Kinesis records each a small gzip of one document of `lines` copies of `line`."""
    body = orjson.dumps(document("2024/05/20/[$LATEST]a", [line] * lines))
    data = base64.b64encode(gzip.compress(body)).decode()
    return [
        {
            "eventSource": "aws:kinesis",
            "eventID": f"shardId-000000000000:{n:056d}",
            "kinesis": {"data": data, "sequenceNumber": f"{n:056d}", "partitionKey": "p"},
        }
        for n in range(count)
    ]


def bomb_records(count: int, inflated: int = 4 * MB) -> list[dict[str, Any]]:
    """Kinesis records each a small gzip of about `inflated` bytes of long log lines."""
    line = "INFO work done " + "x" * 4000
    return kinesis_records(count, line, inflated // len(line))


class Context:
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


SHELLS = ("handler", "run", "consume")


def ship(shell: str, records: list[dict[str, Any]], tmp_path: Path) -> Callable[[], Any]:
    """Shipping `records` (one Kinesis batch) to the null sink through the Lambda handler, `shipper run` over
    the saved event, or `shipper consume`'s delivery of a GetRecords batch."""
    if shell == "handler":
        handler = KinesisHandler.from_env({"SHIPPER_SINKS": "null"})
        event = {"Records": records}
        return lambda: handler(event, Context())
    router = build_router(load_config_from_env({"SHIPPER_SINKS": "null"}))
    if shell == "run":
        path = tmp_path / f"batch-{len(records)}.json"
        path.write_bytes(orjson.dumps({"Records": records}))
        return lambda: run([str(path)], router, RunOptions(read=ReadOptions(), quiet=True))
    checkpoints = FileCheckpoints(tmp_path / f"checkpoints-{len(records)}", "logs")
    consumer = Consumer(None, "logs", Pipeline(), router, checkpoints, threading.Event())
    shard = ShardState("shardId-000000000000", (), False)
    batch = [
        {"Data": base64.b64decode(record["kinesis"]["data"]), "SequenceNumber": record["kinesis"]["sequenceNumber"]}
        for record in records
    ]
    return lambda: consumer._deliver(shard, batch)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_compressible_batch_costs_one_record_not_the_batch(shell: str, tmp_path: Path) -> None:
    """Records go one at a time, each to the router before the next is decoded (consume too: a GetRecords
    batch is decoded a record at a time, as the handler's is)."""
    small = peak_bytes(ship(shell, bomb_records(4), tmp_path))
    large = peak_bytes(ship(shell, bomb_records(16), tmp_path))
    assert large - small < 6 * MB, (small, large)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_records_events_are_gone_before_the_next_record_is_decoded(shell: str, tmp_path: Path) -> None:
    """50,000 short lines make a record's events some 40 MB, far more than its bytes or a sink's batch: a
    second and third record must not find the first one's events still alive (the handler and consume held
    them through the next record, doubling the peak)."""
    one = peak_bytes(ship(shell, kinesis_records(1, "tick\n", 50_000), tmp_path))
    three = peak_bytes(ship(shell, kinesis_records(3, "tick\n", 50_000), tmp_path))
    assert three - one < 10 * MB, (one, three)


# --- an event's own size --------------------------------------------------------------------------------


def _rebuilt(value: dict[str, Any]) -> dict[str, Any]:
    """The same dict built key by key, as plain Python code builds it."""
    plain: dict[str, Any] = {}
    for key, item in value.items():
        plain[key] = item
    return plain


def _heavier_dicts(event: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The event and the dicts in it that cost more than plain ones. Not `fields`: that is the JSON line as
    orjson decoded it (its dicts store hashes too), the same dict both ways and cheaper kept than rebuilt."""
    found = [
        (key, sys.getsizeof(item), sys.getsizeof(_rebuilt(item)))
        for key, item in event.items()
        if isinstance(item, dict) and key != "fields"
    ]
    found.append(("", sys.getsizeof(event), sys.getsizeof(_rebuilt(event))))
    return [entry for entry in found if entry[1] > entry[2]]


def test_no_event_costs_more_memory_than_the_same_dict_built_plainly() -> None:
    """A batch holds its events as dicts, so their size is the run's peak. Compiled, a dict literal stores
    every key's hash in its key table, and events copied from one cost a third more than the pure-Python
    hot path's (632 bytes a log event, not 464): every type, compiled or not, must cost what a plain dict does."""
    pipeline = Pipeline()
    heavier: dict[str, list[tuple[str, int, int]]] = {}
    types = set()
    for kinesis_event in build_corpus(3000, seed=1).kinesis_events:
        for outcome in pipeline.process_kinesis_event(kinesis_event):
            for event in outcome.events:
                types.add(event["type"])
                if found := _heavier_dicts(event):
                    heavier.setdefault(event["type"], found)
    assert types == set(EVENT_TYPES)
    assert heavier == {}
