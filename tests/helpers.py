"""Builders for test input: CloudWatch Logs documents, Kinesis records and Lambda events."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
from aws_kinesis_agg.aggregator import RecordAggregator

from shipper.classify import Classifier
from shipper.contract import contract_violations
from shipper.reject import Reject

LAMBDA_GROUP = "/aws/lambda/orders-api"
STREAM = "2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c"
REQUEST_ID = "4b142fc3-17b8-4cdb-a46b-a8dbe7918715"


def cwl_document(
    messages: list[str],
    log_group: str = LAMBDA_GROUP,
    log_stream: str = STREAM,
    start_ms: int = 1716222585000,
    **extra: Any,
) -> dict[str, Any]:
    """A DATA_MESSAGE with one log event per message, ids and timestamps increasing."""
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["central"],
        "logEvents": [
            {
                "id": f"{38274620512364875123458823160957185384792635018476765184 + i}",
                "timestamp": start_ms + i,
                "message": message,
            }
            for i, message in enumerate(messages)
        ],
        **extra,
    }


def kpl_aggregate(payloads: list[bytes]) -> bytes:
    """One Kinesis record aggregating `payloads` as KPL user records, its digest right."""
    aggregator = RecordAggregator()
    for index, payload in enumerate(payloads):
        assert aggregator.add_user_record(f"pk-{index}", payload) is None  # all of them fit in one record
    return aggregator.clear_and_get().get_contents()[2]


def gz(document: dict[str, Any] | bytes) -> bytes:
    data = document if isinstance(document, bytes) else orjson.dumps(document)
    return gzip.compress(data, mtime=0)


def kinesis_event(
    payloads: list[bytes], first_sequence: int = 49652374810316455386124873493651468935098264726135504898
) -> dict[str, Any]:
    """A Lambda Kinesis event carrying `payloads` as records, sequence numbers increasing."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "da10bf66b1f54bff5d96eae99149ad1f",
                    "sequenceNumber": str(first_sequence + i),
                    "data": base64.b64encode(payload).decode(),
                    "approximateArrivalTimestamp": 1716222590.512,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000003:{first_sequence + i}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/central-logs",
            }
            for i, payload in enumerate(payloads)
        ]
    }


def classify_messages(messages: list[str], **document_options: Any) -> list[dict[str, Any]]:
    """Events for `messages` from a fresh classifier; every event is checked against the contract."""
    events: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    Classifier().classify(cwl_document(messages, **document_options), events, rejects)
    assert rejects == []
    for event in events:
        assert contract_violations(event) == [], event
    return events


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == event_type]


def numbers_in(data: Any) -> list[float]:
    """Every number inside nested dicts and lists."""
    if isinstance(data, dict):
        return [number for value in data.values() for number in numbers_in(value)]
    if isinstance(data, list):
        return [number for value in data for number in numbers_in(value)]
    return [data] if isinstance(data, int | float) and not isinstance(data, bool) else []


# Numbers as a log line may print them: huge, non-finite, negative zero, thousands of digits, exponent forms,
# out of each field's range, and text that only looks like a number. The property tests and `make fuzz` draw them.
EXTREMES = (
    "0",
    "-0",
    "0.0",
    "-1",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e999",
    "-1e999",
    "1e-400",
    "4.9e-324",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "Infinity",
    "100000000000000000000000000",
    "1e30",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 4301,
    "9" * 5000,
    "1" + "0" * 400 + ".5",
    "0x1F",
    "1_000",
    "١٢٨",
    "+3",
    ".5",
    "5.",
    "1e",
    "--1",
    "",
    "128",
    "86400001",
    "1048577",
)
