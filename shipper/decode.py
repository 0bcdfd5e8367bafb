"""Decode: bytes from Kinesis (or files) into CloudWatch Logs documents. Hot path, no I/O.

    record bytes -> [KPL deaggregation] -> [gzip, one or more members, bounded] -> [memory estimate]
                 -> JSON envelope

A `RawRecord` is one Kinesis record. `decode_record` turns it into the CloudWatch Logs
`DATA_MESSAGE` documents it carries, counts the `CONTROL_MESSAGE`s it skips, and turns every part it
cannot read into a `Reject` with the raw bytes and a sentence saying what was wrong. Nothing in this
module raises for bad data.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from shipper import compression
from shipper.names import RejectCode
from shipper.reject import Reject

GZIP_MAGIC = b"\x1f\x8b"
KPL_MAGIC = b"\xf3\x89\x9a\xc2"
_KPL_DIGEST_SIZE = 16

_MIB = 1024 * 1024
_INFLATE_STEP = 8 * _MIB
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * _MIB
"""Cap on what one record may inflate to; above it the record is a decompression bomb."""
MAX_RECORD_MEMORY = 256 * _MIB
"""What handling one record may take, estimated before its JSON is parsed; above it the record is rejected."""
_MEMORY_PER_BYTE = 3
_MEMORY_PER_EVENT = 800
"""The estimate: bytes per inflated byte and per log event, above what records took through the handler
(225 MB for 60 MiB of 900-character messages, 197 MB for 16.7 MB of 190,794 short ones; docs/performance.md)."""
_SMALLEST_EVENT = 28
"""The fewest bytes a log event's JSON takes: `{"timestamp":0,"message":""}`."""
_MOST_PER_BYTE = _MEMORY_PER_BYTE + -(-_MEMORY_PER_EVENT // _SMALLEST_EVENT)
"""No record inflating to less than max_memory / _MOST_PER_BYTE can be estimated past it, so only larger
ones have their events counted (which costs about 0.6 ns a byte): 8.4 MB and up at MAX_RECORD_MEMORY."""


class RawRecord(NamedTuple):
    data: bytes
    sequence_number: str | None
    source: str | None
    """Where the record came from (event source ARN and shard, or a file), for messages."""


@dataclass(slots=True)
class Decoded:
    """What one record turned into."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    control_messages: int = 0
    kpl_subrecords: int = 0


def decode_record(
    record: RawRecord,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_memory: int = MAX_RECORD_MEMORY,
) -> Decoded:
    """Decode one Kinesis record: KPL aggregate, gzip (any number of members) or plain JSON.

    `max_decompressed_bytes` caps what the whole record inflates to, its KPL subrecords and gzip members
    together: past it, what is left of the record is rejected as a decompression bomb. A record whose
    events would take more than `max_memory` to handle (many small ones) is rejected before it is parsed.
    """
    decoded = Decoded()
    data = record.data
    payloads = [data]
    if data[:4] == KPL_MAGIC:
        subrecords = _deaggregate(record, decoded)
        if subrecords is not None:
            decoded.kpl_subrecords = len(subrecords)
            payloads = subrecords
    members: list[bytes] = []
    produced = 0
    for payload in payloads:
        produced = _inflate_payload(payload, record, max_decompressed_bytes, produced, members, decoded)
    if produced * _MOST_PER_BYTE > max_memory:
        problem = _memory_problem(members, produced, max_memory)
        if problem is not None:
            decoded.rejects.append(_reject(record, data, RejectCode.DECOMPRESSION_BOMB, problem))
            return decoded
    for member in members:
        _parse_document(member, record, decoded)
    return decoded


def _inflate_payload(
    data: bytes, record: RawRecord, cap: int, produced: int, members: list[bytes], decoded: Decoded
) -> int:
    """Add one payload's JSON members to `members`, `produced` bytes of its record inflated before it;
    returns the new total."""
    if data[:2] == GZIP_MAGIC:
        inflated, produced = _gunzip_members(data, cap, produced, record, decoded)
        members += inflated
    elif data[:1] in (b"{", b" ", b"\n", b"\r", b"\t"):
        members.append(data)
    else:
        decoded.rejects.append(
            _reject(
                record,
                data,
                RejectCode.UNKNOWN_FORMAT,
                f"record is not gzip, KPL-aggregated or JSON (it starts with bytes {data[:8].hex(' ')!r})",
            )
        )
    return produced


def _memory_problem(members: list[bytes], produced: int, max_memory: int) -> str | None:
    """Why a record of `produced` inflated bytes would take more than `max_memory` to handle, or None.

    Its log events are counted by their `"timestamp"` keys, which a message cannot hold unescaped.
    """
    events = sum(member.count(b'"timestamp"') for member in members)
    estimate = _MEMORY_PER_BYTE * produced + _MEMORY_PER_EVENT * events
    if estimate <= max_memory:
        return None
    return (
        f"record inflates to {produced:,} bytes holding about {events:,} log events: handling them would take "
        f"about {estimate / _MIB:,.0f} MiB, more than the {max_memory / _MIB:,.0f} MiB one record may use; "
        "treated as a decompression bomb"
    )


def inflate_bounded(inflater: Any, data: bytes, produced: int, cap: int, output: list[bytes]) -> int:
    """Feed `data` to a `compression.inflater()` until it is used up, the member ends, or more than `cap`
    bytes were produced in all; append the output to `output` and return the new total. compression.ERRORS:
    corrupt data.

    Each call produces at most 8 MiB, so a decompression bomb is stopped holding about `cap` bytes, not
    the doubled buffer one large call would grow.
    """
    while data and not inflater.eof and produced <= cap:
        piece = inflater.decompress(data, min(_INFLATE_STEP, cap - produced + 1))
        produced += len(piece)
        output.append(piece)
        data = inflater.unconsumed_tail
    return produced


def _gunzip_members(
    data: bytes, cap: int, produced: int, record: RawRecord, decoded: Decoded
) -> tuple[list[bytes], int]:
    """Inflate every gzip member in `data` while the record's total, `produced` so far, stays within `cap`."""
    members: list[bytes] = []
    before = produced
    remaining = data
    while remaining:
        inflater = compression.inflater()
        pieces: list[bytes] = []
        try:
            produced = inflate_bounded(inflater, remaining, produced, cap, pieces)
        except compression.ERRORS as exc:
            decoded.rejects.append(_reject(record, data, RejectCode.BAD_GZIP, f"gzip data is corrupt ({exc})"))
            return members, produced
        if produced > cap:
            decoded.rejects.append(
                _reject(
                    record,
                    data,
                    RejectCode.DECOMPRESSION_BOMB,
                    f"record inflates to more than {cap:,} bytes from {len(data):,} compressed"
                    + (f" ({before:,} of them from the KPL subrecords before this one)" if before else "")
                    + "; treated as a decompression bomb",
                )
            )
            return members, produced
        if not inflater.eof:
            decoded.rejects.append(
                _reject(
                    record,
                    data,
                    RejectCode.TRUNCATED_GZIP,
                    f"gzip stream ends early: {len(data):,} bytes read, member {len(members) + 1} is incomplete",
                )
            )
            return members, produced
        members.append(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        remaining = inflater.unused_data
        if remaining and not remaining.startswith(GZIP_MAGIC):
            if remaining.strip(b"\x00"):
                decoded.rejects.append(
                    _reject(
                        record,
                        remaining,
                        RejectCode.TRAILING_GARBAGE,
                        f"{len(remaining):,} bytes after gzip member {len(members)} are not another gzip member",
                    )
                )
            break
    return members, produced


def _parse_document(member: bytes, record: RawRecord, decoded: Decoded) -> None:
    try:
        document = orjson.loads(member)
    except orjson.JSONDecodeError as exc:
        document = _with_surrogates_rejected(member, record, decoded) if "surrogate" in str(exc) else None
        if document is None:
            decoded.rejects.append(_json_reject(member, record, exc))
            return
    if type(document) is not dict:
        decoded.rejects.append(
            _reject(
                record,
                member,
                RejectCode.WRONG_SHAPE,
                f"JSON is a {type(document).__name__}, not a CloudWatch Logs message object",
            )
        )
        return
    message_type = document.get("messageType")
    if message_type == "DATA_MESSAGE":
        problem = _envelope_problem(document)
        if problem is None:
            decoded.documents.append(document)
        else:
            decoded.rejects.append(_reject(record, member, RejectCode.WRONG_SHAPE, problem))
    elif message_type == "CONTROL_MESSAGE":
        decoded.control_messages += 1
    elif message_type is None:
        decoded.rejects.append(
            _reject(
                record, member, RejectCode.WRONG_SHAPE, "JSON object has no messageType: not a CloudWatch Logs message"
            )
        )
    else:
        decoded.rejects.append(
            _reject(
                record, member, RejectCode.UNKNOWN_MESSAGE_TYPE, f"unknown CloudWatch Logs messageType {message_type!r}"
            )
        )


def _with_surrogates_rejected(member: bytes, record: RawRecord, decoded: Decoded) -> Any:
    """The document, minus the log events whose text holds a lone UTF-16 surrogate (`\\ud800`).

    Such text cannot be written as UTF-8, so those events alone become rejects and the rest of the
    batch goes through. None when the surrogate is elsewhere (the whole record is then rejected).
    """
    try:
        document = json.loads(member)
    except ValueError:
        return None
    events = document.get("logEvents") if type(document) is dict else None
    if type(events) is not list:
        return None
    kept = []
    for index, log_event in enumerate(events):
        if _is_utf8(json.dumps(log_event, ensure_ascii=False)):
            kept.append(log_event)
        else:
            raw = json.dumps(log_event).encode("ascii")
            reason = f"log event {index} holds a lone UTF-16 surrogate, which is not valid Unicode text"
            decoded.rejects.append(_reject(record, raw, RejectCode.INVALID_UNICODE, reason))
    document["logEvents"] = kept
    return document if _is_utf8(json.dumps(document, ensure_ascii=False)) else None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _envelope_problem(document: dict[str, Any]) -> str | None:
    """What makes a DATA_MESSAGE unusable, or None. Per-event checks happen in the classifier."""
    if type(document.get("logEvents")) is not list:
        return "DATA_MESSAGE has no logEvents list"
    for key in ("logGroup", "logStream"):
        if type(document.get(key)) is not str:
            return f"DATA_MESSAGE field {key!r} is missing or not a string"
    return None


def _json_reject(member: bytes, record: RawRecord, exc: orjson.JSONDecodeError) -> Reject:
    try:
        member.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        return _reject(
            record,
            member,
            RejectCode.INVALID_UTF8,
            f"payload is not valid UTF-8 (byte 0x{member[utf8_error.start]:02x} at offset {utf8_error.start})",
        )
    return _reject(record, member, RejectCode.NOT_JSON, f"payload is not valid JSON: {exc}")


def _deaggregate(record: RawRecord, decoded: Decoded) -> list[bytes] | None:
    """User records inside a KPL aggregate, or None when the record only looks aggregated.

    A record is aggregated only when the magic is followed by a protobuf message and its MD5;
    with a wrong digest it is an ordinary record that happens to start with the magic.
    """
    import hashlib  # OpenSSL's start-up, paid only by records that carry the KPL magic

    body = record.data[len(KPL_MAGIC) :]
    if len(body) <= _KPL_DIGEST_SIZE:
        return None
    message, digest = body[:-_KPL_DIGEST_SIZE], body[-_KPL_DIGEST_SIZE:]
    if hashlib.md5(message).digest() != digest:
        return None
    # The protobuf runtime is only needed for aggregated records: imported here to keep start-up cheap.
    # Through `deaggregator`: the library's generated messages_pb2 imports its sibling config_pb2 as a
    # top-level module, which works only after that module has put the package directory on sys.path.
    from aws_kinesis_agg import deaggregator
    from google.protobuf.message import DecodeError

    aggregate = deaggregator.messages_pb2.AggregatedRecord()
    try:
        aggregate.ParseFromString(message)
    except DecodeError as exc:
        decoded.rejects.append(
            _reject(
                record,
                record.data,
                RejectCode.BAD_KPL,
                f"KPL aggregate has a valid checksum but unreadable protobuf: {exc}",
            )
        )
        return []
    return [user_record.data for user_record in aggregate.records]


def _reject(record: RawRecord, raw: bytes, code: str, reason: str) -> Reject:
    return Reject(code=code, reason=reason, raw=raw, sequence_number=record.sequence_number, source=record.source)


# --- input shapes: what carries records ------------------------------------------------------------


def records_from_kinesis_event(event: dict[str, Any]) -> tuple[list[RawRecord], list[Reject]]:
    """The records of a Lambda Kinesis event (`{"Records": [{"kinesis": {"data": base64, ...}}]}`)."""
    records: list[RawRecord] = []
    rejects: list[Reject] = []
    entries = event.get("Records")
    if type(entries) is not list:
        rejects.append(Reject(RejectCode.WRONG_SHAPE, "event has no Records list", orjson.dumps(event)))
        return records, rejects
    a2b = binascii.a2b_base64
    for index, entry in enumerate(entries):
        kinesis = entry.get("kinesis") if type(entry) is dict else None
        data = kinesis.get("data") if type(kinesis) is dict else None
        sequence_number = kinesis.get("sequenceNumber") if type(kinesis) is dict else None
        source = entry.get("eventID") if type(entry) is dict else None
        if type(data) is not str:
            rejects.append(
                Reject(
                    RejectCode.WRONG_SHAPE,
                    f"Records[{index}] has no kinesis.data string",
                    orjson.dumps(entry),
                    sequence_number if type(sequence_number) is str else None,
                    source,
                )
            )
            continue
        try:
            raw = a2b(data, strict_mode=True)
        except binascii.Error as exc:
            rejects.append(
                Reject(
                    RejectCode.BAD_BASE64,
                    f"Records[{index}] kinesis.data is not valid base64 ({exc})",
                    data.encode("utf-8", "surrogatepass"),
                    sequence_number,
                    source,
                )
            )
            continue
        records.append(RawRecord(raw, sequence_number, source))
    return records, rejects


def record_from_awslogs_event(
    event: dict[str, Any], source: str | None = None
) -> tuple[RawRecord | None, Reject | None]:
    """The single record of a direct subscription event (`{"awslogs": {"data": base64}}`)."""
    awslogs = event.get("awslogs")
    data = awslogs.get("data") if type(awslogs) is dict else None
    if type(data) is not str:
        return None, Reject(
            RejectCode.WRONG_SHAPE, "awslogs event has no data string", orjson.dumps(event), None, source
        )
    try:
        return RawRecord(binascii.a2b_base64(data, strict_mode=True), None, source), None
    except binascii.Error as exc:
        reason = f"awslogs.data is not valid base64 ({exc})"
        return None, Reject(RejectCode.BAD_BASE64, reason, data.encode("utf-8", "surrogatepass"), None, source)


def records_from_get_records(response_records: list[dict[str, Any]], source: str | None = None) -> list[RawRecord]:
    """Records as boto3's `get_records` returns them (Data already raw bytes)."""
    return [RawRecord(entry["Data"], entry["SequenceNumber"], source) for entry in response_records]
