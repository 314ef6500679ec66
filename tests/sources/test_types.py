"""Sitemap, listing and spider sources, and full-text fetching, through the real CLI on loopback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer
from tests.sources.helpers import Source, run_once, states, stored, write_config

# Each test runs the real CLI as a subprocess, on SQLite and PostgreSQL.
pytestmark = pytest.mark.slow


def article_page(title: str, body: str, sidebar: str) -> str:
    paragraphs = "".join(
        f"<p>{body} Paragraph {i} adds more reporting detail to the story so it reads long.</p>" for i in range(6)
    )
    return f"""<!doctype html><html><head><title>{title} | Wire</title>
<meta property="og:title" content="{title}"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<main><article><h1>{title}</h1>{paragraphs}</article></main>
<aside class="most-read"><h2>Most read</h2><ul><li><a href="/x">{sidebar}</a></li></ul></aside>
<footer>© Wire</footer></body></html>"""


def news_sitemap(base: str, entries: list[tuple[str, str, str]]) -> str:
    urls = "".join(
        f"<url><loc>{base}{path}</loc><news:news><news:publication><news:name>Wire</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date><news:title>{title}</news:title></news:news></url>"
        for path, title, date in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    )


def test_sitemap_index_news_fields_and_gzip(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    s = feed_server
    s.serve(
        "/news-sitemap.xml",
        news_sitemap(s.base, [("/a/1", "Putin meets Kim in Vladivostok", "2026-11-26T08:00:00+09:00")]),
        content_type="text/xml",
    )
    gz = gzip.compress(news_sitemap(s.base, [("/a/2", "Second story", "2026-11-26")]).encode())
    s.serve("/news-sitemap-2.xml.gz", gz, content_type="application/x-gzip")
    index = (
        '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{s.base}/news-sitemap.xml</loc><lastmod>2026-11-26</lastmod></sitemap>"
        f"<sitemap><loc>{s.base}/news-sitemap-2.xml.gz</loc><lastmod>2026-11-25</lastmod></sitemap>"
        "<sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap></sitemapindex>"
    )
    s.serve("/sitemap-index.xml", index, content_type="text/xml")
    for i in (1, 2):
        s.serve(f"/a/{i}", article_page("Ignored title", f"Story {i} body text.", "Sidebar"), content_type="text/html")
    config = write_config(tmp_path, [Source("news-map", s.base + "/sitemap-index.xml", "sitemap")])
    run_once(config, database_url)

    items = {i["url"]: i for i in stored(database_url, "news-map")}
    assert set(items) == {s.base + "/a/1", s.base + "/a/2"}
    first = items[s.base + "/a/1"]
    assert first["title"] == "Putin meets Kim in Vladivostok"  # news:title, not the page's
    assert first["language"] == "en"
    assert first["published"].isoformat() == "2026-11-25T23:00:00+00:00"  # the +09:00 offset honoured
    assert "Story 1 body text." in first["text"]  # a sitemap has no text: the page was read
    st = states(database_url)["news-map"]
    assert st.consecutive_failures == 0
    assert "other hosts" in (st.last_warning or "")


def test_listing_page_with_selector(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    s = feed_server
    listing = """<html><body><nav><a href="/about">About us</a></nav>
      <div class="river"><h3 class="headline"><a href="/news/1">Kim Jong Un visits Moscow</a></h3>
      <h3 class="headline"><a href="/news/2?utm_source=x">Second headline</a></h3>
      <h3 class="headline"><a href="mailto:desk@example.org">Write to us</a></h3></div>
      <aside><a href="/popular/9">Popular elsewhere</a></aside></body></html>"""
    s.serve("/world/", listing, content_type="text/html; charset=utf-8")
    s.serve(
        "/news/1",
        article_page("Kim Jong Un visits Moscow", "Kim arrived by train.", "Putin sidebar"),
        content_type="text/html",
    )
    s.serve("/news/2", article_page("Second headline", "Nothing to see.", "Putin sidebar"), content_type="text/html")
    source = Source("world-listing", s.base + "/world/", "listing", extra='links = "h3.headline a"')
    config = write_config(tmp_path, [source])
    run_once(config, database_url)
    items = stored(database_url, "world-listing")
    assert [i["title"] for i in items] == ["Kim Jong Un visits Moscow", "Second headline"]
    assert "Kim arrived by train." in items[0]["text"]
    assert s.hits("/popular/9") == [] and s.hits("/about") == []

    # Second poll: nothing changed, so nothing is fetched again (body hash), not even the articles.
    run_once(config, database_url)
    assert len(s.hits("/news/1")) == 1


def test_full_text_only_for_short_new_items_and_not_sidebars(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    s = feed_server
    long_summary = "A complete summary that is long enough to stand for the article. " * 10
    entries = [("t1", "Talks in Pyongyang", "Short teaser."), ("t2", "Long one", long_summary)]
    feed = rss(entries).replace("https://news.example.org/", s.base + "/story/")
    s.serve("/feed.xml", feed, etag='"v1"')
    s.serve(
        "/story/t1?utm_source=rss",
        article_page("Talks in Pyongyang", "Delegations met for hours.", "Putin wins again"),
        content_type="text/html",
    )
    s.serve("/story/t2?utm_source=rss", article_page("Long one", "Body.", "Putin"), content_type="text/html")
    config = write_config(tmp_path, [Source("wire", s.base + "/feed.xml")])
    run_once(config, database_url)
    assert len(s.hits("/story/t1?utm_source=rss")) == 1
    assert s.hits("/story/t2?utm_source=rss") == []  # its summary is the article
    items = {i["title"]: i for i in stored(database_url, "wire")}
    assert "Delegations met for hours." in items["Talks in Pyongyang"]["text"]
    assert "Putin" not in items["Talks in Pyongyang"]["text"]  # the "most read" box stays out
    # The rule "putin" therefore does not fire on a page that names him only in its sidebar.
    result = run_cli("rules", "test", "--json", config=config, database_url=database_url)
    assert json.loads(result.stdout)["matches"] == []

    # A new entry appears: only it is fetched, the stored one is not fetched again.
    entries.append(("t3", "Third", ""))
    s.serve("/feed.xml", rss(entries).replace("https://news.example.org/", s.base + "/story/"), etag='"v2"')
    s.serve("/story/t3?utm_source=rss", article_page("Third", "Third body.", "x"), content_type="text/html")
    run_once(config, database_url)
    assert len(s.hits("/story/t1?utm_source=rss")) == 1
    assert len(s.hits("/story/t3?utm_source=rss")) == 1


def test_spider_source_and_unknown_spider(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    s = feed_server
    data = {
        "props": {
            "pageProps": {
                "section": {"title": "World"},
                "stories": [
                    {
                        "id": 11,
                        "slug": "/world/kim-putin",
                        "headline": "Kim and Putin sign treaty",
                        "publishedAt": "2026-11-26T10:00:00Z",
                        "dek": "Short.",
                    },
                    {"id": 12, "url": f"{s.base}/world/other", "title": "Other story"},
                ],
            }
        }
    }
    script = f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>'
    page = f'<html><body><div id="__next"></div>{script}</body></html>'
    s.serve("/front", page, content_type="text/html")
    s.serve(
        "/world/kim-putin", article_page("Kim and Putin sign treaty", "The treaty text.", "x"), content_type="text/html"
    )
    s.serve("/world/other", article_page("Other story", "Other body.", "x"), content_type="text/html")
    sources = [
        Source("next-site", s.base + "/front", "spider", extra='spider = "nextdata"'),
        Source("no-such", s.base + "/front", "spider", extra='spider = "nope"'),
    ]
    config = write_config(tmp_path, sources)
    run_once(config, database_url)
    items = stored(database_url, "next-site")
    assert [i["title"] for i in items] == ["Kim and Putin sign treaty", "Other story"]
    assert items[0]["url"] == s.base + "/world/kim-putin"
    st = states(database_url)
    assert "The treaty text." in items[0]["text"], (st["next-site"].last_warning, [p for p, _ in s.requests])
    assert st["no-such"].error_class == "permanent" and "no spider named 'nope'" in (st["no-such"].last_error or "")


def test_first_poll_is_silent_for_every_type(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp_server: object
) -> None:
    s = feed_server
    s.serve("/feed.xml", rss([("p1", "Putin speaks", "Putin.")]))
    s.serve("/sitemap.xml", news_sitemap(s.base, [("/p/2", "Putin again", "2026-11-26")]), content_type="text/xml")
    s.serve("/list", '<a class="l" href="/p/3">Putin thrice</a>', content_type="text/html")
    for p in ("/p/2", "/p/3"):
        s.serve(p, article_page("Putin", "Putin said things.", "x"), content_type="text/html")
    sources = [
        Source("f", s.base + "/feed.xml"),
        Source("m", s.base + "/sitemap.xml", "sitemap"),
        Source("l", s.base + "/list", "listing", extra='links = "a.l"'),
    ]
    tail = f'notify = ["ops"]\n\n[[subscribers]]\nname = "ops"\nurls = ["{smtp_server.url()}"]\n'  # type: ignore[attr-defined]
    config = write_config(tmp_path, sources, tail=tail)
    run_once(config, database_url)
    assert all(len(stored(database_url, n)) == 1 for n in ("f", "m", "l"))
    assert smtp_server.messages == []  # type: ignore[attr-defined]


def test_adaptive_schedule_follows_publishing(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    entries = [("b1", "Backlog", "x")]
    url = feed_server.serve("/feed.xml", rss(entries))
    config = write_config(tmp_path, [Source("wire", url)], fetch="full_text = false")
    run_once(config, database_url)
    assert states(database_url)["wire"].poll_interval == 300  # first poll: the backlog says nothing
    entries += [("n1", "New one", "x"), ("n2", "New two", "x")]
    feed_server.serve("/feed.xml", rss(entries))
    run_once(config, database_url)
    busy = states(database_url)["wire"]
    assert busy.poll_interval == 150 and busy.last_new_item is not None
    run_once(config, database_url)  # body unchanged: nothing new, the interval lengthens again
    assert states(database_url)["wire"].poll_interval == 187
