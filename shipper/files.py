"""Writing files and streams so that what is counted as written really is.

`write_durably` replaces a whole file so that, after a crash, it holds the previous or the whole new content;
`write_all` writes to a descriptor and says exactly how many bytes went out when it cannot write them all.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
from collections.abc import Callable
from typing import BinaryIO


def write_durably(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a hidden temporary file beside it, fsync'd and renamed over `path`,
    then fsync the directory so the rename survives a crash too.

    On failure the temporary file is removed and the OSError raised.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    descriptor = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class PartialWrite(OSError):
    """Only the first `written` bytes of the data were written; errno and strerror say why the rest was not."""

    def __init__(self, written: int, cause: OSError | None) -> None:
        if cause is None:
            super().__init__(errno.EIO, "the write made no progress")
        else:
            super().__init__(cause.errno, cause.strerror)
        self.written = written


def write_all(write: Callable[[memoryview], int | None], data: bytes) -> None:
    """Write all of `data` with `write` (an unbuffered write such as `os.write` on a descriptor), calling it
    again after each short write; raise PartialWrite saying how much was written when it fails or stalls."""
    view = memoryview(data)
    written = 0
    while written < len(data):
        try:
            count = write(view[written:])
        except OSError as exc:
            raise PartialWrite(written, exc) from exc
        if not count:
            raise PartialWrite(written, None)
        written += count


def unbuffered_write(stream: BinaryIO) -> Callable[[memoryview], int | None]:
    """The write that counts what really went out: `os.write` on the stream's descriptor, after flushing its
    buffer, or the stream's own write when it has no descriptor (an in-memory stream)."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return stream.write
    try:
        stream.flush()  # whatever it buffered goes first, in order
    except OSError as exc:
        raise PartialWrite(0, exc) from exc
    return functools.partial(os.write, descriptor)
