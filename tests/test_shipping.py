"""The ship-a-batch step and the one configuration, as the handler, `shipper run` and `shipper consume` use them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_handler import Context

from shipper import consume
from shipper.cli import EXIT_OK, _add_run_command, main
from shipper.config import Config, config_from_args, resolve_config
from shipper.delivery import Delivery, DeliveryReport, Origin, RetryPolicy, Route, Router, Status
from shipper.handler import KinesisHandler
from shipper.pipeline import Pipeline, RecordOutcome
from shipper.reject import Reject
from shipper.shipping import BatchObserver, BatchResult, BatchStep
from shipper.sinks.base import SinkError
from shipper.testing import FakeTime, ScriptedSink, ok

from helpers import cwl_document, gz, kinesis_event


def _blocked(events: Any) -> Exception:
    return SinkError("disk full", retryable=False, blocked=True)


def _router(sink: ScriptedSink) -> Router:
    time_ = FakeTime()
    return Router([Route(Delivery(sink, retry=RetryPolicy(1), sleep=time_.sleep, clock=time_.clock))])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=8))
def test_the_handler_reports_every_record_a_sink_did_not_take_even_when_a_sequence_number_repeats(
    records: list[tuple[int, bool]],
) -> None:
    """Each record is one event sent on its own; a record whose send failed is in batchItemFailures, whatever
    became of another record with the same sequence number (the worst status of an origin wins)."""
    sink = ScriptedSink(*(ok if delivered else _blocked for _, delivered in records), max_batch_events=1)
    handler = KinesisHandler(_router(sink), Pipeline())
    event = kinesis_event([gz(cwl_document([f"order {i} placed\n"])) for i in range(len(records))])
    for entry, (number, _) in zip(event["Records"], records, strict=True):
        entry["kinesis"]["sequenceNumber"] = str(1000 + number)

    response = handler(event, Context())

    expected = {str(1000 + number) for number, delivered in records if not delivered}
    reported = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert set(reported) == expected
    assert len(reported) == len(expected)


class _Recorder(BatchObserver):
    def __init__(self) -> None:
        self.outcomes: list[Origin] = []
        self.settled_origins: list[Origin] = []
        self.done: list[BatchResult] = []

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        self.outcomes.append(origin)

    def settled(self, report: DeliveryReport) -> None:
        self.settled_origins += report.statuses

    def batch_done(self, result: BatchResult) -> None:
        self.done.append(result)


_EVENT_TYPES = st.sampled_from(["log", "error", "metric"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.lists(_EVENT_TYPES, max_size=4), st.integers(0, 2)), max_size=10),
    st.lists(st.booleans(), max_size=12),
    st.integers(1, 4),
)
def test_the_step_settles_every_origin_once_and_tells_each_observer(
    outcomes: list[tuple[list[str], int]], sends: list[bool], batch_events: int
) -> None:
    sink = ScriptedSink(*(ok if good else _blocked for good in sends), max_batch_events=batch_events)
    recorder = _Recorder()
    step = BatchStep(Pipeline(), _router(sink), [recorder])
    routed = [
        (
            f"r{i}",
            RecordOutcome(
                f"r{i}",
                [{"type": t, "event_id": f"e{i}.{j}"} for j, t in enumerate(types)],
                [Reject("not_json", "x", b"x")] * rejects,
            ),
        )
        for i, (types, rejects) in enumerate(outcomes)
    ]

    batch = step.begin()
    for pair in routed:
        step.route(batch, [pair], None)
    step.flush(batch, None)
    result = step.done(batch)

    assert recorder.outcomes == [origin for origin, _ in routed]
    assert sorted(recorder.settled_origins) == sorted(origin for origin, _ in routed)  # each settled once
    assert recorder.done == [result] and result.seconds is not None
    assert list(result.statuses) == sorted(result.statuses, key=recorder.settled_origins.index)
    assert result.events == sum(len(types) for types, _ in outcomes)
    assert result.rejects == sum(rejects for _, rejects in outcomes)
    for origin, outcome in routed:
        # no dead letter: a reject cannot pass; an event is delivered only if the sink took it
        taken = all(sink.delivered[event["event_id"]] for event in outcome.events)
        want = Status.DELIVERED if taken and not outcome.rejects else Status.NOT_DELIVERED
        assert result.status(origin) is want
    assert result.router_stats["sinks"]["scripted"]["received_events"] == result.events


# --- one configuration for every command --------------------------------------------------------

_NUMBERS = {
    "retry_max_attempts": ("SHIPPER_RETRY_MAX_ATTEMPTS", "--retry-max-attempts", [2, 3, 4]),
    "retry_base_s": ("SHIPPER_RETRY_BASE_S", "--retry-base-s", [0.5, 1.5, 2.5]),
    "retry_cap_s": ("SHIPPER_RETRY_CAP_S", "--retry-cap-s", [20.0, 30.0, 40.0]),
    "retry_after_max_s": ("SHIPPER_RETRY_AFTER_MAX_S", "--retry-after-max-s", [5.0, 6.0, 7.0]),
    "batch_max_wait_s": ("SHIPPER_BATCH_MAX_WAIT_S", "--batch-max-wait-s", [0.25, 0.5, 0.75]),
}
_PLACES = ("environment", "file", "flag")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    commands = argparse.ArgumentParser().add_subparsers()
    _add_run_command(commands)
    consume.add_command(commands)
    return dict(commands.choices)


def _arguments(command: str, tmp_path: Path) -> list[str]:
    return [str(tmp_path)] if command == "run" else ["--stream", "s"]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.sampled_from(list(_NUMBERS)), st.sets(st.sampled_from(_PLACES))),
    st.sets(st.sampled_from(_PLACES)),
    st.booleans(),
)
def test_each_setting_comes_from_the_flag_else_the_file_else_the_environment_for_every_command(
    tmp_path_factory: pytest.TempPathFactory,
    where: dict[str, set[str]],
    dead_letter_places: set[str],
    sinks_in_file: bool,
) -> None:
    tmp_path = tmp_path_factory.mktemp("config")
    environ = {"SHIPPER_SINKS": "null name=from-env"}
    file_lines = ['[[sinks]]\nspec = "null"\nname = "from-file"\n'] if sinks_in_file else []
    flags: list[str] = []
    delivery: list[str] = []
    for field, (variable, flag, values) in _NUMBERS.items():
        places = where.get(field, set())
        if "environment" in places:
            environ[variable] = str(values[0])
        if "file" in places:
            delivery.append(f"{field} = {values[1]}")
        if "flag" in places:
            flags += [flag, str(values[2])]
    if "environment" in dead_letter_places:
        environ["SHIPPER_DEAD_LETTER"] = "dir:from-environment"
    if "file" in dead_letter_places:
        file_lines.insert(0, 'dead_letter = "dir:from-file"\n')
    if "flag" in dead_letter_places:
        flags += ["--dead-letter", "dir:from-flag"]
    if delivery:
        file_lines.append("[delivery]\n" + "\n".join(delivery) + "\n")
    uses_file = sinks_in_file or bool(delivery) or "file" in dead_letter_places
    if uses_file:
        if not sinks_in_file:
            file_lines.append('[[sinks]]\nspec = "null"\nname = "from-file"\n')
            sinks_in_file = True
        (tmp_path / "shipper.toml").write_text("".join(file_lines))
        flags += ["--config", str(tmp_path / "shipper.toml")]

    for command, parser in _parsers().items():
        args = parser.parse_args([*_arguments(command, tmp_path), *flags])
        config = config_from_args(args, environ, lambda: "stdout")
        for field, (_, _, values) in _NUMBERS.items():
            places = where.get(field, set())
            default = getattr(Config(()), field)
            want = next((values[i] for i, place in reversed(list(enumerate(_PLACES))) if place in places), default)
            assert getattr(config, field) == want, (command, field)
        last = next((p for p in reversed(_PLACES) if p in dead_letter_places), None)
        assert config.dead_letter == (None if last is None else f"dir:from-{last}")
        assert [sink.name for sink in config.sinks] == ["from-file" if sinks_in_file else "from-env"]

    # The Lambda has only the environment, read the same way.
    lambda_config = resolve_config(None, environ)
    for field, (_, _, values) in _NUMBERS.items():
        if "environment" in where.get(field, set()):
            assert getattr(lambda_config, field) == values[0]


def test_shipper_run_sends_to_the_sinks_of_the_environment_and_a_flag_replaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(kinesis_event([gz(cwl_document(["order 7 placed\n"]))])))
    from_env, from_flag = tmp_path / "env.ndjson", tmp_path / "flag.ndjson"
    monkeypatch.setenv("SHIPPER_SINKS", f"jsonl:{from_env}")

    assert main(["run", str(source)]) == EXIT_OK
    assert [orjson.loads(line)["message"] for line in from_env.read_bytes().splitlines()] == ["order 7 placed"]

    assert main(["run", str(source), "--sink", f"jsonl:{from_flag}"]) == EXIT_OK
    assert from_flag.read_bytes().count(b"\n") == 1
    assert from_env.read_bytes().count(b"\n") == 1
    capsys.readouterr()


def test_consume_takes_the_retry_flags(tmp_path: Path) -> None:
    args = _parsers()["consume"].parse_args(["--stream", "s", "--retry-max-attempts", "9", "--retry-base-s", "0.3"])
    config = config_from_args(args, {}, lambda: "stdout")
    assert (config.retry_max_attempts, config.retry_base_s) == (9, 0.3)
    assert [sink.spec for sink in config.sinks] == ["stdout"]


def test_no_sink_anywhere_is_an_error_without_a_default() -> None:
    with pytest.raises(Exception, match="SHIPPER_SINKS is not set"):
        resolve_config(None, {"SHIPPER_RETRY_BASE_S": "1"})
