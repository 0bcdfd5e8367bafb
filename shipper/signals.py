"""Signals found inside application lines: throttling and out-of-memory kills.

Each detector is a cheap substring pre-check followed by a regex compiled at import, so the common
line that mentions neither costs a few `in` tests.
"""

from __future__ import annotations

import re

#: botocore's throttling error codes (botocore/retries/standard.py), plus the Lambda and EC2 variants.
THROTTLE_ERROR_CODES = (
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "EC2ThrottledException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "SlowDown",
)

_THROTTLE_CODE = re.compile(
    r"(?<!\w)(" + "|".join(THROTTLE_ERROR_CODES) + r")(?!\w)"
    # The bare code "Throttling" is an ordinary English word: only count it where it reads as a code.
    r"|(?<=[(\"'])(Throttling)(?=[)\"'])"
)
_THROTTLE_PHRASE = re.compile(
    r"\b(?:(Rate [Ee]xceeded)|(Too Many Requests)|(?i:(?:status(?:[ _]?code)?|http(?:/[\d.]+)?)\W{0,3}(429)))\b"
)
#: error_code reported when a line shows throttling without naming an AWS error code.
RATE_EXCEEDED = "RateExceeded"
HTTP_429 = "HTTP429"


def find_throttle(text: str) -> tuple[str, str] | None:
    """(error_code, the line that shows it) when `text` reports a throttled call, else None."""
    if not (
        "xceed" in text
        or "hrottl" in text
        or "Too" in text
        or "429" in text
        or "SlowDown" in text
        or "PriorRequest" in text
        or "TransactionInProgress" in text
    ):
        return None
    match = _THROTTLE_CODE.search(text)
    if match is not None:
        return match.group(1) or match.group(2), _line_at(text, match.start())
    match = _THROTTLE_PHRASE.search(text)
    if match is None:
        return None
    code = RATE_EXCEEDED if match.group(1) else HTTP_429
    return code, _line_at(text, match.start())


_OOM = re.compile(
    r"(java\.lang\.OutOfMemoryError)"
    r"|(JavaScript heap out of memory)"
    r"|(fatal error: runtime: out of memory)"
    r"|(failed to allocate memory \(NoMemoryError\))"
    # Python's MemoryError only where it stands as the exception: a traceback's last line,
    # the runtime's "[ERROR] MemoryError", or a JSON errorType. Not inside other words or prose.
    r"|(?:^|(?<=\[ERROR\] )|(?<=\"errorType\": \")|(?<=\"errorType\":\"))(MemoryError)(?=:|\"|[ \t]*$)",
    re.MULTILINE,
)
#: error_type reported for each runtime's out-of-memory string (None: the runtime names no type).
_OOM_ERROR_TYPES = ("java.lang.OutOfMemoryError", None, None, "NoMemoryError", "MemoryError")


def find_out_of_memory(text: str) -> tuple[str | None, str] | None:
    """(error_type, the line that shows it) when `text` reports a runtime out of memory, else None."""
    if "emory" not in text:
        return None
    match = _OOM.search(text)
    if match is None or match.lastindex is None:
        return None
    return _OOM_ERROR_TYPES[match.lastindex - 1], _line_at(text, match.start())


_MAX_SIGNAL_MESSAGE = 2000


def _line_at(text: str, position: int) -> str:
    """The line of `text` that contains `position`, trimmed to a readable length."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start : end if end != -1 else len(text)].strip()
    return line[:_MAX_SIGNAL_MESSAGE]
