"""When input is bad: each problem names the input and where in it, the rest is processed, the exit status says so."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shipper.cli import EXIT_INCOMPLETE, EXIT_OK, main

from exports import by_log_group, export_objects, filter_log_events, firehose_object, fleet, ndjson, tail
from run_helpers import assert_matches_truth, run, write

ROOT = Path(__file__).resolve().parent.parent
SHIPPER_RUN = [sys.executable, "-m", "shipper.cli", "run"]
STREAM = "2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c"
REPORT = (
    "REPORT RequestId: {id}\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB\t"
)


def _orders_api():
    streams, _ = fleet(400, seed=11)
    return by_log_group(streams)["/aws/lambda/orders-api"]


def test_a_truncated_gzip_is_reported_with_file_and_position_and_the_rest_goes_on(tmp_path, capsys):
    members = _orders_api()
    objects = export_objects(members, "x/aws/lambda/orders-api", events_per_object=10_000)
    keys = sorted(key for key in objects if key.endswith(".gz"))
    for key in keys:
        write(tmp_path / key, objects[key])
    cut = tmp_path / keys[0]
    cut.write_bytes(objects[keys[0]][: len(objects[keys[0]]) * 2 // 3])
    status, events = run(tmp_path, str(tmp_path / "x"))
    assert status == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert f"{cut}: gzip stream ends early at byte {cut.stat().st_size:,} (line " in err
    assert "1 rejected" in err
    # Every stream is there: the others in full, the cut one up to where its gzip stream ends.
    assert {e["log_stream"] for e in events} == {s.name for s in members}
    assert len(keys) == len(members) > 1


def test_malformed_json_is_reported_with_the_event_reached_and_the_next_file_is_read(tmp_path, capsys):
    members = _orders_api()
    good = filter_log_events(members)
    middle = good.index(b'"timestamp": ', len(good) // 2)
    bad = good[:middle] + b'"timestamp" ' + good[middle + len(b'"timestamp": ') :]  # a colon missing
    write(tmp_path / "in" / "aws" / "lambda" / "orders-api" / "a-bad.json", bad)
    write(tmp_path / "in" / "aws" / "lambda" / "orders-api" / "b-good.json", good)
    status, _ = run(tmp_path, str(tmp_path / "in"), "--report", str(tmp_path / "report.json"))
    assert status == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "a-bad.json: malformed JSON:" in err and "(event " in err and "the parser had read" in err
    assert "the rest of this input is skipped" in err
    # The good file in full, and the bad one up to the event before the damaged one.
    facts = orjson.loads((tmp_path / "report.json").read_bytes())["run"]
    assert facts["log_events"] == sum(len(s.events) for s in members) + good[:middle].count(b'"timestamp": ')
    assert facts["rejects"] == {"not_json": 1}


def test_bad_ndjson_lines_are_rejects_and_the_other_lines_are_read(tmp_path, capsys):
    lines = ndjson(_orders_api()).splitlines(keepends=True)
    lines.insert(3, b"{not json\n")
    write(tmp_path / "aws" / "lambda" / "orders-api.ndjson", b"".join(lines))
    status, events = run(tmp_path, str(tmp_path / "aws"))
    assert status == EXIT_INCOMPLETE
    assert "orders-api.ndjson line 4 is not JSON" in capsys.readouterr().err
    assert len([e for e in events if e["type"] == "invocation"]) > 0


def test_firehose_member_problems_name_the_member_and_its_offset(tmp_path, capsys):
    members = _orders_api()
    body, _ = firehose_object(members)
    write(tmp_path / "garbage", body + b"this is not gzip")
    write(tmp_path / "truncated", body[:-20])
    status, _ = run(tmp_path, str(tmp_path / "garbage"), str(tmp_path / "truncated"))
    assert status == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert f"garbage: bytes at offset {len(body):,} are not a gzip member; the rest is skipped" in err
    assert "truncated (gzip member " in err and "gzip stream ends early" in err


def test_an_unrecognised_file_is_named_with_the_formats_tried_and_kept_in_the_dead_letter(tmp_path, capsys):
    write(tmp_path / "in" / "photo.dat", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path / "in" / "shape.json", b'{"hello": "world"}')
    write(tmp_path / "in" / ".hidden", b"\x00 skipped")
    write(tmp_path / "in" / "aws-logs-write-test", b"Permission Check Successful")
    status, _ = run(tmp_path, str(tmp_path / "in"), "--dead-letter", f"dir:{tmp_path / 'dead'}")
    assert status == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "photo.dat is not in a format shipper reads (tried: kinesis, awslogs, firehose," in err
    assert "shape.json is JSON but neither a Lambda Kinesis event nor another format shipper reads" in err
    assert "text)" in err and "--format forces one" in err
    assert "2 files" in err  # the hidden file and the export probe are skipped
    entries = [orjson.loads(line) for f in (tmp_path / "dead").iterdir() for line in f.read_bytes().splitlines()]
    assert {base64.b64decode(e["raw_base64"])[:4] for e in entries} == {b"\x89PNG", b'{"he'}


def test_a_missing_path_is_an_error_and_the_others_are_read(tmp_path, capsys):
    write(
        tmp_path / "aws" / "lambda" / "f" / "t.log",
        f"2024-05-20T16:29:45.008Z {REPORT.format(id='6bc28136-xmpl-4365-b021-0ce6b2e64a01')}\n".encode(),
    )
    status, events = run(tmp_path, str(tmp_path / "nope"), str(tmp_path / "aws"))
    assert status == EXIT_INCOMPLETE
    assert f"{tmp_path / 'nope'}: no such file or directory" in capsys.readouterr().err
    assert [e["type"] for e in events] == ["invocation"]


def test_an_event_over_the_size_limit_is_rejected_not_kept(tmp_path, capsys):
    huge = "x" * (1024 * 1024 + 10)
    text = f"2024-05-20T16:29:45.008Z start\n{huge}\n{huge}\n2024-05-20T16:29:46.008Z {REPORT.format(id='6bc28136-xmpl-4365-b021-0ce6b2e64a01')}\n"
    write(tmp_path / "aws" / "lambda" / "f.log", text.encode())
    status, events = run(tmp_path, str(tmp_path / "aws"))
    assert status == EXIT_INCOMPLETE
    chars = len("start\n") + 2 * len(huge + "\n")
    assert f"f.log lines 1-3: one event of {chars:,} bytes or more; the limit is 1,048,576" in capsys.readouterr().err
    assert [e["type"] for e in events] == ["invocation"]


def test_strict_stops_at_the_first_error(tmp_path, capsys):
    write(tmp_path / "in" / "a.bin", b"\x00\x01")
    write(
        tmp_path / "in" / "aws" / "lambda" / "f.log",
        f"2024-05-20T16:29:45.008Z {REPORT.format(id='6bc28136-xmpl-4365-b021-0ce6b2e64a01')}\n".encode(),
    )
    status, events = run(tmp_path, str(tmp_path / "in"), "--strict")
    assert status == EXIT_INCOMPLETE
    assert events == []
    assert "stopped at the first error (--strict)" in capsys.readouterr().err
    status, events = run(tmp_path, str(tmp_path / "in"))
    assert status == EXIT_INCOMPLETE and len(events) == 1  # without --strict the second file is read


def test_standard_input_plain_and_gzipped_with_the_log_group_given(tmp_path):
    streams, truth = fleet(600, seed=12)
    members = by_log_group(streams)["/aws/lambda/checkout-web"]
    text = tail(members)
    for data in (text, gzip.compress(text)):
        output = tmp_path / "events.ndjson"
        output.unlink(missing_ok=True)
        completed = subprocess.run(
            [*SHIPPER_RUN, "-", "--log-group", "/aws/lambda/checkout-web", "--sink", f"jsonl:{output}", "--quiet"],
            input=data,
            capture_output=True,
            cwd=ROOT,
            check=False,
        )
        assert completed.returncode == EXIT_OK, completed.stderr
        events = [orjson.loads(line) for line in output.read_bytes().splitlines()]
        only = {"functions": {"checkout-web": truth["functions"]["checkout-web"]}}
        assert_matches_truth(events, only)


def test_the_log_group_option_names_the_function_of_files_without_one(tmp_path):
    write(
        tmp_path / "export.log", f"1716222585008 {REPORT.format(id='6bc28136-xmpl-4365-b021-0ce6b2e64a01')}\n".encode()
    )
    _, events = run(tmp_path, str(tmp_path / "export.log"))
    assert events[0]["function"] is None and events[0]["log_group"] == ""
    _, events = run(tmp_path, str(tmp_path / "export.log"), "--log-group", "/aws/lambda/billing")
    assert (events[0]["function"], events[0]["log_group"]) == ("billing", "/aws/lambda/billing")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "csv"], "invalid choice: 'csv'"),
        (["--price-request", "-1"], "'-1' is not a price in USD"),
        (["--price-gb-second-arm64", "cheap"], "'cheap' is not a price in USD"),
        (["--top-metrics", "many"], "'many' is not a whole number"),
    ],
)
def test_bad_options_stop_with_exit_status_two_before_reading(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(tmp_path), *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
