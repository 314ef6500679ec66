"""One long-lived Scrapy crawler per process, fed targets tick after tick (crawler/live.py).

Each test runs real ticks (``Poller.crawl``) in one child process on SQLite and on
PostgreSQL against loopback servers, and checks at the server what the hosts saw:
the crawler and its robots.txt cache are kept between ticks, ``host_delay`` holds from
one tick to the next, a hanging host delays neither another source nor the next tick,
and a reload that changes ``[fetch]`` (and only that) makes a new crawler.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.servers import FeedServer, Route
from tests.sources.helpers import Source, write_config

LISTING = """<html><body><ul>
<li><a class="l" href="/news/{n}-1">Putin and Kim sign a pact, part {n}</a></li>
<li><a class="l" href="/news/{n}-2">Russian officers visit Pyongyang, part {n}</a></li>
</ul></body></html>"""
NO_TEXT = 'full_text = false\ntimeout = "5s"'


def drive(config: Path, database_url: str, ticks: list[dict[str, Any]], timeout: float = 120) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    spec = {"config": str(config), "database_url": database_url, "ticks": ticks}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.crawler.live_driver"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def listing(n: int) -> Source:
    return Source(f"l{n}", "", "listing", extra='links = "a.l"')


def sources_on(server: FeedServer, count: int) -> list[Source]:
    out = []
    for n in range(1, count + 1):
        server.serve(f"/l{n}", LISTING.format(n=n), content_type="text/html; charset=utf-8")
        out.append(Source(f"l{n}", f"{server.base}/l{n}", "listing", extra='links = "a.l"'))
    return out


def timed(
    times: list[tuple[str, float]],
    body: bytes,
    sleep_first: float = 0.0,
    content_type: str = "text/html; charset=utf-8",
) -> Route:
    """A route that notes when each request reached the server (and may hang on the first)."""
    calls = {"n": 0}
    lock = threading.Lock()

    def handler(request: BaseHTTPRequestHandler) -> None:
        with lock:
            times.append((request.path, time.monotonic()))
            calls["n"] += 1
            first = calls["n"] == 1
        if first and sleep_first:
            time.sleep(sleep_first)
        request.send_response(200)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return Route(handler=handler)


def test_one_crawler_serves_every_tick(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    story = {"id": 7, "slug": "/world/kim-putin", "headline": "Kim and Putin sign a treaty"}
    data = {"props": {"pageProps": {"stories": [story]}}}
    script = f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>'
    feed_server.serve("/front", f"<html><body>{script}</body></html>", content_type="text/html")
    named = Source("next", f"{feed_server.base}/front", "spider", extra='spider = "nextdata"')
    config = write_config(tmp_path, [*sources_on(feed_server, 3), named], fetch=NO_TEXT)
    names = ["l1", "l2", "l3"]
    result = drive(config, database_url, [{"sources": [*names, "next"], "timeout": 30}] * 3)

    ticks = result["ticks"]
    assert len(ticks) == 3
    for tick in ticks:
        assert sorted(o["source"] for o in tick["outcomes"]) == [*names, "next"], tick
        assert {o["status"] for o in tick["outcomes"]} <= {"ok", "not_modified"}, tick
    # One crawler per spider (the generic one, the named one), each started once, its
    # stats adding up over the ticks.
    assert [t["starts"] for t in ticks] == [2, 2, 2]
    for spider in ("feeds", "nextdata"):
        assert len({t["live"][spider]["crawler"] for t in ticks}) == 1
        assert all(t["live"][spider]["running"] for t in ticks)
    assert [t["live"]["nextdata"]["fed"] for t in ticks] == [1, 2, 3]
    assert len(feed_server.hits("/front")) == 3
    requests = [t["live"]["feeds"]["requests"] for t in ticks]
    assert requests[0] >= 3 and requests[1] >= requests[0] + 3 and requests[2] >= requests[1] + 3, requests
    assert [t["live"]["feeds"]["fed"] for t in ticks] == [3, 6, 9]
    # The host saw every page once a tick, and robots.txt once in the life of each crawler.
    for n in names:
        assert len(feed_server.hits(f"/{n}")) == 3
    assert len(feed_server.hits("/robots.txt")) == 2
    # The end of the run stops it.
    assert result["running_after_close"] == []


def test_host_delay_holds_from_one_tick_to_the_next(tmp_path: Path, database_url: str) -> None:
    server = FeedServer()
    try:
        times: list[tuple[str, float]] = []
        server.routes["/l1"] = timed(times, LISTING.format(n=1).encode())
        server.routes["/robots.txt"] = timed(times, b"User-agent: *\nAllow: /\n")
        source = Source("l1", f"{server.base}/l1", "listing", extra='links = "a.l"')
        config = write_config(tmp_path, [source], fetch=NO_TEXT + '\nhost_delay = "1s"\nper_host = 1').read_text()
        # write_config's defaults come first; the later keys would be duplicates in TOML.
        config = config.replace('host_delay = "0s"\nper_host = 8\n', "", 1)
        path = tmp_path / "config.toml"
        path.write_text(config)
        result = drive(path, database_url, [{"sources": ["l1"], "timeout": 30}] * 3)
    finally:
        server.close()

    assert [len(t["outcomes"]) for t in result["ticks"]] == [1, 1, 1]
    # Every request the host saw (robots.txt at first, then the page each tick) came at
    # least host_delay after the one before, the ticks' boundaries included: a crawl per
    # tick would read robots.txt again at once, right after the last tick's page.
    paths = [p for p, _ in times]
    assert paths == ["/robots.txt", "/l1", "/l1", "/l1"], paths
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(times)]
    assert min(gaps) >= 0.95, gaps


def test_a_hanging_host_delays_neither_other_sources_nor_the_next_tick(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    slow = FeedServer()
    try:
        times: list[tuple[str, float]] = []
        # The first request hangs for 10 s (well inside the 20 s download timeout); later ones answer.
        slow.routes["/hang"] = timed(times, LISTING.format(n=9).encode(), sleep_first=10.0)
        fast = sources_on(feed_server, 2)
        hang = Source("hang", f"{slow.base}/hang", "listing", extra='links = "a.l"')
        config = write_config(tmp_path, [hang, *fast], fetch='full_text = false\ntimeout = "20s"')
        result = drive(
            config,
            database_url,
            [
                {"sources": ["hang", "l1"], "timeout": 5},
                {"sources": ["l2"], "timeout": 10},
                {"sources": ["hang"], "timeout": 10},
                # By now the first, abandoned request of "hang" has had its answer (at 10 s).
                {"sources": ["hang", "l1"], "timeout": 10, "pause": 6},
            ],
        )
    finally:
        slow.close()

    first, second, third, fourth = result["ticks"]
    by_source = {o["source"]: o for o in first["outcomes"]}
    assert sorted(by_source) == ["hang", "l1"]
    # The other source's outcome came well before the 5 s deadline, not at it (the bounds
    # leave room for a loaded CI machine: the first tick also starts the crawler).
    assert by_source["l1"]["status"] == "ok" and by_source["l1"]["at"] < 3.5, by_source
    # The hanging one is recorded failed at the deadline, as before.
    assert by_source["hang"]["status"] == "error"
    assert "did not complete" in (by_source["hang"]["error"] or "")
    assert 4.9 <= by_source["hang"]["at"] < 8.0, by_source
    assert by_source["l1"]["at"] < by_source["hang"]["at"] - 1.5, by_source
    # The next tick, on the same crawler while that request still hangs, is not held up.
    assert [o["source"] for o in second["outcomes"]] == ["l2"]
    assert second["outcomes"][0]["status"] == "ok" and second["took"] < 3.0, second
    # The hanging source polled again gets its own outcome, exactly one: the abandoned
    # poll's late answer (which arrived before the fourth tick) went nowhere.
    assert [(o["source"], o["status"]) for o in third["outcomes"]] == [("hang", "ok")], third
    assert sorted(o["source"] for o in fourth["outcomes"]) == ["hang", "l1"], fourth
    assert len({t["live"]["feeds"]["crawler"] for t in result["ticks"]}) == 1
    assert [p for p, _ in times] == ["/hang", "/hang", "/hang"]


def test_a_reload_that_changes_fetch_makes_a_new_crawler(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    sources = sources_on(feed_server, 1)
    first = write_config(tmp_path, sources, fetch=NO_TEXT + '\nuser_agent = "wirewatch-test/a"')
    a = first.read_text()
    (tmp_path / "a.toml").write_text(a)
    b = a.replace("wirewatch-test/a", "wirewatch-test/b")
    (tmp_path / "b.toml").write_text(b)
    # The same [fetch], a source's setting changed: the crawler is kept.
    c = b.replace('links = "a.l"', 'links = "a.l"\nlanguage = "en"')
    (tmp_path / "c.toml").write_text(c)
    result = drive(
        first,
        database_url,
        [
            {"sources": ["l1"], "timeout": 30},
            {"sources": ["l1"], "timeout": 30, "reload": str(tmp_path / "b.toml")},
            {"sources": ["l1"], "timeout": 30, "reload": str(tmp_path / "c.toml")},
        ],
    )

    ticks = result["ticks"]
    assert [len(t["outcomes"]) for t in ticks] == [1, 1, 1]
    assert [t["starts"] for t in ticks] == [1, 2, 2]
    crawlers = [t["live"]["feeds"]["crawler"] for t in ticks]
    assert crawlers[0] != crawlers[1] and crawlers[1] == crawlers[2]
    agents = [h["user-agent"] for h in feed_server.hits("/l1")]
    assert agents == ["wirewatch-test/a", "wirewatch-test/b", "wirewatch-test/b"]
    # The retired crawler finished and stopped; at the end none is left running.
    assert result["retiring_at_end"] == 0
    assert result["running_after_close"] == []


RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{n}</title>
<item><guid>{n}-1</guid><link>http://example.org/{n}/1</link><title>Kim and Putin meet, {n}</title>
<description>North Korean troops in Kursk, {n}.</description></item></channel></rss>"""


def test_feeds_and_spiders_on_one_host_share_its_slots_and_delay(tmp_path: Path, database_url: str) -> None:
    """Two feeds (the feed poller) and two listings (a Scrapy crawler) on one host with
    per_host = 1 and host_delay = 1s: the host sees one request at a time, a second apart,
    whichever client sends it (one policy per process, not one per client)."""
    server = FeedServer()
    try:
        times: list[tuple[str, float]] = []
        sources = []
        for n in (1, 2):
            server.routes[f"/f{n}.xml"] = timed(times, RSS.format(n=n).encode(), content_type="application/rss+xml")
            sources.append(Source(f"f{n}", f"{server.base}/f{n}.xml"))
            server.routes[f"/l{n}"] = timed(times, LISTING.format(n=n).encode())
            sources.append(Source(f"l{n}", f"{server.base}/l{n}", "listing", extra='links = "a.l"'))
        server.routes["/robots.txt"] = timed(times, b"User-agent: *\nAllow: /\n")
        config = write_config(tmp_path, sources, fetch=NO_TEXT + '\nhost_delay = "1s"\nper_host = 1').read_text()
        config = config.replace('host_delay = "0s"\nper_host = 8\n', "", 1)
        path = tmp_path / "config.toml"
        path.write_text(config)
        result = drive(path, database_url, [{"sources": ["f1", "l1", "f2", "l2"], "timeout": 40}])
    finally:
        server.close()

    (tick,) = result["ticks"]
    assert sorted((o["source"], o["status"]) for o in tick["outcomes"]) == [
        ("f1", "ok"),
        ("f2", "ok"),
        ("l1", "ok"),
        ("l2", "ok"),
    ], tick["outcomes"]
    paths = sorted(p for p, _ in times)
    assert [p for p in paths if p != "/robots.txt"] == ["/f1.xml", "/f2.xml", "/l1", "/l2"], paths
    # Each client spacing only its own requests let a feed and a listing reach the host
    # 0.01-0.06 s apart.  Measured at the server, a gap can come out short of the delay:
    # the policy spaces the starts, and a request on a new connection arrives later after
    # its start than the next one (0.88-0.93 s seen for the first gap; under CI's load a
    # Scrapy robots.txt arrived 0.3 s late, leaving 0.70 s to the request after it).  A
    # late arrival shortens one gap and lengthens the one before it, so the span of the
    # requests still shows the delay between every pair of starts, except for the very
    # first request of the process, which has no gap before it and pays each client's
    # first-use costs after its slot starts (0.64-0.71 s to the next one on a slow
    # machine with either HTTP client, 0.06 s with the machine overloaded): the span is
    # counted from the second arrival, and one gap may be short.  Clients spacing only
    # their own requests leave two or more gaps of 0.01-0.06 s, which this still fails.
    arrivals = sorted(t for _, t in times)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sorted(gaps)[1] >= 0.9, (gaps, times)
    assert arrivals[-1] - arrivals[1] >= 0.95 * (len(arrivals) - 2), (gaps, times)
