"""HTTP sink: POST each batch to an endpoint, with the standard library only.

Presets choose the body and how the response is read:

    ndjson         one JSON object per line (application/x-ndjson); the default
    webhook        one JSON array of events (application/json)
    elasticsearch  the _bulk API: an action line before each document; per-document failures
    opensearch     come back through SinkError.failed, and 429 or 5xx documents are retryable

Failures are classified for the delivery layer: 408, 429 and 5xx responses, refused or dropped
connections and timeouts may pass on a second try; other 4xx responses (and 3xx: redirects are not
followed, so the key never goes to another host) and untrusted TLS certificates will not. A
Retry-After header (seconds or an HTTP date) becomes retry_after. A 413 (the request is larger than the
endpoint takes) is too_large: the delivery layer splits the batch.

Each POST has one time budget for all of it: connect_timeout_s to connect (TCP, proxy tunnel, TLS),
then read_timeout_s for the request and the whole answer, however slowly it comes, and never more
than the time left before the caller's deadline (shipper.sinks.base.time_left). Of an answer only
what is needed is read: QUOTE_BYTES of an error, MAX_BULK_ANSWER_BYTES of a _bulk answer (a longer
one is a retryable failure: which documents failed cannot be told), and 64 KiB of any other.

The proxy comes from the environment, as for curl, pip and botocore: HTTPS_PROXY for https:// URLs,
HTTP_PROXY for http:// ones, ALL_PROXY for both, and NO_PROXY lists hosts reached directly. An https://
URL goes through a CONNECT tunnel, so TLS is still verified end to end; credentials in the proxy URL
(`http://user:password@proxy:3128`) become Proxy-Authorization and are never shown.

TLS certificates are verified (`ca_bundle` names a CA file for a private CA). The API key is a
secret reference (`env:NAME`, `ssm:/path`, `secretsmanager:name`) checked when the sink is built (an
`env:` variable must be set) and resolved through shipper.secrets at each send; its value never appears
in a repr, an exception or a log line. Whatever a server answers is quoted only through
shipper.httpio.quote, which redacts the key (and the proxy's credentials) in every form first.
"""

from __future__ import annotations

import base64
import http.client
import math
import re
import ssl
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import orjson

from shipper import compression
from shipper.errors import ConfigError
from shipper.httpio import Answer, Connection, quote, retry_after_seconds
from shipper.secrets import REFERENCE_KINDS, SecretError, check_reference
from shipper.sinks.base import SinkError, encode_ndjson, time_left

__all__ = ["PRESETS", "HttpSink", "Reply", "build_http_sink"]

PRESETS = ("ndjson", "webhook", "elasticsearch", "opensearch")
_BULK_PRESETS = ("elasticsearch", "opensearch")
# Only what failures need: a successful 10,000-document response shrinks to {"errors":false}.
_BULK_FILTER = "filter_path=errors,items.*.status,items.*.error"
_BULK_KIND_CHARS = 100
MAX_BULK_ANSWER_BYTES = 16 * 1024 * 1024
"""The most of a 2xx _bulk answer read to find the documents that failed."""
_MAX_OTHER_ANSWER_BYTES = 64 * 1024
"""The most of another 2xx answer read (to keep the connection); a longer one closes it."""
MAX_BATCH_EVENTS = 10_000
"""Events per POST by default: a batch is bound by its bytes (max_batch_bytes) first, so the events of one
Lambda invocation usually go in one request, and it waits for one answer, not one per thousand events."""


class HttpSink:
    """POSTs batches to one URL. See the module docstring for presets and failure classification."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        preset: str = "ndjson",
        gzip: bool = False,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        api_key_header: str = "Authorization",
        api_key_scheme: str | None = None,
        ca_bundle: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        index: str | None = None,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"HTTP sink needs an http:// or https:// URL with a host, got {url!r}")
        if parts.username or parts.password:
            raise ConfigError("HTTP sink URL must not hold credentials: use api_key=REFERENCE")
        if preset not in PRESETS:
            raise ConfigError(f"HTTP sink preset {preset!r} is not one of {', '.join(PRESETS)}")
        if api_key is not None and api_key.partition(":")[0] not in REFERENCE_KINDS:
            # The value is not echoed: it may be the key itself, pasted where its reference belongs.
            raise ConfigError("HTTP sink api_key must be a secret reference: env:NAME, ssm:/path, secretsmanager:name")
        if api_key is not None:
            try:
                check_reference(api_key)  # an env: variable not set stops the start, not the first send
            except SecretError as exc:
                raise ConfigError(f"HTTP sink api_key: {exc}") from None
        for header, value in (headers or {}).items():
            if not header or not _one_line(header + value):
                raise ConfigError(f"HTTP sink header {header!r} must be one line of printable ASCII")  # value not shown
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        """The endpoint without its query string, which may hold tokens: safe to show."""
        self.preset = preset
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self._host = parts.hostname
        self._port = parts.port
        self._gzip = gzip
        self._headers = dict(headers or {})
        self._api_key = api_key
        self._api_key_header = api_key_header
        if api_key_scheme is None:
            api_key_scheme = "ApiKey" if preset == "elasticsearch" else "Bearer"
        self._api_key_prefix = f"{api_key_scheme} " if api_key_scheme else ""
        self._budget_s = connect_timeout_s + read_timeout_s
        self._proxy = _proxy_for(parts.scheme, parts.hostname)
        tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            try:
                tls = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"HTTP sink cannot load ca_bundle {ca_bundle!r}: {exc}") from None
        elif ca_bundle is not None:
            raise ConfigError("HTTP sink ca_bundle needs an https:// URL")
        self._secrets: list[str] = []
        """What a server's answer must never show: the proxy's credentials, and the key once resolved."""
        tunnel = None
        if self._proxy is None:
            host, port = parts.hostname, parts.port
        else:
            host, port = self._proxy.host, self._proxy.port
            if self._proxy.credentials is not None:
                self._secrets.append(self._proxy.credentials)
            if tls is not None:
                auth = {} if self._proxy.authorization is None else {"Proxy-Authorization": self._proxy.authorization}
                tunnel = (parts.hostname, parts.port, auth)
        timeouts = {"connect_timeout_s": connect_timeout_s, "read_timeout_s": read_timeout_s}
        self._connection = Connection(host, port, tls=tls, tunnel=tunnel, **timeouts)
        path, query = parts.path or "/", parts.query
        self._check: Callable[[bytes, int, Sequence[str]], None] | None = None
        self._max_answer = _MAX_OTHER_ANSWER_BYTES
        self.send_ndjson: Callable[[Sequence[bytes], int], None] | None = None
        """Plain NDJSON is posted as delivery encoded it (shipper.sinks.base.LineSink); other formats take events."""
        if preset in _BULK_PRESETS:
            if index is None and path.rstrip("/") in ("", "/_bulk"):
                raise ConfigError(f"{preset} sink needs index=NAME or a URL ending in /INDEX/_bulk")
            if not path.endswith("/_bulk"):
                path = path.rstrip("/") + "/_bulk"
            query = f"{query}&{_BULK_FILTER}" if query else _BULK_FILTER
            action = {"create": {"_index": index} if index else {}}
            self._action_line = orjson.dumps(action) + b"\n"
            self._encode: Callable[[Sequence[dict[str, Any]]], bytes] = self._encode_bulk
            self._content_type = "application/x-ndjson"
            self._check = _check_bulk
            self._max_answer = MAX_BULK_ANSWER_BYTES
        elif index is not None:
            raise ConfigError("HTTP sink option index is for the elasticsearch and opensearch presets")
        elif preset == "webhook":
            self._encode, self._content_type = _encode_json_array, "application/json"
        else:
            self._encode, self._content_type = encode_ndjson, "application/x-ndjson"
            self.send_ndjson = self._send_chunks
        self._target = f"{path}?{query}" if query else path
        if self._proxy is not None and parts.scheme == "http":
            # A plain-HTTP proxy is sent the whole URL; the credentials for it go with every request.
            self._target = f"http://{parts.netloc}{self._target}"
            if self._proxy.authorization is not None:
                self._headers["Proxy-Authorization"] = self._proxy.authorization

    def __repr__(self) -> str:
        via = "" if self._proxy is None else f", proxy={self._proxy.address!r}"
        return f"HttpSink({self.url!r}, preset={self.preset!r}{via})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        self._send_body(self._encode(events), len(events))

    def _send_chunks(self, chunks: Sequence[bytes], count: int) -> None:
        self._send_body(b"".join(chunks), count)

    def _send_body(self, body: bytes, count: int) -> None:
        """POST the encoded batch of `count` events; raise SinkError for what the destination did not take."""
        reply = self.post(body, self._content_type)
        if not reply.ok:
            raise self.refusal(reply)
        if self._check is None:
            return
        if reply.truncated:
            raise SinkError(
                f"_bulk answer from {self.url} is longer than {MAX_BULK_ANSWER_BYTES:,} bytes: which documents "
                "failed cannot be told, so the batch is sent again",
                retryable=True,
            )
        self._check(reply.body, count, reply.secrets)

    def post(self, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> Reply:
        """POST `body` to the URL with the sink's headers, API key and gzip, plus `headers`; any status is
        returned. Failures to get an answer (connection, TLS, timeout, the secret) raise SinkError.

        The transport that other sinks built on this one (OTLP, Loki, Datadog, ...) send through."""
        headers = {**self._headers, **(headers or {}), "Content-Type": content_type}
        if self._gzip:
            body = compression.compress(body)
            headers["Content-Encoding"] = "gzip"
        secrets = self._secrets
        if self._api_key is not None:
            secret = self._secret(self._api_key)
            headers[self._api_key_header] = self._api_key_prefix + secret
            secrets = [*secrets, secret]
        answer = self._post(body, headers, secrets)
        retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
        return Reply(answer.status, retry_after, answer.body, answer.truncated, tuple(secrets))

    def refusal(self, reply: Reply, retryable: bool | None = None, *, splits: bool = True) -> SinkError:
        """The SinkError for a reply that is not 2xx, quoting its start with the secrets redacted.

        `retryable` defaults to 408, 429 and 5xx; Retry-After is kept for retryable ones. A 413 is `too_large`:
        the delivery layer sends its events again in smaller batches, unless the request does not shrink with
        the batch (`splits=False`)."""
        if retryable is None:
            retryable = reply.status in (408, 429) or reply.status >= 500
        reason = self.quote(reply)
        return SinkError(
            f"HTTP {reply.status} from {self.url}" + (f": {reason}" if reason else ""),
            retryable=retryable,
            retry_after=reply.retry_after if retryable else None,
            too_large=splits and reply.status == 413,
        )

    def quote(self, reply: Reply) -> str:
        """The start of a reply's body, one line, safe to show (the secrets redacted first)."""
        return quote(reply.body, reply.secrets, cut=reply.truncated)

    def close(self) -> None:
        self._connection.close()

    def _secret(self, ref: str) -> str:
        from shipper.secrets import SecretError, get_secret  # only sinks with an API key need it

        try:
            secret = get_secret(ref).strip()
        except SecretError as exc:
            raise SinkError(f"HTTP sink {self.url}: {exc}", retryable=exc.retryable) from None
        if not secret or not _one_line(secret):
            raise SinkError(f"HTTP sink {self.url}: secret {ref} is empty or not one line", retryable=False)
        return secret

    def _post(self, body: bytes, headers: dict[str, str], secrets: Sequence[str]) -> Answer:
        """One POST, on the kept connection or a new one, within the budget and the caller's deadline."""
        seconds = min(self._budget_s, time_left())
        if seconds <= 0:
            raise SinkError(f"POST {self.url}: no time left before the deadline", retryable=True)
        try:
            return self._connection.exchange(
                "POST", self._target, body, headers, seconds=seconds, max_body=self._max_answer
            )
        except ssl.SSLCertVerificationError as exc:
            reason = f"TLS certificate of {self.url} is not trusted: {quote(exc.verify_message, secrets)}"
            raise SinkError(reason, retryable=False) from None
        except (OSError, http.client.HTTPException) as exc:
            via = "" if self._proxy is None else f" through proxy {self._proxy.address}"
            reason = quote(f"{type(exc).__name__}: {exc}", secrets)
            raise SinkError(f"POST {self.url}{via} failed: {reason}", retryable=True) from None

    def _encode_bulk(self, events: Sequence[dict[str, Any]]) -> bytes:
        action = self._action_line
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        return b"".join([action + dumps(event, option=newline) for event in events])


@dataclass(frozen=True, slots=True)
class Reply:
    """What one POST got back."""

    status: int
    retry_after: float | None
    """Seconds from a Retry-After header, if any."""
    body: bytes
    """The answer's body; with `truncated`, only its start (read to quote it, never parsed)."""
    truncated: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """The API key and proxy credentials that were sent: redacted from quoted answers; never shown."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Proxy(NamedTuple):
    host: str
    port: int
    credentials: str | None
    """`user:password` from the proxy URL: a secret."""

    @property
    def authorization(self) -> str | None:
        """The Proxy-Authorization value: a secret."""
        if self.credentials is None:
            return None
        return "Basic " + base64.b64encode(self.credentials.encode()).decode("ascii")

    @property
    def address(self) -> str:
        """host:port, without the credentials: safe to show."""
        return f"{self.host}:{self.port}"


def _proxy_for(scheme: str, host: str) -> _Proxy | None:
    """The proxy the environment names for `scheme` (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY).

    None when there is none, or when NO_PROXY covers `host`.
    """
    from urllib.request import getproxies_environment  # only an HTTP sink needs it

    proxies = getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or _no_proxy_covers(host, proxies.get("no", "")):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        # The value is not echoed: it may hold the proxy's password.
        raise ConfigError(
            f"the {scheme} proxy set in the environment must be an http://HOST:PORT URL: the HTTP sink goes "
            "through plain HTTP proxies only (https:// destinations still get TLS end to end through them)"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"the {scheme} proxy set in the environment has an invalid port") from None
    credentials = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return _Proxy(parts.hostname, port, credentials)


def _no_proxy_covers(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY (`*`, or comma-separated hosts and domains, ports ignored) names `host`.

    `example.com` and `.example.com` both cover `example.com` and its subdomains, as in curl.
    """
    host = host.lower().rstrip(".")
    for entry in no_proxy.split(","):
        name = entry.strip().lower()
        if name == "*":
            return True
        if name.startswith("[") and "]" in name:  # [::1]:8080
            name = name[1 : name.index("]")]
        elif name.count(":") == 1:  # host:port
            name = name.partition(":")[0]
        name = name.strip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _one_line(text: str) -> bool:
    """Whether `text` can go in a header as it is: printable ASCII, no line breaks."""
    return text.isascii() and text.isprintable()


def _encode_json_array(events: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(list(events))


def _check_bulk(payload: bytes, count: int, secrets: Sequence[str]) -> None:
    """Raise for the documents a 2xx _bulk response says failed; 429 and 5xx ones are retryable."""
    try:
        response = orjson.loads(payload)
        failed_any = response["errors"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        # The documents may or may not be in: sending again risks duplicates, not losing them.
        raise SinkError(f"_bulk response is not readable: {quote(payload, secrets)}", retryable=True) from None
    if not failed_any:
        return
    items = response.get("items")
    if not isinstance(items, list) or len(items) != count:
        raise SinkError(f"_bulk response does not list {count} items", retryable=True)
    failed: list[int] = []
    retryable = False
    kinds: Counter[str] = Counter()
    for index, item in enumerate(items):
        result = next(iter(item.values()), None) if isinstance(item, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(status, int):
            status, result = 500, {"error": "unreadable item"}
        if 200 <= status < 300:
            continue
        failed.append(index)
        retryable |= status == 429 or status >= 500
        error = result.get("error")
        kind = error.get("type") if isinstance(error, dict) else error
        kinds[f"{status} {quote(str(kind), secrets, chars=_BULK_KIND_CHARS)}"] += 1
    summary = quote(", ".join(f"{n} x {kind}" for kind, n in kinds.most_common()))
    raise SinkError(f"_bulk: {len(failed)} of {count} documents failed: {summary}", retryable=retryable, failed=failed)


_Converter = Callable[[str, Any], Any]
"""Reads one sink option: (name, value) -> the value, or ConfigError. A value is text when written in a
line (SHIPPER_SINKS, --sink), or a TOML string, number or boolean; each option reads the text by its type."""
_NUMBER_TEXT = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
"""A number written as text: bounded, so that a long run of digits is refused, not converted."""


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"sink option {key} must be text, got {value!r}")
    return value


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ConfigError(f"sink option {key} must be true or false, got {value!r}")


def _positive(kind: type) -> _Converter:
    def convert(key: str, value: Any) -> Any:
        number = value
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            number = float(value) if "." in value else int(value)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not 0 < number < math.inf
            or kind(number) != number
        ):
            raise ConfigError(f"sink option {key} must be a positive {kind.__name__}, got {value!r}")
        return kind(number)

    return convert


_OPTIONS: dict[str, _Converter] = {
    "preset": _text,
    "gzip": _flag,
    "api_key": _text,
    "api_key_header": _text,
    "api_key_scheme": _text,
    "ca_bundle": _text,
    "connect_timeout_s": _positive(float),
    "read_timeout_s": _positive(float),
    "index": _text,
    "max_batch_events": _positive(int),
    "max_batch_bytes": _positive(int),
}
_HEADER = "header."


def build_http_sink(spec: str, options: Mapping[str, Any]) -> HttpSink:
    """An HttpSink from `http:URL` or a bare URL and options: those of HttpSink, plus `header.NAME=value`."""
    url = spec.removeprefix("http:") if spec.startswith("http:") and not spec.startswith("http://") else spec
    unknown = [key for key in options if key not in _OPTIONS and not key.startswith(_HEADER)]
    if unknown:
        raise ConfigError(
            f"unknown HTTP sink option(s) {', '.join(sorted(unknown))}; known: {', '.join(_OPTIONS)}, {_HEADER}NAME"
        )
    headers = {
        key.removeprefix(_HEADER): value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in options.items()
        if key.startswith(_HEADER)
    }
    kwargs = {key: _OPTIONS[key](key, value) for key, value in options.items() if key in _OPTIONS}
    return HttpSink(url, headers=headers, **kwargs)
