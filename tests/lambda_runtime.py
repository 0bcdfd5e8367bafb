"""A Lambda function on loopback: a Runtime API server, the real runtime loop, and a Kinesis event source mapping.

- `RuntimeApi` serves the Lambda Runtime API on 127.0.0.1 (next invocation with the Lambda-Runtime-*
  headers, response, invocation error, init error) and records every answer.
- `FunctionProcess` runs `python -m awslambdaric shipper.handler.handler` against it, as Lambda does.
- `EventSourceMapping` reads a shard of a (moto) Kinesis stream, shapes each batch as the Kinesis event
  source mapping does, invokes, and moves its checkpoint as the ESM does with ReportBatchItemFailures:
  past the batch on success, to the lowest failed sequence number on a partial failure, nowhere on a
  function error.
"""

from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:log-shipper"
_PREFIX = "/2018-06-01/runtime"


@dataclass(frozen=True)
class Answer:
    """What the function answered to one invocation."""

    request_id: str
    kind: str
    """`response` or `error`."""
    body: Any
    deadline_ms: int
    answered_ms: int
    error_type: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the function process was stopped mid-poll
            super().handle_error(request, client_address)


class RuntimeApi:
    """The Lambda Runtime API for one function instance, on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self._invocations: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self._answers: dict[str, queue.Queue[Answer]] = {}
        self._deadlines: dict[str, int] = {}
        self.init_errors: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def invoke(self, event: Any, *, timeout_ms: int = 30_000, wait_s: float = 30.0) -> Answer:
        """Queue one invocation whose deadline is `timeout_ms` from now, and wait for the function's answer."""
        request_id = str(uuid.uuid4())
        answers: queue.Queue[Answer] = queue.Queue()
        self._answers[request_id] = answers
        deadline_ms = int(time.time() * 1000) + timeout_ms
        self._invocations.put((request_id, orjson.dumps(event), deadline_ms))
        try:
            return answers.get(timeout=wait_s)
        except queue.Empty:
            raise AssertionError(f"the function did not answer invocation {request_id} within {wait_s} s") from None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                if self.path != f"{_PREFIX}/invocation/next":
                    self._reply(HTTPStatus.NOT_FOUND)
                    return
                while not api._stopping.is_set():
                    try:
                        request_id, body, deadline_ms = api._invocations.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    api._deadlines[request_id] = deadline_ms
                    self._reply(
                        HTTPStatus.OK,
                        body,
                        {
                            "Content-Type": "application/json",
                            "Lambda-Runtime-Aws-Request-Id": request_id,
                            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                            "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                        },
                    )
                    return
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answered_ms = int(time.time() * 1000)
                parts = self.path.removeprefix(_PREFIX + "/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.put(orjson.loads(body))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    request_id = parts[1]
                    answer = Answer(
                        request_id,
                        parts[2],
                        orjson.loads(body) if body else None,
                        api._deadlines.get(request_id, 0),
                        answered_ms,
                        self.headers.get("Lambda-Runtime-Function-Error-Type"),
                    )
                    api._answers[request_id].put(answer)
                else:
                    self._reply(HTTPStatus.NOT_FOUND)
                    return
                self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')

            def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FunctionProcess:
    """`python -m awslambdaric shipper.handler.handler` against a RuntimeApi; use as a context manager.

    Its standard output and error (the function's logs) are kept in files under `directory`.
    """

    def __init__(self, api: RuntimeApi, environment: Mapping[str, str], directory: Path) -> None:
        self.stdout_path = directory / "function.stdout"
        self.stderr_path = directory / "function.stderr"
        self._env = {
            **os.environ,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "log-shipper",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/log-shipper",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/05/20/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            **environment,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FunctionProcess:
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", "shipper.handler.handler"],
                env=self._env,
                stdout=stdout,
                stderr=stderr,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself (as after an init error); its exit status."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    def log_lines(self) -> list[str]:
        """The lines the function wrote to standard output and standard error so far."""
        return [line for path in (self.stdout_path, self.stderr_path) for line in path.read_text().splitlines() if line]


def lambda_event(records: list[dict[str, Any]], stream_arn: str, shard_id: str) -> dict[str, Any]:
    """GetRecords records as the Kinesis event source mapping hands them to the function."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"],
                    "data": base64.b64encode(record["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{record['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/log-shipper",
                "awsRegion": stream_arn.split(":")[3],
                "eventSourceARN": stream_arn,
            }
            for record in records
        ]
    }


@dataclass(frozen=True)
class Invocation:
    """One batch the mapping sent, and what came back."""

    sequence_numbers: list[str]
    answer: Answer

    @property
    def failures(self) -> list[str]:
        if self.answer.kind != "response" or not self.answer.body:
            return []
        return [item["itemIdentifier"] for item in self.answer.body.get("batchItemFailures") or []]


class EventSourceMapping:
    """One shard's Kinesis event source mapping with ReportBatchItemFailures, from TRIM_HORIZON."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        invoke: Callable[[dict[str, Any]], Answer],
        *,
        batch_size: int = 100,
        shard_id: str = "shardId-000000000000",
    ) -> None:
        self._kinesis = kinesis
        self._stream_name = stream_name
        self._invoke = invoke
        self._batch_size = batch_size
        self._shard_id = shard_id
        self._stream_arn = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        self._position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}

    def step(self) -> Invocation | None:
        """Send the next batch (None when the shard has nothing more) and move the checkpoint."""
        iterator = self._kinesis.get_shard_iterator(
            StreamName=self._stream_name, ShardId=self._shard_id, **self._position
        )["ShardIterator"]
        records = self._kinesis.get_records(ShardIterator=iterator, Limit=self._batch_size)["Records"]
        if not records:
            return None
        numbers = [record["SequenceNumber"] for record in records]
        answer = self._invoke(lambda_event(records, self._stream_arn, self._shard_id))
        invocation = Invocation(numbers, answer)
        failures = invocation.failures
        if answer.kind == "error" or any(number not in numbers for number in failures):
            return invocation  # a function error, or an unknown identifier: the whole batch again
        if failures:
            lowest = min(failures, key=int)
            self._position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": lowest}
        else:
            self._position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": numbers[-1]}
        return invocation

    def drain(self, max_invocations: int = 20) -> list[Invocation]:
        """Step until the shard has nothing more; fails after `max_invocations`."""
        invocations = []
        for _ in range(max_invocations):
            invocation = self.step()
            if invocation is None:
                return invocations
            invocations.append(invocation)
        raise AssertionError(f"the shard was not drained in {max_invocations} invocations: {invocations[-1]}")
