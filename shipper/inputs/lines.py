"""Line heads of the text export formats: does a line start an event, and with what time and stream.

Each head function takes one line and returns (epoch ms, log stream or None, the message's first
line), or None when the line continues the event before it. Format detection and the readers use
the same functions, so a format is recognised exactly as it is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Colour codes `aws logs tail` writes on a terminal."""
TAIL_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?[+-]\d\d:\d\d) (\S+) ?")

LineHead = Callable[[str], "tuple[int | None, str | None, str] | None"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d")
_TEXT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?")
_TEXT_TIME_SEARCH = 80
"""A plain text line's timestamp is the first ISO-8601 time within its first characters."""


def tail_head(line: str) -> tuple[int | None, str | None, str] | None:
    """`2024-05-20T16:29:45.009000+00:00 STREAM message` (detailed; json: the fraction only when not zero)."""
    if line[19:20] not in (".", "+"):
        return None
    match = TAIL_LINE.match(line)
    if match is None:
        return None
    return iso_ms(match.group(1)), match.group(2), line[match.end() :]


def short_head(line: str) -> tuple[int | None, str | None, str] | None:
    """`2024-05-20T16:29:45 message`."""
    if line[19:20] != " " or line[10:11] != "T":
        return None
    timestamp = iso_ms(line[:19])
    return None if timestamp is None else (timestamp, None, line[20:])


def export_head(line: str) -> tuple[int | None, str | None, str] | None:
    """`2024-05-20T16:29:45.009Z message` or `1716222585009 message`."""
    if line[23:25] == "Z " and line[10:11] == "T":
        timestamp = iso_ms(line[:24])
        return None if timestamp is None else (timestamp, None, line[25:])
    if line[13:14] == " " and line[:13].isdigit():
        return int(line[:13]), None, line[14:]
    return None


# A Lambda log stream name (`YYYY/MM/DD/[VERSION]id`, or `YYYY/MM/DD/NAME[VERSION]id`), then the time.
_SAM_LINE = re.compile(r"(\d{4}/\d\d/\d\d/[^\s\[]*\[\S*) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?) ?")
_CLOSING = frozenset(("}", "]", "},", "],"))


def sam_head(line: str) -> tuple[int | None, str | None, str] | None:
    """`sam logs`: `2024/05/20/[$LATEST]<id> 2024-05-20T16:29:45.009000 message` (UTC, no offset)."""
    if line[:1].isspace():
        return None
    match = _SAM_LINE.match(line)
    if match is None:
        return None
    timestamp = iso_ms(match.group(2))
    return None if timestamp is None else (timestamp, match.group(1), line[match.end() :])


def text_head(line: str) -> tuple[int | None, str | None, str] | None:
    """Every line is an event, except one that starts with white space (a traceback frame, an indented
    JSON member), one that only closes a bracket (the end of pretty-printed JSON), and an empty one."""
    if line[:1] in (" ", "\t", "\n", "\r") or (line[:1] in "}]" and line.rstrip() in _CLOSING):
        return None
    match = _TEXT_TIME.search(line, 0, _TEXT_TIME_SEARCH)
    return (iso_ms(match.group()) if match else None), None, line


_SECONDS: dict[str, int | None] = {}
"""`YYYY-MM-DDTHH:MM:SS` -> epoch seconds (None: not a time); lines of one second share an entry."""
_SECONDS_KEPT = 100_000


def iso_ms(text: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 time (UTC when it names no offset), or None when it is not one."""
    head = text[:19]
    seconds = _SECONDS.get(head, -1)
    if seconds == -1:
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        seconds = _SECONDS[head] = _epoch_seconds(head)
    if seconds is None:
        return None
    rest = text[19:]
    if rest[-1:] == "Z":
        rest = rest[:-1]
    elif rest[-6:] == "+00:00":
        rest = rest[:-6]
    if not rest:
        return seconds * 1000
    if rest[0] == "." and rest[1:].isdigit():
        return seconds * 1000 + round(int(rest[1:7].ljust(6, "0")) / 1000)
    try:
        moment = datetime.fromisoformat(text)  # another offset
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((moment - _EPOCH) / _MILLISECOND)


def _epoch_seconds(text: str) -> int | None:
    if not _DATE_TIME.fullmatch(text):
        return None
    try:
        moment = datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return (moment - _EPOCH) // _SECOND
