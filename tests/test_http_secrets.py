"""A server that echoes the HTTP sink's key, in any form and anywhere in its answer, never gets it shown.

Every path where an answer reaches a person or a file is checked: the delivery and handler logs (as
`shipper run` prints them on a terminal and as the Lambda writes JSON), exceptions, the dead letter,
and `shipper run`'s standard error in a real process.

What counts as a leak: any piece of the key of 4 characters or more. Shorter pieces tell an attacker
little (a 43-character key keeps 39+ unknown characters), and they would also match the shipper's own
words by chance. To make every hit a real leak, keys are drawn from characters the shipper's messages
and the answers' filler never put side by side: uncommon letters, regex metacharacters, spaces (up to
two in a row), and non-ASCII where the path allows it (a header value is ASCII, so a non-ASCII key can
only be a proxy password).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote as url_quote
from urllib.parse import quote_plus

import orjson
import pytest
from fake_sinks import events
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_http_sink import Endpoint, Proxy, serve

from shipper.delivery import Delivery, RetryPolicy, Route, Router
from shipper.handler import JsonLogFormatter, KinesisHandler
from shipper.httpio import QUOTE_BYTES, quote
from shipper.pipeline import Pipeline
from shipper.runner import EXIT_UNDELIVERED
from shipper.sinks import DirectorySink
from shipper.sinks.base import SinkError
from shipper.sinks.http import HttpSink
from shipper.terminal import PrintableFormatter

from helpers import cwl_document, gz, kinesis_event

MIN_LEAK = 4
KEY_CHARS = "QXZJKVWqxzjkvw.*+?[](){}|^$\\ "
NON_ASCII = "éß€🔑Ωж"
FILLER = "abcdefghilmnoprstuy0123456789-_,;:=/<>\"'\n\t "
FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda key: key,
    "upper": str.upper,
    "bearer": lambda key: f"Authorization: Bearer {key}",
    "url": lambda key: url_quote(key, safe=""),
    "url-plus": quote_plus,
    "json": lambda key: json.dumps(key)[1:-1],
    "html": html.escape,
    "base64": lambda key: base64.b64encode(key.encode()).decode(),
    "basic": lambda key: base64.b64encode(f"user:{key}".encode()).decode(),
}
ENCODED = ("url", "url-plus", "json", "html", "base64", "basic")
"""Forms made only of the key, encoded: pieces of them are checked too."""


def keys(alphabet: str = KEY_CHARS) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=MIN_LEAK, max_size=48).filter(
        lambda key: key == key.strip() and "   " not in key and len(key) >= MIN_LEAK
    )


def leaks(key: str, form_name: str, texts: list[str]) -> list[str]:
    """Pieces of the key (or of the encoded form the server wrote it in) that some text shows."""
    pieces = {key[i : i + MIN_LEAK] for i in range(len(key) - MIN_LEAK + 1)}
    if form_name in ENCODED:  # longer pieces, so that the encoding's own letters alone do not count
        form = FORMS[form_name](key)
        pieces |= {form[i : i + 2 * MIN_LEAK] for i in range(len(form) - 2 * MIN_LEAK + 1)}
    return sorted({piece for piece in pieces for text in texts if piece in text})


def filler(size: int, seed: int) -> str:
    return "".join(FILLER[(seed * 7 + i * i) % len(FILLER)] for i in range(size))


def answer(kind: str, form: str, before: int, seed: int) -> tuple[int, bytes]:
    """(status, body) of an answer of `kind` with `form` after `before` characters; status 0: raw bytes."""
    head, tail = filler(before, seed), filler(seed % 400, seed + 1)
    if kind == "text":
        return 400, (head + form + tail).encode()
    if kind == "spaces":  # white space to collapse before and inside the key's neighbourhood
        return 500, (" \n\t " * (before // 4) + form + "  " + tail).encode()
    if kind == "html":
        return 200, f"<html><body><p>{head}</p><pre>{form}</pre>{tail}</body></html>".encode()
    if kind == "bulk-type":
        item = {"create": {"status": 400, "error": {"type": head + form + tail, "reason": "x"}}}
        return 200, orjson.dumps({"errors": True, "items": [item]})
    if kind == "bulk-string":
        return 200, orjson.dumps({"errors": True, "items": [{"create": {"status": 429, "error": head + form}}]})
    if kind == "cut":  # straddles the limit of what is read of an error
        return 503, (" " * (QUOTE_BYTES - len(form) + before % (len(form) + 1)) + form + tail * 50).encode()
    if kind == "status-line":
        return 0, f"HTTP/1.1 4{head[:20]} {form}\r\n\r\n".encode()
    raise AssertionError(kind)


KINDS = ["text", "spaces", "html", "bulk-type", "bulk-string", "cut", "status-line"]


@pytest.fixture
def captured() -> Iterator[Callable[[], list[str]]]:
    """What the shipper logs, as a terminal shows it and as the Lambda writes it, at every level."""
    logger = logging.getLogger("shipper")
    streams = []
    handlers = []
    for formatter in (PrintableFormatter("shipper: %(message)s"), JsonLogFormatter()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        streams.append(stream)
        handlers.append(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield lambda: [stream.getvalue() for stream in streams]
    logger.setLevel(level)
    for handler in handlers:
        logger.removeHandler(handler)


@pytest.fixture
def server() -> Iterator[tuple[Endpoint, str]]:
    yield from serve()


def _sink(url: str, kind: str) -> HttpSink:
    preset = {"preset": "elasticsearch", "index": "logs"} if kind.startswith(("bulk", "html")) else {}
    return HttpSink(f"{url}/ingest", api_key="env:SHIPPER_TEST_KEY", read_timeout_s=5, **preset)


def test_a_key_echoed_anywhere_in_any_form_is_never_shown(
    server: tuple[Endpoint, str], captured: Callable[[], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = server

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        key=keys(),
        form_name=st.sampled_from(sorted(FORMS)),
        kind=st.sampled_from(KINDS),
        before=st.integers(0, 700),
        seed=st.integers(0, 1000),
    )
    @example(key="two  spaces QXZJ", form_name="raw", kind="spaces", before=280, seed=3)
    @example(key="Q" * 43, form_name="raw", kind="text", before=290, seed=0)
    @example(key="k.*+?[x](z)|^$\\QX", form_name="raw", kind="html", before=10, seed=5)
    @example(key="QXZJKVWqxzjkvwQXZJKVWqxzjkvwQXZJKVWqxzjkvwQ", form_name="raw", kind="cut", before=20, seed=1)
    def check(key: str, form_name: str, kind: str, before: int, seed: int) -> None:
        form = FORMS[form_name](key)
        monkeypatch.setenv("SHIPPER_TEST_KEY", key)
        status, body = answer(kind, form, before, seed)
        with tempfile.TemporaryDirectory() as dead:
            shown = _through_router(endpoint, _sink(url, kind), status, body, Path(dead))
            shown += _through_handler(endpoint, _sink(url, kind), status, body)
            assert endpoint.requests[-1][1]["Authorization"].endswith(f" {key}")  # Bearer, or ApiKey for _bulk
            assert leaks(key, form_name, [*shown, *captured()]) == []

    check()


def _through_router(endpoint: Endpoint, sink: HttpSink, status: int, body: bytes, dead: Path) -> list[str]:
    """The router's delivery with a dead letter: the sink's exception, the report, the dead-letter files."""
    endpoint.plan.extend(["scripted", "scripted"])
    endpoint.answers.extend([(status, body), (status, body)])
    dead_letter = Delivery(DirectorySink(str(dead)), name="dead_letter", retry=RetryPolicy(1))
    router = Router([Route(Delivery(sink, retry=RetryPolicy(1), dead_letter=dead_letter))], dead_letter)
    report = router.deliver([("a", events(1))])
    with pytest.raises(SinkError) as raised:
        sink.send(events(1))
    router.close()
    files = [path.read_text() for path in dead.iterdir()]
    assert files or status == 200  # refused, or retried and given up on: either way in the dead letter
    return [str(raised.value), repr(raised.value), str(report), *files]


def _through_handler(endpoint: Endpoint, sink: HttpSink, status: int, body: bytes) -> list[str]:
    """The Lambda handler with no dead letter: the reason goes into its log line and its answer."""
    endpoint.plan.append("scripted")
    endpoint.answers.append((status, body))
    handler = KinesisHandler(Router([Route(Delivery(sink, retry=RetryPolicy(1)))]), Pipeline())
    response = handler(kinesis_event([gz(cwl_document(["hello\n"]))]), _Context())
    sink.close()
    return [str(response)]


class _Context:
    aws_request_id = "r-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@settings(max_examples=150, deadline=None)
@given(
    key=keys(KEY_CHARS + NON_ASCII),
    form_name=st.sampled_from(sorted(FORMS)),
    before=st.integers(0, 700),
    cut=st.booleans(),
)
@example(key="????ß", form_name="upper", before=0, cut=False)  # ß upper-cased is SS: a longer key
def test_quote_redacts_every_form_before_it_collapses_or_cuts(key: str, form_name: str, before: int, cut: bool) -> None:
    form = FORMS[form_name](key)
    text = filler(before, before) + " \n " + form + "  " + filler(50, 1)
    if cut:  # the read stopped somewhere inside the key
        text = text[: before + 3 + len(form) // 2]
    assert leaks(key, form_name, [quote(text, [key], cut=cut)]) == []


def test_a_non_ascii_proxy_password_echoed_by_the_destination_is_never_shown(
    server: tuple[Endpoint, str], captured: Callable[[], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    endpoint, url = server
    password = "Ωж QX€🔑 zq"
    proxy = Proxy(password=password)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(f"shipper:{url_quote(password, safe='')}@"))
        authorization = base64.b64encode(f"shipper:{password}".encode()).decode()
        for form_name in ("raw", "url", "basic"):
            body = f"Proxy-Authorization: Basic {authorization}" if form_name == "basic" else FORMS[form_name](password)
            endpoint.plan.append("scripted")
            endpoint.answers.append((400, f"you sent {body} to us".encode()))
            with pytest.raises(SinkError) as raised:
                HttpSink(url).send(events(1))
            assert leaks(password, "raw" if form_name == "basic" else form_name, [str(raised.value), *captured()]) == []
    finally:
        proxy.close()


def test_shipper_run_never_prints_nor_dead_letters_an_echoed_key(server: tuple[Endpoint, str], tmp_path: Path) -> None:
    """A real `shipper run`: one event per POST, each answered with the key somewhere else."""
    endpoint, url = server
    key = "QX  z.*+?[J](k)|^$\\vw QXZJ"
    answers = [answer(kind, FORMS[form](key), before, before) for kind in ("text", "spaces", "cut", "status-line")
               for form in ("raw", "url", "json", "html", "basic") for before in (0, 150, 295, 301, 600)]  # fmt: skip
    endpoint.plan.extend(["scripted"] * len(answers))
    endpoint.answers.extend(answers)
    (tmp_path / "input.log").write_text("".join(f"line {n}\n" for n in range(len(answers))))
    (tmp_path / "shipper.toml").write_text(
        textwrap.dedent(f"""\
            dead_letter = "dir:{tmp_path / "dead"}"
            [[sinks]]
            spec = "{url}/ingest"
            api_key = "env:SHIPPER_TEST_KEY"
            max_batch_events = 1
            [delivery]
            retry_max_attempts = 1
            batch_max_wait_s = 0
        """)
    )
    environ = {**os.environ, "SHIPPER_TEST_KEY": key, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "run", str(tmp_path / "input.log"), "--log-group", "/aws/lambda/f",
         "--config", str(tmp_path / "shipper.toml")],
        capture_output=True, text=True, timeout=60, env=environ, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == EXIT_UNDELIVERED, done.stderr  # every event dead-lettered: nothing lost, and said
    assert len(endpoint.requests) == len(answers)
    assert all(headers["Authorization"] == f"Bearer {key}" for _, headers, _ in endpoint.requests)
    dead = [path.read_text() for path in (tmp_path / "dead").iterdir()]
    assert sum(text.count('"sink_refused"') for text in dead) == len(answers)
    assert "[secret]" in done.stderr
    for form in ("raw", "url", "json", "html", "basic"):
        assert leaks(key, form, [done.stdout, done.stderr, *dead]) == []


@pytest.mark.parametrize("key", ["Q  X", "Q \t X+Z", "Q+ +X"])
@pytest.mark.parametrize("space", [" ", "+", "%20", "\\n"])
def test_a_hostile_answer_cannot_make_redaction_slow(key: str, space: str) -> None:
    """White space in a key matches any run of it, once: no nested repeats to backtrack through."""
    import time

    text = "Q" + space * (QUOTE_BYTES // len(space)) + "Z"
    started = time.perf_counter()
    quote(text, [key])
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("form_name", sorted(FORMS))
def test_a_413_echoing_the_key_and_escape_sequences_shows_neither_in_the_split_warning(
    server: tuple[Endpoint, str], captured: Callable[[], list[str]], monkeypatch: pytest.MonkeyPatch, form_name: str
) -> None:
    """The warning that a batch was refused as too large quotes the server's answer: redacted, on one line,
    its control characters escaped, and short however long the answer; the halves then go through."""
    endpoint, url = server
    key = "QX  z.*+?[J](k)|^$\\vw QXZJ"
    monkeypatch.setenv("SHIPPER_TEST_KEY", key)
    hostile = f"\x1b]0;owned\x07\x1b[2J\r\n{FORMS[form_name](key)}\u202e" + "9" * QUOTE_BYTES * 4
    endpoint.plan.append("scripted")
    endpoint.answers.append((413, hostile.encode()))
    sink = HttpSink(f"{url}/ingest", api_key="env:SHIPPER_TEST_KEY", read_timeout_s=5)
    router = Router([Route(Delivery(sink, retry=RetryPolicy(1)))])
    batch = events(200, message="m" * 1000)  # 200 KB: more than the smallest batch that is halved

    report = router.deliver([("a", batch)])
    router.close()

    assert str(report.statuses["a"]) == "delivered"
    assert sorted(endpoint.stored) == sorted(event["event_id"] for event in batch)
    terminal, json_lines = captured()
    (warning,) = [line for line in terminal.splitlines() if "refused as too large" in line]
    assert "[secret]" in warning and len(warning) < 1000
    assert leaks(key, form_name, [terminal, json_lines]) == []
    assert [(char, text[:9]) for char in "\x1b\x07\r\u202e" for text in (terminal, json_lines) if char in text] == []
