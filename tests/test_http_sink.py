"""The HTTP sink against a real HTTP server on 127.0.0.1 that fails on purpose.

The server counts every event it stores by event id, so "delivered exactly once" is checked where it
matters: at the destination.
"""

from __future__ import annotations

import base64
import gzip
import logging
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from fake_sinks import events

from shipper.delivery import Delivery, RetryPolicy, Route, Router, Status
from shipper.errors import ConfigError
from shipper.httpio import retry_after_seconds
from shipper.sinks import DirectorySink, build_sink
from shipper.sinks.base import SinkError, encode_ndjson
from shipper.sinks.http import HttpSink, _no_proxy_covers
from shipper.testing import FakeTime

SECRET = "s3cr3t-Value-7f9c2a"


class Endpoint:
    """What the server does with each POST (`plan`, then "ok"), and what it stored."""

    def __init__(self) -> None:
        self.plan: deque[str] = deque()
        self.stored: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.throttle_once: set[str] = set()
        """Event ids the _bulk endpoint answers 429 for the first time it sees them."""
        self.answers: deque[tuple[int, bytes]] = deque()
        """What the "scripted" behaviour answers, in turn: (status, body)."""
        self.pushes = 0
        """PUTs (Pushgateway pushes) answered 200."""
        self.max_body: int | None = None
        """A POST with a longer body (as sent: compressed or not) is answered 413, as nginx does past 1 MB."""
        self.release = threading.Event()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_PUT(self) -> None:
        """A Pushgateway: "ok" counts the push; the failing behaviours are those of POST."""
        endpoint: Endpoint = self.server.endpoint
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with endpoint.lock:
            behaviour = endpoint.plan.popleft() if endpoint.plan else "ok"
            endpoint.requests.append((self.path, dict(self.headers), body))
        if behaviour == "ok":
            with endpoint.lock:
                endpoint.pushes += 1
            self.answer(200, b"")
        elif not self.misbehave(behaviour):
            self.answer(int(behaviour), b"failed")

    def misbehave(self, behaviour: str) -> bool:
        """Answer as `behaviour` says when it is one of the broken answers; False when it is not."""
        endpoint: Endpoint = self.server.endpoint
        if behaviour == "drop":  # took the request, then the connection is gone without an answer
            self.close_connection = True
        elif behaviour == "reset":  # the connection reset (RST) instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif behaviour == "garbage":  # not HTTP at all
            self.wfile.write(b"\x16\x03 garbage, not a status line\r\n\r\n")
            self.close_connection = True
        elif behaviour == "drip":  # a whole, valid answer, one byte every 50 ms: no read ever times out
            self.drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000)
        elif behaviour == "chunked-forever":  # a chunked 200 that never ends
            self.drip(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 10_000, 64)
        elif behaviour in ("huge-500", "huge-200"):  # 300 MiB, as fast as the client reads it
            self.stream(int(behaviour[-3:]), 300 * 1024 * 1024)
        elif behaviour == "scripted":
            with endpoint.lock:
                status, body = endpoint.answers.popleft()
            if status:
                self.answer(status, body)
            else:  # the body is the whole answer, status line included
                self.wfile.write(body)
                self.close_connection = True
        elif behaviour == "redirect":  # to another host, as a hostile or moved endpoint might
            self.answer(307, b"moved", {"Location": "http://127.0.0.2:9/steal"})
        else:
            return False
        return True

    def drip(self, answer: bytes, step: int = 1) -> None:
        endpoint: Endpoint = self.server.endpoint
        self.close_connection = True
        deadline = time.monotonic() + 20
        for start in range(0, len(answer), step):
            if endpoint.release.wait(0.05) or time.monotonic() > deadline:
                return
            try:
                self.wfile.write(answer[start : start + step])
                self.wfile.flush()
            except OSError:
                return

    def stream(self, status: int, size: int) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"0" * 65536
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            return

    def do_POST(self) -> None:
        endpoint: Endpoint = self.server.endpoint
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with endpoint.lock:
            behaviour = endpoint.plan.popleft() if endpoint.plan else "ok"
            endpoint.requests.append((self.path, dict(self.headers), body))
        if endpoint.max_body is not None and len(body) > endpoint.max_body:
            behaviour = "413"
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.misbehave(behaviour):
            return
        if behaviour == "hang":  # answers only after the client has given up
            endpoint.release.wait(5)
            self.close_connection = True
            return
        if behaviour == "429":
            self.answer(429, b'{"error":"slow down"}', {"Retry-After": "3"})
        elif behaviour == "429-long":
            self.answer(429, b'{"error":"slow down"}', {"Retry-After": "60"})
        elif behaviour == "503-date":
            self.answer(503, b"unavailable", {"Retry-After": formatdate(time.time() + 4, usegmt=True)})
        elif behaviour == "echo-401":  # a server that echoes the credentials it did not accept
            self.answer(401, f"bad credentials: {self.headers.get('Authorization')}".encode())
        elif behaviour.isdigit():
            self.answer(int(behaviour), b'{"error":"' + behaviour.encode() + b'"}')
        elif self.path.split("?")[0].endswith("/_bulk"):
            self.answer(200, self.bulk(endpoint, body))
        else:
            docs = orjson.loads(body) if body.startswith(b"[") else [orjson.loads(line) for line in body.splitlines()]
            with endpoint.lock:
                endpoint.stored.update(doc["event_id"] for doc in docs)
            if behaviour == "stored-drop":  # stored the batch, then the connection is gone before the answer
                self.close_connection = True
                return
            self.answer(200, b'{"ok":true}')

    def bulk(self, endpoint: Endpoint, body: bytes) -> bytes:
        lines = body.splitlines()
        items = []
        for action, doc in zip(lines[0::2], lines[1::2], strict=True):
            assert set(orjson.loads(action)) == {"create"}
            event = orjson.loads(doc)
            with endpoint.lock:
                if event["message"] == "poison":
                    result = {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad field"}}
                elif event["event_id"] in endpoint.throttle_once:
                    endpoint.throttle_once.discard(event["event_id"])
                    result = {"status": 429, "error": {"type": "es_rejected_execution_exception"}}
                else:
                    endpoint.stored[event["event_id"]] += 1
                    result = {"status": 201}
            items.append({"create": result})
        return orjson.dumps({"errors": any(item["create"]["status"] > 299 for item in items), "items": items})

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[Endpoint, str]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    httpd.endpoint = Endpoint()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield httpd.endpoint, f"{scheme}://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    finally:
        httpd.endpoint.release.set()  # type: ignore[attr-defined]
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[tuple[Endpoint, str]]:
    yield from serve()


def route(sink: HttpSink, time_: FakeTime, dead_dir: Path, attempts: int = 8) -> Router:
    settings = {"retry": RetryPolicy(attempts, 0.05, 1.0), "sleep": time_.sleep, "clock": time_.clock}
    dead_letter = Delivery(DirectorySink(str(dead_dir)), name="dead_letter", **settings)
    return Router([Route(Delivery(sink, name="http", dead_letter=dead_letter, **settings))], dead_letter)


def dead_letters(dead_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted(dead_dir.glob("*.ndjson")) for line in path.read_bytes().splitlines()]


def test_every_event_arrives_exactly_once_through_errors_throttling_drops_and_hangs(
    server: tuple[Endpoint, str], tmp_path: Path
) -> None:
    endpoint, url = server
    endpoint.plan.extend(["500", "429", "drop", "hang", "503-date", "502"])
    time_ = FakeTime()
    sink = build_sink(f"http:{url}/ingest", {"max_batch_events": 25, "read_timeout_s": 0.3})
    router = route(sink, time_, tmp_path)
    items = [(f"seq-{n}", events(30, 30 * n)) for n in range(3)]

    report = router.deliver(items)

    assert report.statuses == dict.fromkeys(["seq-0", "seq-1", "seq-2"], Status.DELIVERED)
    assert endpoint.stored == Counter({f"e{i}": 1 for i in range(90)})
    counters = router.stats()["sinks"]["http"]
    assert counters["received_events"] == counters["sent_events"] == 90
    assert counters["retries"] == counters["errors"] == 6
    assert time_.sleeps[1] >= 3.0  # Retry-After: 3
    assert time_.sleeps[4] >= 2.0  # Retry-After: an HTTP date about 4 s ahead
    assert dead_letters(tmp_path) == []
    router.close()


@pytest.mark.parametrize("gzip_body", [False, True])
def test_plain_ndjson_is_posted_as_delivery_encoded_it(
    server: tuple[Endpoint, str], tmp_path: Path, gzip_body: bool
) -> None:
    """The NDJSON sink takes the lines delivery measured (each event encoded once); every batch's body is the
    events' NDJSON, within max_batch_bytes; other formats still take events."""
    endpoint, url = server
    sink = build_sink(f"http:{url}/ingest", {"max_batch_bytes": 700, "gzip": gzip_body})
    assert sink.send_ndjson is not None  # type: ignore[attr-defined]
    assert build_sink(f"http:{url}/hook", {"preset": "webhook"}).send_ndjson is None  # type: ignore[attr-defined]
    given = [dict(event, message="é\u2028" * i) for i, event in enumerate(events(12))]
    router = route(sink, FakeTime(), tmp_path)

    report = router.deliver([("a", given[:5]), ("b", given[5:])])

    assert report.statuses == {"a": Status.DELIVERED, "b": Status.DELIVERED}
    bodies = [gzip.decompress(body) if gzip_body else body for _, _, body in endpoint.requests]
    assert b"".join(bodies) == encode_ndjson(given)
    assert len(bodies) > 1 and all(len(body) <= 700 for body in bodies)
    assert all(body.endswith(b"\n") for body in bodies)
    router.close()


def test_a_connection_lost_after_the_server_stored_a_batch_duplicates_that_batch_once(
    server: tuple[Endpoint, str], tmp_path: Path
) -> None:
    endpoint, url = server
    endpoint.plan.extend(["ok", "stored-drop"])
    sink = build_sink(f"http:{url}/ingest", {"max_batch_events": 10})
    router = route(sink, FakeTime(), tmp_path)

    report = router.deliver([("seq-0", events(30))])

    assert report.statuses == {"seq-0": Status.DELIVERED}
    duplicated = {f"e{i}" for i in range(10, 20)}  # the second batch: stored, unanswered, sent again
    assert endpoint.stored == Counter({f"e{i}": 2 if f"e{i}" in duplicated else 1 for i in range(30)})
    assert router.stats()["sinks"]["http"]["sent_events"] == 30
    router.close()


def test_a_permanent_error_dead_letters_the_batch_with_the_reason(server: tuple[Endpoint, str], tmp_path: Path) -> None:
    endpoint, url = server
    endpoint.plan.extend(["ok", "400"])
    sink = build_sink(f"{url}/ingest", {"max_batch_events": 10})
    router = route(sink, FakeTime(), tmp_path)
    report = router.deliver([("a", events(10)), ("b", events(10, 10)), ("c", events(5, 20))])

    assert report.statuses == {"a": Status.DELIVERED, "b": Status.DEAD_LETTERED, "c": Status.DELIVERED}
    (entry,) = dead_letters(tmp_path)
    assert entry["code"] == "sink_refused" and entry["sink"] == "http"
    assert entry["reason"].startswith(f"HTTP 400 from {url}/ingest")
    assert [event["event_id"] for event in entry["events"]] == [f"e{i}" for i in range(10, 20)]
    assert endpoint.stored == Counter({f"e{i}": 1 for i in [*range(10), *range(20, 25)]})
    assert len(endpoint.requests) == 3  # the refused batch was not retried


@pytest.mark.parametrize(
    ("behaviour", "retryable", "retry_after"),
    [
        ("500", True, None),
        ("503", True, None),
        ("429", True, 3.0),
        ("408", True, None),
        ("400", False, None),
        ("404", False, None),
        ("drop", True, None),
        ("hang", True, None),
    ],
)
def test_failures_are_classified(
    server: tuple[Endpoint, str], behaviour: str, retryable: bool, retry_after: float | None
) -> None:
    endpoint, url = server
    endpoint.plan.append(behaviour)
    sink = HttpSink(url, read_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SinkError) as raised:
        sink.send(events(2))
    assert time.monotonic() - started < 3
    assert (raised.value.retryable, raised.value.retry_after, raised.value.failed) == (retryable, retry_after, None)
    sink.send(events(2))  # and the next send works, on a fresh connection where needed
    assert endpoint.stored == Counter({"e0": 1, "e1": 1})
    sink.close()


def test_a_refused_connection_is_retryable() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as unused:
        port = unused.server_address[1]
    with pytest.raises(SinkError) as raised:
        HttpSink(f"http://127.0.0.1:{port}/", connect_timeout_s=1).send(events(1))
    assert raised.value.retryable


def test_retry_after_as_an_http_date(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    endpoint.plan.append("503-date")
    with pytest.raises(SinkError) as raised:
        HttpSink(url).send(events(1))
    assert 2.0 <= raised.value.retry_after <= 4.5


def test_webhook_sends_a_gzipped_json_array_with_headers(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    sink = build_sink(f"{url}/hook?token=abc", {"preset": "webhook", "gzip": True, "header.X-Team": "payments"})
    sink.send(events(3))
    path, headers, body = endpoint.requests[0]
    assert path == "/hook?token=abc"
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/json"
    assert headers["X-Team"] == "payments"
    assert orjson.loads(gzip.decompress(body)) == events(3)
    assert "token" not in repr(sink)


def test_bulk_retries_only_throttled_documents_and_dead_letters_rejected_ones(
    server: tuple[Endpoint, str], tmp_path: Path
) -> None:
    endpoint, url = server
    endpoint.throttle_once = {"e2", "e5"}
    batch = events(8)
    batch[6]["message"] = "poison"
    sink = build_sink(url, {"preset": "elasticsearch", "index": "lambda-logs"})
    report = route(sink, FakeTime(), tmp_path).deliver([("a", batch[:4]), ("b", batch[4:])])

    assert report.statuses == {"a": Status.DELIVERED, "b": Status.DEAD_LETTERED}
    assert endpoint.stored == Counter({f"e{i}": 1 for i in range(8) if i != 6})
    (entry,) = dead_letters(tmp_path)
    assert [event["event_id"] for event in entry["events"]] == ["e6"]
    assert "400 mapper_parsing_exception" in entry["reason"]
    paths = [path for path, _, _ in endpoint.requests]
    assert paths == ["/_bulk?filter_path=errors,items.*.status,items.*.error"] * 2
    first_action = orjson.loads(endpoint.requests[0][2].splitlines()[0])
    assert first_action == {"create": {"_index": "lambda-logs"}}
    assert len(endpoint.requests[1][2].splitlines()) == 6  # the retry carried only e2, e5 and e6


def test_bulk_index_from_the_url(server: tuple[Endpoint, str]) -> None:
    endpoint, url = server
    build_sink(f"{url}/logs-2024", {"preset": "opensearch"}).send(events(1))
    assert endpoint.requests[0][0].startswith("/logs-2024/_bulk?")
    assert orjson.loads(endpoint.requests[0][2].splitlines()[0]) == {"create": {}}


def test_the_secret_never_shows(
    server: tuple[Endpoint, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint, url = server
    monkeypatch.setenv("SHIPPER_TEST_API_KEY", SECRET + "\n")
    endpoint.plan.extend(["echo-401", "500"])
    sink = build_sink(f"{url}/ingest", {"api_key": "env:SHIPPER_TEST_API_KEY"})
    with caplog.at_level(logging.DEBUG):
        report = route(sink, FakeTime(), tmp_path).deliver([("a", events(2))])
        with pytest.raises(SinkError) as raised:
            sink.send(events(1))

    assert endpoint.requests[0][1]["Authorization"] == f"Bearer {SECRET}"
    assert report.statuses == {"a": Status.DEAD_LETTERED}
    assert "[secret]" in dead_letters(tmp_path)[0]["reason"]
    shown = [
        repr(sink),
        str(sink),
        str(raised.value),
        caplog.text,
        *capsys.readouterr(),
        str(report),
        *(path.read_text() for path in tmp_path.iterdir()),
    ]
    assert not [text for text in shown if SECRET in text]


def test_a_key_given_where_its_reference_belongs_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        build_sink("https://logs.example.com", {"api_key": SECRET})
    assert SECRET not in str(raised.value)
    assert "secret reference" in str(raised.value)


def test_a_missing_secret_stops_the_build_and_one_gone_later_is_a_permanent_failure(
    server: tuple[Endpoint, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = server
    monkeypatch.delenv("SHIPPER_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError, match="env:SHIPPER_TEST_MISSING"):
        HttpSink(url, api_key="env:SHIPPER_TEST_MISSING")
    monkeypatch.setenv("SHIPPER_TEST_MISSING", "key")
    sink = HttpSink(url, api_key="env:SHIPPER_TEST_MISSING")
    monkeypatch.delenv("SHIPPER_TEST_MISSING")
    with pytest.raises(SinkError) as raised:
        sink.send(events(1))
    assert not raised.value.retryable
    assert "env:SHIPPER_TEST_MISSING" in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("http:ftp://host/x", {}, "http:// or https:// URL"),
        ("https://user:pw@host/x", {}, "must not hold credentials"),
        ("https://host", {"preset": "splunk"}, "preset 'splunk'"),
        ("https://host", {"preset": "elasticsearch"}, "index=NAME"),
        ("https://host", {"index": "x"}, "elasticsearch and opensearch"),
        ("http://host", {"ca_bundle": "/x.pem"}, "needs an https:// URL"),
        ("https://host", {"ca_bundle": "/nonexistent/ca.pem"}, "cannot load ca_bundle"),
        ("https://host", {"gzip": "yes"}, "gzip must be true or false"),
        ("https://host", {"read_timeout_s": 0}, "read_timeout_s must be a positive float"),
        ("https://host", {"max_batch_events": 2.5}, "max_batch_events must be a positive int"),
        ("https://host", {"colour": "blue"}, "unknown HTTP sink option(s) colour"),
        ("https://host", {"header.X-Token": "a\nb"}, "header 'X-Token' must be one line"),
    ],
)
def test_bad_options_are_refused_at_build(spec: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_sink(spec, options)
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_unless_the_ca_is_given(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers = serve(context)
    endpoint, url = next(servers)
    try:
        with pytest.raises(SinkError) as raised:
            HttpSink(url).send(events(1))
        assert not raised.value.retryable
        assert "not trusted" in str(raised.value)
        assert endpoint.stored == Counter()

        trusted = HttpSink(url, ca_bundle=cert)
        trusted.send(events(2))
        trusted.send(events(1, 2))
        assert endpoint.stored == Counter({"e0": 1, "e1": 1, "e2": 1})
        trusted.close()
    finally:
        servers.close()


class Proxy:
    """A forwarding HTTP proxy on 127.0.0.1: CONNECT tunnels, and absolute-URL requests relayed as they are.

    `seen` lists (method, target, Proxy-Authorization) per client connection. With `password`, a client
    without `Basic user:password` gets 407.
    """

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.seen: list[tuple[str, str, str | None]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            request_line, _, rest = head.partition(b"\r\n")
            method, target, _ = request_line.decode().split(" ", 2)
            headers = dict(
                line.split(": ", 1) for line in rest.partition(b"\r\n\r\n")[0].decode().split("\r\n") if ": " in line
            )
            authorization = headers.get("Proxy-Authorization")
            self.seen.append((method, target, authorization))
            expected = (
                None
                if self.password is None
                else "Basic " + base64.b64encode(f"shipper:{self.password}".encode()).decode()
            )
            if expected is not None and authorization != expected:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pending = head.partition(b"\r\n\r\n")[2]
            else:
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname, parts.port))
                pending = head
            with upstream:
                upstream.sendall(pending)
                back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                back.start()
                _pipe(client, upstream)
                back.join(5)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        return


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    running = Proxy(password=SECRET)
    yield running
    running.close()


def test_an_https_destination_is_reached_through_a_connect_tunnel_with_tls_verified_end_to_end(
    proxy: Proxy, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers = serve(context)
    endpoint, url = next(servers)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url(f"shipper:{SECRET}@"))
    try:
        sink = HttpSink(url, ca_bundle=cert)
        sink.send(events(2))
        sink.send(events(1, 2))
        sink.close()
        assert endpoint.stored == Counter({"e0": 1, "e1": 1, "e2": 1})
        # One tunnel for both batches, to the destination, with the proxy's credentials; the
        # destination never sees them.
        expected = "Basic " + base64.b64encode(f"shipper:{SECRET}".encode()).decode()
        assert proxy.seen == [("CONNECT", url.removeprefix("https://"), expected)]
        assert all("Proxy-Authorization" not in headers for _, headers, _ in endpoint.requests)
        assert SECRET not in repr(sink) and f"127.0.0.1:{proxy.port}" in repr(sink)

        with pytest.raises(SinkError) as raised:  # the tunnel does not weaken certificate checks
            HttpSink(url).send(events(1))
        assert "not trusted" in str(raised.value) and not raised.value.retryable
    finally:
        servers.close()


def test_an_http_destination_is_sent_to_the_proxy_as_a_whole_url(
    proxy: Proxy, server: tuple[Endpoint, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = server
    monkeypatch.setenv("HTTP_PROXY", proxy.url(f"shipper:{SECRET}@"))
    sink = HttpSink(url + "/ingest?token=t")
    sink.send(events(2))
    sink.close()
    assert endpoint.stored == Counter({"e0": 1, "e1": 1})
    assert [(method, target) for method, target, _ in proxy.seen] == [("POST", url + "/ingest?token=t")]


def test_no_proxy_hosts_are_reached_directly(
    proxy: Proxy, server: tuple[Endpoint, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = server
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    HttpSink(url).send(events(1))
    assert endpoint.stored == Counter({"e0": 1})
    assert proxy.seen == []


def test_a_proxy_refusing_the_credentials_fails_the_send_without_showing_them(
    proxy: Proxy, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("shipper:wrong-Pa55@"))
    with pytest.raises(SinkError) as raised:
        HttpSink("https://127.0.0.1:9", ca_bundle=certificate[0]).send(events(1))
    message = str(raised.value)
    assert f"through proxy 127.0.0.1:{proxy.port}" in message and "407" in message
    assert "wrong-Pa55" not in message


@pytest.mark.parametrize("value", ["https://shipper:wrong-Pa55@proxy.example:3128", "socks5://proxy.example:1080"])
def test_a_proxy_that_is_not_plain_http_is_refused_at_build(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", value)
    with pytest.raises(ConfigError) as raised:
        build_sink("https://logs.example.com", {})
    assert "http://HOST:PORT" in str(raised.value) and "wrong-Pa55" not in str(raised.value)


@pytest.mark.parametrize(
    ("host", "no_proxy", "covered"),
    [
        ("logs.example.com", "example.com", True),
        ("logs.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("notexample.com", "example.com", False),
        ("logs.example.com", "other.org, example.com:443", True),
        ("127.0.0.1", "localhost,127.0.0.1", True),
        ("::1", "[::1]:8080", True),
        ("anything.internal", "*", True),
        ("logs.example.com", "", False),
    ],
)
def test_no_proxy_names_hosts_and_domains(host: str, no_proxy: str, covered: bool) -> None:
    assert _no_proxy_covers(host, no_proxy) is covered


# --- one budget per request, bounded reads ----------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["drip", "chunked-forever"])
def test_an_answer_dripped_a_byte_at_a_time_is_cut_off_at_the_request_budget(
    server: tuple[Endpoint, str], behaviour: str
) -> None:
    endpoint, url = server
    endpoint.plan.append(behaviour)
    sink = HttpSink(url, connect_timeout_s=0.5, read_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(SinkError) as raised:
        sink.send(events(1))
    assert 0.4 < time.monotonic() - started < 1.5  # each byte came within 50 ms: a per-read timeout never fires
    assert raised.value.retryable and "within" in str(raised.value)
    sink.send(events(1))  # a fresh connection afterwards
    sink.close()


def test_a_send_never_outlives_the_lambda_invocation(server: tuple[Endpoint, str]) -> None:
    from shipper.handler import ANSWER_RESERVE_S, KinesisHandler
    from shipper.pipeline import Pipeline

    from helpers import cwl_document, gz, kinesis_event

    class Context:  # an invocation with 1.2 s left
        aws_request_id = "r-1"
        ends = time.monotonic() + 1.2

        def get_remaining_time_in_millis(self) -> int:
            return int((self.ends - time.monotonic()) * 1000)

    endpoint, url = server
    endpoint.plan.append("drip")
    sink = HttpSink(f"{url}/ingest", read_timeout_s=30)
    function = KinesisHandler(Router([Route(Delivery(sink))]), Pipeline(), timeout_margin_s=0.2)
    event = kinesis_event([gz(cwl_document(["hello\n"]))])
    response = function(event, Context())
    assert Context.ends - time.monotonic() > ANSWER_RESERVE_S / 2  # answered before the function's timeout
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["kinesis"]["sequenceNumber"]}]}
    assert endpoint.stored == Counter()


@pytest.mark.parametrize(("behaviour", "preset"), [("huge-500", "ndjson"), ("huge-200", "elasticsearch")])
def test_a_huge_answer_is_read_only_as_far_as_needed(server: tuple[Endpoint, str], behaviour: str, preset: str) -> None:
    import tracemalloc

    endpoint, url = server
    endpoint.plan.append(behaviour)
    sink = build_sink(f"{url}/logs", {"preset": preset})
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(SinkError) as raised:
            sink.send(events(2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3
    assert peak < 20 * 1024 * 1024  # of a 300 MiB answer: at most the 16 MiB a _bulk answer may take
    assert raised.value.retryable
    if preset == "elasticsearch":
        assert "longer than 16,777,216 bytes" in str(raised.value)
    else:
        assert peak < 1024 * 1024
        assert str(raised.value).startswith(f"HTTP 500 from {url}/logs: 0000")
    sink.send(events(1))
    sink.close()


@pytest.mark.parametrize("behaviour", ["garbage", "reset", "drop"])
def test_a_broken_answer_is_a_retryable_failure(server: tuple[Endpoint, str], behaviour: str) -> None:
    endpoint, url = server
    endpoint.plan.append(behaviour)
    sink = HttpSink(url, read_timeout_s=2)
    with pytest.raises(SinkError) as raised:
        sink.send(events(1))
    assert raised.value.retryable
    sink.send(events(1))
    assert endpoint.stored == Counter({"e0": 1})


def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(
    server: tuple[Endpoint, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = server
    monkeypatch.setenv("SHIPPER_TEST_API_KEY", SECRET)
    endpoint.plan.append("redirect")
    router = route(HttpSink(url, api_key="env:SHIPPER_TEST_API_KEY"), FakeTime(), tmp_path)
    report = router.deliver([("a", events(1))])
    assert report.statuses == {"a": Status.DEAD_LETTERED}
    assert len(endpoint.requests) == 1
    assert dead_letters(tmp_path)[0]["reason"].startswith(f"HTTP 307 from {url}")


@pytest.mark.parametrize(
    "value", ["²", "1" * 5000, "Mon, 01 Jan 99999 00:00:00 GMT", "Mon, 32 Foo", "-1", "nan", "inf", "-5", "1e999"]
)
def test_a_retry_after_that_is_not_a_delay_is_ignored_or_capped(value: str) -> None:
    result = retry_after_seconds(value)
    assert result is None or result >= 0
