"""The daemon as a real process: polls on schedule, reloads its config, stops cleanly."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import run_cli
from tests.daemons import Daemon
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver, free_port


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


CONFIG = """
[server]
listen = "127.0.0.1:{port}"

[fetch]
host_delay = "0s"
timeout = "5s"

[alerts]
first_poll = "alert"
operators = ["chat"]

[[sources]]
name = "wire"
url = "{url}"
interval = "1s"

[terms]
putin = ["Putin", "Путин"]
kursk = ["Kursk", "Курск"]

[[rules]]
name = "{rule}"
query = '{query}'
notify = ["chat"]

[[subscribers]]
name = "chat"
urls = ["{hook}"]
"""


def test_daemon_alerts_reloads_and_stops_cleanly(
    tmp_path: Path,
    database_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    daemon_factory: Callable[[Path, str], Daemon],
) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Putin visits Kursk", "Troops.")]))
    config = tmp_path / "config.toml"
    port = free_port()

    def write(rule: str, query: str) -> None:
        config.write_text(CONFIG.format(url=url, hook=webhook.url(), rule=rule, query=query, port=port))

    write("putin-kursk", "putin AND kursk")
    daemon = daemon_factory(config, database_url)
    daemon.wait_for(lambda: len(webhook.posts) == 1, "the first alert")

    # Health and metrics, read back with Prometheus' own parser.
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    health = json.loads(body)
    assert status == 200, health
    assert health["database"] == "ok"
    assert health["ok"] is True
    _, text = http_get(f"http://127.0.0.1:{port}/metrics")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    assert samples[("wirewatch_polls_total", (("status", "ok"),))] >= 1
    assert samples[("wirewatch_alerts", (("status", "sent"),))] == 1
    assert ("wirewatch_outbox_depth", ()) in samples

    # A valid edit is picked up without a restart: a new rule alerts on the next new item.
    write("kursk-only", "kursk")
    daemon.wait_for(lambda: "config reloaded (file change)" in daemon.output(), "the reload")
    feed_server.serve("/feed.xml", rss([("1", "Putin visits Kursk", "Troops."), ("2", "Shelling near Kursk", "")]))
    daemon.wait_for(lambda: len(webhook.posts) == 2, "an alert from the new rule")
    assert "kursk-only" in webhook.posts[1]["message"]

    # A broken edit is reported and survived: the last good config keeps running.
    write("broken", "kursk AND (putin")
    daemon.wait_for(lambda: "still running the last good config" in daemon.output(), "the rejected reload")
    assert "'broken'.query" in daemon.output()
    # ...and told to the operators, once.
    daemon.wait_for(lambda: any("config edit rejected" in str(p) for p in webhook.posts), "the operator notice")
    notices = [p for p in webhook.posts if "config edit rejected" in str(p)]
    assert len(notices) == 1
    assert "'broken'.query" in str(notices[0])
    feed_server.serve(
        "/feed.xml",
        rss([("1", "Putin visits Kursk", ""), ("2", "Shelling near Kursk", ""), ("3", "Kursk: new front", "")]),
    )
    daemon.wait_for(lambda: len(webhook.posts) == 4, "an alert under the last good config")

    # SIGHUP reloads too (the file is still broken: reported again, daemon still up).
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: "config reload (SIGHUP) failed" in daemon.output(), "the SIGHUP reload")

    # A pathological edit (arrays nested 50,000 deep: tomllib's recursion) is a bad edit
    # like any other: no RecursionError traceback, and the operators are told.
    config.write_text(
        CONFIG.format(url=url, hook=webhook.url(), rule="x", query="kursk", port=port)
        + "deep = "
        + "[" * 50_000
        + "]" * 50_000
        + "\n"
    )
    daemon.wait_for(lambda: any("nested" in str(p) for p in webhook.posts), "the notice of the deep edit")

    assert daemon.stop() == 0
    assert "stopped" in daemon.output()
    assert "Traceback" not in daemon.output()
    assert "RecursionError" not in daemon.output()


def test_sigterm_mid_ingest_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
    database_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    daemon_factory: Callable[[Path, str], Daemon],
) -> None:
    feeds, per_feed = 40, 25
    sources = []
    for i in range(feeds):
        url = feed_server.serve(
            f"/f{i}.xml",
            rss(
                [(f"{i}-{j}", f"Kursk report {i}-{j}" if j % 5 == 0 else f"Other {i}-{j}", "") for j in range(per_feed)]
            ),
        )
        sources.append(f'[[sources]]\nname = "f{i}"\nurl = "{url}"\ninterval = "1h"\n')
    config = tmp_path / "config.toml"
    config.write_text(
        '[fetch]\nhost_delay = "0s"\nfull_text = false\nobey_robots = false\n[alerts]\nfirst_poll = "alert"\n'
        + "\n".join(sources)
        + '[terms]\nkursk = ["Kursk"]\n[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n'
        + f'[[subscribers]]\nname = "chat"\nurls = ["{webhook.url()}"]\nmax_per_hour = 100000\n',
        encoding="utf-8",
    )
    daemon = daemon_factory(config, database_url)
    daemon.wait_for(lambda: "monitor.services.ingest: source f" in daemon.output(), "the first ingest", timeout=60)
    assert daemon.stop() == 0
    assert "stopped" in daemon.output()

    # Restart: one more cycle finishes whatever the stop interrupted.
    result = run_cli("run", "--once", config=config, database_url=database_url)
    assert result.returncode == 0, result.stderr
    items = run_cli("items", "--json", "--limit", "100000", config=config, database_url=database_url)
    titles = [i["title"] for i in json.loads(items.stdout)["items"]]
    assert len(titles) == feeds * per_feed
    assert len(set(titles)) == len(titles)
    time.sleep(1)
    alerted = [p["message"] for p in webhook.posts]
    assert len(alerted) == feeds * per_feed // 5
    assert len(set(alerted)) == len(alerted)


def test_healthz_does_not_queue_behind_the_sqlite_writer(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    daemon_factory: Callable[[Path, str], Daemon],
) -> None:
    """A batch just committed proves writes are accepted: /healthz does not take SQLite's write lock.

    Under a cold load the ingest writer holds that lock most of the time, and the health
    check's own ``BEGIN IMMEDIATE`` queued behind it (p99 566 ms, max 1.2 s).  Here
    another connection holds the lock; after the lock has been held for longer than the
    proof lasts, the check takes it again and reports the database locked.
    """
    import sqlite3

    url = feed_server.serve("/feed.xml", rss([("1", "Putin visits Kursk", "Troops.")]))
    config = tmp_path / "config.toml"
    port = free_port()
    config.write_text(CONFIG.format(url=url, hook=webhook.url(), rule="r", query="putin AND kursk", port=port))
    db = tmp_path / "health.db"
    daemon = daemon_factory(config, f"sqlite:///{db}")
    daemon.wait_for(lambda: len(webhook.posts) == 1, "the first alert")
    holder = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a busy writer holds it
        started = time.monotonic()
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        took = time.monotonic() - started
        health = json.loads(body)
        assert status == 200 and health["database_writes"] == "ok", health
        assert took < 1.0, f"/healthz took {took:.2f}s behind the writer"
        # Polls every second cannot commit now; once the last commit is older than the
        # proof lasts, the check takes the lock itself and finds it held.
        deadline = time.monotonic() + 30
        while True:
            status, body = http_get(f"http://127.0.0.1:{port}/healthz")
            if json.loads(body)["database_writes"] != "ok":
                break
            assert time.monotonic() < deadline, "the write check never ran"
            time.sleep(0.5)
        assert status == 503 and "locked" in json.loads(body)["database_writes"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert daemon.stop() == 0
