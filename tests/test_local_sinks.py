"""Sinks that write on this machine: the JSON-lines file (plain and gzip) and the directory sink."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import orjson
import pytest
from fake_sinks import events

from shipper.errors import ConfigError
from shipper.files import write_durably
from shipper.sinks import DirectorySink, JsonLinesFileSink, NullSink, StdoutSink, build_sink
from shipper.sinks.base import SinkError


def read_ndjson(data: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in data.splitlines()]


def test_gzip_jsonl_is_readable_after_each_batch_and_appends_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    sink = build_sink(f"jsonl:{path}")
    sink.send(events(2))
    sink.send(events(1, 2))
    # not yet closed: each batch is a complete gzip member on disk, readable to the end
    partial = gzip.decompress(path.read_bytes())
    assert read_ndjson(partial) == events(3)
    sink.close()

    again = build_sink(f"jsonl:{path}")
    again.send(events(2, 3))
    again.close()
    with gzip.open(path, "rb") as file:
        assert read_ndjson(file.read()) == events(5)


def test_plain_jsonl_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    for batch in (events(2), events(1, 2)):
        sink = build_sink(f"jsonl:{path}")
        sink.send(batch)
        assert read_ndjson(path.read_bytes())[-1] == batch[-1]  # flushed before close
        sink.close()
    assert read_ndjson(path.read_bytes()) == events(3)


def test_directory_sink_writes_one_complete_file_per_batch(tmp_path: Path) -> None:
    sink = build_sink(f"dir:{tmp_path}/dead")
    assert isinstance(sink, DirectorySink)
    sink.send(events(2))
    sink.send(events(1, 2))
    files = sorted(os.listdir(tmp_path / "dead"))
    assert len(files) == 2 and all(name.endswith(".ndjson") and not name.startswith(".") for name in files)
    assert [read_ndjson((tmp_path / "dead" / name).read_bytes()) for name in files] == [events(2), events(1, 2)]


def test_directory_sink_failure_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError) as raised:
        DirectorySink(str(blocker / "dead"))
    assert not raised.value.retryable
    sink = DirectorySink(str(tmp_path / "dead"))
    os.rmdir(tmp_path / "dead")
    with pytest.raises(SinkError, match="cannot write to a file in"):
        sink.send(events(1))


def test_stdout_and_null() -> None:
    stream = io.BytesIO()
    StdoutSink(stream).send(events(2))
    assert read_ndjson(stream.getvalue()) == events(2)
    assert isinstance(build_sink("stdout"), StdoutSink)
    assert isinstance(build_sink("null"), NullSink)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("jsonl", "needs a file"), ("dir:", "needs a directory"), ("stdout:x", "takes nothing after it"),
     ("nowhere", "unknown sink 'nowhere'")],
)  # fmt: skip
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_sink(spec)


def test_unwritable_jsonl_is_a_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="cannot open"):
        JsonLinesFileSink(str(tmp_path / "missing" / "x.ndjson"))


def test_a_durable_write_replaces_the_file_whole_and_leaves_nothing_behind_when_it_fails(tmp_path):
    target = tmp_path / "state.json"
    write_durably(target, b"first")
    write_durably(target, b"second")
    assert target.read_bytes() == b"second"
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    with pytest.raises(OSError):
        write_durably(blocked, b"cannot replace a directory")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-directory", "state.json"]
