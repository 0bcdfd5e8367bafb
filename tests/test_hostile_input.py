"""Hostile input to the decoder and classifier: every case ends bounded, as events or rejects with a reason."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import orjson
import pytest

from shipper.decode import DEFAULT_MAX_DECOMPRESSED_BYTES, RawRecord, decode_record
from shipper.handler import KinesisHandler
from shipper.pipeline import Pipeline
from shipper.runner import EXIT_INCOMPLETE
from shipper.sinks.base import encode_ndjson

from helpers import classify_messages, cwl_document, gz, kinesis_event, kpl_aggregate


class _Context:
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


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


# --- a KPL aggregate whose subrecords together inflate past the cap --------------------------------


def _kpl_bomb() -> tuple[bytes, list[bytes], int]:
    """One Kinesis record of 70 KPL subrecords, each a gzip that inflates to about 1 MiB of log events:
    (record, subrecords, how many fit within the 64 MiB cap)."""
    line = "INFO " + "x" * (256 * 1024 - 6) + "\n"
    subrecords = []
    for index in range(70):
        body = orjson.dumps(cwl_document([line] * 4, log_stream=f"2024/05/20/[$LATEST]s{index:02d}"))
        subrecords.append(gzip.compress(body))
    record = kpl_aggregate(subrecords)
    assert len(record) < 200_000
    return record, subrecords, DEFAULT_MAX_DECOMPRESSED_BYTES // len(body)


def test_a_kpl_aggregate_inflating_past_the_cap_is_cut_there_in_the_handler_and_in_run(tmp_path: Path) -> None:
    """The cap bounds a record, not each of its subrecords: past 64 MiB in all, the rest of the aggregate
    is dead-lettered, subrecord by subrecord, and the batch is not failed (it would be retried forever)."""
    record, subrecords, fit = _kpl_bomb()
    event = kinesis_event([record])

    handler = KinesisHandler.from_env({"SHIPPER_SINKS": "null", "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dl'}"})
    assert handler(event, _Context()) == {"batchItemFailures": []}
    assert handler.router.stats()["sinks"]["null"]["sent_events"] == 4 * fit
    entries = [orjson.loads(line) for path in (tmp_path / "dl").glob("*.ndjson") for line in path.open()]
    assert [entry["code"] for entry in entries] == ["decompression_bomb"] * (70 - fit)
    assert {base64.b64decode(entry["raw_base64"]) for entry in entries} == set(subrecords[fit:])
    assert "67,108,864" in entries[0]["reason"] and "KPL subrecords before this one" in entries[0]["reason"]

    saved = tmp_path / "kinesis-event.json"
    saved.write_bytes(orjson.dumps(event))
    dead_letter, report = f"dir:{tmp_path / 'run-dl'}", str(tmp_path / "report.json")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipper.cli",
            "run",
            str(saved),
            "--sink",
            "null",
            "--dead-letter",
            dead_letter,
            "--report",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == EXIT_INCOMPLETE, completed.stderr  # input problems, told apart from delivery's
    assert "decompression bomb" in completed.stderr
    run = orjson.loads((tmp_path / "report.json").read_bytes())["run"]
    assert run["log_events"] == 4 * fit
    assert sum(1 for path in (tmp_path / "run-dl").glob("*.ndjson") for _ in path.open()) == 70 - fit


# --- a record of many small log events: rejected by its cost before it is parsed ------------------


def _small_events_record(events: int) -> bytes:
    """`events` log events of a few bytes in one gzip record, ids and timestamps repeated: about 0.1% of its
    inflated size on the wire."""
    log_event = orjson.dumps({"id": "1", "timestamp": 1716222585000, "message": "tick\n"})
    body = (
        b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/ticks",'
        b'"logStream":"2024/05/20/[$LATEST]a","subscriptionFilters":[],"logEvents":['
        + b",".join([log_event] * events)
        + b"]}"
    )
    return gzip.compress(body, compresslevel=9)


def test_a_record_of_many_small_events_is_rejected_before_it_is_parsed_in_the_handler_and_in_run(
    tmp_path: Path,
) -> None:
    """600,000 events in 40 MB inflated would take over 500 MB once parsed and classified: the record is
    dead-lettered whole, in bounded memory, the batch not failed, and the records beside it go through."""
    bomb = _small_events_record(600_000)
    assert len(bomb) < 200_000
    event = kinesis_event([gz(cwl_document(["before\n"])), bomb, gz(cwl_document(["after\n"]))])

    handler = KinesisHandler.from_env({"SHIPPER_SINKS": "null", "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dl'}"})
    tracemalloc.start()
    response = handler(event, _Context())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response == {"batchItemFailures": []}
    assert handler.router.stats()["sinks"]["null"]["sent_events"] == 2
    [entry] = [orjson.loads(line) for path in (tmp_path / "dl").glob("*.ndjson") for line in path.open()]
    assert entry["code"] == "decompression_bomb" and base64.b64decode(entry["raw_base64"]) == bomb
    assert "about 600,000 log events" in entry["reason"]
    assert peak < 150 * 1024 * 1024  # the inflated bytes and their count, never the parsed events

    saved = tmp_path / "kinesis-event.json"
    saved.write_bytes(orjson.dumps(event))
    report = str(tmp_path / "report.json")
    completed = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "run", str(saved), "--sink", "null", "--report", report],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == EXIT_INCOMPLETE, completed.stderr
    assert "about 600,000 log events" in completed.stderr
    assert orjson.loads((tmp_path / "report.json").read_bytes())["run"]["log_events"] == 2
