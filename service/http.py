"""The daemon's HTTP server: `/healthz` (alive and polling), `/readyz` (the store answers),
`/metrics` (Prometheus), and the status page `/` with its JSON twin `/api/status`.

A tiny stdlib server on its own threads; it only reads the daemon's state and (through the
status board, `service/observe/`) the ledger on a read-only connection of its own, never the
store, so a hung store cannot hang a probe and a page being read cannot slow the tick.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST

from service import metrics
from service.errors import describe_error
from service.logs import get_logger

# The page needs nothing from anywhere: no script, no fetch, no frame; inline styles only.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


class HealthSource(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


class StatusSource(Protocol):
    def status(self) -> dict[str, Any]: ...

    def page(self) -> str: ...

    def metrics(self) -> bytes: ...


class HealthServer:
    def __init__(
        self, source: HealthSource, host: str, port: int, board: StatusSource | None = None
    ) -> None:
        handler = _handler_for(source, board)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="autopilot-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(source: HealthSource, board: StatusSource | None) -> type[BaseHTTPRequestHandler]:
    probes = {"/healthz": source.health, "/readyz": source.readiness}
    paths = [*sorted(probes), "/metrics", *(["/", "/api/status"] if board else [])]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                extra = board.metrics() if board is not None else b""
                self._reply_raw(200, metrics.render() + extra, CONTENT_TYPE_LATEST)
                return
            if board is not None and path in ("/", "/api/status"):
                self._status(board, html=path == "/")
                return
            check = probes.get(path)
            if check is None:
                self._reply(404, {"error": "not found", "paths": paths})
                return
            ok, details = check()
            self._reply(200 if ok else 503, {"ok": ok, **details})

        def _status(self, board: StatusSource, html: bool) -> None:
            try:
                if html:
                    page = board.page().encode()
                    self._reply_raw(200, page, "text/html; charset=utf-8", page=True)
                else:
                    self._reply(200, board.status())
            except Exception as error:  # a page must never take the server down
                get_logger().warning(
                    "http.status_failed", path=self.path, error=describe_error(error)
                )
                self._reply(500, {"error": "the status could not be built; see the daemon's log"})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            self._reply_raw(status, json.dumps(body).encode(), "application/json")

        def _reply_raw(
            self, status: int, payload: bytes, content_type: str, page: bool = False
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if page:
                self.send_header("Content-Security-Policy", PAGE_POLICY)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not events worth a log line."""

    return Handler
