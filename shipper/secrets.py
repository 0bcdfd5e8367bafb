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
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from shipper.errors import ShipperError

__all__ = ["REFERENCE_KINDS", "SecretError", "SecretResolver", "check_reference", "get_secret"]

DEFAULT_TTL_S = 300.0
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
        import boto3  # only when an AWS reference is used: importing shipper never imports boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from shipper.aws_errors import classify

        try:
            with self._lock:
                client = self._clients.get(kind)
                if client is None:
                    session = boto3.session.Session(region_name=self._region)
                    client = self._clients[kind] = session.client(kind, endpoint_url=self._endpoint_url)
            if kind == "ssm":
                return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            response = client.get_secret_value(SecretId=name)
        except (BotoCoreError, ClientError) as exc:
            retryable, reason, _ = classify(exc)
            raise SecretError(f"cannot read secret {ref!r}: {reason}", retryable=retryable) from None
        if "SecretString" in response:
            return response["SecretString"]
        try:
            return response["SecretBinary"].decode()
        except UnicodeDecodeError:
            raise SecretError(f"secret {ref!r} is binary, not UTF-8 text") from None


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
