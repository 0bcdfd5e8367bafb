"""The pipeline: records in, structured events and rejects out, grouped by the record they came from.

    RawRecord -> decode_record -> CloudWatch Logs documents -> Classifier -> events

The Lambda handler, `shipper run` and `shipper consume` are thin shells around `Pipeline` and the
ship-a-batch step (shipper.shipping); they only differ in where records come from and what they do
with the statuses. Keeping events grouped per record lets a caller report
exactly which Kinesis records were not delivered.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shipper.classify import MAX_MESSAGE_CHARS, Classifier
from shipper.decode import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    RawRecord,
    decode_record,
    records_from_kinesis_event,
)
from shipper.names import Count, rejected_count
from shipper.reject import Reject

FEWER_COLLECTIONS = (50_000, 20, 100)
"""Thresholds of the cyclic collector's generations while events stream through (CPython's: 700, 10, 10)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with the garbage collector's young generation collected every 50,000 allocations.

    Events are dicts freed by reference counting, yet each one counts as an allocation: with the default
    threshold the collector ran about 1,400 times for 400,000 events and took some 5% of `shipper run`'s
    time, finding next to nothing. The thresholds are put back when the block ends.
    """
    before = gc.get_threshold()
    gc.set_threshold(*FEWER_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass(slots=True)
class RecordOutcome:
    """The events and rejects one record produced. `origin` is its sequence number, when it has one."""

    origin: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


class Pipeline:
    """Decodes and classifies records; `counts` says what happened to them, for reports and metrics.

    Documents from a log group in `skip_log_groups` are counted (`log_group_batches_skipped`) and not
    classified: the Lambda handler skips its own log group this way, so it never ships its own output.
    """

    def __init__(
        self,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_message_chars: int = MAX_MESSAGE_CHARS,
        skip_log_groups: Collection[str] = (),
    ) -> None:
        self.max_decompressed_bytes = max_decompressed_bytes
        self.skip_log_groups = frozenset(skip_log_groups)
        self.classifier = Classifier(max_message_chars)
        self.counts = self.classifier.counts

    def process_records(self, records: Iterable[RawRecord]) -> list[RecordOutcome]:
        cap = self.max_decompressed_bytes
        outcomes = []
        records_seen = control_messages = kpl_subrecords = 0
        for record in records:
            records_seen += 1
            decoded = decode_record(record, cap)
            outcome = RecordOutcome(record.sequence_number, rejects=decoded.rejects)
            control_messages += decoded.control_messages
            kpl_subrecords += decoded.kpl_subrecords
            self._classify_documents(decoded.documents, outcome, record.source)
            outcomes.append(outcome)
        count = self.classifier.count
        count(Count.RECORDS_RECEIVED, records_seen)
        count(Count.CONTROL_MESSAGES_SKIPPED, control_messages)
        count(Count.KPL_SUBRECORDS, kpl_subrecords)
        return outcomes

    def process_kinesis_event(self, event: dict[str, Any]) -> list[RecordOutcome]:
        """A Lambda Kinesis event. Records whose envelope is unusable come back as reject-only outcomes."""
        records, envelope_rejects = records_from_kinesis_event(event)
        outcomes = self.process_records(records)
        outcomes += (self.rejected(reject.sequence_number, [reject]) for reject in envelope_rejects)
        return outcomes

    def process_documents(self, documents: Iterable[dict[str, Any]], origin: str | None = None) -> RecordOutcome:
        """CloudWatch Logs-shaped documents built from an export format, as one outcome.

        Each document is `{"logGroup", "logStream", "owner", "logEvents": [{"id", "timestamp", "message"}]}`;
        `origin` names where they came from (a file and position) for rejects and delivery.
        """
        outcome = RecordOutcome(origin)
        self._classify_documents(documents, outcome, origin)
        return outcome

    def rejected(self, origin: str | None, rejects: list[Reject]) -> RecordOutcome:
        """Rejects found before the pipeline (an input that cannot be read), counted, as an outcome."""
        self._count_rejects(rejects)
        return RecordOutcome(origin, rejects=rejects)

    def _classify_documents(
        self, documents: Iterable[dict[str, Any]], outcome: RecordOutcome, source: str | None
    ) -> None:
        """Classify `documents` into `outcome`, skipping the log groups in `skip_log_groups`, and count them."""
        classify = self.classifier.classify
        skip = self.skip_log_groups
        log_events = skipped = 0
        for document in documents:
            if skip and document["logGroup"] in skip:
                skipped += 1
                continue
            log_events += len(document["logEvents"])
            classify(document, outcome.events, outcome.rejects, source)
        self._count_rejects(outcome.rejects)
        count = self.classifier.count
        count(Count.LOG_GROUP_BATCHES_SKIPPED, skipped)
        count(Count.LOG_EVENTS_RECEIVED, log_events)
        count(Count.EVENTS_EMITTED, len(outcome.events))

    def _count_rejects(self, rejects: list[Reject]) -> None:
        for reject in rejects:
            self.classifier.count(rejected_count(reject.code))
