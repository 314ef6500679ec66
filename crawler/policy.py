"""FetchPolicy: the one politeness policy every request obeys, whichever client sends it.

Responsible for what wirewatch owes the hosts it polls, held once per process for as long
as the process lives (not per crawl or per tick): robots.txt, parsed with Protego and
cached per host (scheme + host + port) for ``robots_ttl``, fetched once however many
requests wait for it and *through this same policy*; per-host concurrency (``per_host``)
and spacing (``host_delay``, or a longer ``Crawl-delay`` from robots.txt, capped); the
429/503 backoff, which keeps a host that said "later" (with or without Retry-After) from
being asked again by any source or page on it until then; the configured User-Agent;
``max_body``; the redirect limit; and the scheme rule (only http and https leave the
process).  It must not send requests itself or know any client library: a client hands
it a ``RobotsFetcher`` (a coroutine that GETs one URL through the client, under this
policy) and asks before each request.  Egress (which addresses may be connected) is
``crawler/egress.py``'s; the poller applies it at connect time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from protego import Protego

from monitor.core.http import BACKOFF_STATUSES, parse_retry_after
from monitor.errors import FetchError

# Without Retry-After, a host that answered 429/503 is left alone at least this long.
DEFAULT_BACKOFF = 60.0
MAX_BACKOFF = 86_400.0
# robots.txt is re-read this often; a failed read is retried sooner.
ROBOTS_TTL = 3_600.0
ROBOTS_RETRY = 300.0
# Google reads at most 500 KiB of robots.txt; more is a misconfiguration, not rules.
ROBOTS_MAX_BODY = 512_000
# A Crawl-delay above this is honoured only up to it: one line must not stop a source.
MAX_CRAWL_DELAY = 30.0
MAX_REDIRECTS = 5
ALLOWED_SCHEMES = ("http", "https")

# What a client's robots.txt fetch returns: (HTTP status, body), or None when the fetch
# failed (network error, timeout, refused by egress).
RobotsFetcher = Callable[[str], Awaitable["tuple[int, bytes] | None"]]


class HostBackoff(FetchError):
    """The host asked us to back off (429/503); ``retry_after`` seconds are left."""

    def __init__(self, host: str, retry_after: float) -> None:
        self.host = host
        self.retry_after = retry_after
        super().__init__(host, f"{host} asked us to back off (429/503); not asked again for {retry_after:.0f}s")

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False, slots=True)
class _Host:
    """What the policy knows about one host (scheme://host:port)."""

    slots: asyncio.Semaphore
    next_start: float = 0.0
    backoff_until: float = 0.0
    robots: Protego | None = None  # None: no robots.txt rules (missing, 4xx, or unreadable)
    robots_expires: float = -1.0
    robots_loading: asyncio.Future[None] | None = None
    crawl_delay: float = 0.0


def host_key(url: str) -> str:
    """The politeness key of a URL: scheme, host and port, as robots.txt scopes its rules."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class FetchPolicy:
    """Per-process politeness state: robots.txt, per-host slots and delay, 429/503 backoff.

    ``clock`` is monotonic seconds and ``sleep`` waits on it (both injectable so tests can
    run a frozen clock); ``now`` is the wall clock, used only to read HTTP-date
    Retry-After values.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        per_host: int = 2,
        host_delay: float = 1.0,
        max_body: int = 10_000_000,
        obey_robots: bool = True,
        robots_ttl: float = ROBOTS_TTL,
        max_redirects: int = MAX_REDIRECTS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.user_agent = user_agent
        self.per_host = per_host
        self.host_delay = max(0.0, host_delay)
        self.max_body = max_body
        self.obey_robots = obey_robots
        self.robots_ttl = robots_ttl
        self.max_redirects = max_redirects
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._hosts: dict[str, _Host] = {}

    @classmethod
    def from_config(cls, fetch: object) -> FetchPolicy:
        """A policy from a ``monitor.config.FetchConfig`` (duck-typed: the crawler imports no config)."""
        return cls(
            user_agent=fetch.user_agent,  # type: ignore[attr-defined]
            per_host=fetch.per_host,  # type: ignore[attr-defined]
            host_delay=fetch.host_delay.total_seconds(),  # type: ignore[attr-defined]
            max_body=fetch.max_body,  # type: ignore[attr-defined]
            obey_robots=fetch.obey_robots,  # type: ignore[attr-defined]
        )

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(asyncio.Semaphore(self.per_host))
        return host

    # ------------------------------------------------------------------ schemes, redirects

    @staticmethod
    def scheme_refusal(url: str) -> str | None:
        """Why ``url`` may not be fetched because of its scheme; ``None`` when it may."""
        if url[:8].lower().startswith(("http://", "https://")):
            return None  # what urlsplit would say, without splitting (every request asks)
        scheme = urlsplit(url).scheme.lower()
        if scheme in ALLOWED_SCHEMES:
            return None
        return f"unsupported URL scheme {scheme or '(none)'!r} in {url[:200]} (only http and https are fetched)"

    # ------------------------------------------------------------------ backoff

    def backoff_left(self, url: str) -> float | None:
        """Seconds this URL's host still asked us to wait, or ``None``."""
        host = self._hosts.get(host_key(url))
        if host is None:
            return None
        left = host.backoff_until - self._clock()
        return left if left > 0 else None

    def note_response(self, url: str, status: int, retry_after: str | bytes | None) -> None:
        """Record a response: a 429/503 puts its host in backoff (Retry-After, else a minute)."""
        if status not in BACKOFF_STATUSES:
            return
        wait = parse_retry_after(retry_after, self._now(), MAX_BACKOFF) or DEFAULT_BACKOFF
        host = self._host(host_key(url))
        host.backoff_until = max(host.backoff_until, self._clock() + wait)

    # ------------------------------------------------------------------ slots

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold one of the host's ``per_host`` slots, started no sooner than its delay allows.

        Raises :class:`HostBackoff` (before or after the wait) when the host is backing off.
        """
        release = await self.acquire(url)
        try:
            yield
        finally:
            release()

    async def acquire(self, url: str) -> Callable[[], None]:
        """:meth:`slot` for a client whose request ends in a callback (Scrapy's middleware):
        the slot is held until the returned function is called (once; later calls do nothing)."""
        key = host_key(url)
        host = self._host(key)
        self._raise_if_backing_off(key, host)
        await host.slots.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                host.slots.release()

        try:
            delay = max(self.host_delay, host.crawl_delay)
            if delay > 0:
                # Reserve the next start time before sleeping, so waiters space out evenly.
                now = self._clock()
                start = max(now, host.next_start)
                host.next_start = start + delay
                if start > now:
                    await self._sleep(start - now)
            # A 429 may have arrived while this request waited for its turn.
            self._raise_if_backing_off(key, host)
        except BaseException:
            release()
            raise
        return release

    def _raise_if_backing_off(self, key: str, host: _Host) -> None:
        left = host.backoff_until - self._clock()
        if left > 0:
            raise HostBackoff(urlsplit(key).netloc, left)

    # ------------------------------------------------------------------ robots.txt

    async def allowed(self, url: str, fetch: RobotsFetcher) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url`` (always, with ``obey_robots`` off).

        The host's robots.txt is loaded through ``fetch`` when it is not cached or has
        expired; concurrent callers wait for the one load.  A missing robots.txt (4xx)
        allows everything, as does one that cannot be read (5xx, network error): the
        same reading as Scrapy's RobotsTxtMiddleware, retried after ``ROBOTS_RETRY``.
        """
        if not self.obey_robots:
            return True
        parts = urlsplit(url)
        if parts.path == "/robots.txt":
            return True
        key = host_key(url)
        host = self._host(key)
        while host.robots_expires < self._clock():
            if host.robots_loading is None:
                host.robots_loading = asyncio.get_running_loop().create_future()
                try:
                    await self._load_robots(key, host, fetch)
                finally:
                    loading, host.robots_loading = host.robots_loading, None
                    loading.set_result(None)
            else:
                await asyncio.shield(host.robots_loading)
        if host.robots is None:
            return True
        return bool(host.robots.can_fetch(url, self.user_agent))

    async def _load_robots(self, key: str, host: _Host, fetch: RobotsFetcher) -> None:
        got = await fetch(key + "/robots.txt")
        ttl = self.robots_ttl
        host.robots = None
        host.crawl_delay = 0.0
        if got is None or got[0] >= 500:
            ttl = min(ttl, ROBOTS_RETRY)
        elif 200 <= got[0] < 300:
            text = got[1][:ROBOTS_MAX_BODY].decode("utf-8", "replace")
            host.robots = Protego.parse(text)
            delay = host.robots.crawl_delay(self.user_agent)
            if delay:
                host.crawl_delay = min(float(delay), MAX_CRAWL_DELAY)
        host.robots_expires = self._clock() + ttl

    def robots_cached(self, url: str) -> bool:
        """Whether the host's robots.txt is loaded and fresh (for tests and metrics)."""
        host = self._hosts.get(host_key(url))
        return host is not None and host.robots_expires >= self._clock()
