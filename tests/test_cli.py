"""`shipper run`: files in, events to sinks, rejects explained and kept, exit status that tells."""

from __future__ import annotations

import base64
import gc
import json
import socket

import orjson
import pytest

from shipper.cli import EXIT_INCOMPLETE, EXIT_OK, EXIT_UNDELIVERED, main

from helpers import cwl_document, gz, kinesis_event

GOOD = gz(cwl_document(["[INFO]\t2024-05-20T16:29:45.009Z\tabc\tprocessed order 42\n"]))


def _write_event(path, payloads):
    path.write_text(json.dumps(kinesis_event(payloads)))
    return path


def test_events_go_to_the_sink_and_a_clean_run_exits_zero(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    _write_event(tmp_path / "in" / "a.json", [GOOD])
    output = tmp_path / "events.ndjson"
    assert main(["run", str(tmp_path / "in"), "--sink", f"jsonl:{output}"]) == EXIT_OK
    [event] = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert event["message"] == "processed order 42"
    summary = capsys.readouterr().err
    assert "1 file, 1 record, 1 log event -> 1 event (log 1)" in summary
    assert "0 rejected" in summary


def test_rejects_are_reported_kept_in_the_dead_letter_and_make_the_exit_status_non_zero(tmp_path, capsys):
    bad = b"\x1f\x8b\x08\x00truncated"
    source = _write_event(tmp_path / "batch.json", [GOOD, bad])
    (tmp_path / "notes.json").write_text("[1, 2]")
    dead_letter = tmp_path / "dead"
    output = tmp_path / "events.ndjson"
    code = main(
        [
            "run",
            str(source),
            str(tmp_path / "notes.json"),
            "--sink",
            f"jsonl:{output}",
            "--dead-letter",
            f"dir:{dead_letter}",
        ]
    )
    assert code == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "batch.json: gzip stream ends early" in err or "batch.json: gzip data is corrupt" in err
    assert "notes.json is JSON but neither a Lambda Kinesis event" in err
    assert len(output.read_bytes().splitlines()) == 1  # the good record still went through
    entries = [orjson.loads(line) for file in dead_letter.iterdir() for line in file.read_bytes().splitlines()]
    by_code = {entry["code"]: entry for entry in entries}
    assert base64.b64decode(by_code.get("truncated_gzip", by_code.get("bad_gzip"))["raw_base64"]) == bad
    assert base64.b64decode(by_code["unrecognised_input"]["raw_base64"]) == b"[1, 2]"


def test_events_a_sink_did_not_take_exit_three_and_say_what_a_re_run_sends(tmp_path, capsys):
    source = _write_event(tmp_path / "batch.json", [GOOD])
    with socket.socket() as closed:  # a port on 127.0.0.1 that nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/ingest"
    assert main(["run", str(source), "--sink", url, "--retry-max-attempts", "1"]) == EXIT_UNDELIVERED
    err = capsys.readouterr().err
    assert "0 sent, 0 retries, 0 dead-lettered, 1 not delivered" in err
    assert f"{source}: 1 of its 1 event (1 batch)" in err
    assert "running again on this input sends 1 event again (none of them was delivered)" in err


def test_without_a_dead_letter_rejects_are_still_explained(tmp_path, capsys):
    source = _write_event(tmp_path / "batch.json", [b"not a record"])
    assert main(["run", str(source), "--sink", "null"]) == EXIT_INCOMPLETE
    assert "record is not gzip, KPL-aggregated or JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sink", "bogus"], "unknown sink"),
        (["--sink", "stdout", "--route", "stdout=lgo"], "unknown event type 'lgo'"),
        (["--config", "/nonexistent/shipper.toml"], "/nonexistent/shipper.toml"),
    ],
)
def test_bad_configuration_stops_with_a_message_and_exit_status_two(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(tmp_path), *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_config_file_routes_types_to_sinks(tmp_path, capsys):
    report = "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a01\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t\n"
    source = _write_event(tmp_path / "batch.json", [gz(cwl_document(["hello\n", report]))])
    logs, invocations = tmp_path / "logs.ndjson", tmp_path / "invocations.ndjson"
    config = tmp_path / "shipper.toml"
    config.write_text(
        f'[[sinks]]\nspec = "jsonl:{logs}"\nname = "logs"\n\n[[sinks]]\nspec = "jsonl:{invocations}"\nname = "stats"\n\n'
        '[routes]\nlogs = ["log"]\nstats = ["invocation"]\n'
    )
    assert main(["run", str(source), "--config", str(config)]) == EXIT_OK
    assert [orjson.loads(line)["type"] for line in logs.read_bytes().splitlines()] == ["log"]
    assert [orjson.loads(line)["type"] for line in invocations.read_bytes().splitlines()] == ["invocation"]


def test_run_leaves_the_young_generation_to_reference_counting_and_puts_the_collector_back(tmp_path, capsys):
    """Events die by reference counting: `run` keeps the cyclic collector from rescanning them every 700
    allocations (it took about 5% of a large run for nothing), and restores the thresholds it found."""
    lines = [f"[INFO]\t2024-05-20T16:29:45.009Z\treq-{n}\tprocessed order {n}\n" for n in range(20_000)]
    source = _write_event(tmp_path / "batch.json", [gz(cwl_document(lines))])
    before = gc.get_threshold()
    collections = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        assert main(["run", str(source), "--sink", f"jsonl:{tmp_path / 'out.ndjson'}", "--quiet"]) == EXIT_OK
    finally:
        gc.callbacks.remove(count)
    assert len(collections) <= 5, f"{len(collections)} collections for 20,000 events"
    assert gc.get_threshold() == before
