"""Dependencies failing under a running daemon: PostgreSQL restarted or refusing connections,
a webhook that is slow.

The restart test restarts a throwaway PostgreSQL server of its own (tests/pgserver.py),
never the machine's cluster.  ``serial``: the tests measure timing under a live daemon,
so they run alone, after the parallel suite (see the Makefile's ``test`` target).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.conftest import PG_ADMIN_URL, run_cli
from tests.daemons import Daemon
from tests.feeds import rss
from tests.pgserver import ThrowawayPostgres
from tests.servers import FeedServer, WebhookReceiver

pytestmark = pytest.mark.serial

CONFIG = """
[fetch]
host_delay = "0s"
full_text = false
obey_robots = false
[alerts]
first_poll = "alert"
retry_backoff = "1s"
[[sources]]
name = "wire"
url = "{url}"
interval = "1s"
[terms]
kursk = ["Kursk"]
[[rules]]
name = "kursk"
query = "kursk"
notify = ["chat"]
[[subscribers]]
name = "chat"
urls = ["{hook}"]
max_per_hour = 1000
"""


def test_postgresql_restart_mid_run_loses_nothing(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, daemon_factory: Callable[[Path, str], Daemon]
) -> None:
    server = ThrowawayPostgres().start()
    database_url = server.url
    try:
        url = feed_server.serve("/feed.xml", rss([("1", "Kursk: first report", "")]))
        config = tmp_path / "config.toml"
        config.write_text(CONFIG.format(url=url, hook=webhook.url()), encoding="utf-8")
        daemon = daemon_factory(config, database_url)
        daemon.wait_for(lambda: len(webhook.posts) == 1, "the first alert")

        server.restart()  # every pooled connection of the daemon is now dead
        server.wait_ready()
        feed_server.serve("/feed.xml", rss([("1", "Kursk: first report", ""), ("2", "Kursk: second report", "")]))
        daemon.wait_for(lambda: len(webhook.posts) == 2, "an alert after the restart", timeout=60)
        time.sleep(3)  # several more polls: nothing is stored or sent twice
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.output()  # reconnected (pool pre-ping), nothing failed
        assert len(webhook.posts) == 2
        items = json.loads(run_cli("items", "--json", config=config, database_url=database_url).stdout)["items"]
        assert sorted(i["title"] for i in items) == ["Kursk: first report", "Kursk: second report"]
    finally:
        server.stop()


def test_slow_webhook_does_not_hold_up_polling(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, daemon_factory: Callable[[Path, str], Daemon]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'slow.db'}"
    webhook.delay = 3.0
    url = feed_server.serve("/feed.xml", rss([("1", "Kursk: first report", "")]))
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=url, hook=webhook.url()), encoding="utf-8")
    daemon = daemon_factory(config, database_url)
    daemon.wait_for(lambda: len(webhook.posts) == 1, "the slow alert", timeout=60)
    polls_before = len(feed_server.hits("/feed.xml"))
    time.sleep(4)
    # Polling went on at its 1 s interval while a delivery was in flight.
    assert len(feed_server.hits("/feed.xml")) >= polls_before + 2
    assert daemon.stop() == 0
    assert len(webhook.posts) == 1


def test_connections_refused_mid_poll_lose_nothing_and_release_the_lease(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, daemon_factory: Callable[[Path, str], Daemon]
) -> None:
    """The database starts refusing connections (its connection limit reached) while a feed
    is being fetched: the poll's outcome cannot be stored.  Nothing served may be lost, and
    the source must not stay leased for the whole 60 s lease: once the database answers, it
    is polled again at once and its item stored and alerted exactly once."""
    role = f"ww_limited_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def sql(statement: str) -> None:
        with admin.connect() as conn:
            conn.execute(text(statement))

    sql(f'CREATE ROLE "{role}" LOGIN')  # connection limits do not bind a superuser
    sql(f'CREATE DATABASE "{role}" OWNER "{role}"')
    database_url = make_url(PG_ADMIN_URL).set(username=role, database=role).render_as_string(hide_password=False)
    asked, gate = threading.Event(), threading.Event()
    gate.set()
    first = rss([("1", "Kursk: first report", "")])
    both = rss([("1", "Kursk: first report", ""), ("2", "Kursk: second report", "")])
    body = {"now": first}

    def held(request: BaseHTTPRequestHandler) -> None:
        asked.set()
        gate.wait(30)
        data = body["now"].encode("utf-8")
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    try:
        url = feed_server.serve("/feed.xml", b"", handler=held)
        config = tmp_path / "config.toml"
        config.write_text(CONFIG.format(url=url, hook=webhook.url()), encoding="utf-8")
        daemon = daemon_factory(config, database_url)
        daemon.wait_for(lambda: len(webhook.posts) == 1, "the first alert")

        # The next poll is held at the server while the database stops taking connections.
        gate.clear()
        asked.clear()
        body["now"] = both
        assert asked.wait(15)
        sql(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
        sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        refused_at = time.monotonic()
        gate.set()  # the feed, with its new item, is served to a process that cannot store it
        time.sleep(3)
        assert len(webhook.posts) == 1
        sql(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')

        daemon.wait_for(lambda: len(webhook.posts) == 2, "the refused poll's item, polled again", timeout=40)
        # Well inside the 60 s source lease: the lease was released, not left to run out.
        assert time.monotonic() - refused_at < 40
        time.sleep(3)  # more polls: nothing is stored or sent twice
        assert daemon.stop() == 0
        log = daemon.output()
        assert "Traceback" not in log, log
        assert "not stored are due again" in log
        assert len(webhook.posts) == 2
        items = json.loads(run_cli("items", "--json", config=config, database_url=database_url).stdout)["items"]
        assert sorted(i["title"] for i in items) == ["Kursk: first report", "Kursk: second report"]
    finally:
        gate.set()
        sql(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
        sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()
