"""Sinks that write on this machine: standard output, nowhere, a JSON-lines file, and a directory."""

from __future__ import annotations

import gzip
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from shipper.files import write_durably
from shipper.sinks.base import SinkError, encode_ndjson
from shipper.terminal import printable_json


class StdoutSink:
    name = "stdout"
    max_batch_events = 10_000
    max_batch_bytes = 8 * 1024 * 1024

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        try:
            self._stream.write(printable_json(encode_ndjson(events)))
            self._stream.flush()
        except BrokenPipeError as exc:
            raise SinkError("standard output was closed by the reader", retryable=False) from exc

    def close(self) -> None:
        self._stream.flush()


class NullSink:
    """Takes every event and keeps none: for measuring and dry runs."""

    name = "null"
    max_batch_events = 10_000
    max_batch_bytes = 8 * 1024 * 1024

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        return None

    def close(self) -> None:
        return None


class JsonLinesFileSink:
    """Appends NDJSON to a file, flushed after every batch; a `.gz` path is written gzip-compressed."""

    name = "jsonl"
    max_batch_events = 10_000
    max_batch_bytes = 8 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file: BinaryIO = gzip.open(path, "ab") if path.endswith(".gz") else open(path, "ab")  # noqa: SIM115
        except OSError as exc:
            raise SinkError(f"cannot open {path} for writing: {exc.strerror}", retryable=False) from exc

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        try:
            self._file.write(encode_ndjson(events))
            self._file.flush()
        except OSError as exc:
            raise SinkError(f"cannot write to {self.path}: {exc.strerror}", retryable=False) from exc

    def close(self) -> None:
        self._file.close()


class DirectorySink:
    """Writes each batch to a new NDJSON file in a directory, fsync'd before `send` returns.

    Files are named `<UTC time>-<random>.ndjson`, so names sort by time and never collide. A file
    appears only once complete (written under a hidden temporary name, then renamed). This is the
    local dead-letter target.
    """

    name = "dir"
    max_batch_events = 100_000
    max_batch_bytes = 64 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create directory {path}: {exc.strerror}", retryable=False) from exc

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        file_name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:12]}.ndjson"
        try:
            write_durably(os.path.join(self.path, file_name), encode_ndjson(events))
        except OSError as exc:
            raise SinkError(f"cannot write a file in {self.path}: {exc.strerror}", retryable=False) from exc

    def close(self) -> None:
        return None
