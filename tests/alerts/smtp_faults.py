"""Mail servers that misbehave on purpose, on loopback: slow, silent, or dropping after DATA.

- :class:`SlowSmtp`: aiosmtpd that stores each message at DATA, then answers only after
  ``delay`` seconds (the server has the mail; the client has given up);
- :class:`SilentSmtp`: a TCP listener that accepts connections and never says a word
  (no greeting: the client blocks before sending anything);
- :class:`DroppingSmtp`: aiosmtpd that stores the message at DATA and then drops the
  connection without answering, ``drops`` times, and behaves normally afterwards.

Each records what it received, so a test can count copies and compare Message-IDs.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.servers import free_port


def _parse(content: bytes) -> EmailMessage:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


class _Recording:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()
        self.controller: Controller | None = None

    def url(self, to: str = "analysts@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=wirewatch@example.org&to={to}"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class SlowSmtp(_Recording):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.closing = False
        self.waiting = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(_parse(envelope.content))
        self.waiting += 1
        try:
            # Small steps, so stopping ends every session cleanly (no transport left open).
            for _ in range(int(self.delay * 10)):
                if self.closing:
                    break
                await asyncio.sleep(0.1)
        finally:
            self.waiting -= 1
        return "250 OK"

    def stop(self) -> None:
        self.closing = True
        for _ in range(50):
            if not self.waiting:
                break
            time.sleep(0.1)
        time.sleep(0.2)  # the sessions read the client's close and end
        super().stop()


class DroppingSmtp(_Recording):
    def __init__(self, drops: int) -> None:
        super().__init__()
        self.drops = drops

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(_parse(envelope.content))
        if self.drops > 0:
            self.drops -= 1
            server.transport.abort()  # gone after DATA: the reply never comes
        return "250 OK"


class SilentSmtp:
    """Accepts, then silence: every connection is held open until :meth:`stop`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            self.accepted.set()

    def url(self, to: str = "analysts@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=wirewatch@example.org&to={to}"

    def stop(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()
