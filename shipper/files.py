"""Files written so that, after a crash, they hold either what was there before or the whole new content."""

from __future__ import annotations

import contextlib
import os


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
