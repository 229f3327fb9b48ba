"""Serve one metrics registry over HTTP for Prometheus to scrape.

The node runs on trio; the exporter is prometheus_client's WSGI app (``make_wsgi_app``) on a
thread-per-request WSGI server running on a daemon thread of its own, as prometheus_client's
``start_http_server`` does, so serving a scrape never blocks the event loop and starting or
stopping is a quick synchronous call that is safe from inside a trio task. The server loop is
run here rather than by ``start_http_server`` to poll for shutdown every 50 ms instead of
500 ms, so that stopping a node (many times in a devnet test) is quick. Every path answers with
the text exposition format (``/metrics`` is the conventional one). Port 0 binds a free port;
:attr:`MetricsExporter.port` reports which.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from store.errors import FvmNodeError

SHUTDOWN_POLL_SECONDS: Final = 0.05


class ExporterError(FvmNodeError):
    """The exporter could not start, or was used in the wrong state."""


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds are not worth a log line each."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _server_class(host: str, port: int) -> tuple[type[ThreadingWSGIServer], str]:
    """A server class bound to ``host``'s address family (IPv4 or IPv6) and the bind address."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class FamilyServer(ThreadingWSGIServer):
        address_family = family

    return FamilyServer, str(sockaddr[0])


class MetricsExporter:
    """An HTTP server exposing ``registry`` on ``host``:``port``."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise ExporterError("metrics exporter already started")
        try:
            server_class, bind_address = _server_class(self.host, self.requested_port)
            server = make_server(
                bind_address,
                self.requested_port,
                make_wsgi_app(self.registry),
                server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise ExporterError(
                f"cannot serve metrics on {self.host}:{self.requested_port}: {exc}"
            ) from exc
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=f"metrics-exporter-{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port actually bound (the chosen one when started with port 0)."""
        if self._server is None:
            raise ExporterError("metrics exporter is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Where to scrape: ``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the server thread; idempotent."""
        server, thread = self._server, self._thread
        self._server = None
        self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> MetricsExporter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
