"""Splitting Firehose-style concatenated gzip members: each member inflated once, bounded, with its offset."""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.inputs.streams import CHUNK, Member, Unreadable, gzip_members

CAP = 64 * 1024 * 1024


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=60), st.integers(1, 200_000))
def test_every_member_comes_out_inflated_with_its_offset_and_size(contents, pad):
    """Many members to a read chunk, and members that cross chunk boundaries (the padding member shifts them)."""
    members = [gzip.compress(b"x" * pad, mtime=0)] + [gzip.compress(content, mtime=0) for content in contents]
    found = list(gzip_members(io.BytesIO(b"".join(members)), CAP))
    assert all(isinstance(member, Member) for member in found)
    assert [member.content for member in found] == [b"x" * pad, *contents]
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
