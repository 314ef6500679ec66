"""Hostile servers and failing dependencies, through the real command.

A decompression bomb, a feed of 100,000 items, an unresolvable host and a webhook that
answers 500 then recovers: each is bounded, recorded where the operator sees it, and
never holds up the well-behaved source polled beside it.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver


def _config(tmp_path: Path, sources: dict[str, str], hook: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[fetch]\nhost_delay = "0s"\nfull_text = false\nobey_robots = false\nmax_body = "5MB"\ntimeout = "10s"\n'
        '[alerts]\nfirst_poll = "alert"\nretry_backoff = "1s"\n'
        + "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in sources.items())
        + '[terms]\nkursk = ["Kursk"]\n[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n'
        + f'[[subscribers]]\nname = "chat"\nurls = ["{hook}"]\n',
        encoding="utf-8",
    )
    return path


def test_bombs_floods_and_dead_hosts_are_bounded_and_recorded(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    # 400 MB of zeros inside ~400 kB of gzip, once as Content-Encoding, once as a .gz body.
    bomb = gzip.compress(b"<rss>" + b"\0" * 400_000_000, compresslevel=9)
    flood = rss([(f"f{i}", f"Item {i}", "x") for i in range(100_000)])
    sources = {
        "good": feed_server.serve("/good.xml", rss([("1", "Shelling near Kursk", "")])),
        "bomb-encoded": feed_server.serve("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"}),
        "bomb-file": feed_server.serve("/bomb.xml.gz", bomb, content_type="application/gzip"),
        "flood": feed_server.serve("/flood.xml", flood),
        "nowhere": "http://wirewatch-test.invalid/feed.xml",
    }
    webhook.fail_with = 500
    config = _config(tmp_path, sources, webhook.url())
    started = time.monotonic()
    first = run_cli("run", "--once", config=config, database_url=database_url, timeout=240)
    assert first.returncode == 0, first.stderr
    assert time.monotonic() - started < 120
    assert "Traceback" not in first.stderr

    health = {
        s["name"]: s
        for s in json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)["sources"]
    }
    assert health["good"]["status"] == "ok"
    assert health["good"]["items"] == 1
    for name in ("bomb-encoded", "bomb-file", "flood", "nowhere"):
        assert health[name]["status"] == "failing", health[name]
        assert health[name]["last_error"], name
        assert health[name]["items"] == 0, name
    assert health["flood"]["error_class"] == "permanent"  # over max_body: needs an operator

    # The webhook answered 500: the alert waits, counted, and is delivered once when it recovers.
    alerts = json.loads(run_cli("alerts", "--json", config=config, database_url=database_url).stdout)["alerts"]
    assert [(a["status"], a["attempts"]) for a in alerts] == [("pending", 1)]
    assert "500" in (alerts[0]["last_error"] or "")
    webhook.fail_with = None
    time.sleep(1.3)
    for _ in range(2):
        assert run_cli("run", "--once", config=config, database_url=database_url, timeout=240).returncode == 0
    assert len(webhook.posts) == 1
    assert "Kursk" in webhook.posts[0]["message"]
