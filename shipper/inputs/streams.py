"""Byte streams under the readers: counting, sniffing the head, gzip layers and gzip members.

    input file -> Counting (bytes read, for progress and positions) -> Rewound (head sniffed, served again)
               -> [gzip.GzipFile, as many layers as the data has] -> the content a reader parses

Firehose-to-S3 objects are split into their gzip members without keeping what the members inflate
to: each member's compressed bytes go to `shipper.decode`, which inflates (bounded) and parses it.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from shipper.decode import GZIP_MAGIC

CHUNK = 1024 * 1024
SNIFF_BYTES = 64 * 1024
"""How much of an input (and of each gzip layer) is read to recognise its format."""

_GZIP_WBITS = zlib.MAX_WBITS | 16


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

    def __init__(self, head: bytes, rest: BinaryIO, error: Exception | None = None) -> None:
        self._head = memoryview(head)
        self._read = getattr(rest, "read1", rest.read)  # one read at a time: data before an error is kept
        self._error = error
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
        elif self._error is not None:
            error, self._error = self._error, None
            raise error
        else:
            data = self._read(len(buffer))
            size = len(data)
            buffer[:size] = data
        self.position += size
        return size


def read_up_to(stream: BinaryIO, size: int) -> bytes:
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


def sniffed(stream: BinaryIO) -> tuple[bytes, Rewound]:
    """The first SNIFF_BYTES of `stream`, and a stream that reads it from the start again.

    A read error within them (a short gzip file cut off) is kept for after the head, so what came
    before it is still read.
    """
    parts = []
    wanted = SNIFF_BYTES
    error: Exception | None = None
    read = getattr(stream, "read1", stream.read)
    try:
        while wanted > 0 and (data := read(wanted)):
            parts.append(data)
            wanted -= len(data)
    except (OSError, EOFError, zlib.error) as exc:
        error = exc
    head = b"".join(parts)
    return head, Rewound(head, stream, error)


def gunzipped(stream: BinaryIO) -> gzip.GzipFile:
    """The inflated content of a gzip stream (every member), read incrementally."""
    return gzip.GzipFile(fileobj=io.BufferedReader(stream, CHUNK), mode="rb")  # type: ignore[arg-type]


def first_member_head(head: bytes) -> bytes:
    """What the first gzip member in `head` inflates to, at most SNIFF_BYTES of it ('' when unreadable)."""
    try:
        return zlib.decompressobj(_GZIP_WBITS).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""


class Member(NamedTuple):
    """One gzip member of a stream of concatenated members: where it starts and its compressed bytes."""

    offset: int
    data: bytes


class Unreadable(NamedTuple):
    """Where splitting stopped, why (a reject code and a sentence), and the first bytes there."""

    offset: int
    code: str
    reason: str
    raw: bytes


def gzip_members(stream: BinaryIO, cap: int) -> Iterator[Member | Unreadable]:
    """Split concatenated gzip members into their compressed bytes, keeping none of what they inflate to.

    Inflating is the only way to find where a member ends; the output is thrown away as it comes, so
    memory stays within one member. A member cut short by the end of the stream is yielded as far as
    it goes (the decoder reports it). A corrupt member, bytes between members that are not another
    member, or a member inflating past `cap` end the iteration with an `Unreadable`.
    """
    offset = 0
    buffer = b""
    while True:
        if len(buffer) < len(GZIP_MAGIC):
            buffer += read_up_to(stream, CHUNK)
            if not buffer:
                return
        if not buffer.startswith(GZIP_MAGIC):
            if buffer.strip(b"\x00\n\r\t "):
                reason = f"bytes at offset {offset:,} are not a gzip member; the rest is skipped"
                yield Unreadable(offset, "trailing_garbage", reason, buffer[:SNIFF_BYTES])
            return
        found, buffer = _one_member(stream, buffer, offset, cap)
        yield found
        if isinstance(found, Unreadable):
            return
        offset += len(found.data)


def _one_member(stream: BinaryIO, buffer: bytes, offset: int, cap: int) -> tuple[Member | Unreadable, bytes]:
    """The member starting at `buffer`, reading on from `stream`, and the bytes read past its end."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    kept = bytearray()
    inflated = 0
    while True:
        kept += buffer
        data = buffer
        try:
            while data:
                inflated += len(inflater.decompress(data, CHUNK))
                if inflated > cap:
                    reason = (
                        f"gzip member at offset {offset:,} inflates to more than {cap:,} bytes; treated as a "
                        "decompression bomb, the rest is skipped"
                    )
                    return Unreadable(offset, "decompression_bomb", reason, bytes(kept[:SNIFF_BYTES])), b""
                if inflater.eof:
                    rest = inflater.unused_data
                    return Member(offset, bytes(kept[: len(kept) - len(rest)])), rest
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            reason = f"gzip member at offset {offset:,} is corrupt ({exc}); the rest is skipped"
            return Unreadable(offset, "bad_gzip", reason, bytes(kept[:SNIFF_BYTES])), b""
        buffer = read_up_to(stream, CHUNK)
        if not buffer:
            return Member(offset, bytes(kept)), b""
