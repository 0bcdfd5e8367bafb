"""The one interface every sink implements.

A sink only writes a batch and classifies its own failures. Batching, retries with backoff,
deadlines and counters are the delivery layer's job and are written once, around every sink.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, Protocol

import orjson

from shipper.errors import ShipperError

_NDJSON = orjson.OPT_APPEND_NEWLINE
_send_deadline: ContextVar[float] = ContextVar("send_deadline", default=math.inf)


class Waits(NamedTuple):
    """How a send under way waits: the delivery layer's `sleep` (which returns False when a stop cut the
    wait short: shipper.stopping.interruptible_sleep) and its `clock`."""

    sleep: Callable[[float], object]
    clock: Callable[[], float]


_REAL_TIME = Waits(time.sleep, time.monotonic)
_send_waits: ContextVar[Waits] = ContextVar("send_waits", default=_REAL_TIME)


class SinkError(ShipperError):
    """A sink did not take (all of) a batch.

    retryable:   whether sending the same events again may succeed (throttling, 5xx, timeouts).
    failed:      indices into the batch of the events that were not delivered; None means all.
    retry_after: seconds the destination asked us to wait before trying again, if it said so.
    blocked:     the destination cannot take anything now, through no fault of the events (a full disk,
                 a closed pipe): they are not delivered, for the caller to send again, never dead-lettered.
    too_large:   the destination refused the request for its size (HTTP 413): the delivery layer sends the
                 events again in smaller batches; one event refused alone goes to the dead letter.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        failed: Sequence[int] | None = None,
        retry_after: float | None = None,
        blocked: bool = False,
        too_large: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.failed = failed
        self.retry_after = retry_after
        self.blocked = blocked
        self.too_large = too_large


class Sink(Protocol):
    """A destination. One that writes events as NDJSON lines unchanged may also have `send_ndjson` (LineSink):
    the delivery layer then hands it the lines it encoded to measure batches, so each event is encoded once."""

    name: str
    max_batch_events: int
    """The most events the destination takes in one send."""

    @property
    def max_batch_bytes(self) -> int | None:
        """The most encoded bytes the destination takes in one send; None for one that never looks at the
        events' bytes (the null sink): events are then not encoded for it."""

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        """Deliver all of `events` or raise SinkError naming what was not delivered."""

    def close(self) -> None:
        """Flush and release what the sink holds."""


class LineSink(Protocol):
    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        """Deliver the `encode_ndjson` of `count` events, given as chunks of whole lines to join, or raise
        SinkError naming what was not delivered (indices of its lines)."""


def encode_line(event: dict[str, Any]) -> bytes:
    """One event as one NDJSON line, its newline included: what batch limits are measured in."""
    return orjson.dumps(event, option=_NDJSON)


def ndjson_lines(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each event's `encode_line`."""
    dumps = orjson.dumps
    return [dumps(event, option=_NDJSON) for event in events]


def encode_ndjson(events: Sequence[dict[str, Any]]) -> bytes:
    """One JSON object per line, each line ending in a newline."""
    return b"".join(ndjson_lines(events))


@contextmanager
def sending_within(seconds: float) -> Iterator[None]:
    """Run a send that must be over within `seconds` (the caller's deadline): see `time_left`."""
    token = _send_deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _send_deadline.reset(token)


@contextmanager
def waiting_with(sleep: Callable[[float], object], clock: Callable[[], float]) -> Iterator[None]:
    """Run a send whose waits (a sink polling for an acknowledgement) use this sleep and clock: see `waits`."""
    token = _send_waits.set(Waits(sleep, clock))
    try:
        yield
    finally:
        _send_waits.reset(token)


def waits() -> Waits:
    """The sleep and clock of the send under way (time.sleep and time.monotonic outside the delivery layer).

    A sink that waits between requests sleeps with these, so that a stop ends its wait as it ends the
    delivery layer's, and bounds the wait by `time_left`.
    """
    return _send_waits.get()


def time_left() -> float:
    """Seconds the send under way may still take before its caller's deadline (inf when it has none).

    A sink that waits on the network bounds its waits by this, so a slow destination cannot hold a
    Lambda past its timeout.
    """
    return _send_deadline.get() - time.monotonic()


def not_written(where: str, error: OSError, delivered: int, total: int) -> SinkError:
    """The error for a write that failed with only the first `delivered` of `total` events written whole:
    the rest are not delivered, for the caller to send again."""
    return SinkError(
        f"cannot write to {where}: {error.strerror} ({total - delivered:,} of {total:,} events not written)",
        retryable=False,
        blocked=True,
        failed=list(range(delivered, total)) if delivered else None,
    )
