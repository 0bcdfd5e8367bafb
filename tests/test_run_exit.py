"""`shipper run` as a process: exit statuses, settings checked at start, Ctrl-C, a terminal on stdout."""

from __future__ import annotations

import http.server
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from shipper.runner import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNDELIVERED, EXIT_USAGE

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "examples" / "sample")
LINE = "2024-05-20T16:29:45.009000+00:00 2024/05/20/[$LATEST]abc [INFO]\t2024-05-20T16:29:45.009Z\tr1\tline {}\n"


def shipper(*arguments: str, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "shipper.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=60,
        check=False,
        **options,
    )


class _Refuse(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(400)
        self.end_headers()
        self.wfile.write(b'{"error":"mapping conflict"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    """A loopback HTTP endpoint that answers 400 to every POST."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("dead_letter", [False, True])
def test_an_endpoint_refusing_everything_is_a_delivery_failure(tmp_path, refusing_endpoint, dead_letter):
    extra = ["--dead-letter", f"dir:{tmp_path / 'dead'}"] if dead_letter else []
    done = shipper("run", SAMPLE, "--sink", refusing_endpoint, "--quiet", *extra)
    assert done.returncode == EXIT_UNDELIVERED, done.stderr
    taken = "2,418 events refused and kept in the dead letter" if dead_letter else "2,418 events not delivered"
    assert f"sink http: {taken}" in done.stderr
    assert "running again on these inputs sends 2,418 events again (none of them was delivered)" in done.stderr
    assert "run again to retry" not in done.stderr


def test_an_endpoint_that_takes_less_than_a_batch_gets_the_run_in_parts_and_the_run_succeeds():
    """A 413 past 200 KB: `shipper run` sends each refused batch again in halves; every event arrives once,
    the run succeeds, and a warning says which batch size it keeps to from then on."""
    from test_http_sink import serve

    with contextmanager(serve)() as (endpoint, url):
        endpoint.max_body = 200 * 1024
        done = shipper("run", SAMPLE, "--sink", f"{url}/ingest", "--quiet")
    assert done.returncode == EXIT_OK, done.stderr
    assert "was refused as too large (HTTP 413" in done.stderr
    assert sum(endpoint.stored.values()) == 2418
    assert any(len(body) > endpoint.max_body for _, _, body in endpoint.requests)


def test_rejects_alone_are_input_problems_and_do_not_ask_for_a_re_run(tmp_path):
    (tmp_path / "bad.json").write_text('{"Records": [{"kinesis": {"data": "!!"}}]}')
    done = shipper("run", SAMPLE, str(tmp_path / "bad.json"), "--sink", "null", "--quiet")
    assert done.returncode == EXIT_INCOMPLETE, done.stderr
    assert "rejected" in done.stderr and "running again" not in done.stderr and "not delivered" not in done.stderr


def test_a_clean_run_exits_zero():
    assert shipper("run", SAMPLE, "--sink", "null", "--quiet").returncode == EXIT_OK


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (["--sink", "https://127.0.0.1:9/x api_key=env:SHIPPER_TEST_UNSET"], {}, "SHIPPER_TEST_UNSET is not set"),
        (["--report", "/nonexistent/dir/report.json"], {}, "directory /nonexistent/dir does not exist"),
        (["--since", "yesterday"], {}, "--since 'yesterday' is neither"),
        (["--sink", "bogus"], {}, "unknown sink"),
    ],
)
def test_settings_are_checked_before_anything_is_read(tmp_path, arguments, env, message):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # reading it would block until the timeout: the check must come first
    done = shipper("run", str(fifo), *arguments, env=env)
    assert done.returncode == EXIT_USAGE
    assert message in done.stderr
    assert done.stderr.startswith("usage: shipper run"), done.stderr[:200]  # the command's usage, not the top level
    assert "Traceback" not in done.stderr


def test_ctrl_c_flushes_sums_up_reports_and_exits_130(tmp_path):
    fifo, output, report = tmp_path / "in.log", tmp_path / "events.ndjson", tmp_path / "report.json"
    os.mkfifo(fifo)
    arguments = ["run", str(fifo), "--format", "tail", "--log-group", "/aws/lambda/orders-api"]
    arguments += ["--sink", f"jsonl:{output}", "--report", str(report), "--batch-max-wait-s", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "shipper.cli", *arguments],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    with open(fifo, "w") as writer:  # a FIFO kept open: the reader waits for more
        writer.write("".join(LINE.format(n) for n in range(2500)))  # more than one batch of 2,000
        writer.flush()
        deadline = time.monotonic() + 20
        while not (output.exists() and output.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "interrupted" in err
    assert "shipper: 1 file," in err and "Invocations" not in err  # the summary; no invocations in these lines
    delivered = len(output.read_bytes().splitlines())
    data = orjson.loads(report.read_bytes())
    assert data["run"]["interrupted"] is True
    assert delivered == sum(data["run"]["events"].values()) >= 2000  # what was read was flushed, all of it


def _on_a_terminal(*arguments: str) -> tuple[int, bytes, str]:
    """Run shipper with its standard output on a pseudo-terminal: (status, what the terminal got, stderr)."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "shipper.cli", *arguments],
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        try:
            chunk = os.read(main, 65536) if ready else b""
        except OSError:  # the terminal closed: the process is done
            chunk = b""
        if not chunk:
            break
        shown += chunk
    err = process.stderr.read().decode()
    os.close(main)
    return process.wait(timeout=30), shown, err


def test_a_terminal_gets_no_ndjson_unless_asked_and_a_pipe_gets_all_of_it():
    status, shown, err = _on_a_terminal("run", SAMPLE, "--quiet")
    assert status == EXIT_OK
    assert b'"type"' not in shown
    assert "pass --sink stdout" in err
    status, shown, _ = _on_a_terminal("run", SAMPLE, "--quiet", "--sink", "stdout")
    assert status == EXIT_OK and shown.count(b'{"type"') == 2418
    piped = shipper("run", SAMPLE, "--quiet")
    assert piped.returncode == EXIT_OK and len(piped.stdout.splitlines()) == 2418


def test_consume_without_a_region_says_what_to_set():
    env = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    environment = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    done = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "consume", "--stream", "logs", "--sink", "null"],
        capture_output=True,
        text=True,
        env={**environment, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert "no AWS region for kinesis: set --region or AWS_REGION" in done.stderr
    assert "Traceback" not in done.stderr


def test_filters_choose_what_is_shipped_and_reported(tmp_path):
    output, report = tmp_path / "events.ndjson", tmp_path / "report.json"
    window = ["--since", "2024-05-20T16:02:00Z", "--until", "2024-05-20T16:06:00"]
    done = shipper(
        "run", SAMPLE, "--function", "orders-*", "--function", "notify-sender", *window,
        "--sink", f"jsonl:{output}", "--report", str(report), "--quiet",
    )  # fmt: skip
    assert done.returncode == EXIT_OK, done.stderr
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert events and {event["function"] for event in events} == {"orders-api", "notify-sender"}
    since, until = 1_716_220_920_000, 1_716_221_160_000
    assert all(since <= event["timestamp"] < until for event in events)
    data = orjson.loads(report.read_bytes())
    assert {row["function"] for row in data["functions"]} == {"orders-api", "notify-sender"}
    assert data["run"]["events_filtered_out"] == 2418 - len(events)
    assert data["run"]["events"] == Counter(event["type"] for event in events)  # what was shipped, not read
