"""gzip through ISA-L behaves as zlib does wherever shipper relies on it: on any data, corrupt or cut short."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import compression
from shipper.decode import GZIP_MAGIC, inflate_bounded


def _inflate(inflater: object, data: bytes, cap: int) -> tuple[str, bytes, bool, bytes]:
    """What inflate_bounded makes of `data`: ("ok" or "error", the output, eof, the bytes after the member)."""
    output: list[bytes] = []
    try:
        inflate_bounded(inflater, data, 0, cap, output)
    except compression.ERRORS:
        return "error", b"", False, b""
    eof = bool(inflater.eof)  # type: ignore[attr-defined]
    return "ok", b"".join(output), eof, inflater.unused_data if eof else b""  # type: ignore[attr-defined]


_RESERVED_FLAGS = 0xE0
"""The bits of a gzip header's flag byte that RFC 1952 reserves."""
_payload = st.one_of(st.binary(max_size=3000), st.text(max_size=2000).map(str.encode), st.just(b"x" * 200_000))


@st.composite
def _gzip_data(draw: st.DrawFn) -> bytes:
    """A gzip member of some data, maybe with one byte changed, maybe cut short, maybe followed by more bytes."""
    data = bytearray(gzip.compress(draw(_payload), compresslevel=draw(st.integers(1, 9))))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=40))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    data=st.one_of(_gzip_data(), st.binary(max_size=200).map(GZIP_MAGIC.__add__)),
    cap=st.sampled_from([100, 5000, 1 << 20]),
)
def test_the_inflater_gives_what_zlib_gives(data: bytes, cap: int) -> None:
    """Everywhere shipper inflates, the data starts with the gzip magic bytes (what does not is refused before).

    A member is used only when it is complete: then both give the same bytes and the same rest. What one
    refuses (corrupt, or cut short) the other refuses too, though not always for the same reason: zlib judges
    a header or trailer byte by byte, ISA-L once it has all of it, and each stops at some corrupt deflate
    data where the other waits for more.
    """
    ours = _inflate(compression.inflater(), data, cap)
    reference = _inflate(zlib.decompressobj(zlib.MAX_WBITS | 16), data, cap)
    if ours[0] == "ok" and reference[0] == "ok" and len(ours[1]) > cap:  # past the cap both stop; where differs
        assert len(reference[1]) > cap
        return
    complete = ours[0] == "ok" and ours[2]
    if complete and reference[0] == "error" and data[3] & _RESERVED_FLAGS:
        return  # ISA-L reads a header with reserved flag bits set, which zlib refuses; the CRC is still checked
    assert complete == (reference[0] == "ok" and reference[2])
    if complete:
        assert ours == reference


@settings(max_examples=200, deadline=None)
@given(_payload)
def test_compress_gives_one_gzip_member_that_anything_reads_and_the_same_bytes_each_time(data: bytes) -> None:
    packed = compression.compress(data)
    assert gzip.decompress(packed) == data
    assert zlib.decompress(packed, zlib.MAX_WBITS | 16) == data
    assert compression.compress(data) == packed
