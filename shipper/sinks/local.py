"""Sinks that write on this machine: standard output, nowhere, a JSON-lines file, and a directory."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import stat
import sys
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from shipper import compression
from shipper.files import PartialWrite, unbuffered_write, write_all, write_durably
from shipper.sinks.base import SinkError, encode_ndjson, not_written
from shipper.terminal import printable_json

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b\x08"
_LAST_MEMBER_MAX = 16 * 1024 * 1024
"""More than one batch (8 MiB before compression) can take as a gzip member."""


class StdoutSink:
    """NDJSON on standard output, written past Python's buffer so that only what the reader got counts.

    When the reader goes away (a closed pipe) or the write fails part way, the events whose lines were
    written whole are delivered and the rest are not (never dead-lettered: it is not their fault).
    """

    name = "stdout"
    max_batch_events = 10_000
    max_batch_bytes = 8 * 1024 * 1024

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        self.send_ndjson([encode_ndjson(events)], len(events))

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        data = printable_json(b"".join(chunks))
        try:
            write_all(unbuffered_write(self._stream), data)
        except PartialWrite as exc:
            raise not_written("standard output", exc, data.count(b"\n", 0, exc.written), count) from exc

    def close(self) -> None:
        return None


class NullSink:
    """Takes every event and keeps none: for measuring, dry runs and runs for the report alone. It has no
    byte limit, so events are not encoded for it: as a line sink, it is handed empty lines, and its batches
    hold no events."""

    name = "null"
    max_batch_events = 10_000
    max_batch_bytes = None

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        return None

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        return None

    def close(self) -> None:
        return None


class JsonLinesFileSink:
    """Appends NDJSON to a file; a `.gz` path gets one complete gzip member per batch.

    A batch is delivered once it is written whole and fsync'd. A write that fails part way (a full disk,
    a file size limit) is cut off again, so the file only ever holds whole batches and the failed batch
    is not delivered (never dead-lettered: a full disk is not the events' fault). On open, a torn tail
    left by a crash (a last line without its newline, an incomplete last gzip member) is cut off and
    logged: its events were never reported delivered. The file is locked while open (flock), so two
    shippers never append to it at once. A path that is not a regular file (a FIFO, /dev/stdout) is
    written like standard output: nothing can be cut there.
    """

    name = "jsonl"
    max_batch_events = 10_000
    max_batch_bytes = 8 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self._gzip = path.endswith(".gz")
        self._dirty = False
        """A failed write could not be cut off: cut it before the next write."""
        # Read access only for a regular file: a pipe opened for reading too (/dev/stdout) would be its own
        # reader, and block once full instead of failing when the real reader leaves.
        access = os.O_RDWR if _regular_or_missing(path) else os.O_WRONLY
        try:
            self._fd = os.open(path, access | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise SinkError(f"cannot open {path} for writing: {exc.strerror}", retryable=False) from exc
        try:
            self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
            self._end = 0
            """Where the batch being written starts: a failed write is cut back to here."""
            if self._regular:
                self._prepare()
        except OSError as exc:
            os.close(self._fd)
            raise SinkError(f"cannot prepare {path} for writing: {exc.strerror}", retryable=False) from exc
        except BaseException:
            os.close(self._fd)
            raise

    def _prepare(self) -> None:
        """Lock the file and cut a torn tail."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SinkError(f"{self.path} is already being written (by another shipper?)", retryable=False) from exc
        size = os.fstat(self._fd).st_size
        try:
            end = _gzip_end(self._fd, size) if self._gzip else _lines_end(self._fd, size)
        except ValueError as exc:
            raise SinkError(f"will not append to {self.path}: {exc}", retryable=False) from exc
        if end < size:
            what = "an incomplete gzip member" if self._gzip else "a line without its newline"
            log.warning("%s: cut %d bytes at its end, %s left by an earlier crash", self.path, size - end, what)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        self.send_ndjson([encode_ndjson(events)], len(events))

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        data = b"".join(chunks)
        if self._gzip:
            data = compression.compress(data)
        try:
            if self._dirty:
                os.ftruncate(self._fd, self._end)
                self._dirty = False
            elif self._regular:  # where this batch starts, even if someone truncated the file meanwhile
                self._end = os.fstat(self._fd).st_size
            write_all(functools.partial(os.write, self._fd), data)
            if self._regular:
                os.fsync(self._fd)
        except OSError as exc:
            written = exc.written if isinstance(exc, PartialWrite) else len(data)
            raise not_written(self.path, exc, self._cut(data, written), count) from exc

    def _cut(self, data: bytes, written: int) -> int:
        """After a failed write of `written` bytes of `data`: cut them off; returns the events kept (written whole)."""
        if not self._regular:  # nothing can be taken back: the whole lines that went out are delivered
            return 0 if self._gzip else data.count(b"\n", 0, written)
        try:
            os.ftruncate(self._fd, self._end)
        except OSError as exc:
            self._dirty = True
            log.error(
                "cannot cut %s back to %d bytes after a failed write (%s); trying again before the next write",
                self.path,
                self._end,
                exc.strerror,
            )
        return 0

    def close(self) -> None:
        os.close(self._fd)


class DirectorySink:
    """Writes each batch to a new NDJSON file in a directory, fsync'd before `send` returns.

    Files are named `<UTC time>-<random>.ndjson`, so names sort by time and never collide. A file
    appears only once complete (written under a hidden temporary name, then renamed). A batch that
    cannot be written (a full disk) is not delivered, never dead-lettered. This is the local
    dead-letter target.
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
        self.send_ndjson([encode_ndjson(events)], len(events))

    def send_ndjson(self, chunks: Sequence[bytes], count: int) -> None:
        file_name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:12]}.ndjson"
        try:
            write_durably(os.path.join(self.path, file_name), b"".join(chunks))
        except OSError as exc:  # a full disk, not the events' fault: they are sent again later
            raise not_written(f"a file in {self.path}", exc, 0, count) from exc

    def close(self) -> None:
        return None


def _regular_or_missing(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # missing (created regular), or opening it will say what is wrong
        return True


def _lines_end(fd: int, size: int) -> int:
    """Where the last whole line of the file ends (after its newline)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _gzip_end(fd: int, size: int) -> int:
    """Where the last complete gzip member of the file ends; ValueError when the file is not gzip.

    The usual case, a file ending in a complete member, is checked from its last 16 MiB; after a crash
    (or for a file whose last member is larger) the members are read from the start.
    """
    if size == 0 or _ends_in_member(fd, size):
        return size
    end = offset = member_start = 0
    member: Any = None
    while offset < size:
        data = os.pread(fd, _CHUNK, offset)
        if not data:
            break
        offset += len(data)
        while data:
            if member is None:
                data = data.lstrip(b"\0")  # zeros between or after members are padding, as gzip reads them
                if not data:
                    break
                member, member_start = zlib.decompressobj(wbits=31), offset - len(data)
            try:
                data = _inflate(member, data)
            except zlib.error as exc:
                raise ValueError(
                    f"it is not gzip from byte {member_start:,} ({exc}); its first {end:,} bytes are whole members"
                ) from None
            if member.eof:
                end, member = offset - len(data), None
    return end


def _ends_in_member(fd: int, size: int) -> bool:
    """Whether the file ends exactly at the end of a complete gzip member."""
    start = max(0, size - _LAST_MEMBER_MAX)
    tail = os.pread(fd, size - start, start)
    candidate = len(tail)
    while (candidate := tail.rfind(_GZIP_MAGIC, 0, candidate)) >= 0:
        member = zlib.decompressobj(wbits=31)
        try:
            rest = _inflate(member, memoryview(tail)[candidate:])
        except zlib.error:
            continue  # the magic bytes inside compressed data, not a member's start
        if member.eof:
            return not rest
    return False


def _inflate(member: Any, data: bytes | memoryview) -> bytes:
    """Feed `data` to a gzip member's decompressor, discarding what it inflates (a little at a time);
    returns the bytes after the member's end, if it ended."""
    while not member.eof:
        inflated = member.decompress(data, _CHUNK)
        data = member.unconsumed_tail
        if not data and not inflated:  # all taken, nothing more held back
            break
    return member.unused_data if member.eof else b""
