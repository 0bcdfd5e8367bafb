"""Test doubles for the delivery layer: a fake clock and a sink that follows a failure script."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from shipper.delivery import Delivery, RetryPolicy
from shipper.sinks.base import SinkError

Step = Callable[[Sequence[dict[str, Any]]], Exception | None]


class FakeTime:
    """A clock that only moves when something sleeps on it (or a test moves it)."""

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

    `delivered` counts, per event id, the events it took: the ground truth for "exactly once".
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
    return lambda events: SinkError("destination said no", retryable=retryable, failed=failed, retry_after=retry_after)


def fail_where(predicate: Callable[[dict[str, Any]], bool], *, retryable: bool) -> Step:
    """Fail the events `predicate` picks (as SinkError.failed), deliver the rest."""

    def step(events: Sequence[dict[str, Any]]) -> Exception | None:
        failed = [i for i, event in enumerate(events) if predicate(event)]
        return SinkError("some refused", retryable=retryable, failed=failed) if failed else None

    return step


def ok(events: Sequence[dict[str, Any]]) -> None:
    return None


def events(count: int, start: int = 0, event_type: str = "log", **fields: Any) -> list[dict[str, Any]]:
    return [{"type": event_type, "event_id": f"e{start + i}", "message": "x", **fields} for i in range(count)]


def delivery(
    sink: ScriptedSink,
    time_: FakeTime,
    *,
    attempts: int = 5,
    dead_letter: Delivery | None = None,
    max_wait_s: float = 60.0,
    seed: int = 7,
    retry_after_max_s: float = 300.0,
) -> Delivery:
    return Delivery(
        sink,
        retry=RetryPolicy(attempts, 0.1, 2.0, retry_after_max_s),
        max_wait_s=max_wait_s,
        dead_letter=dead_letter,
        sleep=time_.sleep,
        clock=time_.clock,
        rng=random.Random(seed),
    )
