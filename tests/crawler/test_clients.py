"""Both feed clients, the Scrapy FeedSpider and the aiohttp FeedPoller, against one misbehaving server.

The cases of tests/sources/test_misbehaving.py and test_types.py that belong to the
fetch side (no database), run through each client: every target gets exactly one
outcome, with the same status, error class and reason words, Retry-After, min_interval
and items.  The poller is the new client; Scrapy is what it must match.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.core.models import PollTarget
from tests.crawler.clients import CLIENTS, Fetch
from tests.feeds import rss
from tests.servers import FeedServer, Route, free_port
from tests.sources.test_misbehaving import FEED, redirect, slow, truncated_transfer
from tests.sources.test_types import news_sitemap

Client = Callable[..., dict[str, dict[str, Any]]]


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> Client:
    return CLIENTS[request.param]


def _targets(cases: dict[str, str], kind: str = "feed") -> list[PollTarget]:
    return [PollTarget(i, name, kind, url) for i, (name, url) in enumerate(cases.items())]


def test_misbehaving_server(client: Client, feed_server: FeedServer) -> None:
    s = feed_server
    s.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    s.serve("/private/feed.xml", FEED)
    busy, down, plain = FeedServer(), FeedServer(), FeedServer()
    busy.serve("/429.xml", "slow down", status=429, headers={"Retry-After": "7200"})
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    down.serve("/503.xml", "maintenance", status=503, headers={"Retry-After": later})
    s.serve("/404.xml", "gone", status=404)
    s.routes["/slow.xml"] = Route(handler=slow)
    s.routes["/truncated-transfer.xml"] = Route(handler=truncated_transfer)
    s.serve("/truncated-xml.xml", FEED[: FEED.index("<item>", FEED.index("g3"))])
    s.serve("/huge.xml", FEED.replace("Short teaser.", "x" * 300_000))
    s.serve("/gzip-encoded.xml", gzip.compress(FEED.encode()), headers={"Content-Encoding": "gzip"})
    s.serve("/gzip-bomb.xml", gzip.compress(b"<rss>" + b" " * 5_000_000), headers={"Content-Encoding": "gzip"})
    s.serve("/gzip-file.xml.gz", gzip.compress(FEED.encode()), content_type="application/x-gzip")
    s.routes["/loop.xml"] = Route(handler=redirect("/loop2.xml"))
    s.routes["/loop2.xml"] = Route(handler=redirect("/loop.xml"))
    s.routes["/to-file.xml"] = Route(handler=redirect("file:///etc/passwd"))
    s.routes["/moved.xml"] = Route(handler=redirect("/wrong-type.xml"))
    s.serve("/wrong-type.xml", FEED, content_type="text/html; charset=iso-8859-1")
    page = (
        '<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/real-feed.xml">'
        "</head><body>News</body></html>"
    )
    s.serve("/page.html", page, content_type="text/html")
    s.serve("/ttl.xml", FEED.replace("<description>t</description>", "<description>t</description><ttl>90</ttl>"))
    s.serve("/max-age.xml", FEED, headers={"Cache-Control": "public, max-age=1800"})
    base = s.base
    cases = {
        "robots": base + "/private/feed.xml",
        "not-found": base + "/404.xml",
        "slow": base + "/slow.xml",
        "truncated-transfer": base + "/truncated-transfer.xml",
        "truncated-xml": base + "/truncated-xml.xml",
        "huge": base + "/huge.xml",
        "gzip-encoded": base + "/gzip-encoded.xml",
        "gzip-bomb": base + "/gzip-bomb.xml",
        "gzip-file": base + "/gzip-file.xml.gz",
        "redirect-loop": base + "/loop.xml",
        "redirect-to-file": base + "/to-file.xml",
        "redirected": base + "/moved.xml",
        "wrong-type": base + "/wrong-type.xml",
        "html-page": base + "/page.html",
        "ttl": base + "/ttl.xml",
        "max-age": base + "/max-age.xml",
        "rate-limited": busy.base + "/429.xml",
        "unavailable": down.base + "/503.xml",
        "refused": f"http://127.0.0.1:{free_port()}/feed.xml",
        "tls": f"https://127.0.0.1:{plain.port}/feed.xml",
    }
    try:
        got = client(_targets(cases), Fetch(timeout=4.0, max_body=100_000))
    finally:
        for server in (busy, down, plain):
            server.close()
    assert set(got) == set(cases), "exactly one outcome per target"

    def failed(name: str, error_class: str, *words: str) -> dict[str, Any]:
        o = got[name]
        assert (o["status"], o["error_class"]) == ("error", error_class), (name, o["error"])
        for w in words:
            assert w.lower() in (o["error"] or "").lower(), (name, o["error"])
        return o

    def ok(name: str, count: int, warning: str | None = None) -> dict[str, Any]:
        o = got[name]
        assert o["status"] == "ok", (name, o["error"])
        assert len(o["items"]) == count, name
        if warning:
            assert warning in (o["warning"] or ""), (name, o["warning"])
        return o

    failed("robots", "permanent", "robots.txt")
    assert s.hits("/private/feed.xml") == [], "a disallowed URL is never requested"
    assert failed("rate-limited", "temporary", "429")["retry_after"] == 7200
    assert failed("unavailable", "temporary", "503")["retry_after"] > 3 * 3600 - 120
    failed("not-found", "permanent", "404")
    failed("slow", "temporary", "timed out")
    failed("huge", "permanent", "max_body")
    failed("gzip-bomb", "permanent", "max", "decompress")  # Scrapy names DOWNLOAD_MAXSIZE, the poller max_body
    failed("redirect-loop", "permanent", "redirect")
    failed("redirect-to-file", "permanent", "file:///etc/passwd")
    failed("html-page", "permanent", f"{base}/real-feed.xml")
    failed("refused", "temporary", "refused")
    failed("tls", "permanent", "TLS")
    ok("truncated-transfer", 4, "truncated")
    ok("truncated-xml", 4, "malformed")
    ok("gzip-encoded", 5)
    ok("gzip-file", 5)
    ok("wrong-type", 5)
    ok("redirected", 5)
    assert ok("ttl", 5)["min_interval"] == 90 * 60
    assert ok("max-age", 5)["min_interval"] == 1800
    # The robots.txt was read once for the host, with the configured User-Agent.
    robots = s.hits("/robots.txt")
    assert len(robots) == 1 and robots[0]["user-agent"] == Fetch.user_agent


def test_conditional_get_and_body_hash(client: Client, feed_server: FeedServer) -> None:
    s = feed_server
    s.serve("/etag.xml", FEED, etag='"v1"')
    s.serve("/stale.xml", FEED)  # ignores validators: the body hash ends the poll
    first = client(_targets({"etag": s.base + "/etag.xml", "stale": s.base + "/stale.xml"}), Fetch())
    assert first["etag"]["status"] == "ok" and first["etag"]["etag"] == '"v1"'
    again = [
        PollTarget(0, "etag", "feed", s.base + "/etag.xml", etag='"v1"', body_hash=first["etag"]["body_hash"]),
        PollTarget(1, "stale", "feed", s.base + "/stale.xml", body_hash=first["stale"]["body_hash"]),
    ]
    second = client(again, Fetch())
    assert (second["etag"]["status"], second["etag"]["http_status"]) == ("not_modified", 304)
    assert second["etag"]["etag"] == '"v1"'
    assert (second["stale"]["status"], second["stale"]["http_status"]) == ("not_modified", 200)
    assert second["stale"]["body_hash"] == first["stale"]["body_hash"]
    hits = s.hits("/etag.xml")
    assert hits[1].get("if-none-match") == '"v1"'
    assert all(h["user-agent"] == Fetch.user_agent for h in hits)


def test_sitemap_index_followed_on_its_own_host(client: Client, feed_server: FeedServer) -> None:
    s = feed_server
    s.serve(
        "/news-sitemap.xml",
        news_sitemap(s.base, [("/a/1", "Putin meets Kim in Vladivostok", "2026-11-26T08:00:00+09:00")]),
        content_type="text/xml",
    )
    gz = gzip.compress(news_sitemap(s.base, [("/a/2", "Second story", "2026-11-26")]).encode())
    s.serve("/news-sitemap-2.xml.gz", gz, content_type="application/x-gzip")
    s.serve("/broken-child.xml", "gone", status=500)
    index = (
        '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{s.base}/news-sitemap.xml</loc><lastmod>2026-11-26</lastmod></sitemap>"
        f"<sitemap><loc>{s.base}/news-sitemap-2.xml.gz</loc><lastmod>2026-11-25</lastmod></sitemap>"
        f"<sitemap><loc>{s.base}/broken-child.xml</loc><lastmod>2026-11-24</lastmod></sitemap>"
        "<sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap></sitemapindex>"
    )
    s.serve("/sitemap-index.xml", index, content_type="text/xml")
    got = client(_targets({"map": s.base + "/sitemap-index.xml"}, "sitemap"), Fetch())["map"]
    assert got["status"] == "ok"
    items = {i["url"]: i for i in got["items"]}
    assert set(items) == {s.base + "/a/1", s.base + "/a/2"}
    assert items[s.base + "/a/1"]["title"] == "Putin meets Kim in Vladivostok"
    assert items[s.base + "/a/1"]["published"] == "2026-11-26T08:00:00+09:00"
    assert "other hosts" in got["warning"]
    assert "broken-child.xml: HTTP 500" in got["warning"]


def test_a_feed_source_that_serves_a_sitemap_and_a_corpus_feed(client: Client, feed_server: FeedServer) -> None:
    s = feed_server
    s.serve("/feed.xml", news_sitemap(s.base, [("/a/9", "Kursk", "2026-11-26")]), content_type="application/rss+xml")
    cyrillic = rss([("https://ru.example/1", "Путин встретился с Ким Чен Ыном", "Переговоры.")])
    s.serve("/ru.xml", cyrillic.replace("UTF-8", "windows-1251").encode("cp1251"), content_type="text/xml")
    got = client(_targets({"sniffed": s.base + "/feed.xml", "ru": s.base + "/ru.xml"}), Fetch())
    assert [i["title"] for i in got["sniffed"]["items"]] == ["Kursk"]
    assert [i["title"] for i in got["ru"]["items"]] == ["Путин встретился с Ким Чен Ыном"]


def test_a_host_in_backoff_in_the_process_policy_is_asked_by_neither_client(
    client: Client, feed_server: FeedServer
) -> None:
    """The one policy: a 429 heard earlier (by either client, in any crawl) holds for both."""
    feed_server.serve("/feed.xml", FEED)
    got = client(
        _targets({"held": feed_server.base + "/feed.xml"}),
        Fetch(obey_robots=False),
        backoff=[(feed_server.base + "/other.xml", 600)],
    )["held"]
    assert (got["status"], got["error_class"]) == ("error", "temporary")
    assert "back off" in got["error"] and 590 < got["retry_after"] <= 600
    assert feed_server.hits("/feed.xml") == []
