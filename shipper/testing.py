"""Test doubles for your own tests of a shipper configuration, routes or custom code around delivery.

    FakeTime       a clock that moves only when something sleeps on it: retries and backoff without waiting
    ScriptedSink   a sink whose n-th send does what the n-th step of its script says, then succeeds
    fail, fail_where, ok
                   script steps: fail the whole batch (retryable or not, with a Retry-After), fail the
                   events a predicate picks (a partial failure), or deliver

    from shipper.delivery import Delivery, RetryPolicy, Status
    from shipper.testing import FakeTime, ScriptedSink, fail

    time = FakeTime()
    sink = ScriptedSink(fail(retryable=True, retry_after=2.0))
    delivery = Delivery(sink, retry=RetryPolicy(3, 0.1, 2.0), sleep=time.sleep, clock=time.clock)
    delivery.add({"event_id": "e1", "type": "log"}, "origin-1")
    [settled] = delivery.flush()  # refused once, then delivered after waiting the 2 fake seconds asked
    assert settled.status is Status.DELIVERED and time.sleeps == [2.0] and sink.delivered["e1"] == 1

Nothing here does I/O or imports more than the delivery layer's own types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from shipper.sinks.base import SinkError

__all__ = ["FakeTime", "ScriptedSink", "Step", "fail", "fail_where", "ok"]

Step = Callable[[Sequence[dict[str, Any]]], Exception | None]
"""One send of a ScriptedSink: given the batch, the exception the send raises, or None to deliver it all."""


class FakeTime:
    """A clock that only moves when something sleeps on it (or a test sets `now`).

    Pass `clock` and `sleep` to `Delivery` (or `Router`): `sleeps` lists every wait, in seconds.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedSink:
    """A sink whose n-th send does what the n-th step says; after the script, every send succeeds.

    `batches` holds the `event_id`s of each send, `taken` every event it kept, and `delivered` counts,
    per event id, the events it took: the ground truth for "delivered exactly once".
    """

    def __init__(
        self, *steps: Step, name: str = "scripted", max_batch_events: int = 1000, max_batch_bytes: int = 1 << 20
    ) -> None:
        self.name = name
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.steps = list(steps)
        self.batches: list[list[Any]] = []
        self.delivered: Counter[Any] = Counter()
        self.taken: list[dict[str, Any]] = []

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        self.batches.append([event.get("event_id") for event in events])
        error = self.steps.pop(0)(events) if self.steps else None
        failed = set(range(len(events))) if error is not None else set()
        if isinstance(error, SinkError) and error.failed is not None:
            failed = set(error.failed)
        for index, event in enumerate(events):
            if index not in failed:
                self.delivered[event.get("event_id")] += 1
                self.taken.append(event)
        if error is not None:
            raise error

    def close(self) -> None:
        return None


def fail(*, retryable: bool = True, failed: list[int] | None = None, retry_after: float | None = None) -> Step:
    """A step that raises SinkError: `retryable` or for good, for the events at `failed` (None: all),
    with the destination's Retry-After in seconds if given."""
    return lambda events: SinkError("destination said no", retryable=retryable, failed=failed, retry_after=retry_after)


def fail_where(predicate: Callable[[dict[str, Any]], bool], *, retryable: bool) -> Step:
    """A step that fails the events `predicate` picks (as SinkError.failed) and delivers the rest."""

    def step(events: Sequence[dict[str, Any]]) -> Exception | None:
        failed = [i for i, event in enumerate(events) if predicate(event)]
        return SinkError("some refused", retryable=retryable, failed=failed) if failed else None

    return step


def ok(events: Sequence[dict[str, Any]]) -> None:
    """A step that delivers the whole batch."""
    return None
