"""Wiring for the delivery tests; the test doubles themselves ship in shipper.testing."""

from __future__ import annotations

import random
from typing import Any

from shipper.delivery import Delivery, RetryPolicy
from shipper.testing import FakeTime, ScriptedSink


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
