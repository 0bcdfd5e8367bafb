"""What the AWS sinks share: packing a batch into the units a destination takes, and its outcome.

Each AWS sink sends one batch per `send` and classifies its own failures. Retrying, backoff and
deadlines belong to the delivery layer (clients make one attempt per call: shipper.aws_clients).

A batch may be partly delivered. What was not delivered is built in one place, `Outcome`: the indices
of the events the destination did not take, retryable when any of them may succeed on a second try
(an event that can never be delivered, such as one larger than a record, then fails for good on the
retry). Events that cannot be represented at all fail at once, not retryable; the rest still goes out.
No boto3 here: botocore's exceptions are imported when a call is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shipper.aws_errors import RETRYABLE_CODES, classify
from shipper.sinks.base import SinkError

__all__ = ["MiB", "Outcome", "Packed", "chunks", "deliver", "ndjson_lines"]

MiB = 1024 * 1024


@dataclass(slots=True)
class Packed:
    """One unit a destination takes (a record, a metric datum, an object) and the batch indices of its events."""

    payload: Any
    events: list[int]
    size: int
    key: str = ""
    """What the unit is addressed by: the partition key (Kinesis) or the namespace (CloudWatch)."""


class Outcome:
    """Which events of one batch were not delivered, why, and whether trying them again may help."""

    def __init__(self) -> None:
        self.failed: set[int] = set()
        self.retryable = False
        self.retry_after: float | None = None
        self._reasons: dict[str, None] = {}

    def fail(self, events: Iterable[int], reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.failed.update(events)
        self.retryable |= retryable
        self._reasons.setdefault(reason)
        if retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, retry_after)

    def entries(self, call: Sequence[Packed], entries: Sequence[Mapping[str, Any]]) -> None:
        """Take the per-record results of PutRecords or PutRecordBatch, in the order of `call`."""
        for unit, entry in zip(call, entries, strict=True):
            code = entry.get("ErrorCode")
            if code:
                self.fail(unit.events, f"{code}: {entry.get('ErrorMessage', '')}", retryable=code in RETRYABLE_CODES)

    def raise_if_failed(self, sink: str, total: int) -> None:
        """Raise the one SinkError that describes this batch, if anything in it was not delivered."""
        if not self.failed:
            return
        reasons = list(self._reasons)
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        raise SinkError(
            f"{sink}: {len(self.failed)} of {total} events not delivered: {'; '.join(reasons[:3])}{more}",
            retryable=self.retryable,
            failed=None if len(self.failed) == total else sorted(self.failed),
            retry_after=self.retry_after,
        )


def chunks(units: Iterable[Packed], max_units: int, max_bytes: int) -> Iterator[list[Packed]]:
    """Split units into calls of at most `max_units` units and `max_bytes` bytes, in order."""
    call: list[Packed] = []
    size = 0
    for unit in units:
        if call and (len(call) == max_units or size + unit.size > max_bytes):
            yield call
            call, size = [], 0
        call.append(unit)
        size += unit.size
    if call:
        yield call


def deliver(
    calls: Sequence[list[Packed]],
    put: Callable[[list[Packed]], Sequence[Mapping[str, Any]]],
    outcome: Outcome,
) -> None:
    """Make each call in turn; `put` returns per-record results, or nothing when a call is all-or-nothing.

    A call that fails for good fails its own events and the next call still goes. A call that may pass
    later stops the batch there: its events and all the calls after it are left for the retry.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    for n, call in enumerate(calls):
        try:
            entries = put(call)
        except (BotoCoreError, ClientError) as exc:
            retryable, reason, retry_after = classify(exc)
            failing = calls[n:] if retryable else [call]
            events = (index for each in failing for unit in each for index in unit.events)
            outcome.fail(events, reason, retryable=retryable, retry_after=retry_after)
            if retryable:
                return
            continue
        if entries:
            outcome.entries(call, entries)


def ndjson_lines(events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[tuple[int, bytes]]:
    """(index, line) for every event that encodes as JSON; an event that does not fails for good."""
    lines = []
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for index, event in enumerate(events):
        try:
            lines.append((index, dumps(event, option=option)))
        except orjson.JSONEncodeError as exc:
            outcome.fail([index], f"event is not JSON-serialisable: {exc}", retryable=False)
    return lines
