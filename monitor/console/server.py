"""WebServer: the daemon's HTTP port (probes and console) served by uvicorn in a thread of its own.

Responsible for binding ``[server] listen`` at start (so a taken port fails the start, as
before), running uvicorn with its own asyncio loop in a daemon thread, and stopping it.
The daemon's event loop never runs a request: a slow page or scrape cannot stall
polling, and the console's queries run in that loop's worker threads.  uvicorn runs
with h11 and the plain asyncio loop (no uvloop or httptools), no lifespan, no access
log (the console logs its actions itself), and installs no signal handlers outside the
main thread, so SIGTERM stays the daemon's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


class WebServer:
    def __init__(self, listen: str, app: ASGIApp) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, int(port)))
        self.sock.listen(128)
        self.sock.set_inheritable(False)
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="web-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _run(self) -> None:
        # A loop of this thread's own; uvicorn leaves signals alone off the main thread.
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
