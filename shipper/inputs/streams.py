"""Byte streams under the readers: counting, sniffing the head, gzip layers and gzip members.

    input file -> Counting (bytes read, for progress and positions) -> Rewound (head sniffed, served again)
               -> [a GzipFile, as many layers as the data has] -> the content a reader parses

Firehose-to-S3 objects are split into their gzip members, each inflated once (bounded) on the way:
what a member inflates to goes to `shipper.decode` as an uncompressed record.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Protocol

from shipper import compression
from shipper.decode import GZIP_MAGIC, inflate_bounded
from shipper.names import RejectCode

CHUNK = 1024 * 1024
_FEED = 64 * 1024
"""Bytes given to the inflater at a time when splitting gzip members (see `_one_member`)."""
SNIFF_BYTES = 64 * 1024
"""How much of an input (and of each gzip layer) is read to recognise its format."""


class ByteSource(Protocol):
    """What the functions here read from: a file, an S3 body, a `Counting` or `Rewound` stream, a gzip layer."""

    def read(self, size: int = -1, /) -> bytes | None: ...


class Meter:
    """Bytes read from every input so far, as stored (compressed); the progress bar reads it."""

    __slots__ = ("bytes_read",)

    def __init__(self) -> None:
        self.bytes_read = 0


class Counting(io.RawIOBase):
    """A readable stream that counts the bytes read through it, here and in a shared Meter."""

    def __init__(self, stream: BinaryIO, meter: Meter) -> None:
        self._stream = stream
        self._meter = meter
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.position += size
        self._meter.bytes_read += size
        return size

    def close(self) -> None:
        self._stream.close()
        super().close()


class Rewound(io.RawIOBase):
    """A stream whose first bytes were read to sniff its format; they are served again before the rest.

    `position` is the offset of the next byte it returns, for error messages. An error met while
    sniffing (a gzip stream that ends within the head) is raised once the head has been served.
    """

    def __init__(self, head: bytes, rest: ByteSource, error: Exception | None = None) -> None:
        self._head = memoryview(head)
        self._read = getattr(rest, "read1", rest.read)  # one read at a time: data before an error is kept
        self._error = error
        self.position = 0

    def readable(self) -> bool:
        return True

    @property
    def failed(self) -> bool:
        """Whether reading the head met an error, still to be raised once the head has been served."""
        return self._error is not None

    def readinto(self, buffer: memoryview) -> int | None:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
        elif self._error is not None:
            error, self._error = self._error, None
            raise error
        else:
            data = self._read(len(buffer))
            if data is None:  # a non-blocking source with nothing to read yet: say so, as it did
                return None
            size = len(data)
            buffer[:size] = data
        self.position += size
        return size


def read_up_to(stream: ByteSource, size: int) -> bytes:
    """`size` bytes, or fewer at the end of the stream (pipes and S3 bodies return short reads)."""
    parts = []
    wanted = size
    while wanted > 0:
        data = stream.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return b"".join(parts)


def sniffed(stream: ByteSource, size: int = SNIFF_BYTES) -> tuple[bytes, Rewound]:
    """The first `size` bytes of `stream`, and a stream that reads it from the start again.

    A read error within them (a short gzip file cut off) is kept for after the head, so what came
    before it is still read.
    """
    parts = []
    wanted = size
    error: Exception | None = None
    read = getattr(stream, "read1", stream.read)
    try:
        while wanted > 0 and (data := read(min(wanted, CHUNK))):
            parts.append(data)
            wanted -= len(data)
    except compression.STREAM_ERRORS as exc:
        error = exc
    head = b"".join(parts)
    return head, Rewound(head, stream, error)


def gunzipped(stream: io.RawIOBase) -> compression.GzipFile:
    """The inflated content of a gzip stream (every member), read incrementally."""
    return compression.GzipFile(fileobj=io.BufferedReader(stream, CHUNK), mode="rb")


def first_member_head(head: bytes) -> bytes:
    """What the first gzip member in `head` inflates to, at most SNIFF_BYTES of it ('' when unreadable)."""
    try:
        return compression.inflater().decompress(head, SNIFF_BYTES)
    except compression.ERRORS:
        return b""


class Member(NamedTuple):
    """One gzip member of a stream of concatenated members: where it starts, its compressed size, and its content.

    `content` is what the member inflates to; for a member cut short by the end of the stream, it is the
    compressed bytes as far as they go, which the decoder inflates again and reports as truncated.
    """

    offset: int
    size: int
    content: bytes


class Unreadable(NamedTuple):
    """Where splitting stopped, why (a reject code and a sentence), and the first bytes there."""

    offset: int
    code: str
    reason: str
    raw: bytes


def gzip_members(stream: ByteSource, cap: int) -> Iterator[Member | Unreadable]:
    """Split concatenated gzip members and inflate each, never holding more than `cap` bytes of one.

    Inflating is the only way to find where a member ends, so each member is inflated once, here, and
    handed on inflated. A member cut short by the end of the stream is yielded compressed, as far as
    it goes (the decoder reports it). A corrupt member, bytes between members that are not another
    member, or a member inflating past `cap` end the iteration with an `Unreadable`.
    """
    offset = 0
    buffer, position = b"", 0
    while True:
        if len(buffer) - position < len(GZIP_MAGIC):
            buffer, position = buffer[position:] + read_up_to(stream, CHUNK), 0
            if not buffer:
                return
        if not buffer.startswith(GZIP_MAGIC, position):
            rest = buffer[position:]
            if rest.strip(b"\x00\n\r\t "):
                reason = f"bytes at offset {offset:,} are not a gzip member; the rest is skipped"
                yield Unreadable(offset, RejectCode.TRAILING_GARBAGE, reason, rest[:SNIFF_BYTES])
            return
        found, buffer, position = _one_member(stream, buffer, position, offset, cap)
        yield found
        if isinstance(found, Unreadable):
            return
        offset += found.size


def _one_member(
    stream: ByteSource, buffer: bytes, position: int, offset: int, cap: int
) -> tuple[Member | Unreadable, bytes, int]:
    """The member starting at `buffer[position]`, reading on from `stream`; then the buffer and where the next starts.

    Input goes to the inflater in slices of _FEED bytes: at a member's end it copies what is left of its
    input, so a slice bounds that copy, which the whole buffer would not.
    """
    inflater = compression.inflater()
    compressed: list[bytes] = []  # what a truncated member is passed on as
    content: list[bytes] = []
    size = inflated = 0
    while True:
        while position < len(buffer):
            piece = buffer[position : position + _FEED]
            position += len(piece)
            problem = None
            try:
                inflated = inflate_bounded(inflater, piece, inflated, cap, content)
            except compression.ERRORS as exc:
                problem = (
                    RejectCode.BAD_GZIP,
                    f"gzip member at offset {offset:,} is corrupt ({exc}); the rest is skipped",
                )
            if inflated > cap:
                problem = (
                    RejectCode.DECOMPRESSION_BOMB,
                    f"gzip member at offset {offset:,} inflates to more than {cap:,} bytes; treated as a "
                    "decompression bomb, the rest is skipped",
                )
            if problem is not None:
                code, reason = problem
                raw = b"".join([*compressed, piece])[:SNIFF_BYTES]
                return Unreadable(offset, code, reason, raw), b"", 0
            if inflater.eof:
                left = len(inflater.unused_data)
                return Member(offset, size + len(piece) - left, b"".join(content)), buffer, position - left
            compressed.append(piece)
            size += len(piece)
        buffer, position = read_up_to(stream, CHUNK), 0
        if not buffer:
            return Member(offset, size, b"".join(compressed)), b"", 0
