"""Splunk HTTP Event Collector sink (`splunk-hec:URL`): events to the HEC event endpoint.

URL is the collector (`https://splunk:8088`; /services/collector/event is added). Options:

    token=REFERENCE     (required) env:NAME, ssm:/path or secretsmanager:name; sent as `Authorization: Splunk ...`
    index=, source=, sourcetype=   (sourcetype defaults to aws:lambda, source to the event's log group)
    ack=true            indexer acknowledgement: each request is confirmed on /services/collector/ack
                        before its events count as delivered (within ack_timeout_s, default 10)

Each event is one HEC event: `time` (epoch seconds), `host` (the function), `source`, `sourcetype`,
`index`, `event` (the structured event, which Splunk extracts fields from) and the indexed `fields`
function, type and level. A request and its acknowledgement queries share one X-Splunk-Request-Channel.

Answers: 429, 503 (server busy, queue full) and other 5xx are retried (Retry-After honoured);
400, 401 and 403 are not. An answer naming `invalid-event-number` N means the events before N were
taken and N was refused: N is dead-lettered with Splunk's message, and the events after it are sent
again at once. An acknowledgement that does not come in time sends the request again (HEC's advice):
at least once. The wait for it pauses with the delivery layer's sleep and never outlasts the send's time
left (`shipper.sinks.base.waits`, `time_left`): past it, or on a stop, the events are not delivered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shipper.errors import ConfigError
from shipper.sinks.backend import flag, positive, text, transport
from shipper.sinks.base import SinkError, time_left, waits
from shipper.sinks.http import HttpSink

__all__ = ["SplunkHecSink", "build"]

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"


class SplunkHecSink:
    """Sends each batch as HEC events, with indexer acknowledgement when enabled (see the module docstring)."""

    name = "splunk-hec"

    def __init__(
        self,
        target: HttpSink,
        acks: HttpSink | None = None,
        *,
        index: str | None = None,
        source: str | None = None,
        sourcetype: str = "aws:lambda",
        ack_timeout_s: float = 10.0,
    ) -> None:
        self._target = target
        self._acks = acks
        self.index = index
        self.source = source
        self.sourcetype = sourcetype
        self.ack_timeout_s = ack_timeout_s
        self.max_batch_events = target.max_batch_events
        self.max_batch_bytes = target.max_batch_bytes
        self._headers = {"X-Splunk-Request-Channel": str(uuid.uuid4())}

    def __repr__(self) -> str:
        return f"SplunkHecSink({self._target.url!r}, ack={self._acks is not None})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        refused: list[int] = []
        reasons: list[str] = []
        start = 0
        while start < len(events):
            body = b"".join(orjson.dumps(self.hec_event(event), default=str) for event in events[start:])
            reply = self._target.post(body, "application/json", self._headers)
            answer = _json(reply.body)
            invalid = answer.get("invalid-event-number")
            if not reply.ok and isinstance(invalid, int) and 0 <= invalid < len(events) - start:
                refused.append(start + invalid)
                reasons.append(self._target.quote(reply))
                start += invalid + 1  # the events before it were taken; send the rest again
                continue
            if not reply.ok:
                error = self._target.refusal(reply)
                error.failed = refused + list(range(start, len(events)))  # the refused ones are refused again
                raise error
            ack_id = answer.get("ackId")
            if self._acks is not None and isinstance(ack_id, int):
                self._wait_for_ack(ack_id, start, len(events), refused)
            break
        if refused:
            raise SinkError(f"Splunk HEC refused {len(refused)} events: {reasons[0]}", retryable=False, failed=refused)

    def close(self) -> None:
        self._target.close()
        if self._acks is not None:
            self._acks.close()

    def _wait_for_ack(self, ack_id: int, start: int, end: int, refused: list[int]) -> None:
        """Poll the ack endpoint until `ack_id` is indexed, pausing with the delivery layer's sleep.

        Not indexed within ack_timeout_s: a retryable SinkError. Not indexed within the send's time left
        (the Lambda's deadline), or when a stop cuts a pause short: the events are not delivered, to be sent
        again by the caller (SinkError.blocked), never retried past the deadline nor dead-lettered.
        """
        assert self._acks is not None
        sleep, clock = waits()
        give_up = clock() + self.ack_timeout_s
        pause = 0.1
        while True:
            reply = self._acks.post(orjson.dumps({"acks": [ack_id]}), "application/json", self._headers)
            if not reply.ok:
                error = self._acks.refusal(reply)
                error.failed = refused + list(range(start, end))
                raise error
            acks = _json(reply.body).get("acks")
            if isinstance(acks, dict) and acks.get(str(ack_id)) is True:
                return
            wait = min(pause, give_up - clock())
            if wait <= 0:
                why, blocked = f"within {self.ack_timeout_s:g} s (ack_timeout_s)", False
            elif wait >= time_left():
                why, blocked = "within the time left for the send", True
            elif sleep(wait) is False:
                why, blocked = "before the stop", True
            else:
                pause = min(pause * 2, 2.0)
                continue
            raise SinkError(
                f"Splunk HEC {self._target.url}: ack {ack_id} not indexed {why}",
                retryable=not blocked,
                blocked=blocked,
                failed=refused + list(range(start, end)),
            )

    def hec_event(self, event: dict[str, Any]) -> dict[str, Any]:
        timestamp = event.get("timestamp")
        hec: dict[str, Any] = {"time": timestamp / 1000 if isinstance(timestamp, int) else time.time()}
        if event.get("function"):
            hec["host"] = event["function"]
        source = self.source or event.get("log_group")
        if source:
            hec["source"] = source
        hec["sourcetype"] = self.sourcetype
        if self.index:
            hec["index"] = self.index
        hec["event"] = event
        fields = {name: str(event[name]) for name in ("function", "type", "level") if event.get(name) is not None}
        if fields:
            hec["fields"] = fields
        return hec


def _json(body: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def build(spec: str, options: Mapping[str, Any]) -> SplunkHecSink:
    """A SplunkHecSink from `splunk-hec:URL` and options (see the module docstring; the HTTP sink's apply)."""
    base = spec.removeprefix("splunk-hec:").rstrip("/")
    for path in (EVENT_PATH, ACK_PATH):
        base = base.removesuffix(path)
    options = dict(options)
    if "token" not in options:
        raise ConfigError("Splunk HEC sink needs token=REFERENCE (env:NAME, ssm:/path or secretsmanager:name)")
    options["api_key"] = options.pop("token")
    if "api_key_header" in options or "api_key_scheme" in options:
        raise ConfigError("Splunk HEC sink sends its token as `Authorization: Splunk TOKEN`; it cannot be changed")
    http = {"api_key_scheme": "Splunk"}
    own = {
        "index": text,
        "source": text,
        "sourcetype": text,
        "ack": flag,
        "ack_timeout_s": positive(float),
    }
    target, values = transport("Splunk HEC", base + EVENT_PATH, options, own, http)
    acks = None
    if values.pop("ack", False):
        acks, _ = transport("Splunk HEC", base + ACK_PATH, options, own, http)
    return SplunkHecSink(target, acks, **values)
