"""Decoding: every input shape, and every kind of bad input becoming a reject with its bytes."""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.decode import (
    _MEMORY_PER_BYTE,
    _MEMORY_PER_EVENT,
    KPL_MAGIC,
    RawRecord,
    decode_record,
    record_from_awslogs_event,
    records_from_get_records,
)
from shipper.names import rejected_count
from shipper.pipeline import Pipeline

from helpers import cwl_document, gz, kinesis_event, kpl_aggregate

# The Lambda Kinesis event from formats.md §1.2: one real-shaped record carrying one log event.
FORMATS_MD_RECORD_DATA = (
    "H4sIAAAAAAACAzVQy2rDMBD8FSN6jLHekn0z1A2F9hKbXtJQJEsJovGjltJQQv6927S97C67w8zsXNDgYzQH333NHlXovu7qt+em"
    "bet1g1ZoOo9+gTWhjAupdIkJhfVxOqyX6TTDpTDnWBzNYJ0ppsX5JeZmDr+YNi3eDACimPICi4LiYnv3VHdN2+34vrTE0145abjF"
    "vjSsF055sqeGWd4DRTzZ2C9hTmEaH8IxATmqtihN+XsYfQwR7W46zacf08/pgoIDOaap4pJiAbYl10rc7GtNGZG4FIpowTRXJZVM"
    "YAKTVFJAB8kUII9kBniNKCIppUILjPXqPyegb7t602Ub/3EC6KOrMm4Jp/ue5URZnfPe2dxwCUU761VJtCIiewH38EeV/QXwOqLr"
    "7voNrkyfJYABAAA="
)


def _record(data: bytes, sequence: str = "1") -> RawRecord:
    return RawRecord(data, sequence, "test")


def test_lambda_kinesis_event_from_the_reference_decodes():
    event = {"Records": [{"kinesis": {"data": FORMATS_MD_RECORD_DATA, "sequenceNumber": "4965"}, "eventID": "s:4965"}]}
    pipeline = Pipeline()
    [outcome] = pipeline.process_kinesis_event(event)
    assert outcome.origin == "4965"
    assert outcome.rejects == []
    # The single log event is a START line: it opens an invocation and emits no event of its own.
    assert outcome.events == []
    assert pipeline.counts["log_events_received"] == 1
    # A print line that follows in the same stream belongs to the invocation that START opened.
    follow_up = cwl_document(["hello from print\n"], log_stream="2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c")
    [later] = pipeline.process_records([_record(gz(follow_up))])
    assert later.events[0]["request_id"] == "4b142fc3-17b8-4cdb-a46b-a8dbe7918715"


def test_raw_get_records_bytes_and_direct_awslogs_event_give_the_same_events():
    document = cwl_document(["[INFO]\t2024-05-20T16:29:45.009Z\tabc\tprocessed order 42\n"])
    data = gz(document)
    from_raw = Pipeline().process_records(records_from_get_records([{"Data": data, "SequenceNumber": "7"}]))
    record, _ = record_from_awslogs_event({"awslogs": {"data": base64.b64encode(data).decode()}})
    assert record is not None
    from_awslogs = Pipeline().process_records([record])
    assert from_raw[0].events == from_awslogs[0].events
    assert from_raw[0].events[0]["message"] == "processed order 42"
    assert from_raw[0].origin == "7"


def test_concatenated_gzip_members_each_decode():
    first = cwl_document(["one\n"], log_stream="a")
    second = cwl_document(["two\n", "three\n"], log_stream="b")
    decoded = decode_record(_record(gz(first) + gz(second)))
    assert [d["logStream"] for d in decoded.documents] == ["a", "b"]
    assert decoded.rejects == []


def test_uncompressed_json_envelope_is_accepted():
    decoded = decode_record(_record(orjson.dumps(cwl_document(["plain\n"]))))
    assert len(decoded.documents) == 1


def test_control_message_is_skipped_and_counted():
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 1498519943285,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
            }
        ],
    }
    pipeline = Pipeline()
    [outcome] = pipeline.process_records([_record(gz(control))])
    assert outcome.events == [] and outcome.rejects == []
    assert pipeline.counts["control_messages_skipped"] == 1


def test_unknown_top_level_and_per_event_keys_are_tolerated_and_ids_stay_strings():
    document = cwl_document(["hello\n"], policyLevel="ACCOUNT_LEVEL_POLICY", **{"@aws.region": "eu-west-1"})
    document["logEvents"][0]["extractedFields"] = {"event": "hello"}
    [outcome] = Pipeline().process_records([_record(gz(document))])
    [event] = outcome.events
    assert event["event_id"] == "38274620512364875123458823160957185384792635018476765184"
    assert isinstance(event["event_id"], str)


def test_kpl_aggregate_is_deaggregated_and_each_subrecord_decoded():
    payloads = [gz(cwl_document([f"message {i}\n"], log_stream=f"s{i}")) for i in range(3)]
    aggregate = kpl_aggregate(payloads)
    assert aggregate[:4] == KPL_MAGIC
    pipeline = Pipeline()
    [outcome] = pipeline.process_records([_record(aggregate, "900")])
    assert [event["message"] for event in outcome.events] == ["message 0", "message 1", "message 2"]
    assert outcome.origin == "900"
    assert pipeline.counts["kpl_subrecords"] == 3


def test_record_that_only_looks_aggregated_is_treated_as_plain():
    aggregate = bytearray(kpl_aggregate([gz(cwl_document(["x\n"]))]))
    aggregate[-1] ^= 0xFF  # wrong MD5: not an aggregate, just bytes that start with the magic
    decoded = decode_record(_record(bytes(aggregate)))
    assert decoded.documents == []
    [reject] = decoded.rejects
    assert reject.code == "unknown_format"
    assert reject.raw == bytes(aggregate)


def test_kpl_with_valid_digest_but_broken_protobuf_is_rejected_with_reason():
    import hashlib

    body = b"\x1a\xff\xff\xff"  # a length-delimited field that runs past the end
    data = KPL_MAGIC + body + hashlib.md5(body).digest()
    decoded = decode_record(_record(data))
    [reject] = decoded.rejects
    assert reject.code == "bad_kpl"
    assert "protobuf" in reject.reason


def test_decompression_bomb_becomes_a_reject_not_an_out_of_memory():
    bomb = gzip.compress(b"\0" * (80 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    decoded = decode_record(_record(bomb, "55"))  # default cap: 64 MiB
    [reject] = decoded.rejects
    assert reject.code == "decompression_bomb"
    assert reject.sequence_number == "55"
    assert reject.raw == bomb
    assert "67,108,864" in reject.reason


_PACKINGS = ("gzip members", "KPL subrecords", "KPL subrecords of gzip members")


@st.composite
def _packed_record(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[int], int]:
    """A record packing documents s0, s1, ... as gzip members, KPL subrecords, or subrecords of members:
    (record, each document's gzip, each document's inflated size, cap)."""
    sizes = draw(st.lists(st.integers(1, 40_000), min_size=1, max_size=6))
    bodies = [orjson.dumps(cwl_document(["x" * size + "\n"], log_stream=f"s{i}")) for i, size in enumerate(sizes)]
    members = [gzip.compress(body, compresslevel=1) for body in bodies]
    packing = draw(st.sampled_from(_PACKINGS))
    if packing == "gzip members":
        data = b"".join(members)
    elif packing == "KPL subrecords":
        data = kpl_aggregate(members)
    else:
        cuts = sorted(draw(st.sets(st.integers(1, len(members) - 1), max_size=3))) if len(members) > 1 else []
        groups = [members[start:stop] for start, stop in zip([0, *cuts], [*cuts, len(members)], strict=True)]
        data = kpl_aggregate([b"".join(group) for group in groups])
    cap = draw(st.integers(1, sum(map(len, bodies)) + 10))
    return data, members, [len(body) for body in bodies], cap


@settings(max_examples=150, deadline=None)
@given(_packed_record())
def test_property_a_record_never_inflates_past_its_cap_however_it_is_packed(packed):
    """The cap bounds the whole record, its gzip members and KPL subrecords together: the documents decoded
    never add up to more. Those past it are rejected as a bomb with their bytes kept, and under it nothing is."""
    data, members, sizes, cap = packed
    decoded = decode_record(_record(data), max_decompressed_bytes=cap)
    kept = [int(document["logStream"][1:]) for document in decoded.documents]
    assert kept == list(range(len(kept)))  # the documents before the cap, in order
    assert sum(sizes[index] for index in kept) <= cap
    assert {reject.code for reject in decoded.rejects} <= {"decompression_bomb"}
    if sum(sizes) <= cap:
        assert not decoded.rejects and len(kept) == len(members)
    for member in members[len(kept) :]:
        assert any(member in reject.raw for reject in decoded.rejects)


@st.composite
def _record_of_events(draw: st.DrawFn) -> tuple[bytes, int, int, int]:
    """A gzip record of 1-3 documents of drawn event counts and message lengths, and a memory budget:
    (record, inflated bytes, log events, budget)."""
    shapes = draw(st.lists(st.tuples(st.integers(1, 400), st.integers(0, 300)), min_size=1, max_size=3))
    bodies = [
        orjson.dumps(cwl_document(["x" * length + "\n"] * count, log_stream=f"s{index}"))
        for index, (count, length) in enumerate(shapes)
    ]
    inflated, events = sum(map(len, bodies)), sum(count for count, _ in shapes)
    estimate = _MEMORY_PER_BYTE * inflated + _MEMORY_PER_EVENT * events
    budget = max(1, int(estimate * draw(st.floats(0.05, 30.0))))  # under, near and far over the estimate
    return b"".join(gzip.compress(body, compresslevel=1) for body in bodies), inflated, events, budget


@settings(max_examples=150, deadline=None)
@given(_record_of_events())
def test_property_a_record_is_parsed_only_within_its_memory_budget(case):
    """A record is decoded only when its estimated cost (per inflated byte and per log event) fits the budget;
    one past it is rejected whole, unparsed, with its size and events in the reason."""
    data, inflated, events, budget = case
    decoded = decode_record(_record(data), max_memory=budget)
    estimate = _MEMORY_PER_BYTE * inflated + _MEMORY_PER_EVENT * events
    if decoded.rejects:
        [reject] = decoded.rejects
        assert (reject.code, reject.raw, decoded.documents) == ("decompression_bomb", data, [])
        assert estimate > budget
        assert f"{inflated:,} bytes holding about {events:,} log events" in reject.reason
    else:
        assert estimate <= budget
        assert sum(len(document["logEvents"]) for document in decoded.documents) == events


def test_the_memory_estimate_counts_log_events_not_the_word_timestamp_inside_their_messages():
    """A message holding `"timestamp"` is escaped in the JSON (`\\"timestamp\\"`), so it adds no event to the
    count; text that is no JSON at all may over-count, and is then rejected whole with its bytes kept."""
    messages = ['{"timestamp": 1, "level": "INFO"} ' * 2_000 + "\n"] * 10  # 20,000 quoted words, 10 events
    body = orjson.dumps(cwl_document(messages))
    budget = _MEMORY_PER_BYTE * len(body) + _MEMORY_PER_EVENT * 10  # fits 10 events, not 20,010
    decoded = decode_record(_record(gz(body)), max_memory=budget)
    assert decoded.rejects == [] and len(decoded.documents[0]["logEvents"]) == 10

    garbage = gz(b'"timestamp"' * 100_000)
    [reject] = decode_record(_record(garbage), max_memory=budget).rejects
    assert (reject.code, reject.raw) == ("decompression_bomb", garbage)
    assert "about 100,000 log events" in reject.reason


def test_decompression_cap_is_configurable():
    data = gz(cwl_document(["x" * 5000 + "\n"]))
    assert decode_record(_record(data), max_decompressed_bytes=1000).rejects[0].code == "decompression_bomb"
    assert decode_record(_record(data), max_decompressed_bytes=100_000).rejects == []


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (gz(cwl_document(["x\n"] * 50))[:-30], "truncated_gzip", "ends early"),
        (b"\x1f\x8b\x08\x00garbage-not-deflate" * 3, "bad_gzip", "corrupt"),
        (gz(b"this is not json"), "not_json", "not valid JSON"),
        (gz(b'{"messageType": "DATA_MESSAGE", "logGroup": "\xff\xfe"}'), "invalid_utf8", "not valid UTF-8"),
        (gz(b"[1, 2, 3]"), "wrong_shape", "not a CloudWatch Logs message"),
        (gz(b'{"hello": "world"}'), "wrong_shape", "no messageType"),
        (gz(b'{"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s"}'), "wrong_shape", "logEvents"),
        (gz(b'{"messageType": "SURPRISE_MESSAGE"}'), "unknown_message_type", "SURPRISE_MESSAGE"),
        (b"plain text record", "unknown_format", "not gzip"),
        (b"[" * 5000 + b"]" * 5000, "unknown_format", "not gzip"),
        (gz(b"[" * 5000 + b"]" * 5000), "not_json", "not valid JSON"),
    ],
)
def test_bad_record_is_rejected_with_its_bytes_and_the_rest_of_the_batch_goes_through(payload, code, words):
    good = gz(cwl_document(["[INFO]\t2024-05-20T16:29:45.009Z\tabc\tstill here\n"]))
    pipeline = Pipeline()
    outcomes = pipeline.process_kinesis_event(kinesis_event([good, payload, good]))
    assert [len(o.events) for o in outcomes] == [1, 0, 1]
    [reject] = outcomes[1].rejects
    assert reject.code == code
    assert words in reject.reason
    assert reject.sequence_number == outcomes[1].origin
    assert reject.source.startswith("shardId-000000000003:")
    assert payload.startswith(reject.raw) or reject.raw in gzip_members_of(payload)
    assert pipeline.counts[rejected_count(code)] == 1


def gzip_members_of(payload: bytes) -> list[bytes]:
    try:
        return [zlib.decompress(payload, 47)]
    except zlib.error:
        return []


def test_bad_base64_and_missing_data_are_rejected_per_record():
    event = kinesis_event([gz(cwl_document(["ok\n"]))] * 3)
    event["Records"][0]["kinesis"]["data"] = "not*base64!"
    del event["Records"][1]["kinesis"]["data"]
    outcomes = Pipeline().process_kinesis_event(event)
    by_code = {r.code: r for o in outcomes for r in o.rejects}
    assert set(by_code) == {"bad_base64", "wrong_shape"}
    assert by_code["bad_base64"].raw == b"not*base64!"
    assert "Records[0]" in by_code["bad_base64"].reason
    assert sum(len(o.events) for o in outcomes) == 1


def test_bad_log_event_and_oversized_message_are_rejected_alone():
    document = cwl_document(["fine\n", "y" * 2000 + "\n", "also fine\n"])
    document["logEvents"].insert(1, {"id": "9", "timestamp": "yesterday", "message": "bad timestamp"})
    pipeline = Pipeline(max_message_chars=1000)
    [outcome] = pipeline.process_records([_record(gz(document))])
    assert [e["message"] for e in outcome.events] == ["fine", "also fine"]
    assert sorted(r.code for r in outcome.rejects) == ["bad_log_event", "oversized_event"]
    oversized = next(r for r in outcome.rejects if r.code == "oversized_event")
    assert orjson.loads(oversized.raw)["message"] == "y" * 2000 + "\n"
    assert "2,001 bytes" in oversized.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_decoder_never_raises_on_arbitrary_bytes(data):
    for candidate in (data, KPL_MAGIC + data, b"\x1f\x8b" + data, gz(data), b"{" + data):
        decoded = decode_record(_record(candidate), max_decompressed_bytes=1_000_000)
        for reject in decoded.rejects:
            assert reject.reason and reject.code
        events = Pipeline().process_records([_record(candidate)])
        assert isinstance(events, list)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_value_in_an_envelope_never_raises(value):
    shapes = [
        value,
        {"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s", "logEvents": value},
        {"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s", "logEvents": [value]},
    ]
    for shape in shapes:
        Pipeline().process_records([_record(gz(json.dumps(shape).encode()))])


def test_random_bytes_as_kinesis_data_never_raise():
    payloads = [os.urandom(n) for n in (0, 1, 2, 4, 17, 300)]
    outcomes = Pipeline().process_kinesis_event(kinesis_event(payloads))
    assert all(outcome.rejects for outcome in outcomes)


def test_a_lone_surrogate_rejects_only_the_log_event_that_holds_it():
    member = (
        b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/f","logStream":"s","logEvents":['
        b'{"id":"1","timestamp":1,"message":"bad \\ud800 text"},{"id":"2","timestamp":2,"message":"fine"}]}'
    )
    pipeline = Pipeline()
    [outcome] = pipeline.process_records([_record(gz(member), "77")])
    assert [event["message"] for event in outcome.events] == ["fine"]
    [reject] = outcome.rejects
    assert reject.code == "invalid_unicode"
    assert reject.sequence_number == "77"
    assert json.loads(reject.raw)["message"] == "bad \ud800 text"
    orjson.dumps(reject.to_dead_letter())  # the dead-letter entry itself is writable


def test_a_lone_surrogate_outside_the_log_events_rejects_the_record():
    member = b'{"messageType":"DATA_MESSAGE","logGroup":"\\udc00","logStream":"s","logEvents":[]}'
    decoded = decode_record(_record(gz(member)))
    [reject] = decoded.rejects
    assert reject.code == "not_json"
    assert "surrogate" in reject.reason
