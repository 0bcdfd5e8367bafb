"""A reject: input the shipper could not turn into events, kept whole with the reason why.

Rejects never stop a batch. Each one is counted by `code` and handed to the dead-letter sink with
the raw bytes, so a user can see what was wrong and replay it once fixed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    """Stable short name of the failure, for counters: `bad_base64`, `truncated_gzip`, ..."""
    reason: str
    """One sentence a user understands: what was wrong and where."""
    raw: bytes
    """The bytes as received (after base64 decoding, when that part worked)."""
    sequence_number: str | None = None
    """Kinesis sequence number of the record that carried it, when there is one."""
    source: str | None = None
    """Where it came from: file name, event source ARN, shard, or log group/stream."""

    def to_dead_letter(self) -> dict[str, Any]:
        """The JSON-ready dead-letter entry: reason, origin and the raw bytes in base64."""
        return {
            "code": self.code,
            "reason": self.reason,
            "sequence_number": self.sequence_number,
            "source": self.source,
            "raw_base64": base64.b64encode(self.raw).decode("ascii"),
            "raw_size": len(self.raw),
        }
