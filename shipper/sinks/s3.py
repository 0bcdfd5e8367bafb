"""S3: one gzip-compressed NDJSON object per batch."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shipper import compression
from shipper.sinks.packing import MiB, Outcome, Packed, deliver, ndjson_lines

__all__ = ["S3Sink"]


class S3Sink:
    """One gzip-compressed NDJSON object per batch, at `<prefix>/YYYY/MM/DD/HH/<UTC time>-<uuid>.ndjson.gz`.

    The hour partition and the time in the name are the UTC send time. Also the dead-letter target:
    dead-letter entries are JSON objects like events.
    """

    max_batch_events = 100_000
    max_batch_bytes = 16 * MiB

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, clock: Callable[[], float] = time.time) -> None:
        prefix = prefix.strip("/")
        self.name = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._clock = clock

    def object_key(self, now: float) -> str:
        t = datetime.fromtimestamp(now, UTC)
        stamp = f"{t:%Y%m%dT%H%M%S}.{t.microsecond // 1000:03d}Z"
        return f"{self._prefix}{t:%Y/%m/%d/%H}/{stamp}-{uuid.uuid4().hex}.ndjson.gz"

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        lines = ndjson_lines(events, outcome)
        if lines:
            body = compression.compress(b"".join(line for _, line in lines))
            deliver([[Packed(body, [index for index, _ in lines], len(body))]], self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        self._client.put_object(
            Bucket=self._bucket,
            Key=self.object_key(self._clock()),
            Body=call[0].payload,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )
        return ()

    def close(self) -> None:
        self._client.close()
