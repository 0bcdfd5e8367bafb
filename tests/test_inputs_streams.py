"""Splitting Firehose-style concatenated gzip members: each member inflated once, bounded, with its offset."""

from __future__ import annotations

import gzip
import io
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.inputs.streams import CHUNK, Member, Unreadable, gzip_members

CAP = 64 * 1024 * 1024


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=60), st.integers(1, CHUNK + 100_000))
def test_every_member_comes_out_inflated_with_its_offset_and_size(contents, pad):
    """Many members to a read chunk, and members that start anywhere around a chunk boundary.

    The first member holds `pad` incompressible bytes, so the members after it start at any position
    relative to the read chunks, including with their header split across two reads.
    """
    padding = random.Random(pad).randbytes(pad)
    members = [gzip.compress(padding, mtime=0, compresslevel=1)]
    members += [gzip.compress(content, mtime=0) for content in contents]
    found = list(gzip_members(io.BytesIO(b"".join(members)), CAP))
    assert all(isinstance(member, Member) for member in found)
    assert [member.content for member in found] == [padding, *contents]
    assert [member.size for member in found] == [len(member) for member in members]
    offsets = [sum(len(member) for member in members[:index]) for index in range(len(members))]
    assert [member.offset for member in found] == offsets


def test_members_larger_than_a_read_chunk():
    big = bytes(range(256)) * (3 * CHUNK // 256)  # compresses poorly enough to span several chunks
    members = [gzip.compress(big, mtime=0, compresslevel=0), gzip.compress(b"after", mtime=0)]
    found = list(gzip_members(io.BytesIO(b"".join(members)), CAP))
    assert [member.content for member in found] == [big, b"after"]
    assert found[1].offset == len(members[0])


def test_a_bomb_member_ends_the_split_in_bounded_memory_after_the_members_before_it():
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    bomb = b"".join([*(compressor.compress(b"\0" * (1 << 20)) for _ in range(1024)), compressor.flush()])
    good = gzip.compress(b'{"messageType":"CONTROL_MESSAGE"}', mtime=0)
    tracemalloc.start()
    found = list(gzip_members(io.BytesIO(good + bomb + good), CAP))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [type(member) for member in found] == [Member, Unreadable]
    unreadable = found[1]
    assert (unreadable.offset, unreadable.code) == (len(good), "decompression_bomb")
    assert unreadable.raw == bomb[: len(unreadable.raw)] and unreadable.raw
    assert peak < 80 * 1024 * 1024  # the cap plus slack, never the gigabyte


def test_a_corrupt_member_and_a_cut_member_are_reported_where_they_start():
    first, second = gzip.compress(b"one", mtime=0), gzip.compress(b"two" * 1000, mtime=0)
    corrupt = second[:12] + bytes(255 - byte for byte in second[12:40]) + second[40:]
    found = list(gzip_members(io.BytesIO(first + corrupt), CAP))
    assert found[0] == Member(0, len(first), b"one")
    assert (found[1].offset, found[1].code) == (len(first), "bad_gzip")

    cut = second[: len(second) // 2]
    found = list(gzip_members(io.BytesIO(first + cut), CAP))
    assert found[1] == Member(len(first), len(cut), cut)  # compressed, for the decoder to report as truncated


def _member_of_size(size: int) -> bytes:
    """A stored (uncompressed) gzip member of exactly `size` bytes."""
    content = b"y" * size
    for _ in range(5):
        member = gzip.compress(content, mtime=0, compresslevel=0)
        if len(member) == size:
            return member
        content = content[: len(content) - (len(member) - size)]
    raise AssertionError(f"no stored member of {size} bytes")


@pytest.mark.parametrize("shift", [-2, -1, 0, 1, 5])
def test_a_member_whose_header_straddles_two_reads(shift):
    first = _member_of_size(CHUNK + shift)
    second = gzip.compress(b"second", mtime=0)
    found = list(gzip_members(io.BytesIO(first + second), CAP))
    assert [(member.offset, member.content) for member in found] == [
        (0, gzip.decompress(first)),
        (len(first), b"second"),
    ]
