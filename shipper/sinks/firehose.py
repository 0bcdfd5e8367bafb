"""Firehose: PutRecordBatch of NDJSON records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipper.sinks.packing import MiB, Outcome, Packed, chunks, deliver, ndjson_lines

__all__ = ["FirehoseSink"]

# PutRecordBatch limits: 500 records and 4 MiB per call, 1,000 KiB per record.
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_CALL_BYTES = 4 * MiB
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024


class FirehoseSink:
    """PutRecordBatch of NDJSON records.

    By default consecutive events share a record up to the record limit (Firehose bills each record
    rounded up to 5 KB; an S3 destination concatenates records, so objects stay NDJSON).
    `record_per_event=True` sends one event per record, for destinations that need one document per
    record (OpenSearch, Splunk, a transforming Lambda that expects it).
    """

    max_batch_bytes = FIREHOSE_MAX_CALL_BYTES

    def __init__(self, client: Any, delivery_stream: str, *, record_per_event: bool = False) -> None:
        self.name = f"firehose:{delivery_stream}"
        self.max_batch_events = FIREHOSE_MAX_RECORDS if record_per_event else 10_000
        self._client = client
        self._delivery_stream = delivery_stream
        self._record_per_event = record_per_event

    def pack(self, events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[Packed]:
        """NDJSON records of one event each, or of as many consecutive events as fit."""
        records: list[Packed] = []
        for index, line in ndjson_lines(events, outcome):
            if len(line) > FIREHOSE_MAX_RECORD_BYTES:
                outcome.fail([index], f"event larger than a Firehose record ({len(line)} bytes)", retryable=False)
            elif self._record_per_event or not records or records[-1].size + len(line) > FIREHOSE_MAX_RECORD_BYTES:
                records.append(Packed([line], [index], len(line)))
            else:
                records[-1].payload.append(line)
                records[-1].events.append(index)
                records[-1].size += len(line)
        return records

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        records = self.pack(events, outcome)
        deliver(list(chunks(records, FIREHOSE_MAX_RECORDS, FIREHOSE_MAX_CALL_BYTES)), self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        response = self._client.put_record_batch(
            DeliveryStreamName=self._delivery_stream, Records=[{"Data": b"".join(unit.payload)} for unit in call]
        )
        return response["RequestResponses"] if response.get("FailedPutCount") else ()

    def close(self) -> None:
        self._client.close()
