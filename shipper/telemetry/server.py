"""An HTTP server for Prometheus: /metrics from a registry, /healthz from a health check, in a daemon thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

Health = Callable[[], str | None]
"""None when healthy, else a sentence saying what is wrong (served with status 503)."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line."""


class MetricsServer:
    """Serves GET /metrics (the registry, in the format the scraper asks for) and GET /healthz."""

    def __init__(
        self, registry: CollectorRegistry, port: int = 0, address: str = "0.0.0.0", health: Health | None = None
    ) -> None:
        metrics = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics(environ, start_response)
            if path == "/healthz":
                problem = health() if health is not None else None
                status = "200 OK" if problem is None else "503 Service Unavailable"
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                return [f"{problem or 'ok'}\n".encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the shipper serves /metrics and /healthz\n"]

        self._server = make_server(address, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self.address = address
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="shipper-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    registry: CollectorRegistry, port: int, address: str = "0.0.0.0", health: Health | None = None
) -> MetricsServer:
    """Serve /metrics and /healthz on `address`:`port` (0 picks a free port: see `.port`) until `.close()`."""
    return MetricsServer(registry, port, address, health)


def stop_on_signals(stop: threading.Event, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Set `stop` when one of `signals` arrives (call from the main thread)."""
    for signum in signals:
        signal.signal(signum, lambda *_: stop.set())
