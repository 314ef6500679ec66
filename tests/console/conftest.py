"""The console under test: a real daemon (``wirewatch run``) on real SQLite, fed by a
loopback feed server in English, Arabic and Korean with one hostile title, and a real
headless Chromium (Debian's, driven by Playwright) for the browser tests."""

from __future__ import annotations

import html
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.daemons import Daemon
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver, free_port

TOKEN = "console-test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots of every page: the test artefacts (WIREWATCH_ARTEFACTS, else ./artefacts).
ARTEFACTS = Path(os.environ.get("WIREWATCH_ARTEFACTS") or ROOT / "artefacts") / "console"

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">Kursk troops "alert"'
# Ingest drops real tags from a title; an escaped one (entities in the feed's HTML title)
# is the feed's text, stored as it is: the console must show it, not run it.

EN_ITEMS = [
    (
        "en-1",
        "Kim Jong Un and Putin discuss troops for Kursk",
        "North Korean troops were sent to Kursk, officials said.",
    ),
    ("en-2", html.escape(HOSTILE), "A title written to attack the console; the troops story itself is dull."),
    ("en-3", "Weather in Seoul", "Rain is expected on Monday."),
]
AR_ITEMS = [
    (
        "ar-1",
        "بوتين وكيم جونغ أون يبحثان إرسال قوات إلى كورسك",
        "قال مسؤولون إن جنودا من كوريا الشمالية وصلوا إلى كورسك.",
    ),
]
KO_ITEMS = [
    ("ko-1", "김정은 푸틴과 쿠르스크 파병 논의", "북한 병력이 쿠르스크에 파병됐다고 당국자들이 밝혔다."),
]

CONFIG = """
[storage]
url = "sqlite:///{db}"

[server]
listen = "127.0.0.1:{port}"

[console]
token = "{token}"

[fetch]
host_delay = "0s"
timeout = "5s"
full_text = false

[alerts]
first_poll = "alert"
max_attempts = 1           # the pager's refused sends become dead letters at once

[[sources]]
name = "en-wire"
url = "{base}/en.xml"
interval = "1h"
language = "en"

[[sources]]
name = "ar-wire"
url = "{base}/ar.xml"
interval = "1h"
language = "ar"

[[sources]]
name = "down-wire"
url = "http://127.0.0.1:{closed}/down.xml"
interval = "1h"

[[sources]]
name = "ko-wire"
url = "{base}/ko.xml"
interval = "1h"
language = "ko"

[terms]
kim_jong_un = ["Kim Jong Un", "كيم جونغ أون", "김정은"]
putin = ["Putin", "بوتين", "푸틴"]
kursk = ["Kursk", "كورسك", "쿠르스크"]
troops = ["troops", "قوات", "جنود", "파병", "병력"]

[clauses]
leaders = '''
    kim_jong_un
    AND putin
'''

[[rules]]
name = "nk-russia-troops"
query = 'leaders AND (kursk OR troops)'
notify = ["chat"]

[[rules]]
name = "kursk"
query = 'kursk'
notify = ["chat", "pager"]

[[subscribers]]
name = "chat"
urls = ["{hook}"]

[[subscribers]]
name = "pager"
urls = ["json://127.0.0.1:{closed}/hook"]
"""


@dataclass
class Site:
    url: str
    port: int
    feeds: FeedServer
    webhook: WebhookReceiver
    daemon: Daemon
    db: Path
    config: Path

    def get(self, path: str, token: str | None = TOKEN, **headers: str) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.url + path, headers=headers)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with _opener().open(request, timeout=15) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def post(self, path: str, data: str = "", token: str | None = TOKEN, **headers: str) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=data.encode(), method="POST", headers=headers)
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with _opener().open(request, timeout=15) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console")
    feeds = FeedServer()
    webhook = WebhookReceiver()
    base = feeds.serve("/en.xml", rss(EN_ITEMS)).rsplit("/", 1)[0]
    feeds.serve("/ar.xml", rss(AR_ITEMS))
    feeds.serve("/ko.xml", rss(KO_ITEMS))
    port = free_port()
    db = tmp / "wirewatch.db"
    config = tmp / "config.toml"
    closed = free_port()  # nothing listens there: the down source, and the pager that never answers
    text = CONFIG.format(db=db, port=port, token=TOKEN, base=base, hook=webhook.url(), closed=closed)
    config.write_text(text, encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "db", "upgrade"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    daemon = Daemon(config, f"sqlite:///{db}", tmp / "daemon.log")
    s = Site(f"http://127.0.0.1:{port}", port, feeds, webhook, daemon, db, config)
    try:
        # Every wire's items stored, not just some stories: the Korean wire's batch waits for
        # the CPU workers (they hold the Korean model), a second or two after the others.
        daemon.wait_for(
            lambda: _stories(s) >= 4 and _wires_stored(db) == 3, "the first poll of every source", timeout=60
        )
        yield s
    finally:
        daemon.stop()
        feeds.close()
        webhook.close()


def _wires_stored(db: Path) -> int:
    """How many sources have items in the database (the three wires; the down source has none)."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(DISTINCT source_id) FROM items").fetchone()[0])
    except sqlite3.Error:
        return 0


def _stories(s: Site) -> int:
    try:
        status, _, body = s.get("/stories")
    except OSError:
        return 0
    return body.count('class="story"') if status == 200 else 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        # The tests install what they need: Debian's chromium, as `make test` does.
        subprocess.run(["bash", str(ROOT / ".ci" / "browser.sh")], check=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def screenshot(page: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def copy_screenshots(to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    for png in ARTEFACTS.glob("*.png"):
        shutil.copy(png, to / png.name)
