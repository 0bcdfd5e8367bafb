"""Hostile input to the decoder and classifier: every case ends bounded, as events or rejects with a reason."""

from __future__ import annotations

import time
import tracemalloc
import zlib

import orjson
import pytest

from shipper.decode import RawRecord, decode_record
from shipper.pipeline import Pipeline
from shipper.sinks.base import encode_ndjson

from helpers import classify_messages, cwl_document, gz


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """1 GiB of zeros as gzip: about 1 MB on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(1024)]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_a_gigabyte_bomb_is_rejected_in_bounded_memory_and_time(gigabyte_bomb):
    assert len(gigabyte_bomb) < 1_100_000
    tracemalloc.start()
    started = time.monotonic()
    decoded = decode_record(RawRecord(gigabyte_bomb, "9", "test"))
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    [reject] = decoded.rejects
    assert reject.code == "decompression_bomb"
    assert reject.raw == gigabyte_bomb  # kept whole for the dead letter
    assert peak < 80 * 1024 * 1024  # the 64 MiB cap plus slack, never the gigabyte
    assert elapsed < 10


def test_a_full_one_megabyte_event_is_classified_not_rejected():
    prefix = "[ERROR]\t2024-05-20T16:29:45.120Z\tr1\t"
    text = "x" * (1024 * 1024 - len(prefix) - 1)
    message = prefix + text + "\n"
    assert len(message) == 1024 * 1024
    started = time.monotonic()
    [event] = classify_messages([message])
    assert time.monotonic() - started < 2
    assert event["type"] == "log" and event["message"] == text


def test_deeply_nested_json_message_stays_a_log_line():
    message = "[" * 100_000 + "]" * 100_000
    [event] = classify_messages(["{" + message])
    assert event["type"] == "log" and event["fields"] is None


def test_nul_bytes_and_terminal_escapes_are_kept_but_never_written_raw():
    message = "user input: \x00\x1b[2J\x1b]0;pwned\x07 done"
    [event] = classify_messages([message])
    assert event["message"] == message
    line = encode_ndjson([event])
    assert b"\x1b" not in line and b"\x00" not in line and b"\x07" not in line
    assert orjson.loads(line)["message"] == message


def test_a_ten_thousand_tag_metric_line_stays_a_log_line():
    tags = ",".join(f"k{i}:v{i}" for i in range(10_000))
    [event] = classify_messages([f"page.views:1|c|#{tags}\n"])
    assert event["type"] == "log"


def test_a_record_of_many_tiny_events_is_processed_in_bounded_time():
    document = cwl_document(["x\n"] * 200_000)
    started = time.monotonic()
    [outcome] = Pipeline().process_records([RawRecord(gz(document), "1", "test")])
    assert len(outcome.events) == 200_000
    assert time.monotonic() - started < 20
