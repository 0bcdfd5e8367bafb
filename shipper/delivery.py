"""Delivery: batching, retries, deadlines, the dead letter and counters, written once around any sink.

    Router.deliver([(origin, [event | Reject, ...]), ...], deadline) -> DeliveryReport
      routes each event by its `type` to the sinks configured for it, each wrapped in a Delivery;
      rejects go to the dead letter.
    Delivery (one per sink)
      buffers events into batches within the sink's limits, sends them, retries what the sink says
      may succeed (exponential backoff, full jitter, Retry-After honoured, only the failed events),
      sends a batch the destination refuses for its size again in halves, and hands what the sink
      refuses for good, or what still fails after the last attempt, to the dead letter.

Every event ends in one `Status` per sink. An origin (an opaque key the caller gives, such as a
Kinesis sequence number) takes the worst status of all its events in all sinks:
NOT_DELIVERED > DEAD_LETTERED > DELIVERED. NOT_DELIVERED means the caller must send it again:
retrying would pass the deadline, the sink was blocked (a full disk, a closed pipe), or the dead letter
could not be written. Nothing is dropped
without being counted: events whose type no sink takes are counted as unrouted.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from shipper.contract import EVENT_TYPES
from shipper.names import RejectCode
from shipper.reject import Reject
from shipper.sinks.base import Sink, SinkError, encode_line, ndjson_lines, waiting_with
from shipper.terminal import plural

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "MIN_SPLIT_BYTES",
    "Deadline",
    "Delivery",
    "DeliveryReport",
    "Encoded",
    "Items",
    "Origin",
    "RetryPolicy",
    "Route",
    "Router",
    "Settled",
    "SinkCounters",
    "Status",
    "encode",
    "event_size",
    "worse",
]

log = logging.getLogger(__name__)

Origin = Hashable
"""The caller's key for a group of events (a Kinesis sequence number, a file name); opaque here."""
Deadline = Callable[[], float]
"""Returns the seconds the caller has left (for Lambda: remaining time less a safety margin)."""

Items = Iterable[tuple[Origin, Iterable[dict[str, Any] | Reject]]]
"""What a Router takes: per origin, its events and rejects."""


class Status(StrEnum):
    """What became of an event, or of an origin: the worst of its events' statuses."""

    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    NOT_DELIVERED = "not_delivered"
    """Not delivered and not dead-lettered: the caller must send it again."""


DEFAULT_MAX_WAIT_S = 1.0
"""How long an event may wait in a buffer for its batch to fill, by default."""
ENCODE_RUN = 64
"""Events encoded before their lines are joined and freed (see `encode`)."""
ROUTE_RUN = 2048
"""Events of one origin encoded and handed to the sinks at a time: a record of many events is never held
as NDJSON all at once (it would be, twice, while its lines are joined), only what the sinks' buffers hold."""

MIN_SPLIT_BYTES = 64 * 1024
"""A batch the destination refuses as too large is split in halves only while it is larger than this: a
destination that refuses even that little is refusing something else, and each split costs a request."""

_SEVERITY = {Status.DELIVERED: 0, Status.DEAD_LETTERED: 1, Status.NOT_DELIVERED: 2}


def worse(status: Status, than: Status) -> bool:
    """Whether `status` is worse than `than`: NOT_DELIVERED > DEAD_LETTERED > DELIVERED."""
    return _SEVERITY[status] > _SEVERITY[than]


def event_size(event: dict[str, Any]) -> int:
    """Bytes the event takes as one NDJSON line: what batch limits are measured in."""
    return len(encode_line(event))


class Encoded(NamedTuple):
    """Events as NDJSON: `data` holds one line per event, `sizes` each line's bytes (its newline included)."""

    data: bytes
    sizes: list[int]


def encode(events: Sequence[dict[str, Any]]) -> Encoded:
    """The events' NDJSON, encoded once for every sink: measured by batch limits, written by line sinks.

    Lines are joined ENCODE_RUN at a time: what stays is one right-sized object per run of events, and
    few lines are alive at once (each of orjson's takes a few KB of heap until it is shrunk and freed).
    """
    if len(events) <= ENCODE_RUN:
        lines = ndjson_lines(events)
        return Encoded(b"".join(lines), list(map(len, lines)))
    parts: list[bytes] = []
    sizes: list[int] = []
    for start in range(0, len(events), ENCODE_RUN):
        lines = ndjson_lines(events[start : start + ENCODE_RUN])
        parts.append(b"".join(lines))
        sizes += map(len, lines)
    return Encoded(b"".join(parts), sizes)


class _Batch:
    """Events buffered for one sink, their line sizes, and their origins as runs of (origin, count).

    A sink that takes events (`keep_events`) has them kept; a line sink has their NDJSON kept instead,
    in `chunks` of whole lines, and events it refuses are decoded again from their lines for the dead letter.
    """

    __slots__ = ("chunks", "events", "keep_events", "runs", "size", "sizes")

    def __init__(self, keep_events: bool) -> None:
        self.keep_events = keep_events
        self.events: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []
        self.sizes: list[int] = []
        self.runs: list[tuple[Origin, int]] = []
        self.size = 0
        """Bytes of the lines."""

    def __len__(self) -> int:
        return len(self.sizes)

    def take(self, origin: Origin, events: Sequence[dict[str, Any]], encoded: Encoded, size: int) -> None:
        """Append events of one origin with their NDJSON, which takes `size` bytes."""
        count = len(encoded.sizes)
        if not count:
            return
        if self.keep_events:
            self.events += events
        else:
            self.chunks.append(encoded.data)
        self.sizes += encoded.sizes
        self.size += size
        runs = self.runs
        if runs and runs[-1][0] == origin:
            runs[-1] = (origin, runs[-1][1] + count)
        else:
            runs.append((origin, count))

    def lines(self) -> list[bytes]:
        """Each event's line, from a line sink's batch."""
        data = b"".join(self.chunks)
        lines = []
        offset = 0
        for size in self.sizes:
            lines.append(data[offset : offset + size])
            offset += size
        return lines

    def event_dicts(self) -> list[dict[str, Any]]:
        """The events, decoded from their lines when they were not kept."""
        return self.events if self.keep_events else [orjson.loads(line) for line in self.lines()]

    def split(self, failed: Sequence[int] | None) -> tuple[_Batch, _Batch]:
        """(delivered, failed) parts of a send whose SinkError named `failed` indices."""
        if failed is None:
            return _Batch(self.keep_events), self
        bad = set(failed)
        if not all(isinstance(index, int) and 0 <= index < len(self) for index in bad):
            # indices outside the batch: trust none of them, nothing is lost by resending
            return _Batch(self.keep_events), self
        delivered, refused = _Batch(self.keep_events), _Batch(self.keep_events)
        lines = None if self.keep_events else self.lines()
        index = 0
        for origin, count in self.runs:
            for i in range(index, index + count):
                size = self.sizes[i]
                events = [self.events[i]] if lines is None else []
                encoded = Encoded(b"" if lines is None else lines[i], [size])
                (refused if i in bad else delivered).take(origin, events, encoded, size)
            index += count
        return delivered, refused

    def per_origin(self) -> dict[Origin, int]:
        """Events per origin, in the order the origins came."""
        counts: dict[Origin, int] = {}
        for origin, count in self.runs:
            counts[origin] = counts.get(origin, 0) + count
        return counts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniformly in [0, min(cap, base * 2**(n-1))]."""

    max_attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 10.0
    retry_after_max_s: float = 300.0
    """The longest Retry-After obeyed. A destination that asks for longer gets its events back as
    NOT_DELIVERED at once (the caller sends them again later) rather than stalling a run or a shard."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)))


@dataclass(slots=True)
class SinkCounters:
    """Totals for one sink since start; the fields are shipper.names.SinkCounter. After a flush:
    received = sent + dead_lettered + not_delivered."""

    received_events: int = 0
    sent_events: int = 0
    errors: int = 0
    """Failed sends (each SinkError), whether retried or not."""
    retries: int = 0
    """Sends that were retries of a failed send."""
    dead_lettered_events: int = 0
    not_delivered_events: int = 0
    """Neither delivered nor dead-lettered: reported to the caller to send again."""


@dataclass(frozen=True, slots=True)
class Settled:
    """`count` events of `origin` ended in `status` in one sink."""

    origin: Origin
    status: Status
    count: int
    reason: str | None = None


class Delivery:
    """One sink with batching, retries, a deadline, a dead letter and counters around it.

    `add` buffers an event and sends the buffer when it reaches the sink's max_batch_events or
    max_batch_bytes, or when its oldest event is `max_wait_s` old; `flush` sends what is buffered.
    Both return what was settled by the sends they made. `dead_letter` is the Delivery that takes
    entries for refused events; without one, refused events are NOT_DELIVERED.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        dead_letter: Delivery | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.sink = sink
        self.name = name or sink.name
        self.retry = retry or RetryPolicy()
        self.max_wait_s = max_wait_s
        self.dead_letter = dead_letter
        self.counters = SinkCounters()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._max_events = sink.max_batch_events
        self._send_ndjson: Callable[[Sequence[bytes], int], None] | None = getattr(sink, "send_ndjson", None)
        """The sink's LineSink.send_ndjson, when it writes the lines as they are."""
        self.measures = sink.max_batch_bytes is not None
        """Whether events are encoded for this sink (to be measured against its byte limit, and a line sink's
        written); a sink without a limit gets empty lines, so a line sink's batch holds only their count."""
        self._max_bytes = sys.maxsize if sink.max_batch_bytes is None else sink.max_batch_bytes
        self._buffer = self._new_batch()
        self._oldest = 0.0

    def __repr__(self) -> str:
        return f"Delivery({self.name!r}, buffered={len(self._buffer)})"

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add(self, event: dict[str, Any], origin: Origin = None, deadline: Deadline | None = None) -> list[Settled]:
        """Buffer one event; send the buffer if it is full or old."""
        return self.add_many(origin, [event], deadline)

    def add_many(
        self,
        origin: Origin,
        events: Sequence[dict[str, Any]],
        deadline: Deadline | None = None,
        encoded: Encoded | None = None,
    ) -> list[Settled]:
        """Buffer events of one origin, in order, sending the buffer whenever it fills, and at the end if it is old.

        `encoded` is `encode(events)`, when the caller has encoded them. Returns what the sends settled.
        """
        if encoded is None:
            encoded = self.encode(events)
        elif len(encoded.sizes) != len(events):
            raise ValueError(f"{len(events)} events and {len(encoded.sizes)} lines")
        self.counters.received_events += len(events)
        settled: list[Settled] = []
        now = self._clock()
        buffer = self._buffer
        size = len(encoded.data)
        if len(buffer) + len(events) < self._max_events and buffer.size + size < self._max_bytes:
            if events and not buffer.sizes:
                self._oldest = now
            buffer.take(origin, events, encoded, size)  # fills nothing: the usual case, no event looked at
        else:
            settled = self._fill(origin, events, encoded, now, deadline)
        if self._buffer.sizes and now - self._oldest >= self.max_wait_s:
            settled += self._send_buffer(deadline)
        return settled

    def encode(self, events: Sequence[dict[str, Any]]) -> Encoded:
        """`encode(events)`, or for a sink that does not measure them, no lines and a size of 0 each."""
        return encode(events) if self.measures else Encoded(b"", [0] * len(events))

    def _fill(
        self, origin: Origin, events: Sequence[dict[str, Any]], encoded: Encoded, now: float, deadline: Deadline | None
    ) -> list[Settled]:
        """`add_many` for events that fill the buffer: send it before an event that would take it past
        max_batch_bytes, and once it holds max_batch_events or max_batch_bytes."""
        max_events, max_bytes = self._max_events, self._max_bytes
        cuts = []
        """Indices of the events before which the buffer is sent."""
        held, held_bytes = len(self._buffer), self._buffer.size
        for i, size in enumerate(encoded.sizes):
            if held and held_bytes + size > max_bytes:
                cuts.append(i)
                held = held_bytes = 0
            held += 1
            held_bytes += size
            if held >= max_events or held_bytes >= max_bytes:
                cuts.append(i + 1)
                held = held_bytes = 0
        settled: list[Settled] = []
        start = offset = 0
        for cut in cuts:
            offset = self._take(origin, events, encoded, start, cut, offset, now)
            settled += self._send_buffer(deadline)
            start = cut
        self._take(origin, events, encoded, start, len(events), offset, now)
        return settled

    def _take(
        self,
        origin: Origin,
        events: Sequence[dict[str, Any]],
        encoded: Encoded,
        start: int,
        end: int,
        offset: int,
        now: float,
    ) -> int:
        """Buffer events[start:end], whose lines start at `offset` in `encoded.data`; returns where they end."""
        if start == end:
            return offset
        sizes = encoded.sizes[start:end]
        size = sum(sizes)
        if not self._buffer.sizes:
            self._oldest = now
        self._buffer.take(origin, events[start:end], Encoded(encoded.data[offset : offset + size], sizes), size)
        return offset + size

    def flush(self, deadline: Deadline | None = None, *, force: bool = True) -> list[Settled]:
        """Send the buffer: always when `force`, else only once its oldest event is `max_wait_s` old."""
        if self._buffer.sizes and (force or self._clock() - self._oldest >= self.max_wait_s):
            return self._send_buffer(deadline)
        return []

    def write_now(self, entry: dict[str, Any], deadline: Deadline | None = None) -> str | None:
        """Send one entry at once, outside the buffer; None when written, else why not (for dead letters)."""
        self.counters.received_events += 1
        batch = self._new_batch()
        encoded = self.encode([entry])
        batch.take(None, [entry], encoded, len(encoded.data))
        (settled,) = self._send(batch, deadline)
        return None if settled.status is Status.DELIVERED else settled.reason

    def _send_buffer(self, deadline: Deadline | None) -> list[Settled]:
        batch = self._buffer
        self._buffer = self._new_batch()
        return self._send(batch, deadline)

    def _new_batch(self) -> _Batch:
        return _Batch(keep_events=self._send_ndjson is None)

    def _send(self, batch: _Batch, deadline: Deadline | None) -> list[Settled]:
        """Send one batch with retries; every item of it comes back settled."""
        settled: list[Settled] = []
        pending = batch
        wait = 0.0
        error: SinkError | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            if deadline is not None and wait >= deadline():
                why = f"{error}; retrying would pass the deadline" if error else "deadline reached before sending"
                return settled + self._settle(pending, Status.NOT_DELIVERED, why)
            if attempt > 1:
                self.counters.retries += 1
                # A sleep that returns False was cut short by a stop (shipper.stopping): no retry then, even
                # with time left to flush what is buffered.
                cut_short = self._sleep(wait) is False
                if cut_short or (deadline is not None and deadline() <= 0):
                    return settled + self._settle(pending, Status.NOT_DELIVERED, f"{error}; stopped before retrying")
            error = self._attempt(pending)
            if error is None:
                return settled + self._settle(pending, Status.DELIVERED)
            self.counters.errors += 1
            delivered, pending = pending.split(error.failed)
            settled += self._settle(delivered, Status.DELIVERED)
            if not pending:
                return settled
            if error.blocked:
                log.warning("sink %s: %d events not delivered, to be sent again: %s", self.name, len(pending), error)
                return settled + self._settle(pending, Status.NOT_DELIVERED, str(error))
            if error.too_large and len(pending) > 1 and pending.size > MIN_SPLIT_BYTES:
                return settled + self._send_in_halves(pending, error, deadline)
            if not error.retryable:
                return settled + self._refuse(pending, str(error), deadline)
            if error.retry_after is not None and error.retry_after > self.retry.retry_after_max_s:
                why = (
                    f"{error}; the destination asked to wait {error.retry_after:,.0f} s, longer than the "
                    f"{self.retry.retry_after_max_s:,.0f} s shipper waits (retry_after_max_s)"
                )
                return settled + self._settle(pending, Status.NOT_DELIVERED, why)
            wait = max(self.retry.backoff(attempt, self._rng), error.retry_after or 0.0)
            log.info(
                "sink %s: %d events failed (%s); attempt %d in %.2fs", self.name, len(pending), error, attempt + 1, wait
            )
        return settled + self._refuse(
            pending, f"{error} (after {plural(self.retry.max_attempts, 'attempt')})", deadline
        )

    def _send_in_halves(self, batch: _Batch, error: SinkError, deadline: Deadline | None) -> list[Settled]:
        """Send a batch the destination refused for its size as two batches, each halved again while it is
        refused; an event refused alone goes to the dead letter. Later batches stay within half its size."""
        limit = batch.size // 2
        if limit < self._max_bytes:
            self._max_bytes = limit
            log.warning(
                "sink %s: a batch of %s bytes was refused as too large (%s); sending at most %s bytes a batch "
                "from now on (set max_batch_bytes to choose)",
                self.name,
                f"{batch.size:,}",
                error,
                f"{limit:,}",
            )
        first, second = batch.split(range(len(batch) // 2, len(batch)))
        return self._send(first, deadline) + self._send(second, deadline)

    def _attempt(self, batch: _Batch) -> SinkError | None:
        try:
            with waiting_with(self._sleep, self._clock):  # a sink's own waits end on a stop, as ours do
                if self._send_ndjson is not None:
                    self._send_ndjson(batch.chunks, len(batch))
                else:
                    self.sink.send(batch.events)
        except SinkError as exc:
            return exc
        except Exception as broken:  # a sink broke its contract: keep the events, treat it as transient
            # (its own name: compiled, one name is one type, and `exc` above is a SinkError)
            log.error("sink %s raised %s instead of SinkError", self.name, type(broken).__name__, exc_info=True)
            return SinkError(f"unexpected {type(broken).__name__} from sink {self.name}", retryable=True)
        return None

    def _refuse(self, items: _Batch, reason: str, deadline: Deadline | None) -> list[Settled]:
        """Events the sink will not take: to the dead letter, or NOT_DELIVERED when that cannot be done."""
        if self.dead_letter is None:
            log.warning(
                "sink %s: %s not delivered and no dead letter to take them: %s",
                self.name,
                plural(len(items), "event"),
                reason,
            )
            return self._settle(items, Status.NOT_DELIVERED, reason)
        entry = {
            "code": RejectCode.SINK_REFUSED,
            "sink": self.name,
            "reason": reason,
            "events": items.event_dicts(),
        }
        failure = self.dead_letter.write_now(entry, deadline)
        if failure is not None:
            log.error(
                "sink %s: %s not delivered, and the dead letter failed too: %s",
                self.name,
                plural(len(items), "event"),
                failure,
            )
            return self._settle(items, Status.NOT_DELIVERED, f"{reason}; dead letter failed: {failure}")
        log.warning("sink %s: %s dead-lettered: %s", self.name, plural(len(items), "event"), reason)
        return self._settle(items, Status.DEAD_LETTERED, reason)

    def _settle(self, items: _Batch, status: Status, reason: str | None = None) -> list[Settled]:
        counters = self.counters
        if status is Status.DELIVERED:
            counters.sent_events += len(items)
        elif status is Status.DEAD_LETTERED:
            counters.dead_lettered_events += len(items)
        else:
            counters.not_delivered_events += len(items)
        return [Settled(origin, status, count, reason) for origin, count in items.per_origin().items()]


@dataclass(frozen=True, slots=True)
class Route:
    """Events of `types` (contract `type` values) go to `delivery`; None means every type."""

    delivery: Delivery
    types: frozenset[str] | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """The status of each origin settled by a call, in the order the origins were first given."""

    statuses: dict[Origin, Status]
    reasons: dict[Origin, str] = field(default_factory=dict)
    """Why, for origins that were not simply delivered."""

    def origins(self, status: Status) -> list[Origin]:
        return [origin for origin, got in self.statuses.items() if got is status]

    @property
    def dead_lettered_origins(self) -> list[Origin]:
        return self.origins(Status.DEAD_LETTERED)

    @property
    def undelivered_origins(self) -> list[Origin]:
        """Origins the caller must send again."""
        return self.origins(Status.NOT_DELIVERED)

    def counts(self) -> dict[str, int]:
        """Number of origins per status, every status present."""
        counts = dict.fromkeys(Status, 0) | Counter(self.statuses.values())
        return {status.value: count for status, count in counts.items()}


@dataclass(slots=True)
class _Tally:
    outstanding: int = 0
    status: Status = Status.DELIVERED
    reason: str | None = None
    reject_reason: str | None = None
    """Why the origin's first reject was rejected: the reason once the dead letter has it."""

    def settle(self, settled: Settled) -> None:
        self.outstanding -= settled.count
        if worse(settled.status, self.status):
            self.status = settled.status
            self.reason = settled.reason


class Router:
    """Sends each event to the sinks its type is routed to; rejects go to the dead letter.

    `deliver` sends everything it is given and returns every origin settled. A long-running caller
    may instead `submit` (sending only full or old batches) and `flush(force=False)` when idle; each
    returns the origins settled so far, which may leave out an earlier origin still buffered.
    """

    def __init__(self, routes: Sequence[Route], dead_letter: Delivery | None = None) -> None:
        self.routes = tuple(routes)
        self.dead_letter = dead_letter
        self.rejects = 0
        self.unrouted_events = 0
        every_type = tuple(route.delivery for route in self.routes if route.types is None)
        # Looked up with whatever an event's "type" holds (a hostile value included): any key, unknown ones missing.
        self._targets: dict[object, tuple[Delivery, ...]] = {
            event_type: every_type + tuple(route.delivery for route in self.routes if event_type in (route.types or ()))
            for event_type in EVENT_TYPES
        }
        self._unknown_type_targets = every_type
        # The usual configuration sends every type to the same sinks: then nothing is routed per event.
        self._same_targets = every_type if every_type and set(self._targets.values()) == {every_type} else None
        self._same_measure = any(delivery.measures for delivery in every_type)
        """Whether one of those sinks measures events: then they are encoded once for all of them."""
        self._ledger: dict[Origin, _Tally] = {}
        self._maybe_settled: set[Origin] = set()
        """Origins whose outstanding count reached zero since the last report: `_collect` looks only at these."""

    def deliver(self, items: Items, deadline: Deadline | None = None) -> DeliveryReport:
        """Send every event and reject of `items` and return the status of every origin in them."""
        self._add(items, deadline)
        return self.flush(deadline)

    def submit(self, items: Items, deadline: Deadline | None = None) -> DeliveryReport:
        """Buffer `items`, sending batches that are full or old; returns the origins settled so far."""
        self._add(items, deadline)
        return self._collect()

    def flush(self, deadline: Deadline | None = None, *, force: bool = True) -> DeliveryReport:
        """Send buffered batches (all when `force`, else those `max_wait_s` old); returns settled origins."""
        for route in self.routes:
            self._record(route.delivery.flush(deadline, force=force), dead_letter=False)
        if self.dead_letter is not None:
            self._record(self.dead_letter.flush(deadline, force=force), dead_letter=True)
        return self._collect()

    def close(self, deadline: Deadline | None = None) -> DeliveryReport:
        """Flush everything, close every sink, and return the origins settled by the flush."""
        report = self.flush(deadline)
        for route in self.routes:
            route.delivery.sink.close()
        if self.dead_letter is not None:
            self.dead_letter.sink.close()
        return report

    def written_paths(self) -> list[str]:
        """The local files and directories the sinks and the dead letter write: a run must not read them back."""
        deliveries = [route.delivery for route in self.routes]
        if self.dead_letter is not None:
            deliveries.append(self.dead_letter)
        paths = [getattr(delivery.sink, "path", None) for delivery in deliveries]
        return [path for path in paths if isinstance(path, str)]

    def stats(self) -> dict[str, Any]:
        """Counters per sink and for the dead letter, rejects and unrouted events, as plain numbers."""
        return {
            "sinks": {route.delivery.name: asdict(route.delivery.counters) for route in self.routes},
            "dead_letter": None if self.dead_letter is None else asdict(self.dead_letter.counters),
            "rejects": self.rejects,
            "unrouted_events": self.unrouted_events,
        }

    def _add(self, items: Items, deadline: Deadline | None) -> None:
        ledger = self._ledger
        for origin, records in items:
            tally = ledger.get(origin)
            if tally is None:
                tally = ledger[origin] = _Tally()
            records = records if isinstance(records, list) else list(records)
            # Events are plain dicts: telling them by their exact type costs nothing, where isinstance(record,
            # Reject) cost some 350 instructions an event. Only a record with rejects takes the slow way.
            events: list[dict[str, Any]] = [record for record in records if type(record) is dict]
            if len(events) < len(records):
                events = []
                for record in records:
                    if isinstance(record, Reject):
                        self._reject(tally, origin, record, deadline)
                    else:
                        events.append(record)
            for start in range(0, len(events), ROUTE_RUN):  # in order, ROUTE_RUN at a time
                self._add_events(
                    origin, tally, events if len(events) <= ROUTE_RUN else events[start : start + ROUTE_RUN], deadline
                )
            if tally.outstanding == 0:  # nothing to send: no events, or none routed
                self._maybe_settled.add(origin)

    def _add_events(
        self, origin: Origin, tally: _Tally, events: list[dict[str, Any]], deadline: Deadline | None
    ) -> None:
        """Hand events of one origin to their sinks, each sink in one call, encoded once for all of them."""
        same = self._same_targets
        if same is not None:
            encoded = encode(events) if self._same_measure else same[0].encode(events)
            per_delivery = {delivery: (events, encoded) for delivery in same}
            tally.outstanding += len(events) * len(same)
        else:  # a sink that takes only some types encodes its own (still at most once per event and sink)
            routed_by = self._route(events, tally)
            per_delivery = {delivery: (routed, delivery.encode(routed)) for delivery, routed in routed_by}
        for delivery, (routed, routed_encoded) in per_delivery.items():
            settled = delivery.add_many(origin, routed, deadline, routed_encoded)
            if settled:
                self._record(settled, dead_letter=False)

    def _route(self, events: list[dict[str, Any]], tally: _Tally) -> Iterable[tuple[Delivery, list[dict[str, Any]]]]:
        """The events each sink takes, by the events' types; unrouted events are counted."""
        targets_for = self._targets.get
        unknown = self._unknown_type_targets
        per_delivery: dict[Delivery, list[dict[str, Any]]] = {}
        for event in events:
            targets = targets_for(event.get("type"), unknown)
            if not targets:
                self.unrouted_events += 1
                continue
            tally.outstanding += len(targets)
            for delivery in targets:
                pending = per_delivery.get(delivery)
                if pending is None:
                    pending = per_delivery[delivery] = []
                pending.append(event)
        return per_delivery.items()

    def _reject(self, tally: _Tally, origin: Origin, reject: Reject, deadline: Deadline | None) -> None:
        self.rejects += 1
        tally.outstanding += 1
        tally.reject_reason = tally.reject_reason or reject.reason
        if self.dead_letter is None:
            tally.settle(Settled(origin, Status.NOT_DELIVERED, 1, f"{reject.reason} (no dead letter)"))
            if tally.outstanding == 0:
                self._maybe_settled.add(origin)
        else:
            self._record(self.dead_letter.add(reject.to_dead_letter(), origin, deadline), dead_letter=True)

    def _record(self, settled: list[Settled], *, dead_letter: bool) -> None:
        """Apply settlements to the ledger; written to the dead letter counts as DEAD_LETTERED."""
        ledger = self._ledger
        for done in settled:
            tally = ledger[done.origin]
            if dead_letter and done.status is Status.DELIVERED:
                done = Settled(done.origin, Status.DEAD_LETTERED, done.count, tally.reject_reason)
            tally.settle(done)
            if tally.outstanding == 0:
                self._maybe_settled.add(done.origin)

    def _collect(self) -> DeliveryReport:
        """Report the origins with nothing outstanding, in the order they were first given, and forget them.

        An origin can reach zero and then take more events (a reject settled before the rest of its record
        was routed), so each candidate is checked again here.
        """
        candidates = self._maybe_settled
        statuses: dict[Origin, Status] = {}
        reasons: dict[Origin, str] = {}
        if not candidates:
            return DeliveryReport(statuses, reasons)
        left = len(candidates)
        for origin, tally in self._ledger.items():  # oldest first; settled origins are mostly the oldest
            if origin not in candidates:
                continue
            if tally.outstanding == 0:
                statuses[origin] = tally.status
                if tally.reason is not None:
                    reasons[origin] = tally.reason
            left -= 1
            if not left:
                break
        for origin in statuses:
            del self._ledger[origin]
        candidates.clear()
        return DeliveryReport(statuses, reasons)
