"""The Splunk HEC sink against a loopback server implementing the event endpoint (concatenated JSON
events, its coded answers, invalid-event-number) and indexer acknowledgement (channels, ack ids)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from loopback import Request, loopback
from test_sink_otlp import invocation, log_event

from shipper.config import Config, SinkConfig, build_router
from shipper.delivery import Status
from shipper.errors import ConfigError
from shipper.sinks import build_sink
from shipper.stopping import grace_deadline, interruptible_sleep
from shipper.testing import FakeTime

TOKEN = "11111111-2222-3333-4444-555555555555"


class Hec:
    """Splunk's HEC: stores events by event id; with `ack`, gives ack ids that are indexed after `polls` queries
    (those in `lost` never are)."""

    def __init__(self, *, ack: bool = False, polls: int = 2, lost: frozenset[int] = frozenset()) -> None:
        self.ack = ack
        self.polls = polls
        self.lost = lost
        """Ack ids never indexed (the indexer lost them)."""
        self.stored: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.channels: set[str] = set()
        self.queries: Counter[int] = Counter()
        self.next_ack = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        if "Authorization" not in request.headers:
            return self.coded(401, "Token is required", 2)
        if request.headers["Authorization"] != f"Splunk {TOKEN}":
            return self.coded(403, "Invalid token", 4)
        channel = request.headers.get("X-Splunk-Request-Channel")
        if self.ack and not channel:
            return self.coded(400, "Data channel is missing", 10)
        with self.lock:
            self.channels.add(str(channel))
            if request.path == "/services/collector/ack":
                ids = orjson.loads(request.body)["acks"]
                self.queries.update(ids)
                acks = {str(i): self.queries[i] >= self.polls and i not in self.lost for i in ids}
                return 200, orjson.dumps({"acks": acks}), {}
            assert request.path == "/services/collector/event"
            for number, hec in enumerate(split(request.body)):
                if hec["event"].get("message") == "poison":
                    return self.coded(400, "Invalid data format", 6, **{"invalid-event-number": number})
                self.stored[hec["event"]["event_id"]] += 1
                self.events.append(hec)
            if not self.ack:
                return self.coded(200, "Success", 0)
            self.next_ack += 1
            return self.coded(200, "Success", 0, ackId=self.next_ack)

    @staticmethod
    def coded(status: int, text: str, code: int, **extra: Any) -> tuple[int, bytes, dict[str, str]]:
        return status, orjson.dumps({"text": text, "code": code, **extra}), {"Content-Type": "application/json"}


def split(body: bytes) -> list[dict[str, Any]]:
    """HEC's body: JSON objects one after another."""
    import json

    decoder, text, at, found = json.JSONDecoder(), body.decode(), 0, []
    while at < len(text):
        obj, at = decoder.raw_decode(text, at)
        found.append(obj)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def router(url: str, tmp_path: Path, **options: Any) -> tuple[Any, FakeTime]:
    time_ = FakeTime()
    options = {"token": "env:HEC_TOKEN", "index": "lambda", **options}
    config = Config(
        (SinkConfig(f"splunk-hec:{url}", "splunk", tuple(options.items())),),
        dead_letter=f"dir:{tmp_path / 'dead'}",
        retry_max_attempts=4,
    )
    return build_router(config, sleep=time_.sleep, clock=time_.clock), time_


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((tmp_path / "dead").glob("*.ndjson")) for line in path.open()]


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)


def test_events_are_indexed_once_with_their_metadata_after_the_indexer_acknowledges_them(tmp_path: Path) -> None:
    hec = Hec(ack=True, polls=2)
    with loopback(hec) as server:
        routing, _ = router(server.url, tmp_path, ack=True, sourcetype="aws:lambda:shipper")
        report = routing.deliver([("a", [log_event(i) for i in range(3)]), ("b", [invocation(3)])])
        routing.close()
    assert report.statuses == {"a": Status.DELIVERED, "b": Status.DELIVERED}
    assert hec.stored == Counter({"e0": 1, "e1": 1, "e2": 1, "e3": 1})
    assert hec.queries == Counter({1: 2})  # polled until indexed
    assert len(hec.channels) == 1  # the event request and its ack queries on one channel
    first = hec.events[0]
    assert first == {
        "time": 1716222585.0,
        "host": "orders-api",
        "source": "/aws/lambda/orders-api",
        "sourcetype": "aws:lambda:shipper",
        "index": "lambda",
        "event": log_event(0),
        "fields": {"function": "orders-api", "type": "log", "level": "ERROR"},
    }


def test_an_invalid_event_is_dead_lettered_the_events_after_it_are_sent_again_at_once(tmp_path: Path) -> None:
    hec = Hec()
    events = [log_event(0), log_event(1), log_event(2, message="poison"), log_event(3), log_event(4)]
    with loopback(hec) as server:
        routing, _ = router(server.url, tmp_path)
        report = routing.deliver([(f"r{i}", [event]) for i, event in enumerate(events)])
        routing.close()
    assert report.statuses == {
        "r0": Status.DELIVERED,
        "r1": Status.DELIVERED,
        "r2": Status.DEAD_LETTERED,
        "r3": Status.DELIVERED,
        "r4": Status.DELIVERED,
    }
    assert hec.stored == Counter({"e0": 1, "e1": 1, "e3": 1, "e4": 1})
    (entry,) = dead_letters(tmp_path)
    assert entry["reason"].startswith("Splunk HEC refused 1 events: ") and "Invalid data format" in entry["reason"]
    assert [event["event_id"] for event in entry["events"]] == ["e2"]


def test_a_busy_server_is_retried_a_bad_token_is_dead_lettered_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hec = Hec()
    with loopback(hec) as server:
        server.plan.extend(["503", "429", "drop"])
        routing, time_ = router(server.url, tmp_path, read_timeout_s=2)
        assert routing.deliver([("a", [log_event(0)])]).statuses == {"a": Status.DELIVERED}
        assert hec.stored == Counter({"e0": 1}) and time_.sleeps[1] >= 3.0
        monkeypatch.setenv("HEC_TOKEN", "not-the-token-0000")
        assert routing.deliver([("b", [log_event(1)])]).statuses == {"b": Status.DEAD_LETTERED}
        routing.close()
    (entry,) = dead_letters(tmp_path)
    assert "HTTP 403" in entry["reason"] and "Invalid token" in entry["reason"]
    assert "not-the-token-0000" not in str(entry)


def test_an_acknowledgement_that_does_not_come_in_time_sends_the_events_again(tmp_path: Path) -> None:
    hec = Hec(ack=True, polls=1, lost=frozenset({1}))
    with loopback(hec) as server:
        routing, _ = router(server.url, tmp_path, ack=True, ack_timeout_s=0.3)
        assert routing.deliver([("a", [log_event(0)])]).statuses == {"a": Status.DELIVERED}
        routing.close()
    assert hec.stored["e0"] == 2  # at least once: the lost request may have been indexed after all
    assert hec.queries[1] >= 2 and hec.queries[2] == 1


def test_the_token_is_required_and_its_header_fixed() -> None:
    with pytest.raises(ConfigError, match="needs token"):
        build_sink("splunk-hec:https://splunk:8088", {})
    with pytest.raises(ConfigError, match="cannot be changed"):
        build_sink("splunk-hec:https://splunk:8088", {"token": "env:T", "api_key_header": "X-Token"})
    with pytest.raises(ConfigError, match="secret reference"):
        build_sink("splunk-hec:https://splunk:8088", {"token": TOKEN})


NEVER = frozenset(range(1, 1000))
"""Ack ids an indexer never acknowledges."""


def test_an_ack_that_never_comes_ends_with_the_lambdas_time_not_the_ack_timeout(tmp_path: Path) -> None:
    """The default ack_timeout_s (10 s) is longer than the invocation has: the handler answers in time and
    lists the record as failed, to be sent again; nothing is dead-lettered."""
    from test_handler import Context, failures, kinesis_event, record

    from shipper.handler import KinesisHandler

    hec = Hec(ack=True, polls=1, lost=NEVER)
    with loopback(hec) as server:
        handler = KinesisHandler.from_env(
            {
                "SHIPPER_SINKS": f"splunk-hec:{server.url} token=env:HEC_TOKEN ack=true",
                "SHIPPER_DEAD_LETTER": f"dir:{tmp_path / 'dead'}",
                "SHIPPER_TIMEOUT_MARGIN_S": "0.3",
            }
        )
        started = time.monotonic()
        response = handler(kinesis_event([record(["order 1 placed\n"])]), Context(remaining_ms=1200))
        took = time.monotonic() - started
        handler.router.close()
    assert took < 1.2  # within the invocation's time, not the 10 s ack timeout
    assert len(failures(response)) == 1 and not dead_letters(tmp_path)
    assert sum(hec.stored.values()) >= 1 and sum(hec.queries.values()) >= 2  # sent, then polled until time ran out


def test_a_stop_ends_the_ack_wait_at_once_and_the_events_are_not_delivered(tmp_path: Path) -> None:
    """`shipper consume` waits with a sleep a stop cuts short: the ack wait ends with it, and the events are
    not delivered (sent again after the restart), never dead-lettered."""
    hec = Hec(ack=True, polls=1, lost=NEVER)
    stop = threading.Event()
    with loopback(hec) as server:
        config = Config(
            (SinkConfig(f"splunk-hec:{server.url}", "splunk", (("token", "env:HEC_TOKEN"), ("ack", "true"))),),
            dead_letter=f"dir:{tmp_path / 'dead'}",
        )
        routing = build_router(config, sleep=interruptible_sleep(stop))
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        report = routing.deliver([("a", [log_event(0)])], grace_deadline(stop))
        took = time.monotonic() - started
        routing.close()
    assert report.statuses == {"a": Status.NOT_DELIVERED}
    assert took < 2.0 and not dead_letters(tmp_path)
