"""The health endpoint: `/healthz` (alive and polling), `/readyz` (the store answers) and
`/metrics` (Prometheus).

A tiny stdlib server on its own thread; it only reads the daemon's state, never the store,
so a hung store cannot hang a health probe.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST

from service import metrics


class HealthSource(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


class HealthServer:
    def __init__(self, source: HealthSource, host: str, port: int) -> None:
        handler = _handler_for(source)
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


def _handler_for(source: HealthSource) -> type[BaseHTTPRequestHandler]:
    routes = {"/healthz": source.health, "/readyz": source.readiness}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply_raw(200, metrics.render(), CONTENT_TYPE_LATEST)
                return
            check = routes.get(path)
            if check is None:
                self._reply(404, {"error": "not found", "paths": [*sorted(routes), "/metrics"]})
                return
            ok, details = check()
            self._reply(200 if ok else 503, {"ok": ok, **details})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            self._reply_raw(status, json.dumps(body).encode(), "application/json")

        def _reply_raw(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not events worth a log line."""

    return Handler
