"""Crash safety: ``kill -9`` of ``wirewatch run`` at seeded random moments, 20 trials.

After the last restart every item the feeds served is stored exactly once and every
match has been alerted; an alert delivered twice is allowed only if its row was claimed
more than once (the documented window between a send and its mark), and such
duplicates are counted and printed for the report.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver

TITLE = re.compile(r"Kursk front item (\d+)")
TRIALS = 20
FEEDS = 12

pytestmark = pytest.mark.slow


def test_kill_9_at_random_points(tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver) -> None:
    rng = random.Random(20261127)
    database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    feeds: dict[int, list[tuple[str, str, str]]] = {i: [] for i in range(FEEDS)}
    serial = 0

    def add_items(count: int) -> None:
        nonlocal serial
        for _ in range(count):
            i = rng.randrange(FEEDS)
            serial += 1
            title = f"Kursk front item {serial}" if serial % 2 == 0 else f"Markets item {serial}"
            feeds[i].append((f"g{serial}", title, "Text."))
            feed_server.serve(f"/f{i}.xml", rss(feeds[i]))

    add_items(40)
    sources = "".join(
        f'[[sources]]\nname = "f{i}"\nurl = "{feed_server.base}/f{i}.xml"\ninterval = "1s"\n' for i in range(FEEDS)
    )
    config = tmp_path / "config.toml"
    config.write_text(
        '[fetch]\nhost_delay = "0s"\nfull_text = false\nobey_robots = false\n'
        '[alerts]\nfirst_poll = "alert"\nsend_lease = "2s"\nretry_backoff = "1s"\n'
        + sources
        + '[terms]\nkursk = ["Kursk"]\n[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n'
        + f'[[subscribers]]\nname = "chat"\nurls = ["{webhook.url()}"]\nmax_per_hour = 100000\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    kill_points = []
    for _trial in range(TRIALS):
        add_items(rng.randrange(1, 8))
        with (tmp_path / "daemon.log").open("a") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "--config", str(config), "--database-url", database_url, "run"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            delay = rng.uniform(0.3, 4.0)
            kill_points.append(round(delay, 2))
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    time.sleep(2.5)  # every lease a killed process held has run out
    for _ in range(2):
        final = run_cli("run", "--once", config=config, database_url=database_url)
        assert final.returncode == 0, final.stderr
        time.sleep(1.5)  # a retry backoff

    served = {title for items in feeds.values() for _, title, _ in items}
    listed = run_cli("items", "--json", "--limit", "100000", config=config, database_url=database_url)
    stored = [i["title"] for i in json.loads(listed.stdout)["items"]]
    assert sorted(stored) == sorted(served), "items lost or stored twice"

    expected = {t for t in served if t.startswith("Kursk")}
    delivered = collections.Counter(
        f"Kursk front item {m.group(1)}" for p in webhook.posts for m in [TITLE.search(str(p["title"]))] if m
    )
    alerts = json.loads(
        run_cli("alerts", "--json", "--limit", "100000", config=config, database_url=database_url).stdout
    )
    attempts = {a["title"]: a["attempts"] for a in alerts["alerts"]}
    missing = sorted(expected - set(delivered))
    assert not missing, (
        f"never alerted: {[(a['title'], a['status']) for a in alerts['alerts'] if a['title'] in missing]}"
    )
    duplicated = {t: n for t, n in delivered.items() if n > 1}
    for title in duplicated:
        assert attempts[title] >= 2, f"{title} sent twice without a second claim"
    print(
        f"\ncrash trials: {TRIALS} kills at {kill_points}s; items served {len(served)}, stored {len(stored)}; "
        f"alerts expected {len(expected)}, delivered {sum(delivered.values())}, "
        f"duplicated in the send-to-mark window {len(duplicated)}"
    )
