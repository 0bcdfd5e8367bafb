"""An HTTP server for Prometheus: /metrics from a registry, /healthz from a health check, in a daemon thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from shipper.stopping import stop_on_signals

__all__ = ["MetricsServer", "start_metrics_server", "stop_on_signals"]

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

        self._server = make_server(address, port, app, _server_class(address, port), handler_class=_QuietHandler)
        self.address = address
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="shipper-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.address, self.address)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _server_class(address: str, port: int) -> type[ThreadingWSGIServer]:
    """The server class for `address`'s family: an IPv6 address (`::`, `::1`) needs an IPv6 socket."""
    family = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    if family == ThreadingWSGIServer.address_family:
        return ThreadingWSGIServer
    return type("ThreadingWSGIServerV6", (ThreadingWSGIServer,), {"address_family": family})


def start_metrics_server(
    registry: CollectorRegistry, port: int, address: str = "0.0.0.0", health: Health | None = None
) -> MetricsServer:
    """Serve /metrics and /healthz on `address`:`port` (0 picks a free port: see `.port`) until `.close()`."""
    return MetricsServer(registry, port, address, health)
