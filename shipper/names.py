"""The names the shipper counts and rejects by: written here once, used by every module, listed by the docs.

    RejectCode     why input could not be used (Reject.code, the dead letter's `code`, the
                   `reason` label of shipper_decode_rejects_total); docs/troubleshooting.md explains each
    Count          what the pipeline counts (Pipeline.counts); `rejected_count(code)` per reject code
    SinkCounter    what each sink's delivery counts (SinkCounters, Router.stats())

One idea has one name. What delivery does with an event takes Vector's words: received, sent,
dead-lettered, not delivered (shipper.delivery.Status for a record, SinkCounter for a sink's events).
Two published metric names predate this and are kept for the dashboards and alarms built on them:
the Prometheus `shipper_sink_events_failed_total` and the EMF `EventsFailed` both count
SinkCounter.NOT_DELIVERED (docs/prometheus.md).

Each is a namespace of plain `str` constants, not an Enum: the names go into dict keys that orjson
writes, Prometheus labels and hot-path counters, where a str subclass would be slower or refused.
REJECT_CODES, COUNTS and SINK_COUNTERS list them. No imports: decode, classify and the inputs use
these on the hot path and must stay free of I/O.
"""

from __future__ import annotations

from typing import Final


class RejectCode:
    """Stable short names of the reasons input is rejected (and of a dead-letter entry's kind)."""

    # a record or file as a whole
    BAD_BASE64: Final = "bad_base64"
    UNKNOWN_FORMAT: Final = "unknown_format"
    BAD_GZIP: Final = "bad_gzip"
    TRUNCATED_GZIP: Final = "truncated_gzip"
    TRAILING_GARBAGE: Final = "trailing_garbage"
    DECOMPRESSION_BOMB: Final = "decompression_bomb"
    INVALID_UTF8: Final = "invalid_utf8"
    INVALID_UNICODE: Final = "invalid_unicode"
    NOT_JSON: Final = "not_json"
    WRONG_SHAPE: Final = "wrong_shape"
    UNKNOWN_MESSAGE_TYPE: Final = "unknown_message_type"
    BAD_KPL: Final = "bad_kpl"
    # one log event
    BAD_LOG_EVENT: Final = "bad_log_event"
    OVERSIZED_EVENT: Final = "oversized_event"
    # `shipper run`'s inputs
    UNREADABLE_INPUT: Final = "unreadable_input"
    UNRECOGNISED_INPUT: Final = "unrecognised_input"
    NOT_CSV: Final = "not_csv"
    # not a reject: a dead-letter entry holding events a sink refused
    SINK_REFUSED: Final = "sink_refused"


class Count:
    """Names of the pipeline's counts (`Pipeline.counts`); `rejected_count(code)` adds one per reject code."""

    RECORDS_RECEIVED: Final = "records_received"
    LOG_EVENTS_RECEIVED: Final = "log_events_received"
    EVENTS_EMITTED: Final = "events_emitted"
    CONTROL_MESSAGES_SKIPPED: Final = "control_messages_skipped"
    KPL_SUBRECORDS: Final = "kpl_subrecords"
    LOG_GROUP_BATCHES_SKIPPED: Final = "log_group_batches_skipped"
    # notes: what the classifier met and coped with
    PLATFORM_LINE_UNPARSED: Final = "platform_line_unparsed"
    NUMBER_OUT_OF_RANGE: Final = "number_out_of_range"
    METRIC_LINE_MALFORMED: Final = "metric_line_malformed"
    ERROR_OUTSIDE_INVOCATION: Final = "error_outside_invocation"
    SIGNAL_DUPLICATE_SUPPRESSED: Final = "signal_duplicate_suppressed"


REJECTED_PREFIX = "rejected."
"""`Pipeline.counts` holds the rejects of each code as `rejected.<code>`."""


def rejected_count(code: str) -> str:
    """The `Pipeline.counts` name of the rejects of `code`."""
    return REJECTED_PREFIX + code


class SinkCounter:
    """What each sink's delivery counts: the fields of `SinkCounters` and the keys of `Router.stats()`.

    After a flush: received = sent + dead-lettered + not delivered.
    """

    RECEIVED: Final = "received_events"
    SENT: Final = "sent_events"
    ERRORS: Final = "errors"
    """Failed sends, whether retried or not."""
    RETRIES: Final = "retries"
    DEAD_LETTERED: Final = "dead_lettered_events"
    NOT_DELIVERED: Final = "not_delivered_events"
    """Neither delivered nor dead-lettered: the caller sends them again."""


def _values(namespace: type) -> tuple[str, ...]:
    return tuple(value for name, value in vars(namespace).items() if name.isupper())


REJECT_CODES = _values(RejectCode)
COUNTS = _values(Count)
SINK_COUNTERS = _values(SinkCounter)
