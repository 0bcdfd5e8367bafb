"""Text from logs made safe to print on a terminal.

Function names, error types, metric names and tags, input paths and reject reasons all come from the
logs being read, which anyone who can write a log line controls. Printed raw, an escape sequence
could clear the screen, retitle the window, or hide and rewrite earlier lines, and rich would read
`[bold]...[/]` in them as markup and `:smile:` as an emoji. Everything untrusted goes through
`printable` (plain prints) or `literal` (cells and lines drawn with rich) first, NDJSON written
to standard output through `printable_json`, and log lines through `log_to_terminal`'s formatter
(a sink's error may quote what a remote server answered).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only to draw
    from rich.text import Text

# C0 controls (newline and tab too: each printed value is one line or one cell), DEL, C1 controls
# (CSI and OSC have 8-bit forms), and the Unicode bidirectional overrides and isolates, which reorder
# the text shown around them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# The same characters UTF-8 encoded, as JSON leaves them raw (it escapes only C0 controls).
_UNSAFE_UTF8 = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as a visible escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_visible, text)


class PrintableFormatter(logging.Formatter):
    """Log lines safe for a terminal: the message on one line, each traceback line escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return _printable_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _printable_lines(super().formatStack(stack_info))


def _printable_lines(text: str) -> str:
    return "\n".join(printable(line) for line in text.split("\n"))


def log_to_terminal(shipper_level: int = logging.WARNING) -> None:
    """Send log lines to standard error as `shipper: MESSAGE`, escaped; warnings only from libraries.

    Does nothing when the root logger already has handlers: a program that embeds shipper keeps its own.
    """
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("shipper: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("shipper").setLevel(shipper_level)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 file`, `2 files`, `1,926 events`: a count with its noun agreeing (`plural_form` when not +s)."""
    noun = singular if count == 1 else plural_form or f"{singular}s"
    return f"{count:,} {noun}"


def literal(text: str) -> Text:
    """`printable(text)` as rich text that is shown as it is: no markup, emoji codes or highlighting."""
    from rich.text import Text

    return Text(printable(text))


def _json_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def printable_json(data: bytes) -> bytes:
    """UTF-8 JSON with DEL, C1 and bidirectional controls also escaped (`\\u009b`); the same JSON values.

    Outside strings, JSON is ASCII without controls, so every match is inside a string. The regex scans
    only the lines that hold non-ASCII bytes (none of the sequences spans a newline): scanning a whole
    batch with it would cost more than encoding the batch.
    """
    if b"\x7f" in data:
        return _UNSAFE_UTF8.sub(_json_escape, data)
    if data.isascii():
        return data
    return b"\n".join([line if line.isascii() else _UNSAFE_UTF8.sub(_json_escape, line) for line in data.split(b"\n")])
