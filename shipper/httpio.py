"""One HTTP exchange within one time budget, reading a bounded part of the answer.

The HTTP sink and the Lambda's Pushgateway push both talk to servers that may be slow, broken or
hostile. http.client's timeouts apply to each socket operation, so a server that drips its answer a
byte at a time keeps the caller for as long as it likes. Here every send and every read is given the
time left of one budget for the whole exchange (connect, TLS handshake, proxy tunnel, request,
status line, headers and body): past it, TimeoutError. And the answer's body is read up to a limit
only: the rest is never read, and the connection is dropped.

`quote` turns what a server answered into text fit for a log line, an exception or a dead letter:
secrets redacted on the whole text first, then white space collapsed and the text cut.
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from shipper.secrets import redact

__all__ = ["QUOTE_BYTES", "QUOTE_CHARS", "Answer", "Connection", "quote", "retry_after_seconds"]

QUOTE_BYTES = 16 * 1024
"""What is read of an answer that is only quoted (an error page): the rest is never read."""
QUOTE_CHARS = 300
"""The most characters of an answer shown in a message."""


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    truncated: bool
    """The body was longer than the limit: `body` is its start, QUOTE_BYTES at most (only ever quoted)."""


def quote(text: str | bytes, secrets: Iterable[str | None] = (), *, cut: bool = False, chars: int = QUOTE_CHARS) -> str:
    """What a server said, for a message: secrets redacted in the whole text, then one line, at most `chars`.

    `cut`: the text is the start of a longer answer (see shipper.secrets.redact).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = " ".join(redact(text, secrets, cut=cut).split())
    return line if len(line) <= chars else line[: chars - 3] + "..."


class _Budget:
    """The deadline of the exchange under way (time.monotonic)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.deadline = math.inf

    def start(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds

    def cap(self, seconds: float) -> None:
        """Leave at most `seconds` from now."""
        self.deadline = min(self.deadline, time.monotonic() + seconds)

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.spent()
        return left

    def spent(self) -> TimeoutError:
        return TimeoutError(f"no complete answer within the {self.deadline - self.started:.3g} s allowed")


class _Budgeted(socket.socket):
    """A socket whose every send and receive gets the time left of its budget as its timeout.

    Mixed in before the socket class it budgets (plain or TLS), whose methods `super()` reaches.
    """

    budget: _Budget | None = None

    def _arm(self) -> None:
        if self.budget is not None:
            self.settimeout(self.budget.left())

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().send(*args, **kwargs)

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()
        return super().sendall(*args, **kwargs)


class _BudgetSocket(_Budgeted):
    pass


class _BudgetSSLSocket(_Budgeted, ssl.SSLSocket):
    pass


class Connection:
    """A kept-alive HTTP(S) connection to `host`:`port`, opened when first needed.

    Each exchange gets at most connect_timeout_s to connect (TCP, proxy tunnel, TLS) and then at most
    read_timeout_s for the request and the whole answer, within the `seconds` it is given.

    `tls` makes it HTTPS; `tunnel` (host, port, headers) goes through the proxy at host:port with
    CONNECT to reach the real destination.
    """

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        tls: ssl.SSLContext | None = None,
        tunnel: tuple[str, int | None, Mapping[str, str]] | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        if tls is not None:
            tls.sslsocket_class = _BudgetSSLSocket
        self._tunnel = tunnel
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._budget = _Budget()
        self._connection: http.client.HTTPConnection | None = None

    def exchange(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str], *, seconds: float, max_body: int
    ) -> Answer:
        """Send one request and read its answer, all within `seconds`; at most `max_body` bytes of a
        2xx body and QUOTE_BYTES of any other are read. Raises OSError (TimeoutError past the budget)
        or http.client.HTTPException; the connection is then dropped."""
        self._budget.start(seconds)
        try:
            connection = self._connection or self._connect()
            self._budget.cap(self._read_timeout_s)
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            limit = max_body if 200 <= response.status < 300 else QUOTE_BYTES
            payload = response.read(limit + 1)
        except TimeoutError:
            self.close()
            raise self._budget.spent() from None
        except BaseException:
            self.close()
            raise
        truncated = len(payload) > limit
        if truncated:
            payload = payload[: min(limit, QUOTE_BYTES)]
        if truncated or response.will_close or not response.isclosed():
            self.close()
        return Answer(response.status, response.headers, payload, truncated)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        timeout = min(self._connect_timeout_s, self._budget.left())
        connection: http.client.HTTPConnection
        if self._tls is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        else:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._tls)
        connection._create_connection = self._open  # type: ignore[attr-defined]  # a private hook, not in the stubs
        if self._tunnel is not None:
            host, port, headers = self._tunnel
            connection.set_tunnel(host, port, headers=dict(headers))
        connection.connect()
        sock = connection.sock  # the TLS socket, made after the handshake, or the plain one from _open
        assert isinstance(sock, _Budgeted), "_open and the context's sslsocket_class make budgeted sockets"
        sock.budget = self._budget
        self._connection = connection
        return connection

    def _open(self, address: tuple[str, int], timeout: float, source: Any = None) -> socket.socket:
        plain = socket.create_connection(address, timeout, source)
        sock = _BudgetSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(timeout)
        sock.budget = self._budget
        return sock


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
