"""Downloader middlewares that make wirewatch a good citizen towards the hosts it polls.

:class:`HostBackoffMiddleware`: when a host answers 429 or 503 (with or without
Retry-After), every later request to that host in the same crawl fails at once with
:class:`HostBackoff` instead of being sent, so a host that said "later" is not asked
again by the next source or article on it; the failure carries the Retry-After, which
the schedule honours.  :class:`SchemeGuardMiddleware`: only http and https leave the
process (a feed entry linking to ``file:///etc/passwd`` must never be read).
:class:`PolicySlotMiddleware`: with the process's ``FetchPolicy``, every request holds
one of its per-host slots (``per_host``, spaced by ``host_delay`` or robots.txt's
Crawl-delay) from just before it is sent until its response or error, so the aiohttp
poller and every Scrapy crawler of the process share one limit per host (Scrapy's own
``DOWNLOAD_DELAY`` is then 0: the policy spaces the requests).  Without a policy (a
crawl of Scrapy's own tools) Scrapy's download slots do it, per crawl.
:class:`SharedRobotsTxtMiddleware` fixes Scrapy 2.19's robots.txt middleware, which
hands the parsed robots.txt only to the *first* request that waited for it: every other
request to the host that was queued meanwhile got ``None`` and was let through
(``Deferred.asFuture`` consumes the result; found here with several sources on one host);
in a long-lived crawler it also reads robots.txt again after ``ROBOTS_TTL``, as the
policy does for the aiohttp poller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.policy import DEFAULT_BACKOFF, MAX_BACKOFF, ROBOTS_TTL, FetchPolicy
from crawler.policy import HostBackoff as PolicyBackoff
from monitor.core.http import BACKOFF_STATUSES, parse_retry_after


class HostBackoff(IgnoreRequest):
    """A request not sent because its host asked us to back off."""

    def __init__(self, host: str, retry_after: float) -> None:
        self.host = host
        self.retry_after = retry_after
        super().__init__(f"{host} asked us to back off (429/503); not asked again for {retry_after:.0f}s")


class HostBackoffMiddleware:
    """Per-crawl 429/503 backoff; with the process's ``FetchPolicy`` (``WIREWATCH_POLICY``), its backoff too.

    With a policy, a host that told the aiohttp poller (or an earlier crawl) to back off
    is not asked by this crawl either, and what this crawl hears is recorded there.
    """

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.until: dict[str, float] = {}
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostBackoffMiddleware:
        return cls(crawler.settings.get("WIREWATCH_POLICY"))

    def process_request(self, request: Request, spider: Any = None) -> None:
        host = urlparse_cached(request).netloc
        if self.policy is not None and not request.url.endswith("/robots.txt"):
            shared = self.policy.backoff_left(request.url)
            if shared is not None:
                raise HostBackoff(host, shared)
        until = self.until.get(host)
        if until is not None and not request.url.endswith("/robots.txt"):
            left = until - time.monotonic()
            if left > 0:
                raise HostBackoff(host, left)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if self.policy is not None:
            self.policy.note_response(request.url, response.status, response.headers.get(b"Retry-After"))
        if response.status in BACKOFF_STATUSES:
            wait = (
                parse_retry_after(response.headers.get(b"Retry-After"), datetime.now(UTC), MAX_BACKOFF)
                or DEFAULT_BACKOFF
            )
            host = urlparse_cached(request).netloc
            self.until[host] = max(self.until.get(host, 0.0), time.monotonic() + wait)
        return response


class PolicySlotMiddleware:
    """Each request holds a per-host slot of the process's ``FetchPolicy`` while it is out."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy
        # id(request) -> (request, release): the request is kept so its id is not reused.
        self.held: dict[int, tuple[Request, Callable[[], None]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PolicySlotMiddleware:
        middleware = cls(crawler.settings.get("WIREWATCH_POLICY"))
        crawler.signals.connect(middleware.release_all, signal=signals.spider_closed)
        return middleware

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if self.policy is None:
            return
        try:
            release = await self.policy.acquire(request.url)
        except PolicyBackoff as exc:
            raise HostBackoff(exc.host, exc.retry_after) from None
        self.held[id(request)] = (request, release)

    def _release(self, request: Request) -> None:
        found = self.held.pop(id(request), None)
        if found is not None:
            found[1]()

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        self._release(request)

    def release_all(self, spider: Any = None) -> None:
        """A crawl that closes with requests still out gives their slots back (the policy outlives it)."""
        for _, release in self.held.values():
            release()
        self.held.clear()


class SchemeGuardMiddleware:
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SchemeGuardMiddleware:
        return cls()

    def process_request(self, request: Request, spider: Any = None) -> None:
        scheme = urlparse_cached(request).scheme
        if scheme not in ("http", "https"):
            raise IgnoreRequest(f"refused {scheme}: URL {request.url[:200]} (only http and https are fetched)")


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        # When each host's robots.txt was asked for: a long-lived crawler (crawler/live.py)
        # reads it again after the policy's ROBOTS_TTL, as the aiohttp poller does.
        self._read_at: dict[str, float] = {}

    async def robot_parser(self, request: Request) -> RobotParser | None:
        netloc = urlparse_cached(request).netloc
        now = time.monotonic()
        read = self._read_at.get(netloc)
        if read is None or now - read > ROBOTS_TTL:
            if read is not None and not isinstance(self._parsers.get(netloc), Deferred):
                self._parsers.pop(netloc, None)
            self._read_at[netloc] = now
        pending = self._parsers.get(netloc)
        if isinstance(pending, Deferred):
            # Wait on a deferred of our own, fed by one that passes the result on, so
            # every waiter sees the parser (not only the first).
            mine: Deferred[RobotParser | None] = Deferred()

            def relay(result: Any) -> Any:
                mine.callback(result)
                return result

            pending.addBoth(relay)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)
