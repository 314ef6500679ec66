"""A loopback server that misbehaves on purpose, polled by the real ``wirewatch run --once``.

Each misbehaviour ends in the right recorded state: an error with its class
(temporary/permanent) and Retry-After honoured, or a success that kept what parsed with
a warning.  robots.txt disallow is honoured, and nothing is ever silently dropped:
every source has exactly one recorded poll.
"""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer, Route, free_port
from tests.sources.helpers import Source, run_once, sources_json, states, stored, write_config

# Each test runs the real CLI as a subprocess, on SQLite and PostgreSQL.
pytestmark = pytest.mark.slow

FEED = rss([(f"g{i}", f"Story number {i}", "Short teaser.") for i in range(5)])


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def slow(h: BaseHTTPRequestHandler) -> None:
    time.sleep(10)
    _send(h, 200, FEED.encode(), {"Content-Type": "application/rss+xml", "Content-Length": str(len(FEED))})


def truncated_transfer(h: BaseHTTPRequestHandler) -> None:
    body = FEED.encode()
    cut = body[: body.index(b"<item>", body.index(b"g3"))]  # four whole items (g0-g3), then the connection drops
    h.send_response(200)
    h.send_header("Content-Type", "application/rss+xml")
    h.send_header("Content-Length", str(len(body)))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(cut)
    h.wfile.flush()
    h.close_connection = True


def redirect(to: str) -> object:
    def handler(h: BaseHTTPRequestHandler) -> None:
        _send(h, 302, b"", {"Location": to, "Content-Length": "0"})

    return handler


def test_misbehaving_server(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    s = feed_server
    base = s.base
    s.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    s.serve("/private/feed.xml", FEED)
    # 429/503 make the whole host off limits for the rest of the crawl: their own servers.
    busy, down = FeedServer(), FeedServer()
    busy.serve("/429.xml", "slow down", status=429, headers={"Retry-After": "7200"})
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    down.serve("/503.xml", "maintenance", status=503, headers={"Retry-After": later})
    s.serve("/404.xml", "gone", status=404)
    s.routes["/slow.xml"] = Route(handler=slow)
    s.routes["/truncated-transfer.xml"] = Route(handler=truncated_transfer)
    s.serve("/truncated-xml.xml", FEED[: FEED.index("<item>", FEED.index("g3"))])
    s.serve("/huge.xml", FEED.replace("Short teaser.", "x" * 300_000))
    s.serve("/gzip-encoded.xml", gzip.compress(FEED.encode()), headers={"Content-Encoding": "gzip"})
    s.serve("/gzip-file.xml.gz", gzip.compress(FEED.encode()), content_type="application/x-gzip")
    s.routes["/loop.xml"] = Route(handler=redirect("/loop2.xml"))
    s.routes["/loop2.xml"] = Route(handler=redirect("/loop.xml"))
    s.routes["/to-file.xml"] = Route(handler=redirect("file:///etc/passwd"))
    s.serve("/wrong-type.xml", FEED, content_type="text/html; charset=iso-8859-1")
    page = (
        '<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/real-feed.xml">'
        "</head><body>News</body></html>"
    )
    s.serve("/page.html", page, content_type="text/html")
    s.serve("/ttl.xml", FEED.replace("<description>t</description>", "<description>t</description><ttl>90</ttl>"))
    s.serve("/max-age.xml", FEED, headers={"Cache-Control": "public, max-age=1800"})
    closed = free_port()
    cases = {
        "robots": "/private/feed.xml",
        "not-found": "/404.xml",
        "slow": "/slow.xml",
        "truncated-transfer": "/truncated-transfer.xml",
        "truncated-xml": "/truncated-xml.xml",
        "huge": "/huge.xml",
        "gzip-encoded": "/gzip-encoded.xml",
        "gzip-file": "/gzip-file.xml.gz",
        "redirect-loop": "/loop.xml",
        "redirect-to-file": "/to-file.xml",
        "wrong-type": "/wrong-type.xml",
        "html-page": "/page.html",
        "ttl": "/ttl.xml",
        "max-age": "/max-age.xml",
    }
    sources = [Source(name, base + path) for name, path in cases.items()]
    sources.append(Source("rate-limited", busy.base + "/429.xml"))
    sources.append(Source("unavailable", down.base + "/503.xml"))
    sources.append(Source("refused", f"http://127.0.0.1:{closed}/feed.xml"))
    # https:// to a server that speaks plain HTTP: the TLS handshake fails.  (Another port
    # than the robots.txt case: Scrapy keys robots.txt by host:port, not by scheme.)
    plain = FeedServer()
    sources.append(Source("tls", f"https://127.0.0.1:{plain.port}/feed.xml"))
    config = write_config(tmp_path, sources, fetch='timeout = "4s"\nmax_body = "100KB"\nfull_text = false')
    before = datetime.now(UTC)
    output = run_once(config, database_url)
    (tmp_path / "output.txt").write_text(output + "\n".join(str(r) for r in s.requests))
    for server in (plain, busy, down):
        server.close()

    st = states(database_url)
    assert all(x.last_polled is not None for x in st.values()), "every source has a recorded poll"

    def failed(name: str, error_class: str, *words: str) -> None:
        x = st[name]
        assert x.consecutive_failures == 1, (name, x.last_error)
        assert x.error_class == error_class, (name, x.error_class, x.last_error)
        for w in words:
            assert w.lower() in (x.last_error or "").lower(), (name, x.last_error)

    def ok(name: str, count: int, warning: str | None = None) -> None:
        x = st[name]
        assert x.consecutive_failures == 0, (name, x.last_error)
        assert len(stored(database_url, name)) == count, name
        if warning:
            assert warning in (x.last_warning or ""), (name, x.last_warning)

    failed("robots", "permanent", "robots.txt")
    assert s.hits("/private/feed.xml") == [], "a disallowed URL is never requested"
    failed("rate-limited", "temporary", "429")
    assert st["rate-limited"].next_due is not None and st["rate-limited"].next_due >= before + timedelta(seconds=7000)
    failed("unavailable", "temporary", "503")
    assert st["unavailable"].next_due is not None and st["unavailable"].next_due >= before + timedelta(
        hours=2, minutes=50
    )
    failed("not-found", "permanent", "404")
    failed("slow", "temporary", "timed out")
    failed("huge", "permanent", "max_body")
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
    ok("ttl", 5)
    ok("max-age", 5)
    # The source's own floor beats the configured 5m: <ttl>90</ttl> and max-age=1800.
    assert st["ttl"].min_interval == 90 * 60 and st["ttl"].next_due is not None
    assert st["ttl"].next_due >= before + timedelta(minutes=89)
    assert st["max-age"].min_interval == 1800

    # Health is visible to the operator.
    health = sources_json(config, database_url)
    assert health["rate-limited"]["status"] == "failing"
    assert health["rate-limited"]["consecutive_failures"] == 1
    assert health["huge"]["error_class"] == "permanent"
    assert health["gzip-file"]["status"] == "ok"


def test_user_agent_and_conditional_get(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed.xml", FEED, etag='"v1"')
    config = write_config(
        tmp_path, [Source("wire", url)], fetch='user_agent = "wirewatch-test/9 (+https://example.org/ops)"'
    )
    run_once(config, database_url)
    run_once(config, database_url)
    hits = feed_server.hits("/feed.xml")
    assert len(hits) == 2
    assert all(h["user-agent"] == "wirewatch-test/9 (+https://example.org/ops)" for h in hits)
    assert hits[1].get("if-none-match") == '"v1"'
    robots = feed_server.hits("/robots.txt")
    assert robots and robots[0]["user-agent"].startswith("wirewatch-test/9")
    assert states(database_url)["wire"].consecutive_failures == 0


def test_non_http_source_url_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, [Source("local", "file:///etc/passwd")])
    result = run_cli("check", config=config)
    assert result.returncode == 2
    assert "only http(s) URLs can be polled" in result.stderr + result.stdout
