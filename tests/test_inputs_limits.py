"""The message limit is one rule for every input format: a message over it, in bytes of UTF-8, is a
reject for that event alone (dead-lettered, `oversized_event`) and the events after it go through."""

from __future__ import annotations

import base64
import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.classify import MAX_MESSAGE_CHARS
from shipper.cli import EXIT_INCOMPLETE, EXIT_OK
from shipper.config import build_router, merge_cli
from shipper.inputs import FORMATS, ReadOptions
from shipper.inputs.readers import _csv_quote_open
from shipper.runner import RunOptions, run

from exports import (
    export_objects,
    filter_log_events,
    firehose_object,
    get_log_events,
    insights_csv,
    insights_results,
    ndjson,
    sam_logs,
    tail,
)
from generate import FLEET, Stream, document, gzip_json
from helpers import kinesis_event
from run_helpers import run as run_cli
from run_helpers import write

LIMIT = 3000
"""A small message limit, so that each example is quick; the decision does not depend on its value."""
START_MS = 1716222585000
SPEC = FLEET[0]
STREAM_NAME = "2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c"


def _stream(messages: list[str]) -> Stream:
    events = [(START_MS + 1000 * number, message) for number, message in enumerate(messages)]
    return Stream(SPEC, STREAM_NAME, "k", events)


def _export(s: Stream) -> bytes:
    (body,) = (data for key, data in export_objects([s], "x").items() if key.endswith(".gz"))
    return body


WRITERS: dict[str, Any] = {
    "filter-log-events": lambda s: filter_log_events([s]),
    "get-log-events": get_log_events,
    "insights": lambda s: insights_results([s]),
    "insights-csv": lambda s: insights_csv([s]),
    "ndjson": lambda s: ndjson([s]),
    "tail": lambda s: tail([s]),
    "tail-short": lambda s: tail([s], "short"),
    "sam-logs": lambda s: sam_logs([s]),
    "export": _export,
    "text": lambda s: "".join(f"{message}\n" for _, message in s.events).encode(),
    "firehose": lambda s: firehose_object([s])[0],
    "cwl-json": lambda s: orjson.dumps(document(s, 0, len(s.events), 0)) + b"\n",
    "kinesis": lambda s: orjson.dumps(kinesis_event([gzip_json(document(s, 0, len(s.events), 0))])),
    "awslogs": lambda s: orjson.dumps(
        {"awslogs": {"data": base64.b64encode(gzip_json(document(s, 0, len(s.events), 0))).decode()}}
    ),
}


def test_every_format_is_written_here():
    assert set(WRITERS) == set(FORMATS)


def _shipped(tmp_path: Path, name: str, data: bytes, limit: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Run one input through `shipper run`'s path: the messages delivered and the dead letters."""
    path = write(tmp_path / "aws" / "lambda" / SPEC.name / f"{name}.in", data)
    output, dead = tmp_path / f"{name}.out", tmp_path / f"{name}.dead"
    router = build_router(merge_cli(None, sinks=[f"jsonl:{output}"], dead_letter=f"jsonl:{dead}"))
    options = RunOptions(ReadOptions(format=name, max_message_chars=limit), quiet=True)
    run([str(path)], router, options)
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()] if output.exists() else []
    letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()] if dead.exists() else []
    return [event.get("message") for event in events], letters


def _message(unit: str, size: int) -> str:
    """A message of exactly `size` bytes of UTF-8, mostly `unit` (one to four bytes a character)."""
    width = len(unit.encode())
    body = unit * ((size - 8) // width)
    return "m" + body + "z" * (size - 1 - len(body.encode()))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    unit=st.sampled_from(["a", "é", "€", "😀", "\x01"]),
    offset=st.sampled_from([-4, -1, 0, 1, 2, 3]),
)
def test_a_message_just_under_at_or_over_the_limit_is_decided_alike_in_every_format(tmp_path, unit, offset):
    message = _message(unit, LIMIT + offset)
    s = _stream(["marker before", message, "marker after"])
    here = Path(tempfile.mkdtemp(dir=tmp_path))
    for name, writer in WRITERS.items():
        delivered, letters = _shipped(here, name, writer(s), LIMIT)
        assert "marker before" in delivered and "marker after" in delivered, name  # the rest goes through
        oversized = [letter for letter in letters if letter.get("code") == "oversized_event"]
        if offset <= 0:
            assert message in delivered and not letters, (name, letters)
        else:
            assert message not in delivered and len(oversized) == len(letters) == 1, (name, letters)


_STREAMED_JSON = ("filter-log-events", "get-log-events", "insights", "cwl-json")


@pytest.mark.parametrize(("unit", "offset"), [("😀", 0), ("\x01", 0), ("a", 1)])
def test_at_the_real_limit_every_format_decides_alike_and_goes_on(tmp_path, unit, offset):
    """1 MiB: the CSV field limit, NDJSON's line bound and the text line end are all past."""
    message = _message(unit, MAX_MESSAGE_CHARS + offset)
    s = _stream(["marker before", message, "marker after"])
    for name, writer in WRITERS.items():
        if unit == "\x01" and name in _STREAMED_JSON:
            continue  # a million \u0001 escapes take ijson seconds; the small limit above covers these
        delivered, letters = _shipped(tmp_path, name, writer(s), MAX_MESSAGE_CHARS)
        assert delivered[:1] == ["marker before"] and delivered[-1:] == ["marker after"], name
        if offset <= 0:
            assert message in delivered and not letters, (name, letters)
        else:
            assert message not in delivered and [letter["code"] for letter in letters] == ["oversized_event"], name


def test_a_long_csv_message_goes_through_and_an_unclosed_quote_is_named(tmp_path, capsys):
    long = "x" * 200_000
    rows = '@timestamp,@message\n2024-05-20 16:29:45.000,first\n2024-05-20 16:29:46.000,"' + long + '"\n'
    rows += '2024-05-20 16:29:47.000,"a ""quoted"" word\nover two lines"\n2024-05-20 16:29:48.000,last\n'
    status, events = run_cli(tmp_path, str(write(tmp_path / "aws/lambda/orders-api/q.csv", rows.encode())))
    assert status == EXIT_OK
    assert [e["message"] for e in events] == ["first", long, 'a "quoted" word\nover two lines', "last"]

    broken = '@timestamp,@message\n2024-05-20 16:29:45.000,"never closed\n2024-05-20 16:29:46.000,next\n'
    status, events = run_cli(tmp_path, str(write(tmp_path / "aws/lambda/orders-api/b.csv", broken.encode())))
    assert status == EXIT_INCOMPLETE and events == []
    assert "b.csv line 2: a quoted field is not closed before the end of the input" in capsys.readouterr().err


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab,"\n', max_size=40).map(lambda text: text + "\n"))
def test_csv_records_are_split_where_the_csv_module_ends_them(text):
    """Records are cut at line ends outside quoted fields, quotes inside unquoted fields being data."""
    records, record, quoted = [], "", False
    for line in io.StringIO(text, newline="").readlines():
        record += line
        quoted = _csv_quote_open(line, quoted)
        if not quoted:
            records.append(record)
            record = ""
    if record:
        records.append(record)
    split = [row for each in records for row in csv.reader([each])]
    assert split == list(csv.reader(io.StringIO(text, newline="")))
