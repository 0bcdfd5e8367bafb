"""The real Prometheus tools for tests, from Debian's `prometheus`, `prometheus-pushgateway` and
`victoria-metrics` packages.

Every server listens on 127.0.0.1 on a free port, with its files under the test's tmp_path, and is
stopped when its `with` block ends. A missing binary fails the test under CI (CI=true: .ci/run
installs the packages) and skips it, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

T = TypeVar("T")
INSTALL_HINT = "apt-get install -y prometheus prometheus-pushgateway victoria-metrics"


def binary(name: str, install_hint: str = INSTALL_HINT) -> str:
    """The path of a Debian tool the tests run; fails under CI and skips elsewhere when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({install_hint})"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], T], what: str, timeout: float = 20.0, interval: float = 0.1) -> T:
    """Call `check` until it returns something true (returned), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; connection errors are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@contextmanager
def running(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess with stdout and stderr in `log`; terminated (then killed) when the block ends."""
    with open(log, "wb") as output:
        process = subprocess.Popen(list(args), stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def prometheus(
    tmp_path: Path, targets: Sequence[str] = (), scrape_interval: str = "1s", *, remote_write_receiver: bool = False
) -> Iterator[str]:
    """A Prometheus server scraping `targets` (host:port) every `scrape_interval`, and taking remote writes
    at /api/v1/write when `remote_write_receiver`; yields its base URL."""
    executable = binary("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n  - job_name: shipper\n    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        executable,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--log.level=warn",
        *(["--web.enable-remote-write-receiver"] if remote_write_receiver else []),
    ]
    with running(args, tmp_path / "prometheus.log") as process:
        wait_for(lambda: process.poll() is not None or http_get(f"{url}/-/ready")[0] == 200, "Prometheus to start")
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
        yield url


@contextmanager
def victoria_metrics(tmp_path: Path) -> Iterator[str]:
    """A single-node VictoriaMetrics on a free port (remote write at /api/v1/write, the Datadog series API at
    /datadog/api/v1/series, PromQL at /api/v1/query); yields its base URL. Call `vm_flush` before querying."""
    executable = binary("victoria-metrics")
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        executable,
        f"-storageDataPath={tmp_path / 'vm-data'}",
        f"-httpListenAddr={url.removeprefix('http://')}",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=ERROR",
    ]
    with running(args, tmp_path / "victoria-metrics.log") as process:
        wait_for(lambda: process.poll() is not None or http_get(f"{url}/health")[0] == 200, "VictoriaMetrics to start")
        assert process.poll() is None, (tmp_path / "victoria-metrics.log").read_text()
        yield url


def vm_flush(url: str) -> None:
    """Make what VictoriaMetrics took so far visible to queries."""
    assert http_get(f"{url}/internal/force_flush")[0] == 200


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant PromQL query against Prometheus's (or VictoriaMetrics') HTTP API."""
    status, body = http_get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert status == 200, body
    answer = orjson.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def value(url: str, promql: str) -> float | None:
    """The value of a query that yields one sample, else None."""
    result = query(url, promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@contextmanager
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A Pushgateway on a free port; yields its base URL."""
    executable = binary("prometheus-pushgateway")
    url = f"http://127.0.0.1:{free_port()}"
    args = [executable, f"--web.listen-address={url.removeprefix('http://')}", "--log.level=warn"]
    with running(args, tmp_path / "pushgateway.log") as process:
        wait_for(lambda: process.poll() is not None or http_get(f"{url}/-/ready")[0] == 200, "Pushgateway to start")
        assert process.poll() is None, (tmp_path / "pushgateway.log").read_text()
        yield url


def promtool_check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition (exit status 0 and no output when it has nothing to say)."""
    return subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
