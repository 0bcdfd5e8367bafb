"""gzip: compressed and inflated in memory through ISA-L (the `isal` package), several times faster than zlib.

On shipper's NDJSON, ISA-L's level 1 compresses about ten times faster than zlib's default level and
to about the same size, and inflates Kinesis records about twice as fast (docs/performance.md). Files
read as streams go through the standard library's GzipFile: on a truncated file it hands over what it
inflated before raising, where ISA-L's GzipFile raises first and the start of the file would be lost.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any, cast

from isal import igzip, isal_zlib

LEVEL = 1
"""ISA-L's level 1: on NDJSON smaller than zlib's level 1 and within a tenth of its level 6."""
GZIP_WBITS = isal_zlib.MAX_WBITS | 16
"""wbits for one gzip member (header and trailer checked)."""
ERRORS: tuple[type[Exception], ...] = (cast("type[Exception]", isal_zlib.error), zlib.error)
"""What inflating corrupt data raises: through `inflater()`, or through a GzipFile (the stub of
`isal_zlib.error` calls it an instance)."""
STREAM_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, *ERRORS)
"""What reading a gzip stream raises for bad data: corrupt, cut short, or no gzip (BadGzipFile is an OSError)."""
GzipFile = gzip.GzipFile


def compress(data: bytes) -> bytes:
    """`data` as one gzip member with no timestamp, so the same data gives the same bytes."""
    return igzip.compress(data, compresslevel=LEVEL, mtime=0)


def inflater() -> Any:
    """A decompressobj for one gzip member (`decompress(data, max_length)`, `eof`, `unconsumed_tail`,
    `unused_data`, as zlib's)."""
    return isal_zlib.decompressobj(GZIP_WBITS)
