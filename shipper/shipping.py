"""Ship a batch: the one step the Lambda handler, `shipper run` and `shipper consume` share.

    Pipeline outcomes -> BatchStep.route -> Router.submit -> statuses per origin (the worst wins)
                              |                    \\-> observers.settled(report)
                              \\-> observers.outcome(origin, outcome)
    BatchStep.flush / close -> the rest settled;  BatchStep.done -> BatchResult -> observers.batch_done

A shell decides where records come from, what an origin is (a Kinesis sequence number, a shard and a
sequence number, a file position) and what to do with the statuses (a partial-batch response, a
checkpoint, a summary); everything else that happens to a batch happens here, in the same order for
all three. What watches a batch (Prometheus, the Lambda push and EMF line, `run`'s report, timeline
and per-input tally) is a `BatchObserver`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipper.delivery import Deadline, DeliveryReport, Origin, Router, Status, worse
from shipper.pipeline import Pipeline, RecordOutcome
from shipper.reject import Reject

__all__ = ["BatchObserver", "BatchResult", "BatchStep"]


@dataclass(slots=True)
class BatchResult:
    """What became of one batch: the status of each origin settled while it was shipped, and its counts."""

    statuses: dict[Origin, Status] = field(default_factory=dict)
    reasons: dict[Origin, str] = field(default_factory=dict)
    """Why, for origins that were not simply delivered."""
    events: int = 0
    """Events handed to the router."""
    rejects: int = 0
    seconds: float | None = None
    """How long the batch took, once done; None for a close, which is not a batch."""
    pipeline_counts: Mapping[str, int] = field(default_factory=dict)
    """The pipeline's cumulative counts when the batch was done."""
    router_stats: Mapping[str, Any] = field(default_factory=dict)
    """`Router.stats()` when the batch was done."""
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def report(self) -> DeliveryReport:
        return DeliveryReport(self.statuses, self.reasons)

    def status(self, origin: Origin) -> Status:
        """The origin's status; one not settled is NOT_DELIVERED."""
        return self.statuses.get(origin, Status.NOT_DELIVERED)

    def merge(self, report: DeliveryReport) -> None:
        """Add what the router settled; an origin settled twice keeps the worse status and its reason."""
        statuses, reasons = self.statuses, self.reasons
        for origin, status in report.statuses.items():
            known = statuses.get(origin)
            if known is None or worse(status, known):
                statuses[origin] = status
                reason = report.reasons.get(origin)
                if reason is not None:
                    reasons[origin] = reason
                else:
                    reasons.pop(origin, None)


class BatchObserver(Protocol):
    """What watches batches go by. Subclass it to inherit the methods one does not need, which do nothing."""

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        """One record's events and rejects, just before they go to the router under `origin`."""
        return None

    def settled(self, report: DeliveryReport) -> None:
        """Origins the router settled: this batch's, or an earlier one's whose events were still buffered."""
        return None

    def batch_done(self, result: BatchResult) -> None:
        """The batch is done (`result.seconds` is None for the final close, which is not a batch)."""
        return None


class BatchStep:
    """Routes pipeline outcomes through the router within a deadline, settles statuses, tells the observers."""

    def __init__(self, pipeline: Pipeline, router: Router, observers: Sequence[BatchObserver] = ()) -> None:
        self.pipeline = pipeline
        self.router = router
        self.observers = tuple(observers)

    def begin(self) -> BatchResult:
        """A new batch, timed from now."""
        return BatchResult()

    def route(
        self, batch: BatchResult, outcomes: Iterable[tuple[Origin, RecordOutcome]], deadline: Deadline | None
    ) -> DeliveryReport:
        """Hand `outcomes` to the router in one call (it sends the batches that fill); returns what it settled."""
        observers = self.observers
        items: list[tuple[Origin, Sequence[dict[str, Any] | Reject]]] = []
        for origin, outcome in outcomes:
            events = outcome.events
            batch.events += len(events)
            batch.rejects += len(outcome.rejects)
            for observer in observers:
                observer.outcome(origin, outcome)
            items.append((origin, [*events, *outcome.rejects] if outcome.rejects else events))
        return self.settle(batch, self.router.submit(items, deadline))

    def flush(self, batch: BatchResult, deadline: Deadline | None) -> DeliveryReport:
        """Send everything buffered; every origin routed so far is settled after it."""
        return self.settle(batch, self.router.flush(deadline))

    def settle(self, batch: BatchResult, report: DeliveryReport) -> DeliveryReport:
        batch.merge(report)
        for observer in self.observers:
            observer.settled(report)
        return report

    def done(self, batch: BatchResult, *, timed: bool = True) -> BatchResult:
        """Close the batch's books: its time and the cumulative counts, for the observers."""
        if timed:
            batch.seconds = time.perf_counter() - batch.started
        batch.pipeline_counts = self.pipeline.counts
        batch.router_stats = self.router.stats()
        for observer in self.observers:
            observer.batch_done(batch)
        return batch

    def close(self, deadline: Deadline | None) -> BatchResult:
        """Flush and close every sink (the end of `run`); what that settled is the result, not a timed batch."""
        batch = self.begin()
        self.settle(batch, self.router.close(deadline))
        return self.done(batch, timed=False)
