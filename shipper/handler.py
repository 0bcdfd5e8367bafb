"""The Kinesis consumer Lambda: `shipper.handler.handler`, one invocation per shard batch.

    Kinesis event -> Pipeline (decode, classify) -> Router (sinks, dead letter) -> partial-batch response

Built once per container, from the environment: the configuration (the SHIPPER_* delivery settings of
shipper.config), the sinks with their clients, the router and the pipeline. Under a Lambda runtime
(AWS_LAMBDA_RUNTIME_API is set) that happens while this module is imported, in the init phase;
elsewhere on the first call. Two more variables:

    SHIPPER_TIMEOUT_MARGIN_S   seconds before the function's timeout that are never used (default 2):
                               no send starts in them. No new record is started in the margin before
                               those, which is left for the last flush. A send under way when the
                               margin begins may go on into it, but is cut ANSWER_RESERVE_S before
                               the function's timeout (its records are then reported not delivered).
    SHIPPER_LOG_LEVEL          the level of the shipper's own logs (default INFO), one JSON object a line

Lambda sets AWS_LAMBDA_LOG_GROUP_NAME: batches from that log group (the shipper's own output) are
skipped and counted, never shipped, even when an account-level subscription covers every group.

The response names in `batchItemFailures` every record that was not delivered: a sink did not take its
events before the deadline, or its dead letter could not be written, or it was not started because time
ran short. Kinesis retries from the lowest of them. A malformed record goes to the dead letter and counts
as processed. A KPL-aggregated record is one record: a failure retries the parent and all its user
records. An event that is not a Kinesis batch raises InvalidEvent, so the invocation fails visibly.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Protocol, TypedDict

import orjson

from shipper.config import build_router, resolve_config
from shipper.delivery import Origin, Router, Status
from shipper.errors import ConfigError, ShipperError
from shipper.names import Count
from shipper.pipeline import Pipeline, RecordOutcome, fewer_collections
from shipper.shipping import BatchObserver, BatchResult, BatchStep
from shipper.sinks.base import sending_within
from shipper.telemetry.lambda_push import LambdaTelemetry, lambda_telemetry_from_env
from shipper.terminal import printable_json

__all__ = [
    "DEFAULT_TIMEOUT_MARGIN_S",
    "BatchFailed",
    "BatchItemFailure",
    "InvalidEvent",
    "JsonLogFormatter",
    "KinesisHandler",
    "LambdaContext",
    "PartialBatchResponse",
    "configure_logging",
    "handler",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MARGIN_S = 2.0
ANSWER_RESERVE_S = 0.1
"""What a send leaves of the invocation, at the least, for the handler to answer."""

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class LambdaContext(Protocol):
    """What the handler uses of the Lambda context object."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


class BatchItemFailure(TypedDict):
    itemIdentifier: str
    """The sequence number of a record Kinesis must send again."""


class PartialBatchResponse(TypedDict):
    """What the handler returns: Lambda's partial-batch response (ReportBatchItemFailures)."""

    batchItemFailures: list[BatchItemFailure]


class InvalidEvent(ShipperError):
    """The invocation's event is not a Kinesis batch (`{"Records": [...]}`)."""


class BatchFailed(ShipperError):
    """A record that must be sent again has no sequence number to report: the whole batch fails."""


class KinesisHandler:
    """Processes one Kinesis batch per call and returns the partial-batch response."""

    def __init__(
        self,
        router: Router,
        pipeline: Pipeline,
        *,
        timeout_margin_s: float = DEFAULT_TIMEOUT_MARGIN_S,
        telemetry: LambdaTelemetry | None = None,
    ) -> None:
        self.router = router
        self.pipeline = pipeline
        self.timeout_margin_s = timeout_margin_s
        self.telemetry = telemetry

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KinesisHandler:
        """Build from SHIPPER_* and AWS_LAMBDA_LOG_GROUP_NAME; a bad value raises ConfigError."""
        margin = _timeout_margin(environ)
        router = build_router(resolve_config(None, environ))
        if router.dead_letter is None:
            log.warning(
                "no dead letter configured (SHIPPER_DEAD_LETTER): a malformed record is reported failed and "
                "retried until it expires, holding back its shard"
            )
        own_group = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        pipeline = Pipeline(skip_log_groups=[own_group] if own_group else ())
        return cls(router, pipeline, timeout_margin_s=margin, telemetry=lambda_telemetry_from_env(environ))

    def __call__(self, event: Any, context: LambdaContext) -> PartialBatchResponse:
        token = _request_id.set(getattr(context, "aws_request_id", None))
        try:
            remaining_s = context.get_remaining_time_in_millis() / 1000
            with sending_within(remaining_s - ANSWER_RESERVE_S), fewer_collections():
                return self._handle(event, context)
        finally:
            _request_id.reset(token)

    def _handle(self, event: Any, context: LambdaContext) -> PartialBatchResponse:
        entries = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(entries, list):
            problem = _not_kinesis(event)
            log.error(problem)
            raise InvalidEvent(problem)
        margin = self.timeout_margin_s

        def remaining_s() -> float:
            return context.get_remaining_time_in_millis() / 1000

        def deadline() -> float:
            return remaining_s() - margin

        observers: list[BatchObserver] = [_RejectLog()]
        if self.telemetry is not None:
            observers.append(self.telemetry.invocation(event, remaining_s))
        step = BatchStep(self.pipeline, self.router, observers)
        skipped_before = self.pipeline.counts.get(Count.LOG_GROUP_BATCHES_SKIPPED, 0)
        batch = step.begin()
        taken = 0
        # One record at a time: what is held is one record's events and the sinks' buffers, never the batch's.
        for entry in entries:
            if deadline() < margin:
                break
            taken += 1
            outcomes = self.pipeline.process_kinesis_event({"Records": [entry]})
            step.route(batch, [(outcome.origin, outcome) for outcome in outcomes], deadline)
            del outcomes  # else this record's events stay alive while the next one is decoded and classified
        step.flush(batch, deadline)
        _in_batch_order(batch, entries, taken)
        step.done(batch)

        failures = batch.report.undelivered_origins
        summary: dict[str, Any] = {
            "records": len(entries),
            "records_not_started": len(entries) - taken,
            "records_failed": len(failures),
            "events": batch.events,
            "rejects": batch.rejects,
            "own_log_group_batches_skipped": self.pipeline.counts.get(Count.LOG_GROUP_BATCHES_SKIPPED, 0)
            - skipped_before,
            "duration_ms": round((batch.seconds or 0.0) * 1000),
            "remaining_ms": context.get_remaining_time_in_millis(),
            **batch.report.counts(),
        }
        if failures:
            first = failures[0]
            summary["first_failure"] = {"sequence_number": first, "reason": batch.reasons.get(first)}
            log.warning(
                "batch partly failed: Kinesis sends it again from the first failed record", extra={"fields": summary}
            )
        else:
            log.info("batch done", extra={"fields": summary})
        if taken == 0 and entries:
            log.error(
                "no record started: the function's remaining time is below twice SHIPPER_TIMEOUT_MARGIN_S "
                "(%.1f s); raise the function timeout or lower the margin",
                margin,
            )
        if None in failures:
            raise BatchFailed("a record without a sequence number was not delivered: failing the whole batch")
        return {"batchItemFailures": [{"itemIdentifier": str(origin)} for origin in failures]}


class _RejectLog(BatchObserver):
    """Logs each reject as it goes to the dead letter, with its code and sequence number."""

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        for reject in outcome.rejects:
            log.warning(
                "record rejected: %s",
                reject.reason,
                extra={"fields": {"code": reject.code, "sequence_number": reject.sequence_number}},
            )


def _in_batch_order(batch: BatchResult, entries: list[Any], taken: int) -> None:
    """Give every record of the batch a status, in batch order; records not started are NOT_DELIVERED."""
    ordered: dict[Origin, Status] = {}
    why: dict[Origin, str] = {}
    for index, entry in enumerate(entries):
        origin = _sequence_number(entry)
        reason: str | None
        if index >= taken:
            status, reason = Status.NOT_DELIVERED, "not started: the invocation was running out of time"
        else:
            status, reason = batch.status(origin), batch.reasons.get(origin)
        if origin not in ordered or status is Status.NOT_DELIVERED:
            ordered[origin] = status
            if reason is not None:
                why[origin] = reason
    batch.statuses, batch.reasons = ordered, why


def _sequence_number(entry: Any) -> str | None:
    kinesis = entry.get("kinesis") if isinstance(entry, dict) else None
    number = kinesis.get("sequenceNumber") if isinstance(kinesis, dict) else None
    return number if isinstance(number, str) and number else None


def _not_kinesis(event: Any) -> str:
    if not isinstance(event, dict):
        return f"event is not a Kinesis batch: expected a JSON object with a Records list, got {type(event).__name__}"
    if "awslogs" in event:
        return (
            "event is a direct CloudWatch Logs subscription, not a Kinesis batch: subscribe the log group to "
            "the shipper's Kinesis stream instead (shipper subscribe)"
        )
    keys = ", ".join(sorted(map(str, event))[:10]) or "none"
    return f"event is not a Kinesis batch: it has no Records list (keys: {keys})"


def _timeout_margin(environ: Mapping[str, str]) -> float:
    text = environ.get("SHIPPER_TIMEOUT_MARGIN_S", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_MARGIN_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 60.0:
        raise ConfigError(f"SHIPPER_TIMEOUT_MARGIN_S: {text!r} is not a number of seconds from 0 to 60")
    return value


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, and the `fields` given in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # A message may quote a server or a log line: bidirectional and C1 controls are escaped as well.
        return printable_json(orjson.dumps(entry, default=str)).decode()


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send the `shipper` loggers' records, as JSON lines, to `stream` (standard output) and nowhere else."""
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ConfigError(f"SHIPPER_LOG_LEVEL: {level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    logger = logging.getLogger("shipper")
    for old in [h for h in logger.handlers if isinstance(h.formatter, JsonLogFormatter)]:
        logger.removeHandler(old)
    output = logging.StreamHandler(stream or sys.stdout)
    output.setFormatter(JsonLogFormatter())
    logger.addHandler(output)
    logger.setLevel(number)
    logger.propagate = False


@functools.cache
def _container_handler() -> KinesisHandler:
    configure_logging(os.environ.get("SHIPPER_LOG_LEVEL", "INFO"))
    try:
        return KinesisHandler.from_env(os.environ)
    except ConfigError as exc:
        log.critical("cannot start: %s", exc)
        raise


def handler(event: Any, context: LambdaContext) -> PartialBatchResponse:
    """The Lambda entry point: `shipper.handler.handler`."""
    return _container_handler()(event, context)


if "AWS_LAMBDA_RUNTIME_API" in os.environ:
    _container_handler()
