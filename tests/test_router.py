"""Routing: event types to sinks, rejects to the dead letter, and one status per origin (worst wins)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fake_sinks import delivery, events
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.delivery import ROUTE_RUN, Route, Router, Status
from shipper.reject import Reject
from shipper.sinks.base import encode_line
from shipper.sinks.local import JsonLinesFileSink, NullSink
from shipper.testing import FakeTime, ScriptedSink, fail, fail_where


def types_taken(sink: ScriptedSink) -> set[str]:
    return {event["type"] for event in sink.taken}


def test_each_event_type_goes_to_the_sinks_routed_for_it() -> None:
    time_ = FakeTime()
    logs, metrics, everything = ScriptedSink(name="logs"), ScriptedSink(name="cw"), ScriptedSink(name="s3")
    router = Router(
        [
            Route(delivery(logs, time_), frozenset({"log"})),
            Route(delivery(metrics, time_), frozenset({"invocation", "metric"})),
            Route(delivery(everything, time_)),
        ]
    )
    batch = events(2, 0, "log") + events(2, 2, "metric") + events(1, 4, "invocation") + events(1, 5, "timeout")
    report = router.deliver([("seq-1", batch)])
    assert types_taken(logs) == {"log"} and len(logs.taken) == 2
    assert types_taken(metrics) == {"metric", "invocation"} and len(metrics.taken) == 3
    assert len(everything.taken) == 6
    assert report.statuses == {"seq-1": Status.DELIVERED}


def test_events_no_sink_takes_are_counted_and_do_not_hold_their_origin_back() -> None:
    time_ = FakeTime()
    logs = ScriptedSink(name="logs")
    router = Router([Route(delivery(logs, time_), frozenset({"log"}))])
    report = router.deliver([("a", events(1, 0, "log") + events(2, 1, "metric"))])
    assert report.statuses == {"a": Status.DELIVERED}
    assert router.stats()["unrouted_events"] == 2


def test_worst_status_wins_across_sinks_and_events() -> None:
    time_ = FakeTime()
    dead = ScriptedSink(name="dead")
    dead_letter = delivery(dead, time_)
    good = ScriptedSink(name="good")
    picky = ScriptedSink(*[fail_where(lambda e: e["message"] == "bad", retryable=False)] * 10, name="picky")
    down = ScriptedSink(*[fail(retry_after=1.0)] * 50, name="down")
    router = Router(
        [
            Route(delivery(good, time_, dead_letter=dead_letter)),
            Route(delivery(picky, time_, dead_letter=dead_letter), frozenset({"log"})),
            Route(delivery(down, time_, dead_letter=dead_letter, attempts=50), frozenset({"metric"})),
        ],
        dead_letter,
    )
    items = [
        ("ok", events(2)),
        ("refused", events(1, 10) + events(1, 11, message="bad")),
        ("late", events(1, 20, "metric")),
        ("refused-and-late", events(1, 30, message="bad") + events(1, 31, "metric")),
        ("empty", []),
    ]

    def remaining() -> float:
        return 4.0 - time_.now

    report = router.deliver(items, deadline=remaining)
    assert report.statuses == {
        "ok": Status.DELIVERED,
        "refused": Status.DEAD_LETTERED,
        "late": Status.NOT_DELIVERED,
        "refused-and-late": Status.NOT_DELIVERED,
        "empty": Status.DELIVERED,
    }
    assert report.undelivered_origins == ["late", "refused-and-late"]
    assert report.dead_lettered_origins == ["refused"]
    assert report.counts() == {"delivered": 2, "dead_lettered": 1, "not_delivered": 2}
    assert "deadline" in report.reasons["late"]
    # every event reached the catch-all sink once, whatever happened elsewhere
    assert sorted(good.delivered) == sorted(e["event_id"] for _, batch in items for e in batch)
    assert sorted(e["event_id"] for entry in dead.taken for e in entry["events"]) == ["e11", "e30"]


def test_rejects_go_to_the_dead_letter_and_the_origin_is_dead_lettered() -> None:
    time_ = FakeTime()
    dead = ScriptedSink(name="dead")
    dead_letter = delivery(dead, time_)
    sink = ScriptedSink()
    router = Router([Route(delivery(sink, time_, dead_letter=dead_letter))], dead_letter)
    reject = Reject("truncated_gzip", "gzip stream ends early", b"\x1f\x8b\x08", sequence_number="49", source="shard-0")
    report = router.deliver([("49", [*events(2), reject]), ("50", events(1, 5))])
    assert report.statuses == {"49": Status.DEAD_LETTERED, "50": Status.DELIVERED}
    assert report.reasons["49"] == "gzip stream ends early"
    assert dead.taken == [reject.to_dead_letter()]
    assert len(sink.taken) == 3
    assert router.stats()["rejects"] == 1
    assert report.undelivered_origins == []


def test_a_reject_without_a_dead_letter_is_not_delivered() -> None:
    router = Router([Route(delivery(ScriptedSink(), FakeTime()))])
    report = router.deliver([("7", [Reject("bad_base64", "not base64", b"??")])])
    assert report.undelivered_origins == ["7"]


def test_a_reject_the_dead_letter_cannot_take_is_not_delivered() -> None:
    time_ = FakeTime()
    dead_letter = delivery(ScriptedSink(*[fail(retryable=False)] * 5, name="dead"), time_)
    router = Router([Route(delivery(ScriptedSink(), time_, dead_letter=dead_letter))], dead_letter)
    report = router.deliver([("7", [Reject("bad_base64", "not base64", b"??")]), ("8", events(1))])
    assert report.statuses == {"7": Status.NOT_DELIVERED, "8": Status.DELIVERED}


def test_an_origin_given_twice_is_one_origin() -> None:
    time_ = FakeTime()
    sink = ScriptedSink(fail_where(lambda e: e["event_id"] == "e5", retryable=False))
    router = Router([Route(delivery(sink, time_))])
    report = router.deliver([("a", events(2)), ("b", events(1, 3)), ("a", events(1, 5))])
    assert report.statuses == {"a": Status.NOT_DELIVERED, "b": Status.DELIVERED}


def test_submit_returns_origins_as_their_batches_are_sent_and_flush_sends_old_ones() -> None:
    time_ = FakeTime()
    sink = ScriptedSink(max_batch_events=4)
    router = Router([Route(delivery(sink, time_, max_wait_s=5.0))])
    assert router.submit([("a", events(2))]).statuses == {}
    assert router.submit([("b", events(2, 2))]).statuses == {"a": Status.DELIVERED, "b": Status.DELIVERED}
    assert router.submit([("c", events(1, 4))]).statuses == {}
    assert router.flush(force=False).statuses == {}
    time_.now += 5.0
    assert router.flush(force=False).statuses == {"c": Status.DELIVERED}
    assert [len(batch) for batch in sink.batches] == [4, 1]


def test_an_origin_is_reported_only_once_everything_of_it_is_settled_and_in_the_order_given() -> None:
    """A reject settles at once (no dead letter); the origin must still wait for its buffered event."""
    time_ = FakeTime()
    sink = ScriptedSink(max_batch_events=3)
    router = Router([Route(delivery(sink, time_, max_wait_s=60.0))])
    reject = Reject("bad_base64", "not base64", b"??")
    assert router.submit([("a", [reject, *events(1)]), ("b", [])]).statuses == {"b": Status.DELIVERED}
    report = router.submit([("c", events(1, 1)), ("d", events(1, 2))])
    assert list(report.statuses) == ["a", "c", "d"]
    assert report.statuses["a"] is Status.NOT_DELIVERED


def test_a_router_without_routes_counts_every_event_as_unrouted() -> None:
    router = Router([])
    report = router.deliver([("a", events(3))])
    assert report.statuses == {"a": Status.DELIVERED}
    assert router.stats()["unrouted_events"] == 3


def test_an_origin_of_more_events_than_route_run_reaches_every_sink_in_order_and_settles_once() -> None:
    """A record's events go to the sinks ROUTE_RUN at a time; each sink still gets them all, in order, and the
    origin is reported once, after its last event, with the worst status of any of them."""
    time_ = FakeTime()
    count = 2 * ROUTE_RUN + 5
    last = f"e{count - 1}"
    logs = ScriptedSink(max_batch_events=1000, name="logs")
    picky = ScriptedSink(*[fail_where(lambda e: e["event_id"] == last, retryable=False)] * 10, name="picky")
    router = Router([Route(delivery(logs, time_)), Route(delivery(picky, time_, max_wait_s=60.0))])
    report = router.submit([("big", events(count)), ("small", events(1, count))])
    assert report.statuses == {}  # the picky sink still buffers part of "big"
    report = router.flush()
    assert report.statuses == {"big": Status.NOT_DELIVERED, "small": Status.DELIVERED}
    expected = [f"e{i}" for i in range(count + 1)]
    assert [event["event_id"] for event in logs.taken] == expected
    assert [event["event_id"] for event in picky.taken] == [i for i in expected if i != last]


class _EventDict(dict):  # type: ignore[type-arg]
    """An event that is a dict, but not exactly one."""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["plain", "subclass", "reject"]), max_size=6), min_size=1, max_size=6))
def test_every_event_and_reject_of_any_mix_is_routed_exactly_once(records: list[list[str]]) -> None:
    """However events and rejects are mixed in a record, and whatever dict type an event is, each event reaches
    the sink once and in order, each reject the dead letter once, and the origin takes the worst status."""
    time_ = FakeTime()
    dead = ScriptedSink(name="dead")
    dead_letter = delivery(dead, time_)
    sink = ScriptedSink()
    router = Router([Route(delivery(sink, time_, dead_letter=dead_letter))], dead_letter)
    items: list[tuple[str, list[dict[str, Any] | Reject]]] = []
    sent: list[str] = []
    rejected: list[dict[str, Any]] = []
    for n, kinds in enumerate(records):
        record: list[dict[str, Any] | Reject] = []
        for i, kind in enumerate(kinds):
            if kind == "reject":
                reject = Reject("bad_base64", f"not base64 {n}.{i}", b"??", sequence_number=str(n))
                record.append(reject)
                rejected.append(reject.to_dead_letter())
            else:
                event = {"type": "log", "event_id": f"e{n}.{i}"}
                record.append(event if kind == "plain" else _EventDict(event))
                sent.append(event["event_id"])
        items.append((str(n), record))

    report = router.deliver(items)

    assert [event["event_id"] for event in sink.taken] == sent
    assert dead.taken == rejected
    assert report.statuses == {
        str(n): Status.DEAD_LETTERED if "reject" in kinds else Status.DELIVERED for n, kinds in enumerate(records)
    }


_TYPES = ("log", "metric", "invocation")


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.lists(st.sampled_from(_TYPES), max_size=8), min_size=1, max_size=6),
    null_types=st.sampled_from([None, frozenset({"log"}), frozenset({"metric", "invocation"})]),
    file_types=st.sampled_from([None, frozenset({"log"}), frozenset({"invocation"})]),
    max_events=st.integers(1, 5),
)
def test_the_null_sink_beside_a_line_sink_leaves_its_lines_whole(
    records: list[list[str]], null_types: frozenset[str] | None, file_types: frozenset[str] | None, max_events: int
) -> None:
    """The null sink has no byte limit, so events are not encoded for it. Beside a file sink, however their types
    are routed (both taking every type: encoded once for both; one taking some: each its own), the file holds
    exactly the lines of its events, in order, the null sink counts its events sent, and every origin is
    delivered."""
    with tempfile.TemporaryDirectory() as scratch:
        path = f"{scratch}/events.ndjson"
        null, lines = NullSink(), JsonLinesFileSink(path)
        null.max_batch_events = lines.max_batch_events = max_events  # type: ignore[misc]
        time_ = FakeTime()
        nulled, filed = delivery(null, time_), delivery(lines, time_)  # type: ignore[arg-type]
        router = Router([Route(nulled, null_types), Route(filed, file_types)])
        items = [
            (str(n), [{"type": kind, "event_id": f"e{n}.{i}", "message": "é\u2028"} for i, kind in enumerate(kinds)])
            for n, kinds in enumerate(records)
        ]

        report = router.deliver(items)
        router.close()

        every = [event for _, record in items for event in record]
        assert Path(path).read_bytes() == b"".join(
            encode_line(event) for event in every if file_types is None or event["type"] in file_types
        )
        routed_to_null = sum(null_types is None or event["type"] in null_types for event in every)
        assert nulled.counters.received_events == nulled.counters.sent_events == routed_to_null
        assert not nulled.measures and filed.measures
        assert report.statuses == {str(n): Status.DELIVERED for n in range(len(records))}
