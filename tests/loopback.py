"""A loopback HTTP server for protocol-level sink tests: it decodes each request, then answers what a
test's `respond` says, on 127.0.0.1. Built on the HTTP sink tests' handler (`Handler.answer`)."""

from __future__ import annotations

import gzip
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from test_http_sink import Handler


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    """Decompressed (gzip, or snappy block format)."""


Answer = tuple[int, bytes, dict[str, str]]
"""(status, body, headers)"""


@dataclass
class Server:
    url: str
    respond: Callable[[Request], Answer]
    plan: deque[str] = field(default_factory=deque)
    """What the next requests get instead of `respond`: a status ("503"), "429" (with Retry-After: 3)
    or "drop" (no answer); then `respond` again."""
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(Handler):
    def do_POST(self) -> None:
        server: Server = self.server.loopback
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "snappy":
            import cramjam

            body = bytes(cramjam.snappy.decompress_raw(body))
        request = Request(self.path, dict(self.headers), body)
        with server.lock:
            behaviour = server.plan.popleft() if server.plan else None
            server.requests.append(request)
        if behaviour == "drop":
            self.close_connection = True
        elif behaviour == "429":
            self.answer(429, b"slow down", {"Retry-After": "3"})
        elif behaviour is not None:
            self.answer(int(behaviour), f"error {behaviour}".encode())
        else:
            self.answer(*server.respond(request))


@contextmanager
def loopback(respond: Callable[[Request], Answer]) -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    server = Server(f"http://127.0.0.1:{httpd.server_address[1]}", respond)
    httpd.loopback = server  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def ok(body: bytes = b"", **headers: str) -> Callable[[Request], Answer]:
    return lambda request: (200, body, headers)
