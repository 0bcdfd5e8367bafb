"""Kinesis Data Streams: PutRecords of KPL-aggregated records."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aws_kinesis_agg import MAX_BYTES_PER_RECORD
from aws_kinesis_agg.aggregator import AggRecord, RecordAggregator

from shipper.errors import ConfigError
from shipper.sinks.packing import MiB, Outcome, Packed, chunks, deliver, ndjson_lines

__all__ = ["KinesisSink"]

# PutRecords limits: 500 records and 5 MiB per call, partition keys included. A record holds 1 MiB,
# its partition key included: leave room for the longest key Kinesis allows (256 characters).
KINESIS_MAX_RECORDS = 500
KINESIS_MAX_CALL_BYTES = 5 * MiB
KINESIS_MAX_AGGREGATE_BYTES = MAX_BYTES_PER_RECORD - 1024
NO_FUNCTION_KEY = "-"


def _random_key() -> str:
    return uuid.uuid4().hex


def _aggregated(record: AggRecord, events: list[int]) -> Packed:
    key, _, data = record.get_contents()
    return Packed(data, events, len(data) + len(key.encode()), key)


class _Aggregate:
    """The KPL record being filled for one partition key, and the batch indices of the events in it.

    Every user record in an aggregate carries the aggregate's own partition key: KCL drops, on
    deaggregation, a user record whose key hashes outside the shard the aggregate landed on.
    """

    __slots__ = ("aggregator", "events", "key", "rekey")

    def __init__(self, key: str, *, rekey: bool) -> None:
        self.aggregator = RecordAggregator(max_size=KINESIS_MAX_AGGREGATE_BYTES)
        self.key = key
        self.rekey = rekey
        self.events: list[int] = []

    def add(self, index: int, line: bytes) -> Packed | None:
        """Add one event; return the previous record when this event did not fit in it.

        Raises ValueError when the line alone is larger than a record.
        """
        full = self.aggregator.add_user_record(self.key, line)
        done = None
        if full is not None:
            done = _aggregated(full, self.events)
            self.events = []
            if self.rekey:  # random keys: start the next record under a fresh key
                self.aggregator.clear_record()
                self.key = _random_key()
                self.aggregator.add_user_record(self.key, line)
        self.events.append(index)
        return done

    def flush(self) -> Packed | None:
        record = self.aggregator.clear_and_get()
        return None if record is None else _aggregated(record, self.events)


class KinesisSink:
    """PutRecords of KPL-aggregated records, each a run of NDJSON events under one partition key.

    `partition_key="function"` keeps each function's events on one shard, in order; `"random"` spreads
    the load evenly, with a fresh key per aggregated record.
    """

    max_batch_events = 10_000
    max_batch_bytes = 4 * MiB

    def __init__(self, client: Any, stream: str, *, partition_key: str = "function") -> None:
        if partition_key not in ("function", "random"):
            raise ConfigError(f"partition_key must be 'function' or 'random', not {partition_key!r}")
        self.name = f"kinesis:{stream}"
        self._client = client
        self._stream = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        self._by_function = partition_key == "function"

    def pack(self, events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[Packed]:
        """Aggregate the events into records; an event too large for a record fails for good."""
        aggregates: dict[str | None, _Aggregate] = {}
        records = []
        for index, line in ndjson_lines(events, outcome):
            bucket = (events[index].get("function") or NO_FUNCTION_KEY) if self._by_function else None
            aggregate = aggregates.get(bucket)
            if aggregate is None:
                aggregate = aggregates[bucket] = _Aggregate(bucket or _random_key(), rekey=bucket is None)
            try:
                done = aggregate.add(index, line)
            except ValueError:
                outcome.fail([index], f"event larger than a Kinesis record ({len(line)} bytes)", retryable=False)
                continue
            if done is not None:
                records.append(done)
        records.extend(record for aggregate in aggregates.values() if (record := aggregate.flush()) is not None)
        return records

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        records = self.pack(events, outcome)
        deliver(list(chunks(records, KINESIS_MAX_RECORDS, KINESIS_MAX_CALL_BYTES)), self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        response = self._client.put_records(
            Records=[{"Data": unit.payload, "PartitionKey": unit.key} for unit in call], **self._stream
        )
        return response["Records"] if response.get("FailedRecordCount") else ()

    def close(self) -> None:
        self._client.close()
