"""`shipper run --metrics-port PORT --serve`: the run's metrics are scraped over HTTP, then SIGTERM ends it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipper.cli import main

from generate import build_corpus
from promstack import free_port, http_get

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"


def _samples(url: str) -> dict[str, float]:
    """Each metric's samples summed over their labels; empty while the server is not up yet."""
    status, body = http_get(url)
    sums: dict[str, float] = {}
    if status != 200:
        return sums
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def test_run_serves_the_sample_metrics_until_sigterm():
    truth = build_corpus(3000, seed=1).sample_truth
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipper.cli",
            "run",
            "examples/sample",
            "--sink",
            "null",
            "--quiet",
            "--metrics-port",
            str(port),
            "--metrics-address",
            "127.0.0.1",
            "--serve",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            sums = _samples(f"http://127.0.0.1:{port}/metrics")
            if sums.get("shipper_log_events_received_total") == truth["log_events"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sums["shipper_log_events_received_total"] == truth["log_events"]
        assert sums["shipper_lambda_cold_starts_total"] == truth["cold_starts"]
        assert sums["shipper_lambda_timeouts_total"] == truth["timeouts"]
        assert sums["shipper_lambda_invocations_total"] == truth["invocations"]
        assert process.poll() is None  # --serve: still up after the inputs are done
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "still serving metrics until interrupted" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_metrics_port_in_use_is_a_configuration_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as stopped:
            main(["run", str(SAMPLE), "--sink", "null", "--metrics-port", port, "--metrics-address", "127.0.0.1"])
    assert stopped.value.code == 2
    assert f"--metrics-port: cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
