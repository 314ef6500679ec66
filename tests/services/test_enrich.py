"""Full text as enrichment: every short item gets its article page, queued and never dropped.

Real servers on loopback, real SQLite and PostgreSQL, the real CLI (``run --once`` and
the ``run`` daemon, killed with -9 in one test); the only fake is the clock of the
retry test, which drives the stage's rounds itself so that its backoff can pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from monitor.app import make_app
from monitor.core.models import PollOutcome, RawItem
from monitor.daemon import Poller, make_ingest_stage
from monitor.services.enrich import Enricher, PageResult
from monitor.services.ingest import Ingestor
from monitor.stages.enrich import EnrichStage
from tests.conftest import ROOT, run_cli
from tests.daemons import Daemon
from tests.servers import FeedServer, Route, WebhookReceiver

WORDS = [
    "harbour",
    "council",
    "grain",
    "tariff",
    "river",
    "bridge",
    "festival",
    "orchard",
    "railway",
    "ferry",
    "quarry",
    "museum",
    "bakery",
    "copper",
    "lantern",
    "meadow",
    "glacier",
    "tunnel",
    "vineyard",
    "market",
    "weather",
    "chess",
    "violin",
    "canal",
    "textile",
    "garden",
    "orchestra",
    "pottery",
    "salmon",
    "timber",
    "marble",
    "beacon",
    "harvest",
    "pasture",
    "compass",
    "saddle",
    "ribbon",
    "walnut",
]


def _teasers(count: int, seed: int) -> list[tuple[str, str, str]]:
    """(guid, title, teaser) with words drawn at random, so no two look alike to dedupe."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        title = " ".join(rng.sample(WORDS, 6)).capitalize() + f" {n}"
        teaser = " ".join(rng.sample(WORDS, 9)) + "."
        out.append((f"g{n}", title, teaser))
    return out


def _feed(base: str, entries: list[tuple[str, str, str]]) -> str:
    items = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>{base}/story/{g}</link><description>{d}</description>"
        f"<pubDate>{datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
        for g, t, d in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{items}</channel></rss>'


def _article(title: str, body: str) -> str:
    paragraphs = "".join(f"<p>{body} Paragraph {i} adds reporting detail so that it reads long.</p>" for i in range(6))
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<main><article><h1>{title}</h1>{paragraphs}</article></main><footer>Wire</footer></body></html>"
    )


def _config(
    tmp_path: Path,
    feed_url: str,
    hook: str,
    *,
    rule: str,
    term: list[str],
    fetch: str = "",
    interval: str = "5m",
    timeout: str = "5s",
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[fetch]\nhost_delay = "0s"\nper_host = 8\nconcurrency = 64\nobey_robots = false\n'
        f'timeout = "{timeout}"\n'
        f"full_text = true\n{fetch}\n"
        '[alerts]\nfirst_poll = "alert"\nsend_lease = "2s"\nretry_backoff = "1s"\n'
        f'[[sources]]\nname = "wire"\nurl = "{feed_url}"\ninterval = "{interval}"\n'
        f"[terms]\n{rule} = {json.dumps(term)}\n"
        f'[[rules]]\nname = "{rule}"\nquery = "{rule}"\nnotify = ["chat"]\n'
        f'[[subscribers]]\nname = "chat"\nurls = ["{hook}"]\nmax_per_hour = 100000\n',
        encoding="utf-8",
    )
    return path


def _items(config: Path, database_url: str) -> list[dict[str, Any]]:
    listed = run_cli("items", "--json", "--limit", "100000", config=config, database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["items"])


def _alerts(config: Path, database_url: str) -> list[dict[str, Any]]:
    listed = run_cli("alerts", "--json", "--limit", "100000", config=config, database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["alerts"])


def _blocking(gate: threading.Event, body: str, seen: list[str]) -> Route:
    """A page that answers only once ``gate`` is set (a slow or hung article server)."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.path)
        gate.wait(60)
        data = body.encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return Route(handler=handler)


# ---------------------------------------------------------------------- (1) every page, at a bounded pace


def test_every_teaser_gets_its_page_and_article_only_rules_alert_for_each(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    s = feed_server
    entries = _teasers(30, seed=13)
    s.serve("/feed.xml", _feed(s.base, entries))
    for g, t, _ in entries:
        s.serve(f"/story/{g}", _article(t, f"Sergei Lavrov spoke in town {g} about {t.lower()}."), "text/html")
    config = _config(
        tmp_path, s.base + "/feed.xml", webhook.url(), rule="lavrov", term=["Lavrov"], fetch="full_text_max = 5"
    )

    result = run_cli("run", "--once", config=config, database_url=database_url, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr

    items = _items(config, database_url)
    assert len(items) == 30
    assert {i["text_state"] for i in items} == {"done"}
    assert all(len(s.hits(f"/story/{g}")) == 1 for g, _, _ in entries)  # each page read once
    # Claimed at most full_text_max = 5 of the source per round: 30 pages took six rounds.
    rounds = [line for line in result.stderr.splitlines() if "enrichment:" in line and "article pages read" in line]
    read = [int(line.split("enrichment: ")[1].split()[0]) for line in rounds]
    assert sum(read) == 30 and max(read) <= 5, rounds
    assert "article pages: 30 read, 30 matched, 30 alerts queued; 0 to retry, 0 failed" in result.stdout

    # The rule's words are only in the articles: one alert per item, exactly.
    alerts = _alerts(config, database_url)
    assert len(alerts) == 30
    assert sorted(a["title"] for a in alerts) == sorted(t for _, t, _ in entries)
    assert {a["status"] for a in alerts} == {"sent"}
    assert len(webhook.posts) == 30

    # A second cycle: nothing new, no page read again, no alert again.
    again = run_cli("run", "--once", config=config, database_url=database_url, timeout=240)
    assert again.returncode == 0, again.stderr
    assert all(len(s.hits(f"/story/{g}")) == 1 for g, _, _ in entries)
    assert len(_alerts(config, database_url)) == 30 and len(webhook.posts) == 30


# ---------------------------------------------------------------------- (2) a teaser match does not wait


def test_teaser_match_alerts_while_the_page_server_hangs(
    tmp_path: Path,
    database_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    daemon_factory: Callable[[Path, str], Daemon],
) -> None:
    s = feed_server
    gate = threading.Event()
    asked: list[str] = []
    s.serve("/feed.xml", _feed(s.base, [("k1", "Troops near Kursk", "Kursk: a short teaser.")]))
    body = "Troops were seen near Kursk; the article says more about the Kursk front."
    s.routes["/story/k1"] = _blocking(gate, _article("Troops near Kursk", body), asked)
    config = _config(tmp_path, s.base + "/feed.xml", webhook.url(), rule="kursk", term=["Kursk"], timeout="30s")
    daemon = daemon_factory(config, database_url)
    try:
        daemon.wait_for(lambda: len(webhook.posts) == 1, "the teaser's alert")
        assert not gate.is_set()  # the page has not been answered: the alert did not wait for it
        daemon.wait_for(lambda: asked == ["/story/k1"], "the article page to be asked for")
    finally:
        gate.set()
    daemon.wait_for(
        lambda: [i["text_state"] for i in _items(config, database_url)] == ["done"], "the article text", timeout=60
    )
    time.sleep(2)  # a dispatch tick after the text's re-match
    assert daemon.stop() == 0
    assert len(webhook.posts) == 1  # the article matched the same rule: no second alert
    assert len(_alerts(config, database_url)) == 1


# ---------------------------------------------------------------------- (3) retried, then failed with its reason


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def test_a_missing_page_is_retried_then_failed_and_the_others_are_unaffected(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    s = feed_server
    entries = _teasers(4, seed=7)
    for g, t, _ in entries[1:]:
        s.serve(f"/story/{g}", _article(t, f"Lavrov in {g}."), "text/html")  # g0 is not served: 404
    config = _config(tmp_path, s.base + "/feed.xml", webhook.url(), rule="lavrov", term=["Lavrov"])
    clock = Clock()
    app = make_app(str(config), database_url)
    app.store.sync_sources([("wire", "feed", s.base + "/feed.xml")], clock())
    (source,) = app.store.source_states(["wire"])
    ingestor = Ingestor(app.store, app.holder.get, clock)
    raws = tuple(RawItem(guid=g, url=f"{s.base}/story/{g}", title=t, summary=d) for g, t, d in entries)
    (summary,) = ingestor.ingest_batch([PollOutcome(source.id, "wire", "ok", raws)])
    assert summary.new == 4

    async def rounds() -> list[int]:
        control = ThreadPoolExecutor(2)
        writer = ThreadPoolExecutor(1)
        poller = Poller(app, "test", make_ingest_stage(app), control)
        stage = EnrichStage(
            Enricher(app.store, app.holder.get, clock), poller.read_page, control=control, writer=writer
        )
        claimed = []
        try:
            for step in (timedelta(0), timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1)):
                clock.now += step + timedelta(seconds=1)
                claimed.append((await stage.round()).claimed)
            clock.now += timedelta(days=1)
            claimed.append((await stage.round()).claimed)  # nothing left to try
        finally:
            await poller.close()
            control.shutdown()
            writer.shutdown()
        return claimed

    assert asyncio.run(rounds()) == [4, 1, 1, 1, 0]
    assert len(s.hits("/story/g0")) == 4  # one try and three retries
    items = {i["url"]: i for i in _items(config, database_url)}
    missing = items[f"{s.base}/story/g0"]
    assert missing["text_state"] == "failed" and missing["text_error"] == "HTTP 404", missing
    assert all(items[f"{s.base}/story/{g}"]["text_state"] == "done" for g, _, _ in entries[1:])
    assert app.store.text_queue(clock()) == {"done": 3, "failed": 1}  # what /metrics reads
    # The three articles alert (their rule is in the text only); the missing one keeps its teaser.
    assert sorted(a["title"] for a in _alerts(config, database_url)) == sorted(t for _, t, _ in entries[1:])
    app.store.engine.dispose()


def test_claims_are_exclusive_and_a_page_read_twice_is_recorded_once(
    tmp_path: Path, database_url: str, webhook: WebhookReceiver
) -> None:
    entries = _teasers(12, seed=21)
    config = _config(
        tmp_path,
        "http://127.0.0.1:9/feed.xml",
        webhook.url(),
        rule="lavrov",
        term=["Lavrov"],
        fetch="full_text_max = 20",
    )
    clock = Clock()
    app = make_app(str(config), database_url)
    app.store.sync_sources([("wire", "feed", "http://127.0.0.1:9/feed.xml")], clock())
    (source,) = app.store.source_states(["wire"])
    raws = tuple(RawItem(guid=g, url=f"http://127.0.0.1:9/story/{g}", title=t, summary=d) for g, t, d in entries)
    Ingestor(app.store, app.holder.get, clock).ingest_batch([PollOutcome(source.id, "wire", "ok", raws)])
    enricher = Enricher(app.store, app.holder.get, clock)

    # Workers claiming at once get disjoint batches: no item twice.  (Two that rank the
    # same candidates at the same instant: the second skips what the first locked and
    # takes fewer; its next round takes the rest.)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: enricher.claim(4), range(4)))
    while more := enricher.claim(4):
        batches.append(more)
    ids = [t.item_id for b in batches for t in b]
    assert len(ids) == len(set(ids)) == 12
    assert enricher.claim(10) == []  # all leased
    # A worker that took longer than its lease: the items are claimed again by another.
    first = [t for b in batches for t in b][:3]
    clock.now += timedelta(seconds=31)
    second = enricher.claim(12)
    assert {t.item_id for t in first} <= {t.item_id for t in second}
    texts = [PageResult(text=f"Lavrov said so in {t.url}.") for t in first]
    assert enricher.record(first, texts).alerts == 3
    again = enricher.record(first, texts)  # the late reader's results: already recorded
    assert (again.enriched, again.matched, again.alerts) == (0, 0, 0)
    assert len(_alerts(config, database_url)) == 3
    app.store.engine.dispose()


def test_teaser_matches_keep_their_spans_right_when_the_text_arrives(
    tmp_path: Path, database_url: str, webhook: WebhookReceiver
) -> None:
    """Spans are offsets into the body, which the text changes: stored ones must follow."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[alerts]\nfirst_poll = "alert"\n[[sources]]\nname = "wire"\nurl = "http://127.0.0.1:9/f.xml"\n'
        '[terms]\nkursk = ["Kursk"]\nlavrov = ["Lavrov"]\n'
        '[[rules]]\nname = "calm"\nquery = \'kursk AND NOT "denied"\'\nnotify = ["chat"]\n'
        '[[rules]]\nname = "lavrov"\nquery = "lavrov"\nnotify = ["chat"]\n'
        f'[[subscribers]]\nname = "chat"\nurls = ["{webhook.url()}"]\n',
        encoding="utf-8",
    )
    clock = Clock()
    app = make_app(str(path), database_url)
    try:
        app.store.sync_sources([("wire", "feed", "http://127.0.0.1:9/f.xml")], clock())
        (source,) = app.store.source_states(["wire"])
        teaser = "Troops near Kursk."
        raw = RawItem(guid="k", url="http://127.0.0.1:9/k", title="Front report", summary=teaser)
        Ingestor(app.store, app.holder.get, clock).ingest_batch([PollOutcome(source.id, "wire", "ok", (raw,))])
        enricher = Enricher(app.store, app.holder.get, clock)
        (task,) = enricher.claim(5)
        # The article repeats the teaser further down; "denied" now blocks the teaser's rule.
        text = f"Sergei Lavrov spoke first. Officials denied everything. {teaser} More follows."
        summary = enricher.record([task], [PageResult(text=text)])
        assert (summary.enriched, summary.matched) == (1, 1)
        with app.store.begin() as conn:
            spans = app.store.match_spans(conn, [task.item_id])[task.item_id]
        assert set(spans) == {"calm", "lavrov"}  # the teaser's match stays stored
        (calm,) = spans["calm"]
        assert text[calm["start"] : calm["end"]] == "Kursk"  # moved with the body
        (lavrov,) = spans["lavrov"]
        assert text[lavrov["start"] : lavrov["end"]] == "Lavrov"
        # One alert for the item's story and subscriber, from the teaser; the text adds none.
        alerts = _alerts(path, database_url)
        assert len(alerts) == 1 and alerts[0]["rule"] == "calm"
    finally:
        app.store.engine.dispose()


# ---------------------------------------------------------------------- (4) kill -9 while pages are wanted


@pytest.mark.slow
def test_kill_9_while_pages_are_in_flight_loses_nothing_and_alerts_once(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    s = feed_server
    database_url = f"sqlite:///{tmp_path / 'kill.db'}"
    gate = threading.Event()
    asked: list[str] = []
    entries = _teasers(6, seed=99)
    s.serve("/feed.xml", _feed(s.base, entries))
    for g, t, _ in entries:
        s.routes[f"/story/{g}"] = _blocking(gate, _article(t, f"Lavrov arrived in {g}."), asked)
    config = _config(tmp_path, s.base + "/feed.xml", webhook.url(), rule="lavrov", term=["Lavrov"], timeout="30s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    argv = [sys.executable, "-m", "monitor", "--config", str(config), "--database-url", database_url, "run"]
    with (tmp_path / "first.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while len(asked) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(asked) == 6, (tmp_path / "first.log").read_text()
        proc.send_signal(signal.SIGKILL)  # every page claimed and in flight
        proc.wait(timeout=30)
    gate.set()
    assert {i["text_state"] for i in _items(config, database_url)} == {"wanted"}
    assert _alerts(config, database_url) == []

    daemon = Daemon(config, database_url, tmp_path / "second.log")
    try:
        # The dead process's claims lapse (a 30 s lease), then the pages are read again.
        daemon.wait_for(
            lambda: {i["text_state"] for i in _items(config, database_url)} == {"done"}, "every text", timeout=120
        )
        daemon.wait_for(lambda: len(webhook.posts) >= 6, "six alerts", timeout=60)
        time.sleep(3)  # anything sent twice would arrive now
    finally:
        assert daemon.stop() == 0
    assert len(_items(config, database_url)) == 6
    alerts = _alerts(config, database_url)
    assert len(alerts) == 6 and {a["status"] for a in alerts} == {"sent"}
    # Each item alerted exactly once (its rule is only in the article).
    assert len(webhook.posts) == 6
    for _, title, _ in entries:
        assert sum(title in json.dumps(p) for p in webhook.posts) == 1, title


# ---------------------------------------------------------------------- (5) egress


@pytest.fixture
def internal() -> Iterator[FeedServer]:
    server = FeedServer("127.0.0.2")  # another loopback address: an internal service
    server.serve("/admin", _article("Admin", "Lavrov secret-console-7731."), "text/html")
    yield server
    server.close()


def test_a_page_at_a_refused_address_is_recorded_as_refused_and_never_fetched(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver, internal: FeedServer
) -> None:
    s = feed_server
    (g0, t0, d0), (g1, t1, d1) = _teasers(2, seed=3)
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        f"<item><guid>{g0}</guid><title>{t0}</title><link>{internal.base}/admin</link><description>{d0}</description></item>"
        f"<item><guid>{g1}</guid><title>{t1}</title><link>{s.base}/story/{g1}</link><description>{d1}</description></item>"
        "</channel></rss>"
    )
    s.serve("/feed.xml", feed)
    s.serve(f"/story/{g1}", _article(t1, "Lavrov in the open."), "text/html")
    # Our own loopback server is reached because the operator allows it, and only it.
    config = _config(
        tmp_path,
        s.base + "/feed.xml",
        webhook.url(),
        rule="lavrov",
        term=["Lavrov"],
        fetch='allow_private = ["127.0.0.1/32"]',
    )
    result = run_cli("run", "--once", config=config, database_url=database_url, timeout=180)
    assert result.returncode == 0, result.stderr
    assert internal.requests == []
    items = {i["title"]: i for i in _items(config, database_url)}
    refused = items[t0]
    assert refused["text_state"] == "failed"
    assert "egress policy" in (refused["text_error"] or "") and "loopback" in (refused["text_error"] or "")
    assert items[t1]["text_state"] == "done"
    assert [a["title"] for a in _alerts(config, database_url)] == [t1]
    assert "secret-console" not in json.dumps(webhook.posts)
