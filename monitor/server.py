"""The daemon's HTTP endpoints: ``/healthz`` and ``/metrics`` (Prometheus text format).

Responsible for answering probes from a thread of its own, so a slow scrape never stalls
the event loop.  ``/healthz`` is 200 when the database answers, the scheduler ticked
recently and (once anything has been polled) a poll succeeded recently; otherwise 503
with the failing checks named.  Nothing here changes state.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HealthCheck = Callable[[], dict[str, Any]]


class StatusServer:
    def __init__(self, listen: str, health: HealthCheck, metrics: Callable[[], bytes]) -> None:
        host, _, port = listen.rpartition(":")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    report = outer.health()
                    body = json.dumps(report, default=str).encode()
                    self._reply(200 if report.get("ok") else 503, "application/json", body)
                elif path == "/metrics":
                    self._reply(200, "text/plain; version=0.0.4; charset=utf-8", outer.metrics())
                else:
                    self._reply(404, "text/plain", b"not found\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.health = health
        self.metrics = metrics
        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="status-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
