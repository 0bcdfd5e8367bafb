"""Text from logs never reaches the terminal raw: `shipper run` on input full of escape sequences and rich markup."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.cli import main
from shipper.progress import Progress
from shipper.terminal import _UNSAFE_UTF8, _json_escape, printable_json

from run_helpers import write

# An OSC window title, a screen clear, a bell, rich markup, an emoji code, a bidi override, C1 CSI and DEL.
HOSTILE = "[bold red]x[/]\x1b]0;pwned\x07\x1b[2J:smile:\u202e\u009b\x7f"
SHOWN = r"[bold red]x[/]\x1b]0;pwned\x07\x1b[2J:smile:\u202e\x9b\x7f"
"""How HOSTILE reads on the terminal: every control written as a visible escape, the markup as typed."""

# Any control byte but newline, DEL, the UTF-8 forms of C1 controls and of the bidi controls.
_RAW_CONTROL = re.compile(
    rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]"
)
REQUEST = "8f5b2c1e-4d3a-4b6f-9e21-0c7d5a3b9f10"


def _events() -> bytes:
    """NDJSON log events of one invocation that fails with a hostile errorType and writes a hostile EMF metric."""
    emf = {
        "_aws": {
            "Timestamp": 1716222585009,
            "CloudWatchMetrics": [{"Namespace": HOSTILE, "Dimensions": [["tag"]], "Metrics": [{"Name": HOSTILE}]}],
        },
        "tag": HOSTILE,
        HOSTILE: 1,
    }
    error = {"errorType": HOSTILE, "errorMessage": HOSTILE}
    messages = [
        f"START RequestId: {REQUEST} Version: $LATEST\n",
        f"2024-05-20T16:29:45.010Z\t{REQUEST}\tINFO\t{orjson.dumps(emf).decode()}\n",
        f"2024-05-20T16:29:45.011Z\t{REQUEST}\tERROR\tInvoke Error \t{orjson.dumps(error).decode()}\n",
        f"END RequestId: {REQUEST}\n",
        f"REPORT RequestId: {REQUEST}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t\n",
    ]
    lines = [
        {"timestamp": 1716222585009 + i, "message": m, "logStreamName": "2024/05/20/[$LATEST]abc"}
        for i, m in enumerate(messages)
    ]
    return b"".join(orjson.dumps(line) + b"\n" for line in lines) + HOSTILE.encode() + b"\n"


def _assert_safe(output: bytes) -> None:
    assert _RAW_CONTROL.findall(output) == []
    assert HOSTILE.encode() not in output


@pytest.mark.parametrize("function_from", ["--log-group", "path"])
def test_run_prints_names_from_logs_literally_and_without_control_characters(tmp_path, capfdbinary, function_from):
    if function_from == "--log-group":
        function, shown = HOSTILE, SHOWN
        source = write(tmp_path / "in" / "events.ndjson", _events())
        options = ["--log-group", f"/aws/lambda/{function}"]
    else:  # a file name cannot hold the "/" of "[/]"
        function, shown = HOSTILE.replace("[/]", ""), SHOWN.replace("[/]", "")
        source = write(tmp_path / "in" / "aws" / "lambda" / f"{function}.ndjson", _events())
        options = []
    write(tmp_path / "in" / f"{function}.bin", b"\x00\x01\x02 not a log format")

    status = main(["run", str(tmp_path / "in"), "--format", "ndjson", *options, "--sink", "stdout"])

    out, err = capfdbinary.readouterr()
    assert status == 1  # the lines that are not JSON are rejected
    _assert_safe(out)
    _assert_safe(err)
    events = [orjson.loads(line) for line in out.splitlines()]
    assert {e["function"] for e in events} == {function}  # the data itself is kept as it came
    assert {e["error_type"] for e in events if e["type"] == "error"} == {HOSTILE}
    assert {e["name"] for e in events if e["type"] == "metric"} == {HOSTILE}
    text = err.decode()
    assert f"1 {SHOWN}" in text  # the error type, in the failures table
    assert text.count(f"│ {shown} ") >= 2  # the function, in the invocations and cost tables
    rejected = [line for line in text.splitlines() if line.startswith("shipper: rejected")]
    assert len(rejected) == 2  # the line that is not JSON, in each file
    assert any(f"{source.name.replace(function, shown)} line 6 is not JSON" in line for line in rejected)
    assert any(f"in/{shown}.bin line 1 is not JSON" in line for line in rejected)  # a reject naming its input


def test_the_progress_bar_shows_an_input_name_literally(capfdbinary, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws the bar as on a terminal, with its own colour escapes
    name = "[b]x[/]\x1b]0;t\x07\x9b"  # short enough to be shown whole
    with Progress(1000, enabled=True) as progress:
        progress.update(10, 1, name)
        progress.note(f"shipper: rejected: {name}")
    err = capfdbinary.readouterr().err
    assert b"\x1b]" not in err and b"\x07" not in err and b"\xc2\x9b" not in err
    assert err.count(rb"[b]x[/]\x1b]0;t\x07\x9b") == 2  # the note, and the bar's description


def test_printable_json_keeps_the_values_and_escapes_what_json_leaves_raw():
    data = orjson.dumps({"message": HOSTILE, "name": "café €"})
    safe = printable_json(data)
    assert orjson.loads(safe) == orjson.loads(data)
    _assert_safe(safe)
    assert "café €".encode() in safe


@settings(max_examples=500)
@given(
    st.lists(
        st.sampled_from(
            [
                b"a",
                b"\n",
                b"\x7f",
                b"\xc2\x9b",
                b"\xc2\xa0",
                b"\xd8\x9c",
                b"\xe2\x80\xae",
                b"\xe2\x81\xa6",
                b"\xe2\x82\xac",
            ]
        )
        | st.binary(max_size=4)
    ).map(b"".join)
)
def test_printable_json_escapes_exactly_what_a_scan_of_the_whole_batch_escapes(data):
    """The line-by-line shortcut must give the same bytes as one substitution over the whole batch."""
    assert printable_json(data) == _UNSAFE_UTF8.sub(_json_escape, data)


class _HostileServer(http.server.BaseHTTPRequestHandler):
    """Refuses every batch with a body a terminal would obey."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = f"bad request {HOSTILE}".encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


def test_a_server_answer_quoted_in_a_delivery_warning_is_escaped(tmp_path):
    """Warnings go through the logging module; a sink's error quotes what the server said."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = write(tmp_path / "in" / "events.ndjson", _events())
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "shipper.cli", "run", str(source), "--format", "ndjson", "--quiet",
             "--log-group", "/aws/lambda/orders", "--sink", f"http://127.0.0.1:{server.server_port}/ingest"],
            capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()},
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    warnings = [line for line in completed.stderr.splitlines() if b"not delivered and no dead letter" in line]
    assert len(warnings) == 1, completed.stderr.decode(errors="replace")
    assert warnings[0].startswith(b"shipper: sink http: ")
    _assert_safe(completed.stderr)
    assert SHOWN.encode() in warnings[0]
