"""The long-lived Scrapy crawler in a real ``wirewatch run`` daemon: one start across many ticks, a clean stop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.daemons import Daemon
from tests.servers import FeedServer

CONFIG = """
[fetch]
host_delay = "0s"
timeout = "5s"
full_text = false
min_interval = "1s"

[alerts]
first_poll = "silent"

[[sources]]
name = "front"
type = "listing"
url = "{url}"
links = "a.l"
interval = "1s"

[terms]
putin = ["Putin"]

[[rules]]
name = "putin"
query = "putin"
"""


def test_daemon_polls_listings_tick_after_tick_with_one_crawler(
    tmp_path: Path, database_url: str, feed_server: FeedServer, daemon_factory: Callable[[Path, str], Daemon]
) -> None:
    url = feed_server.serve("/front", '<a class="l" href="/p/1">Putin in Pyongyang</a>', content_type="text/html")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=url))
    daemon = daemon_factory(config, database_url)
    daemon.wait_for(lambda: len(feed_server.hits("/front")) >= 4, "four polls of the listing", timeout=60)
    assert daemon.stop() == 0, daemon.output()
    out = daemon.output()
    # Four ticks or more, one crawler: started once, robots.txt read once.
    assert out.count("scrapy crawler 'feeds' started") == 1, out
    assert len(feed_server.hits("/robots.txt")) == 1
    assert "stopped" in out
