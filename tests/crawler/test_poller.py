"""The FeedPoller and its FetchPolicy against real loopback servers, on each HTTP client (aiohttp, libcurl).

What only the long-lived poller can show: politeness that holds across polls of one
process (per-host slots, spacing, 429 backoff, robots.txt cached with a TTL), the egress
check applied to the address actually connected (IP literal, a name resolved by DNS, a
redirect hop), page fetches for enrichment under the same policy, parsing in a process
pool, and one outcome per target at scale.  The only fake is the policy's clock.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

import crawler.poller as poller_module
from crawler.policy import FetchPolicy, HostBackoff
from crawler.poller import CLIENTS, FeedPoller
from monitor.core.models import PollOutcome, PollTarget
from tests.feeds import rss
from tests.servers import FeedServer, Route

FEED = rss([(f"https://wire.example/{i}", f"Story {i}", "Teaser.") for i in range(3)])
UA = "wirewatch-test/2"


@pytest.fixture(autouse=True, params=CLIENTS)
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs once per client: the FeedPoller's default is the one under test."""
    monkeypatch.setattr(poller_module, "DEFAULT_CLIENT", request.param)
    return str(request.param)


def policy(**kw: Any) -> FetchPolicy:
    return FetchPolicy(user_agent=UA, **{"per_host": 8, "host_delay": 0.0, **kw})


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def poll_all(poller: FeedPoller, targets: list[PollTarget]) -> dict[str, PollOutcome]:
    return {o.source: o async for o in poller.poll(targets)}


def test_per_host_concurrency_is_held_across_polls(feed_server: FeedServer) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def counted(h: BaseHTTPRequestHandler) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        body = FEED.encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    for i in range(12):
        feed_server.routes[f"/f{i}.xml"] = Route(handler=counted)

    async def main() -> None:
        async with FeedPoller(policy(per_host=2, obey_robots=False), concurrency=32, timeout=10) as poller:
            # Two polls at once, as two stages of one process would: still two per host.
            first = poll_all(poller, [PollTarget(i, f"a{i}", "feed", f"{feed_server.base}/f{i}.xml") for i in range(6)])
            second = poll_all(
                poller, [PollTarget(i, f"b{i}", "feed", f"{feed_server.base}/f{i}.xml") for i in range(6, 12)]
            )
            results = await asyncio.gather(first, second)
            assert all(o.status == "ok" for r in results for o in r.values())

    run(main())
    assert state["max"] == 2


def test_host_delay_spaces_requests(feed_server: FeedServer) -> None:
    for i in range(3):
        feed_server.serve(f"/d{i}.xml", FEED)
    times: list[float] = []

    async def main() -> None:
        async with FeedPoller(policy(per_host=4, host_delay=0.3, obey_robots=False), timeout=10) as poller:
            for i in range(3):
                start = time.monotonic()
                outcome = await poller.poll_one(PollTarget(i, f"d{i}", "feed", f"{feed_server.base}/d{i}.xml"))
                assert outcome.status == "ok"
                times.append(time.monotonic() - start)

    run(main())
    # The first goes at once; each later one waits out the delay since the previous start.
    assert times[0] < 0.25 and times[1] >= 0.2 and times[2] >= 0.2


def test_a_host_that_said_429_is_not_asked_again_in_this_process(feed_server: FeedServer) -> None:
    feed_server.serve("/busy.xml", "later", status=429, headers={"Retry-After": "120"})
    feed_server.serve("/other.xml", FEED)

    async def main() -> tuple[PollOutcome, PollOutcome, Any]:
        async with FeedPoller(policy(obey_robots=False), timeout=5) as poller:
            first = await poller.poll_one(PollTarget(1, "busy", "feed", feed_server.base + "/busy.xml"))
            # A later poll (another tick) of another source on the same host, and a page fetch.
            second = await poller.poll_one(PollTarget(2, "other", "feed", feed_server.base + "/other.xml"))
            page = await poller.fetch_page(feed_server.base + "/article")
            return first, second, page

    first, second, page = run(main())
    assert (first.status, first.error_class, first.retry_after) == ("error", "temporary", 120)
    assert second.status == "error" and "back off" in (second.error or "")
    assert second.retry_after is not None and 110 < second.retry_after <= 120
    assert page.error is not None and page.retry_after is not None
    assert feed_server.hits("/other.xml") == [] and feed_server.hits("/article") == []


def test_backoff_and_robots_ttl_follow_the_policy_clock(feed_server: FeedServer) -> None:
    feed_server.serve("/robots.txt", "User-agent: *\nDisallow: /no/\n", content_type="text/plain")
    feed_server.serve("/feed.xml", FEED)
    feed_server.serve("/no/feed.xml", FEED)
    clock = [1000.0]

    async def main() -> list[PollOutcome]:
        pol = policy(robots_ttl=60.0, clock=lambda: clock[0])
        async with FeedPoller(pol, timeout=5) as poller:
            out = [await poller.poll_one(PollTarget(1, "a", "feed", feed_server.base + "/feed.xml"))]
            out.append(await poller.poll_one(PollTarget(2, "b", "feed", feed_server.base + "/no/feed.xml")))
            assert len(feed_server.hits("/robots.txt")) == 1  # cached for the host
            clock[0] += 61  # the robots.txt has expired: read again, and now it allows /no/
            feed_server.serve("/robots.txt", "User-agent: *\nDisallow:\n", content_type="text/plain")
            out.append(await poller.poll_one(PollTarget(2, "b", "feed", feed_server.base + "/no/feed.xml")))
            pol.note_response(feed_server.base + "/x", 503, None)  # no Retry-After: a minute
            with pytest.raises(HostBackoff):
                async with pol.slot(feed_server.base + "/feed.xml"):
                    pass
            clock[0] += 61
            async with pol.slot(feed_server.base + "/feed.xml"):
                pass
            return out

    a, b_denied, b_allowed = run(main())
    assert a.status == "ok"
    assert b_denied.error_class == "permanent" and "robots.txt" in (b_denied.error or "")
    assert b_allowed.status == "ok"
    assert len(feed_server.hits("/robots.txt")) == 2
    assert len(feed_server.hits("/no/feed.xml")) == 1


def test_crawl_delay_from_robots_spaces_requests(feed_server: FeedServer) -> None:
    feed_server.serve("/robots.txt", "User-agent: *\nCrawl-delay: 0.4\n", content_type="text/plain")
    feed_server.serve("/c.xml", FEED)

    async def main() -> float:
        async with FeedPoller(policy(), timeout=5) as poller:
            await poller.poll_one(PollTarget(1, "c1", "feed", feed_server.base + "/c.xml"))
            start = time.monotonic()
            await poller.poll_one(PollTarget(2, "c2", "feed", feed_server.base + "/c.xml"))
            return time.monotonic() - start

    assert run(main()) >= 0.3


class Egress:
    """An egress check of EgressPolicy.refusal's shape: refuses the listed (ip, port)s, records calls."""

    def __init__(self, refuse: set[tuple[str, int]]) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, int, str | None]] = []

    def __call__(self, ip: str, port: int, *, source_url: str | None = None, host: str | None = None) -> str | None:
        self.calls.append((ip, port, source_url))
        return f"{ip} is a loopback address" if (ip, port) in self.refuse else None


def test_egress_is_checked_on_the_connected_address() -> None:
    allowed, refused = FeedServer(), FeedServer()
    try:
        allowed.serve("/feed.xml", FEED)
        refused.serve("/feed.xml", FEED)
        allowed.routes["/hop.xml"] = Route(handler=_redirect(f"http://localhost:{refused.port}/feed.xml"))
        egress = Egress({("127.0.0.1", refused.port), ("::1", refused.port)})
        targets = [
            PollTarget(1, "ok", "feed", allowed.base + "/feed.xml"),
            PollTarget(2, "literal", "feed", refused.base + "/feed.xml"),
            # A name: the check sees the address DNS gave, not the name.
            PollTarget(3, "by-name", "feed", f"http://localhost:{refused.port}/feed.xml"),
            # A redirect from an allowed host to a refused address is refused at the hop.
            PollTarget(4, "redirect", "feed", allowed.base + "/hop.xml"),
        ]

        async def main() -> dict[str, PollOutcome]:
            async with FeedPoller(policy(obey_robots=False), timeout=5, egress=egress) as poller:
                return await poll_all(poller, targets)

        got = run(main())
    finally:
        allowed.close()
        refused.close()
    assert got["ok"].status == "ok"
    for name in ("literal", "by-name", "redirect"):
        assert got[name].error_class == "permanent", (name, got[name].error)
        assert "egress" in (got[name].error or ""), got[name].error
    assert refused.requests == [], "nothing was sent to the refused address"
    assert ("127.0.0.1", allowed.port, allowed.base + "/feed.xml") in egress.calls
    assert any(ip in ("127.0.0.1", "::1") and src and "localhost" in src for ip, _, src in egress.calls)


def _redirect(to: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def test_fetch_page_for_enrichment(feed_server: FeedServer) -> None:
    feed_server.serve("/robots.txt", "User-agent: *\nDisallow: /secret/\n", content_type="text/plain")
    feed_server.serve("/a/1", "<html><body><p>Article</p></body></html>", content_type="text/html; charset=utf-8")
    feed_server.serve("/secret/2", "<html></html>", content_type="text/html")

    async def main() -> tuple[Any, Any]:
        async with FeedPoller(policy(), timeout=5) as poller:
            page = await poller.fetch_page(feed_server.base + "/a/1", source_url=feed_server.base + "/feed.xml")
            denied = await poller.fetch_page(feed_server.base + "/secret/2")
            return page, denied

    page, denied = run(main())
    assert page.status == 200 and b"Article" in page.body and page.headers["content-type"].startswith("text/html")
    assert denied.error_class == "permanent" and "robots.txt" in (denied.error or "")
    assert feed_server.hits("/a/1")[0]["user-agent"] == UA
    assert feed_server.hits("/a/1")[0]["accept"].startswith("text/html")


def test_parsing_in_a_process_pool(feed_server: FeedServer) -> None:
    feed_server.serve("/feed.xml", FEED)
    feed_server.serve("/page.html", "<html><head></head><body>no feed</body></html>", content_type="text/html")

    async def main() -> dict[str, PollOutcome]:
        # The parser must cross a process boundary: the daemon's CpuPool parses in forkserver workers.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
            async with FeedPoller(policy(obey_robots=False), timeout=5, executor=pool) as poller:
                return await poll_all(
                    poller,
                    [
                        PollTarget(1, "feed", "feed", feed_server.base + "/feed.xml"),
                        PollTarget(2, "page", "feed", feed_server.base + "/page.html"),
                    ],
                )

    got = run(main())
    assert [i.title for i in got["feed"].items] == ["Story 0", "Story 1", "Story 2"]
    assert got["page"].error_class == "permanent" and "HTML page" in (got["page"].error or "")


def test_one_outcome_per_target_at_scale(feed_server: FeedServer) -> None:
    for i in range(300):
        feed_server.serve(f"/s{i}.xml", FEED, etag=f'"e{i}"')
    targets = [
        PollTarget(i, f"s{i}", "feed", f"{feed_server.base}/s{i}.xml", etag=f'"e{i}"' if i % 2 else None)
        for i in range(300)
    ]

    async def main() -> dict[str, PollOutcome]:
        async with FeedPoller(policy(per_host=16, obey_robots=False), concurrency=16, max_in_flight=50) as poller:
            return await poll_all(poller, targets)

    got = run(main())
    assert len(got) == 300
    assert {got[f"s{i}"].status for i in range(1, 300, 2)} == {"not_modified"}
    assert {got[f"s{i}"].status for i in range(0, 300, 2)} == {"ok"}


def test_listing_and_spider_sources_are_refused_loudly() -> None:
    async def main() -> None:
        async with FeedPoller(policy()) as poller:
            with pytest.raises(ValueError, match="Scrapy polls it"):
                async for _ in poller.poll([PollTarget(1, "l", "listing", "http://127.0.0.1:1/")]):
                    pass

    run(main())


def test_closing_the_poller_ends_a_request_in_flight(feed_server: FeedServer) -> None:
    """A poll whose response never comes ends as an error when the poller closes, never hangs."""
    from tests.sources.test_misbehaving import slow

    feed_server.routes["/slow.xml"] = Route(handler=slow)  # answers after 10 s

    async def main() -> tuple[PollOutcome, float]:
        poller = FeedPoller(policy(obey_robots=False), timeout=30)
        task = asyncio.ensure_future(poller.poll_one(PollTarget(1, "slow", "feed", f"{feed_server.base}/slow.xml")))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await poller.close()
        outcome = await asyncio.wait_for(task, 5)
        return outcome, time.monotonic() - started

    outcome, took = run(main())
    assert outcome.status == "error" and outcome.error_class == "temporary", outcome
    assert took < 5


def test_a_kept_alive_connection_is_not_lent_to_a_source_the_address_refuses() -> None:
    """The connection cache is keyed by host and port; the egress decision also by source.

    Source A's own URL is on a loopback server, which the real policy allows A alone.  A's
    poll leaves a connection to it alive; source B (on another loopback port) redirects
    there, and that hop must be refused for B, reused connection or not.
    """
    from crawler.egress import EgressPolicy

    a_server, b_server = FeedServer(), FeedServer()
    try:
        a_server.serve("/feed.xml", FEED)
        b_server.routes["/hop.xml"] = Route(handler=_redirect(f"{a_server.base}/feed.xml"))

        async def main() -> tuple[PollOutcome, PollOutcome]:
            async with FeedPoller(policy(obey_robots=False), timeout=5, egress=EgressPolicy().refusal) as poller:
                a = await poller.poll_one(PollTarget(1, "a", "feed", a_server.base + "/feed.xml"))
                b = await poller.poll_one(PollTarget(2, "b", "feed", b_server.base + "/hop.xml"))
                return a, b

        a, b = run(main())
    finally:
        a_server.close()
        b_server.close()
    assert a.status == "ok", a.error
    assert b.status == "error" and b.error_class == "permanent" and "egress" in (b.error or ""), b.error
    assert len(a_server.requests) == 1, "B's hop never reached A's server"
