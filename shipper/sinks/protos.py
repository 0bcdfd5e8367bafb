"""Protobuf messages no official Python package ships, built from descriptors on the protobuf runtime,
and the snappy block format their protocols compress with.

    WriteRequest, TimeSeries, Label, Sample    Prometheus remote write 1.0 (package prometheus)
    PushRequest, StreamAdapter, EntryAdapter,  Loki's push API (package logproto); the timestamp is
    LabelPairAdapter, Timestamp                field-for-field google.protobuf.Timestamp

Only the fields the sinks write are declared; a reader ignores fields it does not know, so these
decode what real servers send and are decoded by them. Imported only by the sinks that need them.
"""

from __future__ import annotations

from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "EntryAdapter",
    "Label",
    "LabelPairAdapter",
    "PushRequest",
    "Sample",
    "StreamAdapter",
    "TimeSeries",
    "Timestamp",
    "WriteRequest",
    "snappy_compress",
    "snappy_decompress",
]

_F = descriptor_pb2.FieldDescriptorProto
_REPEATED, _OPTIONAL = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
_TYPES = {"string": _F.TYPE_STRING, "double": _F.TYPE_DOUBLE, "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32}
_TYPES |= {"uint64": _F.TYPE_UINT64}

# message -> [(field, number, type or message name, repeated)]
_Fields = list[tuple[str, int, str, bool]]
_PROMETHEUS: dict[str, _Fields] = {
    "WriteRequest": [("timeseries", 1, "TimeSeries", True)],
    "TimeSeries": [("labels", 1, "Label", True), ("samples", 2, "Sample", True)],
    "Label": [("name", 1, "string", False), ("value", 2, "string", False)],
    "Sample": [("value", 1, "double", False), ("timestamp", 2, "int64", False)],
}
_LOKI: dict[str, _Fields] = {
    "PushRequest": [("streams", 1, "StreamAdapter", True)],
    "StreamAdapter": [
        ("labels", 1, "string", False),
        ("entries", 2, "EntryAdapter", True),
        ("hash", 3, "uint64", False),
    ],
    "EntryAdapter": [
        ("timestamp", 1, "Timestamp", False),
        ("line", 2, "string", False),
        ("structuredMetadata", 3, "LabelPairAdapter", True),
    ],
    "LabelPairAdapter": [("name", 1, "string", False), ("value", 2, "string", False)],
    "Timestamp": [("seconds", 1, "int64", False), ("nanos", 2, "int32", False)],
}


def _messages(pool: descriptor_pool.DescriptorPool, package: str, messages: dict[str, _Fields]) -> dict[str, Any]:
    """Add a proto3 file with `messages` to `pool`; their classes by name."""
    file = descriptor_pb2.FileDescriptorProto(name=f"shipper/{package}.proto", package=package, syntax="proto3")
    for name, fields in messages.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated in fields:
            field = message.field.add(name=field_name, number=number, label=_REPEATED if repeated else _OPTIONAL)
            if kind in _TYPES:
                field.type = _TYPES[kind]
            else:
                field.type, field.type_name = _F.TYPE_MESSAGE, f".{package}.{kind}"
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}")) for name in messages}


_POOL = descriptor_pool.DescriptorPool()  # our own pool: no clash with other definitions of the same names
_prometheus = _messages(_POOL, "prometheus", _PROMETHEUS)
_loki = _messages(_POOL, "logproto", _LOKI)
WriteRequest = _prometheus["WriteRequest"]
TimeSeries = _prometheus["TimeSeries"]
Label = _prometheus["Label"]
Sample = _prometheus["Sample"]
PushRequest = _loki["PushRequest"]
StreamAdapter = _loki["StreamAdapter"]
EntryAdapter = _loki["EntryAdapter"]
LabelPairAdapter = _loki["LabelPairAdapter"]
Timestamp = _loki["Timestamp"]


def snappy_compress(data: bytes) -> bytes:
    """Snappy block format (not the framed format), as remote write and Loki require."""
    return bytes(cramjam.snappy.compress_raw(data))


def snappy_decompress(data: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(data))
