"""Secrets resolved at run time from a reference, never written in configuration.

References:
    env:NAME                        an environment variable (read on every call, never cached)
    ssm:/param/name                 an SSM Parameter Store parameter, decrypted (name or ARN)
    secretsmanager:name             a Secrets Manager secret's string (name or ARN)
    secretsmanager:name#key         one string member of a secret that holds a JSON object

`check_reference` is what a sink calls when it is built: it checks the shape of every reference and
that an `env:` variable is set, so a missing variable stops the process at start. AWS references are
fetched at the first use instead (with the delivery layer's retries): a throttled or slow answer
from AWS then delays a batch rather than failing the start, and the Lambda cold start makes no call.

Values fetched from AWS are cached for a TTL (300 s by default), so a rotated secret is picked up
within that time without a call per use. Every failure raises SecretError, whose message names the
reference and never contains a secret value (its `retryable` says whether AWS may answer later:
throttling, 5xx, timeouts); this module logs and prints nothing. boto3 is imported only when an AWS
reference is first resolved.

A lookup is one attempt (shipper.aws_clients) with TIMEOUT_S (3 s) to connect and to read, and never
longer than the send under way may still take (shipper.sinks.base.time_left): the delivery layer above
owns retrying, with its backoff and deadline, and a secret store that does not answer fails the send
as retryable instead of holding it.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from html.entities import codepoint2name
from typing import Any

from shipper.errors import ConfigError, ShipperError

__all__ = ["REDACTED", "REFERENCE_KINDS", "SecretError", "SecretResolver", "check_reference", "get_secret", "redact"]

DEFAULT_TTL_S = 300.0
TIMEOUT_S = 3.0
"""Connect and read timeout of one lookup (shortened to the send's time left)."""
_AWS_KINDS = ("ssm", "secretsmanager")  # each the name of its boto3 service
#: What a reference may start with (`KIND:...`).
REFERENCE_KINDS = ("env", *_AWS_KINDS)


class SecretError(ShipperError):
    """A secret reference is malformed, or its value could not be read. The message names the reference only."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class SecretResolver:
    """Resolves references, caching values fetched from AWS for `ttl` seconds of `clock`."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._region = region
        self._endpoint_url = endpoint_url
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, ref: str) -> str:
        """The value `ref` points to."""
        kind, name, json_key = _parse(ref)
        if kind == "env":
            return _environment(ref, name)
        value = self._cached(ref, kind, name)
        return _json_member(ref, value, json_key) if json_key else value

    def clear(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._cache.clear()

    def _cached(self, ref: str, kind: str, name: str) -> str:
        with self._lock:
            hit = self._cache.get((kind, name))
            if hit is not None and self._clock() - hit[0] < self._ttl:
                return hit[1]
        value = self._fetch(ref, kind, name)
        with self._lock:
            self._cache[(kind, name)] = (self._clock(), value)
        return value

    def _fetch(self, ref: str, kind: str, name: str) -> str:
        # Only when an AWS reference is used: importing shipper never imports boto3.
        from botocore.exceptions import BotoCoreError, ClientError

        from shipper.aws_errors import classify
        from shipper.sinks.base import time_left

        seconds = time_left()
        if seconds <= 0:
            raise SecretError(f"cannot read secret {ref!r}: no time left in the send", retryable=True)
        try:
            client = self._client(kind, seconds)
            if kind == "ssm":
                return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            response = client.get_secret_value(SecretId=name)
        except (BotoCoreError, ClientError) as exc:
            retryable, reason, _ = classify(exc)
            raise SecretError(f"cannot read secret {ref!r}: {reason}", retryable=retryable) from None
        except ConfigError as exc:  # no region
            raise SecretError(f"cannot read secret {ref!r}: {exc}") from None
        if "SecretString" in response:
            return response["SecretString"]
        try:
            return response["SecretBinary"].decode()
        except UnicodeDecodeError:
            raise SecretError(f"secret {ref!r} is binary, not UTF-8 text") from None

    def _client(self, kind: str, seconds: float) -> Any:
        """The client for `kind`, whose timeouts end within `seconds` (a client of its own when that is
        shorter than TIMEOUT_S: botocore's timeouts belong to the client, not to the call)."""
        from shipper.aws_clients import client

        if seconds < TIMEOUT_S:
            return client(kind, region=self._region, endpoint_url=self._endpoint_url, timeout=seconds)
        with self._lock:
            cached = self._clients.get(kind)
            if cached is None:
                cached = self._clients[kind] = client(
                    kind, region=self._region, endpoint_url=self._endpoint_url, timeout=TIMEOUT_S
                )
            return cached


def _parse(ref: str) -> tuple[str, str, str]:
    """(kind, name, JSON key or "") of a reference; SecretError when it is malformed."""
    kind, sep, name = ref.partition(":")
    if not sep or not name or kind not in REFERENCE_KINDS:
        raise SecretError(f"bad secret reference {ref!r}: expected env:NAME, ssm:NAME or secretsmanager:NAME[#KEY]")
    name, sep, json_key = name.partition("#") if kind == "secretsmanager" else (name, "", "")
    if sep and not (name and json_key):
        raise SecretError(f"bad secret reference {ref!r}: expected secretsmanager:NAME#KEY")
    return kind, name, json_key


def _environment(ref: str, name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f"secret {ref!r}: environment variable {name} is not set")
    return value


def check_reference(ref: str) -> None:
    """Raise SecretError if `ref` is malformed, or is `env:NAME` and NAME is not set or empty (no AWS call)."""
    kind, name, _ = _parse(ref)
    if kind == "env" and not _environment(ref, name).strip():
        raise SecretError(f"secret {ref!r}: environment variable {name} is empty")


def _json_member(ref: str, value: str, key: str) -> str:
    # `from None` everywhere: a chained JSON error would carry the secret text with it.
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretError(f"secret {ref!r}: the secret is not a JSON object") from None
    if not isinstance(document, dict):
        raise SecretError(f"secret {ref!r}: the secret is not a JSON object")
    if key not in document:
        raise SecretError(f"secret {ref!r}: the secret has no key {key!r}")
    member = document[key]
    if not isinstance(member, str):
        raise SecretError(f"secret {ref!r}: key {key!r} holds a {type(member).__name__}, not a string")
    return member


_default = SecretResolver()


def get_secret(ref: str) -> str:
    """The value `ref` points to, from the process-wide resolver (region and endpoint from the environment)."""
    return _default.get(ref)


# --- redaction --------------------------------------------------------------------------------------

REDACTED = "[secret]"
"""What stands where a secret was."""
MIN_REDACTED_CHARS = 4
"""Derived parts shorter than this (the `user` of a short `user:password`) are not redacted on their own:
they would blank out ordinary words while telling an attacker next to nothing."""


def redact(text: str, secrets: Iterable[str | None], *, cut: bool = False) -> str:
    """`text` with every form of each secret replaced by REDACTED.

    `cut`: the text is the start of a longer one (an answer read up to a limit), so its end may hold
    the first part of a secret, which cannot be recognised: the last characters that could be one
    (12 for each character of the longest secret: its longest escape) are dropped too.

    Run it on the whole text first, and only then collapse, escape or cut it: a secret cut in half or
    with its spaces collapsed would no longer be found. Each secret is matched in any mix of the ways a
    server may write it back: as it is or in another case, URL-encoded (`%41`, `+` for a space), as JSON
    (`\\u0041`, `\\"`), as HTML (`&#65;`, `&#x41;`, `&amp;`), with its white space changed, or base64
    encoded at any alignment. A base64 secret (an Elasticsearch API key, a Basic credential) is also
    matched decoded, and so are the two halves of a decoded `user:password`.
    """
    given = tuple(secret for secret in secrets if secret)
    patterns = _patterns(given)
    if patterns is None:
        return text
    text = patterns.sub(REDACTED, text)
    if cut:
        text = text[: max(0, len(text) - 12 * max(map(len, given)))]
    return text


@functools.lru_cache(maxsize=32)
def _patterns(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        forms |= _derived(secret)
    alternatives = [_char_forms(form) for form in sorted(forms, key=len, reverse=True)]
    alternatives += [re.escape(encoded) for form in forms for encoded in _base64_forms(form)]
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def _derived(secret: str) -> set[str]:
    """The secret and what it decodes to (base64 text, and the halves of `user:password`), long enough."""
    secret = secret.strip()
    forms = {secret}
    try:
        decoded = base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True).decode()
    except ValueError:
        decoded = ""
    if decoded.isprintable() and decoded:
        forms.add(decoded)
    for form in list(forms):
        forms.update(form.split(":", 1))
    # Matching ignores case, but some letters change length when a server upper-cases them (ß -> SS).
    forms |= {changed for form in forms for changed in (form.upper(), form.lower())}
    return {form for form in forms if len(form) >= MIN_REDACTED_CHARS}


def _char_forms(secret: str) -> str:
    """A pattern for `secret` whose every character may be written in any of the usual escapes."""
    parts = []
    for index, char in enumerate(secret):
        if char.isspace():
            if not secret[index - 1].isspace():  # one run of white space matches any: no nested repeats
                parts.append(r"(?:\s|\+|%20|%09|&nbsp;|&#0*32;|&#x0*20;|\\u0020|\\[tnr])+")
            continue
        code = ord(char)
        utf8 = "".join(f"%{byte:02x}" for byte in char.encode())
        json = f"\\\\u{code:04x}" if code < 0x10000 else "".join(f"\\\\u{unit:04x}" for unit in _utf16(char))
        forms = [re.escape(char), re.escape(utf8), json, f"&#0*{code};", f"&#x0*{code:x};", f"\\\\{re.escape(char)}"]
        name = codepoint2name.get(code)
        if name is not None:
            forms.append(f"&{name};")
        parts.append(f"(?:{'|'.join(forms)})")
    return "".join(parts)


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _base64_forms(secret: str) -> list[str]:
    """The base64 characters that depend only on `secret`, at each of the three byte alignments
    (standard and URL-safe alphabets): found wherever the secret was encoded inside a longer value."""
    data = secret.encode()
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start, end = -(-offset * 8 // 6), (offset + len(data)) * 8 // 6
        core = encoded[start:end]
        if len(core) >= MIN_REDACTED_CHARS:
            forms += [core, core.replace("+", "-").replace("/", "_")]
    return forms
