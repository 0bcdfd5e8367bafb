"""`shipper run` reads every export format, and finds in each what the generator put there.

Fixtures are the simulated fleet's log streams (examples/exports.py) written in each format; the
ground truth was counted while generating them, never by reading the output.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.cli import EXIT_OK

from exports import (
    by_log_group,
    export_objects,
    filter_log_events,
    firehose_object,
    fleet,
    get_log_events,
    insights_csv,
    insights_results,
    ndjson,
    tail,
)
from generate import document, gzip_json, stream_truth
from run_helpers import assert_matches_truth, counts_by_function, run, write


@pytest.fixture(scope="module")
def streams_and_truth():
    return fleet(2500, seed=3)


def _per_group(directory: Path, streams, name: str, make) -> None:
    """One file per log group, named after it (so /aws/lambda/NAME is in the path)."""
    for group, members in by_log_group(streams).items():
        write(directory / f"{group.strip('/')}{name}", make(members))


def test_filter_log_events_json_per_log_group(tmp_path, streams_and_truth):
    streams, truth = streams_and_truth
    _per_group(tmp_path / "in", streams, ".json", filter_log_events)
    status, events = run(tmp_path, str(tmp_path / "in"), "--format", "filter-log-events")
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    # Stream names and event ids come from the data.
    assert {e["log_stream"] for e in events} == {s.name for s in streams}
    assert all(e["event_id"] and len(e["event_id"]) >= 50 for e in events)


def test_filter_log_events_compact_gzipped_and_recognised(tmp_path, streams_and_truth):
    streams, truth = streams_and_truth
    _per_group(tmp_path / "in", streams, ".json.gz", lambda m: gzip.compress(filter_log_events(m, indent=False)))
    status, events = run(tmp_path, str(tmp_path / "in"), "--report", str(tmp_path / "report.json"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    assert orjson.loads((tmp_path / "report.json").read_bytes())["run"]["formats"] == {"filter-log-events": 6}


def test_a_json_array_of_events_reads_like_filter_log_events(tmp_path, streams_and_truth):
    streams, truth = streams_and_truth
    _per_group(
        tmp_path / "in", streams, ".json", lambda m: json.dumps(json.loads(filter_log_events(m))["events"]).encode()
    )
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)


def test_get_log_events_takes_group_and_stream_from_the_path(tmp_path, streams_and_truth):
    streams, truth = streams_and_truth
    for s in streams:
        write(tmp_path / "in" / s.spec.group.strip("/") / f"{s.name}.json", get_log_events(s))
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    assert {e["log_stream"] for e in events} == {s.name for s in streams}
    assert {e["log_group"] for e in events if e["function"] == "orders-api"} == {"/aws/lambda/orders-api"}


@pytest.mark.parametrize(("style", "color"), [("detailed", True), ("detailed", False), ("json", False)])
def test_aws_logs_tail_detailed_and_json_with_multi_line_events(tmp_path, streams_and_truth, style, color):
    streams, truth = streams_and_truth
    _per_group(tmp_path / "in", streams, ".log", lambda m: tail(m, style, color=color))
    text = b"".join(p.read_bytes() for p in (tmp_path / "in").rglob("*.log"))
    assert (b"\x1b[32m" in text) is color
    assert b"\nXRAY TraceId: " in text and b"\nTraceback (most recent call last):" in text  # continuation lines
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    if style == "json":  # pretty-printed JSON messages were read back as the JSON they are
        fields = [e["fields"] for e in events if e["type"] == "log" and e["fields"]]
        assert fields and all(isinstance(f, dict) for f in fields)


def test_aws_logs_tail_short_of_one_function(tmp_path, streams_and_truth):
    """Short format has no stream names and whole seconds: invocations and their numbers still add up."""
    streams, truth = streams_and_truth
    members = by_log_group(streams)["/aws/lambda/checkout-web"]
    write(tmp_path / "aws" / "lambda" / "checkout-web.txt", tail(members, "short"))
    status, events = run(tmp_path, str(tmp_path / "aws"))
    assert status == EXIT_OK
    only = {"functions": {"checkout-web": truth["functions"]["checkout-web"]}}
    assert_matches_truth(events, only, keys=("invocations", "cold_starts", "timeouts", "metric_values", "log_lines"))


@pytest.mark.parametrize(("epoch_ms", "dashed"), [(False, False), (True, True)])
def test_create_export_task_objects(tmp_path, streams_and_truth, epoch_ms, dashed):
    streams, truth = streams_and_truth
    for group, members in by_log_group(streams).items():
        objects = export_objects(
            members, f"exports/{group.strip('/')}", epoch_ms=epoch_ms, dashed=dashed, events_per_object=40
        )
        for key, body in objects.items():
            write(tmp_path / "in" / key, body)
    assert len(list((tmp_path / "in").rglob("aws-logs-write-test"))) == 6
    assert len(list((tmp_path / "in").rglob("000001.gz"))) > 0  # streams spill over several objects
    status, events = run(tmp_path, str(tmp_path / "in"), "--report", str(tmp_path / "report.json"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    assert {e["log_stream"] for e in events} == {s.name for s in streams}  # dashes read back as slashes
    objects = len(list((tmp_path / "in").rglob("*.gz")))
    assert orjson.loads((tmp_path / "report.json").read_bytes())["run"]["formats"] == {"export": objects}


@pytest.mark.parametrize("double_gzip", [False, True])
def test_firehose_objects_of_concatenated_gzip_members(tmp_path, streams_and_truth, double_gzip):
    streams, truth = streams_and_truth
    body, controls = firehose_object(streams, seed=5, double_gzip=double_gzip)
    path = write(tmp_path / "2024" / "05" / "20" / "16" / "central-logs-1-2024-05-20-16-01-02-abc", body)
    status, events = run(tmp_path, str(path), "--report", str(tmp_path / "report.json"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    facts = orjson.loads((tmp_path / "report.json").read_bytes())["run"]
    assert facts["formats"] == {"firehose": 1}
    assert facts["control_messages_skipped"] == controls == 1
    assert facts["records"] >= len(streams) + controls  # one record per gzip member, every stream in some


def test_ndjson_of_log_events_plain_and_gzipped(tmp_path, streams_and_truth):
    streams, truth = streams_and_truth
    groups = list(by_log_group(streams).values())
    write(tmp_path / "in" / "a.ndjson", ndjson([s for group in groups[:3] for s in group]))
    write(tmp_path / "in" / "b.ndjson.gz", gzip.compress(ndjson([s for group in groups[3:] for s in group])))
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)


@pytest.mark.parametrize(("name", "make"), [(".json", insights_results), (".csv", insights_csv)])
def test_logs_insights_results_json_and_csv(tmp_path, streams_and_truth, name, make):
    streams, truth = streams_and_truth
    write(tmp_path / f"query{name}", make(streams))
    status, events = run(tmp_path, str(tmp_path / f"query{name}"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)
    assert {e["account"] for e in events if e["function"] == "image-resizer"} == {"210987654321"}  # from @log


def test_subscription_documents_one_per_line(tmp_path, streams_and_truth):
    """Firehose with decompression on writes the documents themselves."""
    streams, truth = streams_and_truth
    lines = b"".join(orjson.dumps(document(s, 0, len(s.events), 0)) + b"\n" for s in streams)
    write(tmp_path / "decompressed.json", lines)
    status, events = run(tmp_path, str(tmp_path / "decompressed.json"))
    assert status == EXIT_OK
    assert_matches_truth(events, truth)


def test_kinesis_and_awslogs_events_still_read(tmp_path, streams_and_truth):
    streams, _ = streams_and_truth
    import base64

    from helpers import kinesis_event

    first, second = streams[0], streams[1]
    write(
        tmp_path / "in" / "k.json", orjson.dumps(kinesis_event([gzip_json(document(first, 0, len(first.events), 0))]))
    )
    data = base64.b64encode(gzip_json(document(second, 0, len(second.events), 0))).decode()
    write(tmp_path / "in" / "d.json.gz", gzip.compress(orjson.dumps({"awslogs": {"data": data}})))
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_OK
    assert_matches_truth(events, stream_truth([first, second]))


def test_plain_text_lines_with_tracebacks_continued(tmp_path):
    lines = (
        "START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST\n"
        "[INFO]\t2024-05-20T16:29:45.009Z\t8f507cfc-xmpl-4697-b07a-ac58fc914c95\tprocessed order 42\n"
        "[ERROR] KeyError: 'sku'\n"
        "Traceback (most recent call last):\n"
        '  File "/var/task/app.py", line 12, in handler\n'
        "    sku = event['sku']\n"
        "END RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\n"
        "REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB\t\n"
    )
    write(tmp_path / "aws" / "lambda" / "orders-api" / "notes.txt", lines.encode())
    status, events = run(tmp_path, str(tmp_path / "aws"))
    assert status == EXIT_OK
    logs = [e for e in events if e["type"] == "log"]
    assert next(e["message"] for e in logs) == "processed order 42"
    assert logs[0]["timestamp"] == 1716222585009  # the line's own time
    assert {e["function"] for e in events} == {"orders-api"}
    [invocation] = [e for e in events if e["type"] == "invocation"]
    assert invocation["duration_ms"] == 12.5 and invocation["request_id"] == "8f507cfc-xmpl-4697-b07a-ac58fc914c95"
    # Traceback frames (indented) stayed with their line; "Traceback" itself is a line of its own.
    assert counts_by_function(events)["orders-api"]["log"] == 3


def test_a_large_kinesis_event_file_is_read_in_several_batches(tmp_path, streams_and_truth, monkeypatch):
    from shipper.inputs import readers

    from helpers import kinesis_event

    monkeypatch.setattr(readers, "KINESIS_RECORDS_PER_BATCH", 3)
    streams, _ = streams_and_truth
    chosen = streams[:8]
    payloads = [gzip_json(document(s, 0, len(s.events), 0)) for s in chosen]
    write(tmp_path / "big.json", orjson.dumps(kinesis_event(payloads)))
    status, events = run(tmp_path, str(tmp_path / "big.json"), "--report", str(tmp_path / "report.json"))
    assert status == EXIT_OK
    assert_matches_truth(events, stream_truth(chosen))
    assert orjson.loads((tmp_path / "report.json").read_bytes())["run"]["records"] == 8


_ENTRY = st.one_of(
    st.builds(
        lambda data, seq, note: {"kinesis": {"data": data, "sequenceNumber": seq}, "eventID": note},
        st.sampled_from(["H4sIAAAAAAAA/6uuBQBDv6ajAgAAAA==", "bm90IGd6aXA=", "not base64!", ""]),
        st.text(max_size=12),
        st.text(max_size=12),
    ),
    st.dictionaries(st.sampled_from(["kinesis", "eventID", "Records"]), st.integers(-(2**63), 2**63 - 1), max_size=2),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def kinesis_event_files(draw: st.DrawFn) -> bytes:
    """Saved Lambda Kinesis events, plain and hostile: escapes and brackets in strings, more keys, a second
    `Records` key, trailing bytes, cut short."""
    entries = draw(st.lists(_ENTRY, max_size=6))
    ascii_only = draw(st.booleans())
    text = json.dumps(entries, ensure_ascii=ascii_only)
    before = draw(st.sampled_from(["", '"other": 1, ', '"Records": 5, ', '"Records": [{"kinesis": {}}], ']))
    after = draw(st.sampled_from(["", ', "Records": []', ', "more": "a [ b"', ', "x": "\\u005b"']))
    body = ("{" + before + '"Records": ' + text + after + "}" + draw(st.sampled_from(["", "\n", " {}", "]"]))).encode()
    cut = draw(st.one_of(st.none(), st.integers(0, len(body))))
    return body if cut is None else body[:cut]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=kinesis_event_files(), compressed=st.booleans(), cut=st.integers(0, 8))
def test_a_kinesis_event_file_read_whole_gives_what_streaming_it_gives(
    tmp_path: Path, body: bytes, compressed: bool, cut: int
):
    """A file of a Lambda event's size is parsed whole, anything else streamed: for any such file (valid or
    not, gzip'd or not, its gzip trailer cut short by `cut` bytes), both give the same batches, records and
    rejects, reasons included."""
    from unittest import mock

    from shipper.inputs import readers
    from shipper.inputs.sources import Input
    from shipper.inputs.streams import Meter

    path = tmp_path / ("event.json.gz" if compressed else "event.json")
    stored = gzip.compress(body) if compressed else body
    path.write_bytes(stored[: len(stored) - cut] if compressed else stored)

    def batches() -> list[readers.Batch]:
        source = Input(str(path), len(body), lambda: path.open("rb"))
        return list(readers.read_input(source, readers.ReadOptions(format="kinesis"), Meter()).batches)

    whole = batches()
    with mock.patch.object(readers, "WHOLE_EVENT_BYTES", 0):
        streamed = batches()
    for batch in whole + streamed:  # what the JSON parser quotes of its buffer depends on how it was read
        batch.rejects = [
            dataclasses.replace(j, reason=re.sub(r" near (['\"]).*\1 \(", " (", j.reason, flags=re.S))
            for j in batch.rejects
        ]
    assert whole == streamed
    assert all(reject.code != "not_json" or "(; " not in reject.reason for b in whole for reject in b.rejects)


def _read_kinesis_file(path: Path) -> list:
    from shipper.inputs import readers
    from shipper.inputs.sources import Input
    from shipper.inputs.streams import Meter

    source = Input(str(path), path.stat().st_size, lambda: path.open("rb"))
    return list(readers.read_input(source, readers.ReadOptions(format="kinesis"), Meter()).batches)


def test_extreme_numbers_and_sizes_in_a_saved_kinesis_event(tmp_path: Path):
    """Numbers no event needs: an integer past 64 bits is read (as a float) with every record; a number past
    a double's range stops the input there with a reason, the records before it kept. A file larger than any
    Lambda event streams and loses no record."""
    from helpers import kinesis_event

    good = kinesis_event([gzip_json({"messageType": "DATA_MESSAGE", "logEvents": []})] * 3)
    body = orjson.dumps(good)
    huge = body.replace(b'"kinesis":{', b'"kinesis":{"approximateArrivalTimestamp":123456789012345678901234567890,')
    (tmp_path / "huge.json").write_bytes(huge)
    [batch] = _read_kinesis_file(tmp_path / "huge.json")
    assert len(batch.records) == 3 and not batch.rejects

    entries = orjson.loads(body)["Records"]
    infinite = b'{"Records":[' + orjson.dumps(entries[0]) + b',{"kinesis":{"x":1e400}}]}'
    (tmp_path / "infinite.json").write_bytes(infinite)
    kept, stopped = _read_kinesis_file(tmp_path / "infinite.json")
    assert len(kept.records) == 1
    [reject] = stopped.rejects
    assert (
        reject.code == "not_json"
        and "overflow" in reject.reason
        and "the rest of this input is skipped" in reject.reason
    )

    from shipper.inputs import readers

    many = kinesis_event([b"x" * 1000] * (readers.WHOLE_EVENT_BYTES // 1300 + 10))
    (tmp_path / "large.json").write_bytes(orjson.dumps(many))
    assert (tmp_path / "large.json").stat().st_size > readers.WHOLE_EVENT_BYTES
    batches = _read_kinesis_file(tmp_path / "large.json")
    assert sum(len(b.records) for b in batches) == len(many["Records"]) and not any(b.rejects for b in batches)
