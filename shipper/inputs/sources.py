"""Where inputs come from: files, directories (recursively), standard input, and S3 prefixes.

`iter_inputs` resolves the PATH arguments of `shipper run` into `Input`s (name, size, how to open
it) as they are read, so a million files cost no memory; `total_size` lists them once more
beforehand, for the progress bar's total. Hidden files and directories and CloudWatch Logs' export
permission probe (`aws-logs-write-test`) are skipped. In a directory, only regular files are read:
a FIFO, socket or device there is skipped with a reject saying so (reading one could block for
ever); symbolic links to directories are followed, each directory once, so a link loop is reported
rather than followed. A FIFO or device named on the command line is read as a stream (`shipper run
<(zcat ...)`). In a directory or under an S3 prefix, files that are not logs by their name
(documentation such as README.md, source, configuration, images) are skipped and reported as
`Skipped`: prose about throttling is not a throttle. A file named on the command line is always read.
S3 is read with boto3, imported only when an `s3://` path is given, with the usual
credential chain.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from shipper.errors import INSTALL_AWS
from shipper.names import RejectCode
from shipper.reject import Reject

_NOT_LOGS_BY_EXTENSION = {
    **dict.fromkeys((".md", ".markdown", ".rst", ".adoc", ".html", ".htm", ".pdf"), "documentation"),
    **dict.fromkeys((".py", ".js", ".ts", ".sh", ".yaml", ".yml", ".toml", ".ini", ".cfg"), "source or configuration"),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico"), "an image"),
}
_NOT_LOGS_BY_NAME = frozenset(
    ("README", "LICENSE", "LICENCE", "CHANGELOG", "CHANGES", "NOTICE", "CONTRIBUTING", "AUTHORS", "COPYING")
)

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


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file found in a directory (or under an S3 prefix) that is not read: its name says it is no log."""

    name: str
    reason: str


def not_logs(name: str) -> str | None:
    """Why a file found in a directory is not logs, by its name (`README.md`: documentation); None if it may be."""
    base = name.rstrip("/").rpartition("/")[2]
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    kind = _NOT_LOGS_BY_EXTENSION.get("." + extension.lower()) if extension else None
    if kind is not None:
        return f"{kind} (.{extension}), not logs"
    return f"{stem}: documentation, not logs" if stem.upper() in _NOT_LOGS_BY_NAME else None


def iter_inputs(
    paths: Sequence[str], *, endpoint_url: str | None = None, written: Sequence[str] = ()
) -> Iterator[Input | Reject | Skipped]:
    """The inputs PATH arguments name, in order, a reject for each argument that names nothing readable,
    and what a directory walk skipped. A walk skips `written`, the files and directories the run itself
    writes: read back, an output inside an input directory would grow while it is read, without end."""
    for path in paths:
        if path == "-":
            yield Input(STDIN_NAME, None, lambda: sys.stdin.buffer)
        elif path.startswith("s3://"):
            yield from _s3_inputs(path, endpoint_url)
        else:
            yield from _local_inputs(Path(path), {os.path.realpath(p) for p in written})


def total_size(paths: Sequence[str], *, endpoint_url: str | None = None) -> int | None:
    """Bytes of all inputs as stored, by listing them once more; None when one has no size (standard input)."""
    total = 0
    for found in iter_inputs(paths, endpoint_url=endpoint_url):
        if isinstance(found, Input):
            if found.size is None:
                return None
            total += found.size
    return total


def _local_inputs(path: Path, written: set[str]) -> Iterator[Input | Reject | Skipped]:
    """A file named on the command line (a FIFO or device too: read as a stream), or a directory's files."""
    try:
        info = path.stat()
    except FileNotFoundError:
        yield _unreadable(path, f"{path}: no such file or directory")
        return
    except OSError as exc:
        yield _unreadable(path, f"{path}: {exc.strerror or exc}")
        return
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        yield from _walk(path, written)
    elif stat.S_ISREG(mode):
        yield Input(str(path), info.st_size, partial(_open_named, path))
    elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        yield Input(str(path), None, partial(_open_named, path))
    else:
        yield _unreadable(path, f"{path}: {_kind(mode)}, not a file or directory")


def _walk(root: Path, written: set[str]) -> Iterator[Input | Reject | Skipped]:
    """The regular files under `root`, sorted, following links to directories; each directory is listed
    once (by device and inode), so a link back up the tree is reported instead of followed for ever.
    What this run writes (`written`, real paths) is skipped and reported."""
    seen: set[tuple[int, int]] = set()
    errors: list[OSError] = []  # directories that cannot be listed
    for directory, subdirectories, files in os.walk(root, followlinks=True, onerror=errors.append):
        yield from _listing_errors(errors)
        try:
            info = os.stat(directory)
        except OSError as exc:
            yield _unreadable(Path(directory), f"{directory}: {exc.strerror or exc}")
            subdirectories.clear()
            continue
        if (info.st_dev, info.st_ino) in seen:
            yield _unreadable(Path(directory), f"{directory}: a link to a directory already read (a loop?); skipped")
            subdirectories.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        if os.path.realpath(directory) in written:
            yield Skipped(directory, _WRITTEN)
            subdirectories.clear()
            continue
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name != PROBE_OBJECT:
                path = os.path.join(directory, name)
                reason = _WRITTEN if os.path.realpath(path) in written else not_logs(name)
                yield _listed(Path(path)) if reason is None else Skipped(path, reason)
    yield from _listing_errors(errors)


_WRITTEN = "written by this run (a sink, the dead letter or a report), not read back"


def _listing_errors(errors: list[OSError]) -> Iterator[Reject]:
    for error in errors:
        yield _unreadable(Path(error.filename or ""), f"{error.filename}: {error.strerror or error}")
    errors.clear()


def _listed(path: Path) -> Input | Reject:
    """A file found in a directory: read when it is a regular file (or a link to one)."""
    try:
        info = path.stat()
    except OSError as exc:  # removed since it was listed, a dangling link, no permission ...
        return _unreadable(path, f"{path}: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return _unreadable(path, f"{path}: {_kind(info.st_mode)}, not a regular file; skipped")
    return Input(str(path), info.st_size, partial(_open_regular, path))


def _open_named(path: Path) -> BinaryIO:
    """Open a file named on the command line (a FIFO waits here for its writer, as `open` does)."""
    return open(path, "rb")


def _open_regular(path: Path) -> BinaryIO:
    """Open a file listed as regular, refusing what took its place since (a FIFO would block the open)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{_kind(mode)} now, no longer a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _unreadable(path: Path, reason: str) -> Reject:
    return Reject(RejectCode.UNREADABLE_INPUT, reason, b"", None, str(path))


# --- S3 ---------------------------------------------------------------------------------------------


def _s3_inputs(url: str, endpoint_url: str | None) -> Iterator[Input | Reject | Skipped]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        from shipper.aws_clients import COMMAND_ATTEMPTS
        from shipper.aws_clients import client as aws_client
    except ImportError:
        yield Reject(RejectCode.UNREADABLE_INPUT, f"{url}: reading S3 needs boto3 ({INSTALL_AWS})", b"", None, url)
        return
    client = aws_client("s3", endpoint_url=endpoint_url, attempts=COMMAND_ATTEMPTS)
    found = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.endswith("/") or key.rpartition("/")[2] == PROBE_OBJECT:
                    continue
                found += 1
                reason = not_logs(key)
                if reason is not None:
                    yield Skipped(f"s3://{bucket}/{key}", reason)
                    continue
                yield Input(f"s3://{bucket}/{key}", item["Size"], partial(_open_object, client, bucket, key))
    except (BotoCoreError, ClientError) as exc:
        yield Reject(RejectCode.UNREADABLE_INPUT, f"{url}: cannot list objects: {exc}", b"", None, url)
        return
    if not found:
        yield Reject(RejectCode.UNREADABLE_INPUT, f"{url}: no objects under this prefix", b"", None, url)


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
