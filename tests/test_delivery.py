"""The delivery layer around one sink: batching, retries, backoff, deadlines, the dead letter, counters."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from fake_sinks import delivery, events
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.delivery import MIN_SPLIT_BYTES, Delivery, RetryPolicy, Route, Router, Status, event_size
from shipper.sinks.base import SinkError, encode_line
from shipper.testing import FakeTime, ScriptedSink, Step, fail, fail_where, ok


def send_all(target: Delivery, batch: list[dict[str, Any]], origin: Any = "o", deadline: Any = None) -> list[Any]:
    settled = [s for event in batch for s in target.add(event, origin, deadline)]
    return settled + target.flush(deadline)


def test_batches_hold_at_most_max_batch_events() -> None:
    sink = ScriptedSink(max_batch_events=3)
    send_all(delivery(sink, FakeTime()), events(7))
    assert [len(batch) for batch in sink.batches] == [3, 3, 1]


def test_batches_hold_at_most_max_batch_bytes() -> None:
    batch = events(5)
    sink = ScriptedSink(max_batch_bytes=event_size(batch[0]) * 2 + 1)
    send_all(delivery(sink, FakeTime()), batch)
    assert [len(batch) for batch in sink.batches] == [2, 2, 1]


def test_an_event_larger_than_max_batch_bytes_goes_alone() -> None:
    sink = ScriptedSink(max_batch_bytes=10)
    send_all(delivery(sink, FakeTime()), events(2))
    assert sink.batches == [["e0"], ["e1"]]


def test_oldest_event_past_max_wait_flushes_on_add_and_on_flush() -> None:
    time_ = FakeTime()
    sink = ScriptedSink()
    target = delivery(sink, time_, max_wait_s=1.0)
    first, second, third, fourth = events(4)
    assert target.add(first) == []
    time_.now = 0.5
    assert target.add(second) == []
    time_.now = 1.2
    target.add(third)
    assert sink.batches == [["e0", "e1", "e2"]]

    time_.now = 1.3
    target.add(fourth)
    time_.now = 1.5
    assert target.flush(force=False) == []
    assert target.buffered == 1
    time_.now = 2.4
    assert target.flush(force=False)[0].status is Status.DELIVERED
    assert sink.batches[-1] == ["e3"]


def test_only_failed_events_are_retried_and_each_arrives_once() -> None:
    time_ = FakeTime()
    # attempt 1: e1 and e3 fail; attempt 2 (sends e1, e3): index 0 (e1) fails again; attempt 3: ok.
    sink = ScriptedSink(fail(failed=[1, 3]), fail(failed=[0]))
    target = delivery(sink, time_)
    settled = send_all(target, events(5))
    assert sink.batches == [["e0", "e1", "e2", "e3", "e4"], ["e1", "e3"], ["e1"]]
    assert set(sink.delivered.values()) == {1}
    assert len(sink.delivered) == 5
    assert {s.status for s in settled} == {Status.DELIVERED}
    assert sum(s.count for s in settled) == 5
    counters = target.counters
    assert (counters.received_events, counters.sent_events, counters.errors, counters.retries) == (5, 5, 2, 2)
    assert len(time_.sleeps) == 2


def test_failed_indices_outside_the_batch_resend_the_whole_batch() -> None:
    sink = ScriptedSink(fail(failed=[0, 9]))
    send_all(delivery(sink, FakeTime()), events(3))
    # The sink's answer cannot be trusted, so nothing is taken as delivered: a duplicate beats a loss.
    assert sink.batches[1] == ["e0", "e1", "e2"]
    assert set(sink.delivered) == {"e0", "e1", "e2"}


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=0.5, cap_s=3.0)
    rng = random.Random(1)
    for attempt in range(1, 7):
        bound = min(3.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.backoff(attempt, rng) for _ in range(300)]
        assert all(0.0 <= wait <= bound for wait in waits)
        assert min(waits) < 0.1 * bound  # full jitter reaches down to zero...
        assert max(waits) > 0.9 * bound  # ...and up to the cap of the attempt


def test_waits_between_attempts_follow_the_policy() -> None:
    time_ = FakeTime()
    sink = ScriptedSink(*[fail()] * 4)
    target = Delivery(sink, retry=RetryPolicy(5, 1.0, 4.0), sleep=time_.sleep, clock=time_.clock, rng=random.Random(3))
    send_all(target, events(1))
    assert len(time_.sleeps) == 4
    assert all(0.0 <= wait <= min(4.0, 2.0**i) for i, wait in enumerate(time_.sleeps))
    assert sink.delivered == Counter({"e0": 1})


def test_retry_after_is_waited_at_least() -> None:
    time_ = FakeTime()
    sink = ScriptedSink(fail(retry_after=7.0))
    send_all(delivery(sink, time_), events(2))
    assert time_.sleeps[0] >= 7.0
    assert sink.delivered == Counter({"e0": 1, "e1": 1})


def test_a_retry_after_past_the_limit_returns_the_events_at_once_instead_of_sleeping() -> None:
    time_ = FakeTime()
    dead = ScriptedSink(name="dlq")
    sink = ScriptedSink(fail(retry_after=3600.0))
    target = delivery(sink, time_, dead_letter=delivery(dead, time_), retry_after_max_s=300.0)
    settled = send_all(target, events(2))
    assert time_.sleeps == [] and len(sink.batches) == 1
    assert [(s.status, s.count) for s in settled] == [(Status.NOT_DELIVERED, 2)]
    assert "asked to wait 3,600 s, longer than the 300 s" in settled[0].reason
    assert dead.taken == []  # the caller keeps them and sends them again later
    assert target.counters.not_delivered_events == 2


def test_refused_events_go_to_the_dead_letter_with_the_reason_and_are_not_retried() -> None:
    time_ = FakeTime()
    dead = ScriptedSink(name="dlq")
    sink = ScriptedSink(fail_where(lambda event: event["event_id"] == "e1", retryable=False), name="picky")
    target = delivery(sink, time_, dead_letter=delivery(dead, time_))
    settled = send_all(target, events(3))
    assert len(sink.batches) == 1
    assert dead.taken == [{"code": "sink_refused", "sink": "picky", "reason": "some refused", "events": events(3)[1:2]}]
    by_status = Counter({s.status: s.count for s in settled})
    assert by_status == Counter({Status.DELIVERED: 2, Status.DEAD_LETTERED: 1})
    assert (target.counters.sent_events, target.counters.dead_lettered_events) == (2, 1)
    assert time_.sleeps == []


def test_retries_exhausted_go_to_the_dead_letter() -> None:
    time_ = FakeTime()
    dead = ScriptedSink()
    sink = ScriptedSink(*[fail()] * 3)
    target = delivery(sink, time_, attempts=3, dead_letter=delivery(dead, time_))
    (settled,) = send_all(target, events(2))
    assert settled.status is Status.DEAD_LETTERED
    assert "after 3 attempts" in settled.reason
    assert len(sink.batches) == 3
    assert [entry["events"] for entry in dead.taken] == [events(2)]
    assert target.counters.retries == 2


def test_without_a_dead_letter_refused_events_are_not_delivered() -> None:
    sink = ScriptedSink(fail(retryable=False))
    target = delivery(sink, FakeTime())
    (settled,) = send_all(target, events(2))
    assert (settled.status, settled.count) == (Status.NOT_DELIVERED, 2)
    assert target.counters.not_delivered_events == 2


def test_a_failing_dead_letter_leaves_events_not_delivered() -> None:
    time_ = FakeTime()
    dead = ScriptedSink(*[fail()] * 10, name="dead")
    sink = ScriptedSink(fail(retryable=False))
    target = delivery(sink, time_, dead_letter=delivery(dead, time_, attempts=2))
    (settled,) = send_all(target, events(2))
    assert settled.status is Status.NOT_DELIVERED
    assert "dead letter failed" in settled.reason
    assert target.counters.not_delivered_events == 2
    assert target.counters.dead_lettered_events == 0


def test_deadline_stops_retrying_and_reports_not_delivered_instead_of_dead_lettering() -> None:
    time_ = FakeTime()
    dead = ScriptedSink()
    sink = ScriptedSink(*[fail(retry_after=2.0)] * 10)
    target = delivery(sink, time_, attempts=10, dead_letter=delivery(dead, time_))

    def remaining() -> float:
        return 5.0 - time_.now

    (settled,) = send_all(target, events(3), deadline=remaining)
    assert settled.status is Status.NOT_DELIVERED
    assert "deadline" in settled.reason
    assert len(sink.batches) == 3  # at 0 s, about 2 s and about 4 s; the next wait would pass 5 s
    assert time_.now < 5.0
    assert dead.taken == []
    assert target.counters.not_delivered_events == 3


def test_a_passed_deadline_sends_nothing() -> None:
    sink = ScriptedSink()
    target = delivery(sink, FakeTime())
    (settled,) = send_all(target, events(2), deadline=lambda: 0.0)
    assert settled.status is Status.NOT_DELIVERED
    assert sink.batches == []


def test_an_exception_outside_the_contract_is_retried_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def explode(events: Sequence[dict[str, Any]]) -> Exception:
        return RuntimeError("bug")

    sink = ScriptedSink(explode)
    with caplog.at_level(logging.ERROR, logger="shipper.delivery"):
        (settled,) = send_all(delivery(sink, FakeTime()), events(1))
    assert settled.status is Status.DELIVERED
    assert "RuntimeError" in caplog.text


@pytest.mark.parametrize("failures", [0, 1, 3, 4])
def test_a_sink_failing_its_first_attempts_loses_nothing(failures: int) -> None:
    time_ = FakeTime()
    dead = ScriptedSink()
    sink = ScriptedSink(*[fail()] * failures, max_batch_events=10)
    target = delivery(sink, time_, attempts=4, dead_letter=delivery(dead, time_))
    batch = events(25)
    settled = send_all(target, batch)

    dead_ids = [event["event_id"] for entry in dead.taken for event in entry["events"]]
    counters = target.counters
    assert counters.received_events == counters.sent_events + counters.dead_lettered_events == 25
    assert counters.retries == min(failures, 3)
    assert sorted(list(sink.delivered) + dead_ids) == sorted(event["event_id"] for event in batch)
    assert set(sink.delivered.values()) <= {1}
    # the first batch of 10 takes every failure: it is dead-lettered only when the failures outlast 4 attempts
    assert len(dead_ids) == (10 if failures >= 4 else 0)
    assert sum(s.count for s in settled) == 25


@st.composite
def scripts(draw: st.DrawFn) -> list[Step]:
    """A random failure script: whole-batch or per-event failures, retryable or not, with retry_after."""
    steps: list[Step] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["ok", "all", "some", "some-permanent", "permanent"]))
        if kind == "ok":
            steps.append(ok)
        elif kind in ("all", "permanent"):
            steps.append(fail(retryable=kind == "all", retry_after=draw(st.none() | st.floats(0, 3))))
        else:
            modulus = draw(st.integers(2, 4))
            steps.append(fail_where(lambda e, m=modulus: int(e["event_id"][1:]) % m == 0, retryable=kind == "some"))
    return steps


@settings(max_examples=60, deadline=None)
@given(
    script=scripts(),
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=6),
    max_batch=st.integers(1, 7),
    attempts=st.integers(1, 4),
)
def test_property_every_event_is_delivered_once_or_dead_lettered_and_origins_take_the_worst(
    script: list[Step], sizes: list[int], max_batch: int, attempts: int
) -> None:
    time_ = FakeTime()
    dead = ScriptedSink()
    sink = ScriptedSink(*script, max_batch_events=max_batch)
    dead_letter = delivery(dead, time_)
    router = Router([Route(delivery(sink, time_, attempts=attempts, dead_letter=dead_letter))], dead_letter)
    items, start = [], 0
    for origin, size in enumerate(sizes):
        items.append((origin, events(size, start)))
        start += size

    report = router.deliver(items)

    dead_ids = Counter(event["event_id"] for entry in dead.taken for event in entry["events"])
    assert set(sink.delivered.values()) | set(dead_ids.values()) <= {1}
    assert not set(sink.delivered) & set(dead_ids)
    assert sorted([*sink.delivered, *dead_ids]) == sorted(f"e{i}" for i in range(start))
    assert list(report.statuses) == list(range(len(sizes)))
    for origin, batch in items:
        ids = {event["event_id"] for event in batch}
        expected = Status.DEAD_LETTERED if ids & set(dead_ids) else Status.DELIVERED
        assert report.statuses[origin] is expected
    counters = router.stats()["sinks"]["scripted"]
    assert counters["received_events"] == counters["sent_events"] + counters["dead_lettered_events"] == start


def lines_of(chunks: Sequence[bytes]) -> list[bytes]:
    """The NDJSON lines a line sink was handed, each with its newline."""
    return [line + b"\n" for line in b"".join(chunks).split(b"\n")[:-1]]


class LineRecorder:
    """A LineSink that records the lines of each send, failing the first send for the indices in `fail_first`,
    or refusing every send for good."""

    name = "lines"

    def __init__(
        self, max_batch_events: int, max_batch_bytes: int, fail_first: Sequence[int] = (), refuse: bool = False
    ) -> None:
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.fail_first = fail_first
        self.refuse = refuse
        self.sends: list[list[bytes]] = []

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        raise AssertionError("a line sink is handed lines, not events")

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        lines = lines_of(chunks)
        assert len(lines) == count
        self.sends.append(lines)
        if self.refuse:
            raise SinkError("refused", retryable=False)
        if len(self.sends) == 1 and self.fail_first:
            raise SinkError("some failed", retryable=True, failed=[i for i in self.fail_first if i < len(lines)])

    def close(self) -> None:
        return None


def _reference_batches(sizes: list[int], max_events: int, max_bytes: int) -> list[list[int]]:
    """Event indices per batch, by the rule taken one event at a time: a batch is sent before an event that would
    take it past max_bytes, and once it holds max_events or max_bytes."""
    batches: list[list[int]] = []
    current: list[int] = []
    held = 0
    for index, size in enumerate(sizes):
        if current and held + size > max_bytes:
            batches.append(current)
            current, held = [], 0
        current.append(index)
        held += size
        if len(current) >= max_events or held >= max_bytes:
            batches.append(current)
            current, held = [], 0
    return [*batches, current] if current else batches


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=0, max_size=40),
    chunks=st.lists(st.integers(1, 9), min_size=1, max_size=40),
    max_events=st.integers(1, 12),
    max_bytes=st.integers(1, 400),
    fail_first=st.lists(st.integers(0, 11), max_size=4),
)
def test_property_sinks_get_the_batches_of_the_one_event_rule_lines_encoded_once(
    lengths: list[int], chunks: list[int], max_events: int, max_bytes: int, fail_first: list[int]
) -> None:
    """Events given in runs of any length fill batches exactly as one at a time would; a line sink gets each event's
    NDJSON line, the same bytes an event sink's events encode to, and a retry resends exactly the failed lines."""
    batch = [{"type": "log", "event_id": f"e{i}", "message": "é" * length} for i, length in enumerate(lengths)]
    lines = [encode_line(event) for event in batch]
    expected = _reference_batches([len(line) for line in lines], max_events, max_bytes)
    time_ = FakeTime()
    line_sink = LineRecorder(max_events, max_bytes, fail_first)
    event_sink = ScriptedSink(max_batch_events=max_events, max_batch_bytes=max_bytes)
    targets = [delivery(line_sink, time_), delivery(event_sink, time_)]  # type: ignore[arg-type]
    start = origin = 0
    settled: Counter[Any] = Counter()
    for size in [*chunks, len(batch)]:
        for target in targets:
            for done in target.add_many(origin, batch[start : start + size]):
                settled[done.origin] += done.count
        start, origin = start + size, origin + 1
        if start >= len(batch):
            break
    for target in targets:
        for done in target.flush():
            settled[done.origin] += done.count

    assert event_sink.batches == [[f"e{i}" for i in indices] for indices in expected]
    sends = iter(line_sink.sends)
    for number, indices in enumerate(expected):
        assert next(sends) == [lines[i] for i in indices]
        failed = sorted({i for i in fail_first if i < len(indices)}) if number == 0 else []
        if failed:
            assert next(sends) == [lines[indices[i]] for i in failed]
    assert next(sends, None) is None
    assert sum(settled.values()) == 2 * len(batch)
    assert [target.counters.sent_events for target in targets] == [len(batch)] * 2


def test_events_a_line_sink_refuses_reach_the_dead_letter_as_they_were_given() -> None:
    """A line sink's buffer keeps only lines: what it refuses for good is decoded again, equal to the events."""
    time_ = FakeTime()
    given = [{"type": "log", "event_id": "e0", "message": "é\u2028\x00", "tags": {"a": [1, 2.5, None, True]}}]
    given.append({"type": "metric", "event_id": "e1", "value": 1e308, "sample_rate": 0.1, "name": "x" * 300})
    refusing = LineRecorder(10, 1 << 20, refuse=True)
    dead = ScriptedSink()
    target = delivery(refusing, time_, dead_letter=delivery(dead, time_))  # type: ignore[arg-type]
    settled = target.add_many("o", given) + target.flush()
    assert [(s.status, s.count) for s in settled] == [(Status.DEAD_LETTERED, 2)]
    (entry,) = dead.taken
    assert entry["events"] == given


class _SizeLimited:
    """An event sink that refuses any send of more than `limit` bytes as too large, as HTTP 413 does."""

    name = "limited"
    max_batch_events = 10_000
    max_batch_bytes = 5 * 1024 * 1024

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sends: list[int] = []
        self.delivered: Counter[str] = Counter()

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        self._take([encode_line(event) for event in events])

    def _take(self, lines: list[bytes]) -> None:
        size = sum(map(len, lines))
        self.sends.append(size)
        if size > self.limit:
            raise SinkError(f"HTTP 413: {size} bytes", retryable=False, too_large=True)
        self.delivered.update(orjson.loads(line)["event_id"] for line in lines)

    def close(self) -> None:
        return None


class _SizeLimitedLines(_SizeLimited):
    """The same, as a line sink (the NDJSON HTTP sink's way)."""

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        self._take(lines_of(chunks))


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.lists(st.integers(10, 300 * 1024), min_size=1, max_size=8), min_size=1, max_size=8),
    limit=st.integers(MIN_SPLIT_BYTES, 4 * MIN_SPLIT_BYTES),
    as_lines=st.booleans(),
)
def test_property_a_batch_refused_as_too_large_is_halved_until_each_event_is_taken_or_dead_lettered_alone(
    records: list[list[int]], limit: int, as_lines: bool
) -> None:
    """Whatever the destination's size limit and the events' sizes: an event whose line fits the limit is
    delivered once, one that does not is dead-lettered once with the destination's reason, an origin with
    such an event is dead-lettered, and the splitting costs at most a few requests an event."""
    time_ = FakeTime()
    sink = (_SizeLimitedLines if as_lines else _SizeLimited)(limit)
    dead = ScriptedSink(name="dead")
    dead_letter = delivery(dead, time_)
    router = Router([Route(delivery(sink, time_, dead_letter=dead_letter))], dead_letter)  # type: ignore[arg-type]
    items = [
        (f"r{n}", [{"type": "log", "event_id": f"e{n}.{i}", "message": "x" * size} for i, size in enumerate(sizes)])
        for n, sizes in enumerate(records)
    ]
    too_big = {event["event_id"] for _, batch in items for event in batch if event_size(event) > limit}

    report = router.deliver(items)

    every = [event["event_id"] for _, batch in items for event in batch]
    assert sink.delivered == Counter(e for e in every if e not in too_big)
    dead_lettered = [event["event_id"] for entry in dead.taken for event in entry["events"]]
    assert sorted(dead_lettered) == sorted(too_big)
    assert all("HTTP 413" in entry["reason"] for entry in dead.taken)
    assert report.statuses == {
        origin: Status.DEAD_LETTERED if any(e["event_id"] in too_big for e in batch) else Status.DELIVERED
        for origin, batch in items
    }
    assert len(sink.sends) <= 3 * len(every)
    counters = router.stats()["sinks"]["limited"]
    assert counters["received_events"] == counters["sent_events"] + counters["dead_lettered_events"] == len(every)


def test_a_batch_refused_as_too_large_keeps_later_batches_within_half_its_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time_ = FakeTime()
    sink = _SizeLimitedLines(300 * 1024)
    target = delivery(sink, time_)  # type: ignore[arg-type]
    event = {"type": "log", "event_id": "e", "message": "x" * 1000}
    with caplog.at_level(logging.WARNING):
        settled = send_all(target, [{**event, "event_id": f"e{i}"} for i in range(1000)])
        assert {s.status for s in settled} == {Status.DELIVERED}
        first = len(sink.sends)
        send_all(target, [{**event, "event_id": f"f{i}"} for i in range(1000)])
    assert sink.sends[0] > 300 * 1024  # the first batch was refused once, then sent in parts
    assert all(size <= 300 * 1024 for size in sink.sends[first:])  # later ones fit at once
    assert sum(sink.delivered.values()) == 2000
    assert sum("refused as too large" in message for message in caplog.messages) == 2  # 1 MB -> 500 KB -> 250 KB
