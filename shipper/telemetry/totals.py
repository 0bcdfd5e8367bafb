"""Cumulative totals (Pipeline.counts, Router.stats()) turned into increments. No prometheus_client."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

DEAD_LETTER_SINK = "dead_letter"
"""The sink name the dead letter's counters are reported under."""
UNROUTED = ("", "unrouted_events")
"""Key of the unrouted-events total in `router_totals`."""


class Increments:
    """Remembers totals and says what each grew by since the previous call."""

    def __init__(self) -> None:
        self._last: dict[Any, float] = {}

    def since_last(self, totals: Mapping[K, float]) -> dict[K, float]:
        """Increments of `totals` since the previous call (new keys always, unchanged ones never); a total
        that went down (a restart) counts whole."""
        grown: dict[K, float] = {}
        for key, total in totals.items():
            previous = self._last.get(key, 0)
            increment = total - previous if total >= previous else total
            if increment or key not in self._last:  # a new key shows, at 0 if need be: its series exists
                grown[key] = increment
            self._last[key] = total
        return grown


def router_totals(stats: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """`Router.stats()` flattened to {(sink, counter): total}; the dead letter is sink DEAD_LETTER_SINK."""
    totals = {
        (sink, counter): value for sink, counters in stats["sinks"].items() for counter, value in counters.items()
    }
    if stats.get("dead_letter"):
        totals.update(((DEAD_LETTER_SINK, counter), value) for counter, value in stats["dead_letter"].items())
    totals[UNROUTED] = stats.get("unrouted_events", 0)
    return totals
