"""Dependencies failing under a running daemon: PostgreSQL restarted, a webhook that is slow.

The restart test restarts a throwaway PostgreSQL server of its own (tests/pgserver.py),
never the machine's cluster.  ``serial``: both tests measure timing under a live daemon,
so they run alone, after the parallel suite (see the Makefile's ``test`` target).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli
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
