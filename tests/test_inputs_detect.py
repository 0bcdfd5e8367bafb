"""Recognising formats from their first bytes, and finding log groups and streams in paths."""

from __future__ import annotations

import gzip

import pytest

from shipper.inputs import FORMATS, detect, log_group_from_path, log_stream_from_path
from shipper.inputs.lines import export_head, iso_ms, short_head, tail_head, text_head

STREAM = "2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"Records": [{"kinesis": {"data": "H4sI', "kinesis"),
        (b'{"awslogs": {"data": "H4sI', "awslogs"),
        (b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g"', "cwl-json"),
        (b'{"owner":"1","messageType":"DATA_MESSAGE"}\n{"messageType"', "cwl-json"),
        (
            b'{\n    "events": [\n        {\n            "logStreamName": "s",\n            "timestamp": 1',
            "filter-log-events",
        ),
        (b'{"searchedLogStreams": [], "events": []}', "filter-log-events"),
        (b'{"events": [{"timestamp": 1559763003171, "message": "START", "ingestionTime": 1', "get-log-events"),
        (b'[{"logStreamName": "s", "timestamp": 1, "message": "m"}, {"logStr', "filter-log-events"),
        (b'{"status": "Complete", "results": [[{"field": "@timestamp", "value": "2024', "insights"),
        (b'[[{"field": "@timestamp", "value": "2024-05-20 16:29:45.009"}, {"field"', "insights"),
        (b'{"timestamp": 1716222585008, "message": "START RequestId: x"}\n{"timestamp"', "ndjson"),
        (b'\xef\xbb\xbf  {"timestamp": 1716222585008, "message": "m", "logStreamName": "s"}', "ndjson"),
        (b'{"time":"2024-05-20T16:29:45.009Z","type":"platform.start"}\n{"time":"2024', "text"),
        (f"2024-05-20T16:29:45.008000+00:00 {STREAM} START RequestId: x\n".encode(), "tail"),
        (f"\x1b[32m2024-05-20T16:29:45.008000+00:00\x1b[0m \x1b[36m{STREAM}\x1b[0m START\n".encode(), "tail"),
        (f"2024-05-20T16:29:45+00:00 {STREAM} \n{{\n".encode(), "tail"),
        (b"2024-05-20T16:29:45.008Z START RequestId: x Version: $LATEST\n", "export"),
        (b"1716222585008 START RequestId: x Version: $LATEST\n", "export"),
        (b"\n\n2024-05-20T16:29:45 [INFO]\t2024-05-20T16:29:45.009Z\tx\tprocessed\n", "tail-short"),
        (b'@timestamp,@message,@logStream\n"2024-05-20 16:29:45.009","hello",s\n', "insights-csv"),
        (b"[INFO]\t2024-05-20T16:29:45.009Z\tabc\tprocessed order 42\n", "text"),
        (b"2024-05-20T16:29:45.009Z\tabc\tINFO\tnode line\n", "text"),
        (b"[1, 2]", None),
        (b'{"unknown": "shape"}', None),
        (b"\x00\x01\x02binary", None),
        (b"\xff\xfe\xfa not utf-8", None),
    ],
)
def test_formats_are_recognised_from_the_head(head, expected):
    assert detect(head) == expected
    assert expected is None or expected in FORMATS


def test_a_head_cut_inside_a_multibyte_character_is_still_text():
    assert detect("2024-05-20T16:29:45.008Z café".encode()[:-1]) == "export"


@pytest.mark.parametrize(
    ("path", "group", "stream"),
    [
        ("exports/aws/lambda/orders-api.json", "/aws/lambda/orders-api", "orders-api"),
        (
            "logs/aws/lambda/orders-api/2024/05/20/[$LATEST]abc.json.gz",
            "/aws/lambda/orders-api",
            "2024/05/20/[$LATEST]abc",
        ),
        (
            "s3://bucket/exp/aws/lambda/orders-api/3f2a9c0e-5b8d-4e7f-9a1b-2c3d4e5f6a7b/2024/05/20/[$LATEST]abc/000001.gz",
            "/aws/lambda/orders-api",
            "2024/05/20/[$LATEST]abc",
        ),
        ("s3://bucket/task/2024-05-20-[$LATEST]abc/000000.gz", None, "2024/05/20/[$LATEST]abc"),
        (
            "s3://bucket/task/2024-05-20-image-resizer[$LATEST]abc/000000.gz",
            None,
            "2024/05/20/image-resizer[$LATEST]abc",
        ),
        ("tail-output.log", None, "tail-output"),
        (
            "firehose/2024/05/20/16/central-logs-1-2024-05-20-16-00-00-abc",
            None,
            "central-logs-1-2024-05-20-16-00-00-abc",
        ),
    ],
)
def test_log_group_and_stream_from_paths(path, group, stream):
    assert log_group_from_path(path) == group
    assert log_stream_from_path(path) == stream


def test_line_heads():
    assert tail_head(f"2024-05-20T16:29:45.009000+00:00 {STREAM} START x\n") == (1716222585009, STREAM, "START x\n")
    assert tail_head(f"2024-05-20T16:29:45+00:00 {STREAM} \n") == (1716222585000, STREAM, "\n")
    assert tail_head("Traceback (most recent call last):\n") is None
    assert export_head("2024-05-20T16:29:45.009Z REPORT RequestId: x\n") == (
        1716222585009,
        None,
        "REPORT RequestId: x\n",
    )
    assert export_head("1716222585009 END RequestId: x\n") == (1716222585009, None, "END RequestId: x\n")
    assert export_head("2024-05-20T16:29:45.009Z\tx\tINFO\tnode line\n") is None  # a Node line continues an event
    assert export_head("2024-13-45T16:29:45.009Z bad date\n") is None
    assert short_head("2024-05-20T16:29:45 [INFO] x\n") == (1716222585000, None, "[INFO] x\n")
    assert text_head('    File "/var/task/app.py", line 1\n') is None
    assert text_head("hello\n") == (None, None, "hello\n")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-05-20T16:29:45.009Z", 1716222585009),
        ("2024-05-20T16:29:45.008999+00:00", 1716222585009),  # tail's microseconds from a float, rounded
        ("2024-05-20 16:29:45.009", 1716222585009),  # Logs Insights, UTC
        ("2024-05-20T18:29:45.009+02:00", 1716222585009),
        ("2024-05-20T16:29:45", 1716222585000),
        ("not a time at all!!", None),
    ],
)
def test_iso_times_to_epoch_milliseconds(text, ms):
    assert iso_ms(text) == ms


def test_gzip_layers_are_peeled_before_recognising(tmp_path):
    from shipper.inputs import Input, Meter, ReadOptions, read_input

    body = b"2024-05-20T16:29:45.008Z START RequestId: x Version: $LATEST\n"
    path = tmp_path / "twice.gz"
    path.write_bytes(gzip.compress(gzip.compress(body)))
    opened = read_input(Input(str(path), path.stat().st_size, lambda: path.open("rb")), ReadOptions(), Meter())
    assert opened.format == "export"
    [batch] = list(opened.batches)
    assert batch.documents[0]["logEvents"] == [
        {"id": None, "timestamp": 1716222585008, "message": "START RequestId: x Version: $LATEST"}
    ]
