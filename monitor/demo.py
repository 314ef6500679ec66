"""``wirewatch demo``: the whole pipeline, offline, on bundled sample news.

Serves ``monitor/demo_data`` (four feeds in English, Arabic, Russian and Korean; the
Arabic one carries the real seed article) from a loopback HTTP server, writes a config
pointing at it into a temporary folder, runs one full cycle (fetch, ingest, match,
dispatch) against a fresh SQLite database, and prints each alert instead of sending it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.core.render import Message
from monitor.notify.apprise import UrlResult

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"


class PrintNotifier:
    """A real channel for the demo: the terminal.  Prints the plain-text part."""

    def __init__(self) -> None:
        self.count = 0
        self.printed: set[str] = set()

    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]:
        self.count += 1
        print(f"\n--- alert {self.count}: {message.subject}")
        print(message.text)
        return [UrlResult(index, True, "print") for index, _url in targets]

    def send_one(self, index: int, url: str, message: Message, timeout: float | None = None) -> UrlResult:
        # The dispatcher sends per URL; the terminal shows each message once.
        if message.ref is None or message.ref not in self.printed:
            self.printed.add(message.ref or "")
            self.send([(index, url)], message)
        return UrlResult(index, True, "print")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_demo(keep: bool = False) -> int:
    from monitor.app import make_app
    from monitor.daemon import run_on_reactor, run_once

    workdir = Path(tempfile.mkdtemp(prefix="wirewatch-demo-"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(DEMO_DATA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        template = (DEMO_DATA / "config.toml").read_text(encoding="utf-8")
        config_file = workdir / "config.toml"
        config_file.write_text(template.replace("{base}", base), encoding="utf-8")
        print(f"serving sample news at {base}; database and config in {workdir}")
        notifier = PrintNotifier()
        app = make_app(str(config_file), None, notifier=notifier)

        async def once() -> int:
            report = await run_once(app)
            new = sum(s.new for s in report.polled)
            matched = sum(s.matched for s in report.polled)
            print(
                f"\ndemo: {len(report.polled)} feeds polled, {new} items stored, {matched} matched a rule, "
                f"{notifier.count} alerts rendered (printed above, not sent)"
            )
            return 0

        return run_on_reactor(once)
    finally:
        server.shutdown()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
