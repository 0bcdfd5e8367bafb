"""Where inputs come from: files, directories (recursively), standard input, and S3 prefixes.

`iter_inputs` resolves the PATH arguments of `shipper run` into `Input`s (name, size, how to open
it) as they are read, so a million files cost no memory; `total_size` lists them once more
beforehand, for the progress bar's total. Hidden files and directories and CloudWatch Logs' export
permission probe (`aws-logs-write-test`) are skipped. S3 is read with boto3, imported only when an
`s3://` path is given, with the usual credential chain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from shipper.errors import INSTALL_AWS
from shipper.reject import Reject

PROBE_OBJECT = "aws-logs-write-test"
"""The object CreateExportTask writes to check it may write to the bucket; it holds no log events."""

STDIN_NAME = "<stdin>"


@dataclass(frozen=True, slots=True)
class Input:
    """One file or object to read."""

    name: str
    """As shown in messages: the path, `<stdin>`, or `s3://bucket/key`."""
    size: int | None
    """Bytes as stored, when known before reading (not for standard input)."""
    open: Callable[[], BinaryIO]
    """Opens it for reading; raises OSError when it cannot be read."""


def iter_inputs(paths: Sequence[str], *, endpoint_url: str | None = None) -> Iterator[Input | Reject]:
    """The inputs PATH arguments name, in order, and a reject for each argument that names nothing readable."""
    for path in paths:
        if path == "-":
            yield Input(STDIN_NAME, None, lambda: sys.stdin.buffer)
        elif path.startswith("s3://"):
            yield from _s3_inputs(path, endpoint_url)
        else:
            yield from _local_inputs(Path(path))


def total_size(paths: Sequence[str], *, endpoint_url: str | None = None) -> int | None:
    """Bytes of all inputs as stored, by listing them once more; None when one has no size (standard input)."""
    total = 0
    for found in iter_inputs(paths, endpoint_url=endpoint_url):
        if isinstance(found, Input):
            if found.size is None:
                return None
            total += found.size
    return total


def _local_inputs(path: Path) -> Iterator[Input | Reject]:
    if path.is_dir():
        for file in _walk(path):
            yield _local(file)
    elif path.is_file() or path.is_fifo():
        yield _local(path)
    else:
        reason = f"{path}: no such file or directory" if not path.exists() else f"{path}: not a file or directory"
        yield Reject("unreadable_input", reason, b"", None, str(path))


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name != PROBE_OBJECT:
                yield Path(directory, name)


def _local(path: Path) -> Input:
    size = path.stat().st_size if path.is_file() else None
    return Input(str(path), size, partial(open, path, "rb"))


# --- S3 ---------------------------------------------------------------------------------------------


def _s3_inputs(url: str, endpoint_url: str | None) -> Iterator[Input | Reject]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        yield Reject("unreadable_input", f"{url}: reading S3 needs boto3 ({INSTALL_AWS})", b"", None, url)
        return
    client = boto3.client("s3", endpoint_url=endpoint_url)
    found = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.endswith("/") or key.rpartition("/")[2] == PROBE_OBJECT:
                    continue
                found += 1
                yield Input(f"s3://{bucket}/{key}", item["Size"], partial(_open_object, client, bucket, key))
    except (BotoCoreError, ClientError) as exc:
        yield Reject("unreadable_input", f"{url}: cannot list objects: {exc}", b"", None, url)
        return
    if not found:
        yield Reject("unreadable_input", f"{url}: no objects under this prefix", b"", None, url)


def _open_object(client: Any, bucket: str, key: str) -> BinaryIO:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except (BotoCoreError, ClientError) as exc:
        raise OSError(str(exc)) from exc
    return _ObjectBody(body)  # type: ignore[return-value]


class _ObjectBody:
    """An S3 object's streaming body whose read errors are OSErrors, like a file's."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            return self._body.read(None if size < 0 else size)
        except BotoCoreError as exc:
            raise OSError(str(exc)) from exc

    def close(self) -> None:
        self._body.close()
