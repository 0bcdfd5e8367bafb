"""What `shipper run` finds under its PATH arguments: regular files only inside directories (FIFOs,
sockets and devices skipped and named), links to directories followed once, a link loop reported,
a FIFO named on the command line read as a stream. Run as a process, so a hang fails by timeout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest

from shipper.cli import EXIT_INCOMPLETE, EXIT_OK
from shipper.inputs import Input, iter_inputs
from shipper.reject import Reject

SHIPPER_RUN = [sys.executable, "-m", "shipper.cli", "run", "--log-group", "/aws/lambda/orders"]


def _ndjson(tag: str, count: int = 3) -> bytes:
    return b"".join(
        orjson.dumps({"timestamp": 1716222585000 + n, "message": f"{tag} {n}"}) + b"\n" for n in range(count)
    )


def _shipper_run(tmp_path: Path, *paths: str) -> tuple[int, Counter[str], str]:
    output = tmp_path / "events.ndjson"
    done = subprocess.run(
        [*SHIPPER_RUN, *paths, "--sink", f"jsonl:{output}"], capture_output=True, timeout=15, cwd=tmp_path, check=False
    )
    messages = Counter(orjson.loads(line)["message"] for line in output.read_bytes().splitlines())
    return done.returncode, messages, done.stderr.decode()


def test_in_a_directory_only_regular_files_are_read_and_links_to_directories_are_followed_once(tmp_path):
    top = tmp_path / "in"
    (top / "sub").mkdir(parents=True)
    (top / "a.ndjson").write_bytes(_ndjson("a"))
    (top / "sub" / "b.ndjson").write_bytes(_ndjson("b"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.ndjson").write_bytes(_ndjson("c"))
    os.symlink(tmp_path / "elsewhere", top / "linked")  # followed
    os.symlink(top, top / "sub" / "loop")  # back up the tree: reported, not followed
    os.symlink(top / "a.ndjson", top / "sub" / "also-a.ndjson")  # a link to a file is read like the file
    os.symlink(top / "nowhere", top / "dangling")
    os.mkfifo(top / "pipe")  # nobody writes to it: opening it would wait for ever
    os.mkfifo(top / "evil\x1b[2J\u202e.log")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(top / "sock"))
    try:
        status, messages, stderr = _shipper_run(tmp_path, str(top))
    finally:
        listener.close()
    expected = {f"{tag} {n}": 1 for tag in "abc" for n in range(3)}
    assert messages == Counter({**expected, **{f"a {n}": 2 for n in range(3)}})
    assert status == EXIT_INCOMPLETE  # the skipped entries are problems, named
    assert f"{top / 'pipe'}: a FIFO, not a regular file; skipped" in stderr
    assert f"{top / 'sock'}: a socket, not a regular file; skipped" in stderr
    assert "a link to a directory already read (a loop?)" in stderr and str(top / "sub" / "loop") in stderr
    assert f"{top / 'dangling'}: No such file or directory" in stderr
    assert "evil\\x1b[2J\\u202e.log: a FIFO" in stderr and "\x1b" not in stderr and "\u202e" not in stderr


def test_a_fifo_named_on_the_command_line_is_read_as_a_stream(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(_ndjson("piped", 50))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    status, messages, stderr = _shipper_run(tmp_path, str(fifo))
    writer.join(timeout=5)
    assert status == EXIT_OK, stderr
    assert messages == Counter({f"piped {n}": 1 for n in range(50)})


def test_a_file_removed_between_listing_and_reading_is_a_reject_not_a_crash(tmp_path):
    top = tmp_path / "in"
    top.mkdir()
    for name in ("a", "b", "c"):
        (top / f"{name}.ndjson").write_bytes(_ndjson(name))
    found = []
    for item in iter_inputs([str(top)]):
        found.append(item)
        if len(found) == 1:
            (top / "b.ndjson").unlink()  # after the directory was listed
    assert [type(item) for item in found] == [Input, Reject, Input]
    assert found[1].reason == f"{top / 'b.ndjson'}: No such file or directory"


@pytest.mark.parametrize("count", [5_000])
def test_a_directory_of_many_files_is_listed_lazily_and_in_order(tmp_path, count):
    top = tmp_path / "many"
    top.mkdir()
    for number in range(count):
        (top / f"{number:06d}.log").touch()
    names = iter_inputs([str(top)])
    first = next(names)
    assert isinstance(first, Input) and first.name.endswith("000000.log")
    assert sum(1 for _ in names) == count - 1


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_without_blocking(tmp_path):
    top = tmp_path / "in"
    top.mkdir()
    (top / "a.ndjson").write_bytes(_ndjson("a"))
    (found,) = iter_inputs([str(top)])
    (top / "a.ndjson").unlink()
    os.mkfifo(top / "a.ndjson")
    with pytest.raises(OSError, match="a FIFO now, no longer a regular file"):
        found.open()


def test_a_run_does_not_read_back_what_it_writes_inside_an_input_directory(tmp_path):
    """Outputs inside the directory being read (a sink's file or directory, the dead letter, a report)
    are skipped: read back, a jsonl output would grow while it is read, without end."""
    top = tmp_path / "in"
    (top / "a-logs").mkdir(parents=True)
    (top / "a-logs" / "a.ndjson").write_bytes(_ndjson("a"))
    # outputs sorted after the input, so the walk reaches them after they were written; an old copy of
    # the jsonl output is there already, as on a second run
    (top / "z-out").mkdir()
    (top / "z-out" / "events.ndjson").write_bytes(_ndjson("old"))
    outputs = {
        "--sink": f"jsonl:{top / 'z-out' / 'events.ndjson'}",
        "--dead-letter": f"dir:{top / 'z-dead'}",
        "--report": str(top / "z-report.json"),
    }
    command = [*SHIPPER_RUN, str(top), "--sink", "dir:" + str(top / "z-dir")]
    for flag, value in outputs.items():
        command += [flag, value]
    done = subprocess.run(command, capture_output=True, timeout=30, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = (top / "z-out" / "events.ndjson").read_bytes().splitlines()
    messages = Counter(orjson.loads(line)["message"] for line in lines)
    assert messages == Counter({**{f"old {n}": 1 for n in range(3)}, **{f"a {n}": 1 for n in range(3)}})
    report = orjson.loads((top / "z-report.json").read_bytes())
    assert report["run"]["log_events"] == 3
