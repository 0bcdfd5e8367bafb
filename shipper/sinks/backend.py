"""What the sinks for observability backends (OTLP, Loki, Datadog, Splunk, remote write) share.

Each of them encodes a batch its own way and reads its own answers, but sends through the HTTP sink's
transport (`HttpSink.post`): the same TLS, proxy, timeouts, secret references, gzip and `header.NAME`
options. `transport` splits a backend's options into its own and the HTTP ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipper.errors import ConfigError
from shipper.sinks.base import SinkError
from shipper.sinks.http import _HEADER, _OPTIONS, HttpSink, _flag, _positive, _text, build_http_sink

__all__ = ["Converter", "flag", "oversized", "positive", "text", "transport"]

Converter = Callable[[str, Any], Any]
text: Converter = _text
flag: Converter = _flag
positive = _positive
_HTTP_ONLY = ("preset", "index")
"""HTTP sink options that choose its own encoding: a backend has its own."""
BACKEND_MAX_BATCH_EVENTS = 1000
"""Events per request to a backend unless it sets its own limit or the user does: fewer than the plain HTTP
sink sends, as ingestion limits (Loki's per-tenant burst, a collector's largest request) are often small."""


def transport(
    kind: str,
    url: str,
    options: Mapping[str, Any],
    own: Mapping[str, Converter],
    defaults: Mapping[str, Any] | None = None,
) -> tuple[HttpSink, dict[str, Any]]:
    """The HTTP transport for `url` and the backend's own options (`own`: name -> converter), checked.

    `defaults` are HTTP options the backend sets unless the user does (gzip, batch limits); a backend
    that sets no max_batch_events sends BACKEND_MAX_BATCH_EVENTS at most.
    """
    known = [key for key in _OPTIONS if key not in _HTTP_ONLY]
    unknown = [
        key
        for key in options
        if key not in own and (key in _HTTP_ONLY or (key not in _OPTIONS and not key.startswith(_HEADER)))
    ]
    if unknown:
        raise ConfigError(
            f"unknown {kind} sink option(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join([*own, *known])}, {_HEADER}NAME"
        )
    values = {key: own[key](key, value) for key, value in options.items() if key in own}
    http_options = {
        "max_batch_events": BACKEND_MAX_BATCH_EVENTS,
        **(defaults or {}),
        **{key: value for key, value in options.items() if key not in own},
    }
    return build_http_sink(url, http_options), values


def oversized(kind: str, failed: list[int], limit: int, what: str) -> SinkError:
    """The final refusal of the items (indices `failed`) over a backend's per-item limit: they are
    dead-lettered with this reason, never cut or dropped, while the rest of the batch is sent."""
    return SinkError(
        f"{kind}: {len(failed)} {what} over the {limit:,}-byte limit of one item, not sent",
        retryable=False,
        failed=failed,
    )
