"""FeedPoller: the long-lived asyncio poller of ``feed``, ``sitemap`` and ``telegram`` sources, on libcurl or aiohttp.

Responsible for turning :class:`~monitor.core.models.PollTarget`\\s into exactly one
:class:`~monitor.core.models.PollOutcome` each, with the semantics of Scrapy's
``FeedSpider`` (conditional GET with the stored ETag / Last-Modified; a 304, or a 200
whose body hashes to the stored hash, ends the poll unparsed; errors classed temporary or
permanent with an operator-readable reason; Retry-After; Cache-Control max-age and RSS
``<ttl>`` as ``min_interval``; the format sniffed from the bytes; a sitemap index followed
to its newest children on the same host; a Telegram channel's preview page, paged back
with ``?before=`` while ``PollTarget.since`` wants older messages), and for fetching single pages for the
enrichment stage (:meth:`FeedPoller.fetch_page`).  One HTTP client lives as long as the
poller, at most ``[fetch] concurrency`` connections: libcurl's multi handle
(:mod:`crawler.curl`, the default) or aiohttp's ``ClientSession`` (``[fetch] client``;
aiohttp is imported only then); every request
(feeds, child sitemaps, robots.txt, article pages, each redirect hop) goes through the
process's one :class:`~crawler.policy.FetchPolicy`, and through the optional egress check,
which is applied to the address each client actually connects to (after DNS, so a
name that rebinds to a private address is refused too).  Parsing runs in an executor, so
the event loop never waits on feedparser.  It must not touch the database, fetch article
pages on its own, or poll ``listing``/``spider`` sources (those stay in Scrapy).

Exceptions it raises on purpose: :class:`EgressRefused` inside the connector (turned into
a permanent error outcome) and ``ValueError`` for a target type it does not poll.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from crawler.policy import ROBOTS_MAX_BODY, FetchPolicy, HostBackoff
from monitor.core.encoding import TooLarge, gunzip
from monitor.core.feeds import ParsedFeed, parse_feed
from monitor.core.http import ErrorClass, parse_max_age, parse_retry_after, status_class
from monitor.core.models import POLLED_TYPES, PollOutcome, PollTarget, RawItem
from monitor.core.telegram import MAX_PAGES as TELEGRAM_MAX_PAGES
from monitor.core.telegram import TelegramPage, older_page, parse_telegram, telegram_items
from monitor.core.telegram import page_url as telegram_page_url
from monitor.errors import FetchError, ParseError

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
# We inflate these ourselves, bounded by max_body (aiohttp's own decoder is switched off).
ACCEPT_ENCODING = "gzip, deflate"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A news sitemap index lists one child per day or section; the newest few hold the news.
MAX_CHILD_SITEMAPS = 5
# Polls in flight at once; beyond it targets wait in the iterator, not as tasks.
MAX_IN_FLIGHT = 1024
# The HTTP clients a FeedPoller can send through ([fetch] client): aiohttp, or libcurl's
# multi interface (crawler/curl.py).
CLIENTS = ("aiohttp", "curl")
DEFAULT_CLIENT = "curl"

# The source a request is made for, read by the egress check inside the connector (which
# runs in the requesting task, so a context variable reaches it without a parameter).
_SOURCE_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar("wirewatch_source_url", default=None)


class EgressCheck(Protocol):
    """``crawler.egress.EgressPolicy.refusal``: why an address may not be connected, or ``None``."""

    def __call__(self, ip: str, port: int, *, source_url: str | None = None, host: str | None = None) -> str | None: ...


class EgressRefused(FetchError):
    """Every address of a host was refused by the egress policy."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, f"refused by the egress policy: {reason}", temporary=False)


def _egress_connector(egress: EgressCheck, **options: Any) -> aiohttp.TCPConnector:
    """A ``TCPConnector`` that filters the resolved addresses through the egress check.

    ``_resolve_host`` returns exactly the addresses the connector then dials (IP literals
    included), so filtering there checks the address actually connected rather than the
    name in the URL: DNS rebinding cannot slip a private address past it.  A connection
    taken from the keep-alive pool is checked again in ``connect`` against the
    requesting source, on its peer address: the pool is keyed by host and port, not by
    source, so a private host one source may reach must not serve another's request.
    Defined on first use: aiohttp is imported only by a poller that sends through it.
    """
    import aiohttp
    from aiohttp.abc import ResolveResult

    class EgressConnector(aiohttp.TCPConnector):
        async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
            results = await super()._resolve_host(host, port, traces=traces)
            source = _SOURCE_URL.get()
            allowed: list[ResolveResult] = []
            reasons: list[str] = []
            for result in results:
                reason = egress(result["host"], result["port"], source_url=source, host=host)
                if reason is None:
                    allowed.append(result)
                else:
                    reasons.append(reason)
            if not allowed:
                raise EgressRefused(f"{host}:{port}", "; ".join(dict.fromkeys(reasons)) or "no address")
            return allowed

        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
            conn = await super().connect(req, traces, timeout)
            transport = conn.transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            if peer:
                reason = egress(peer[0], peer[1], source_url=_SOURCE_URL.get(), host=req.url.host)
                if reason is not None:
                    conn.close()
                    raise EgressRefused(f"{req.url.host}:{peer[1]}", reason)
            return conn

    return EgressConnector(**options)


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched URL after redirects: the final response, or why there is none.

    ``error`` is set (with ``error_class`` and maybe ``retry_after``) when no usable
    response came back: network failure, timeout, robots.txt, backoff, size, scheme.
    An HTTP error status is *not* an error here: ``status`` says it.
    """

    url: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    error: str | None = None
    error_class: ErrorClass | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A :class:`~monitor.errors.ParseError` as plain data (it crosses process boundaries)."""

    message: str
    temporary: bool


def parse_for_poll(body: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed | ParseFailure:
    """``parse_feed`` with its expected failure as a value: runs in the parse executor."""
    try:
        return parse_feed(body, url, headers)
    except ParseError as exc:
        return ParseFailure(exc.message, exc.temporary)


def parse_telegram_for_poll(body: bytes, url: str) -> TelegramPage | ParseFailure:
    """``parse_telegram`` with its expected failure as a value: runs in the parse executor."""
    try:
        return parse_telegram(body, url)
    except ParseError as exc:
        return ParseFailure(exc.message, exc.temporary)


def _failure(url: str, message: str, error_class: ErrorClass, status: int | None = None) -> Page:
    return Page(url=url, status=status, error=message, error_class=error_class)


class FeedPoller:
    """Polls feed and sitemap sources; one per process, used from one event loop.

    ``executor`` runs the parser: default one thread (no start-up cost, for short runs);
    the daemon and ``run --once`` pass their CpuPool's, which parses in its worker
    processes once they run (monitor/stages/cpu.py).
    ``egress`` is the optional egress check.  ``client`` is the HTTP client, one of
    :data:`CLIENTS` (default :data:`DEFAULT_CLIENT`).  Use as an async context manager, or
    call :meth:`close`.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        concurrency: int = 32,
        timeout: float = 30.0,
        egress: EgressCheck | None = None,
        executor: Executor | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        now: Callable[[], datetime] | None = None,
        client: str | None = None,
    ) -> None:
        client = client or DEFAULT_CLIENT
        if client not in CLIENTS:
            raise ValueError(f"unknown HTTP client {client!r}: one of {', '.join(CLIENTS)}")
        self.policy = policy
        self.client = client
        self._curl: Any = None
        self.concurrency = concurrency
        self.timeout = timeout
        self.egress = egress
        self.max_in_flight = max(1, max_in_flight)
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(1, thread_name_prefix="wirewatch-parse")
        self._now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:
            options: dict[str, Any] = {
                "limit": self.concurrency,
                "limit_per_host": 0,  # per-host limits are the policy's, shared with Scrapy
                "ttl_dns_cache": 300,
                "enable_cleanup_closed": False,
            }
            connector = (
                _egress_connector(self.egress, **options)
                if self.egress is not None
                else aiohttp.TCPConnector(**options)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._curl is not None:
            await self._curl.close()
            self._curl = None
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> FeedPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ polling

    async def poll(self, targets: Iterable[PollTarget]) -> AsyncIterator[PollOutcome]:
        """One outcome per target, in the order they finish; at most ``max_in_flight`` at once."""
        todo = list(targets)
        for target in todo:
            if target.type not in POLLED_TYPES:
                raise ValueError(f"source {target.name!r} is a {target.type!r} source: Scrapy polls it, not FeedPoller")
        queue = iter(todo)
        pending: set[asyncio.Task[PollOutcome]] = set()
        # Finished polls arrive here (one callback per task): asyncio.wait over the whole
        # pending set would register and remove a callback on every pending task at each
        # wake-up, ~15 % of a warm poll's CPU with a thousand polls in flight.
        finished: asyncio.Queue[asyncio.Task[PollOutcome]] = asyncio.Queue()

        def fill() -> None:
            while len(pending) < self.max_in_flight:
                target = next(queue, None)
                if target is None:
                    return
                task = asyncio.ensure_future(self.poll_one(target))
                pending.add(task)
                task.add_done_callback(finished.put_nowait)

        fill()
        try:
            while pending:
                task = await finished.get()
                pending.discard(task)
                yield task.result()
                fill()
        finally:
            for task in pending:
                task.cancel()

    async def poll_one(self, target: PollTarget) -> PollOutcome:
        """Poll one source; never raises for anything a server or the network can do."""
        token = _SOURCE_URL.set(target.url)
        try:
            outcome = await self._poll(target)
        except Exception as exc:  # a bug: still one outcome per target, and loud in the log
            log.exception("source %s: poller failed", target.name)
            outcome = _error(target, f"internal error in the poller: {type(exc).__name__}: {exc}"[:500], "temporary")
        finally:
            _SOURCE_URL.reset(token)
        if outcome.status == "error":
            # DEBUG: ingest writes the one line per failure an operator reads.
            log.debug("source %s: %s", target.name, outcome.error)
        return outcome

    async def _first_page(self, target: PollTarget, accept: str) -> tuple[Page, PollOutcome | None]:
        """The conditional GET of a source's URL, and the outcome when it ends the poll unparsed.

        The outcome is an error (network, policy, HTTP status) or "not modified" (304).
        """
        headers = {"Accept": accept}
        if target.etag:
            headers["If-None-Match"] = target.etag
        if target.last_modified:
            headers["If-Modified-Since"] = target.last_modified
        page = await self._fetch(target.url, headers, target.max_body or self.policy.max_body)
        if page.error is not None:
            return page, _error(target, page.error, page.error_class or "temporary", page.status, page.retry_after)
        status = page.status or 0
        if status == 304:
            return page, PollOutcome(
                source_id=target.source_id,
                source=target.name,
                status="not_modified",
                http_status=status,
                etag=target.etag,
                last_modified=target.last_modified,
                body_hash=target.body_hash,
                min_interval=parse_max_age(page.headers.get("cache-control")),
            )
        if status >= 400:
            retry_after = parse_retry_after(page.headers.get("retry-after"), self._now())
            return page, _error(target, f"HTTP {status} from {page.url}", status_class(status), status, retry_after)
        if status >= 300 or status < 200:
            return page, _error(target, f"HTTP {status} from {page.url}", "temporary", status)
        return page, None

    async def _poll(self, target: PollTarget) -> PollOutcome:
        if target.type == "telegram":
            return await self._poll_telegram(target)
        max_body = target.max_body or self.policy.max_body
        page, ended = await self._first_page(target, FEED_ACCEPT)
        if ended is not None:
            return ended
        status = page.status or 0
        max_age = parse_max_age(page.headers.get("cache-control"))
        etag = page.headers.get("etag")
        last_modified = page.headers.get("last-modified")
        body_hash = hashlib.sha256(page.body).hexdigest()
        warnings = ["response truncated by the server; kept what parsed"] if page.truncated else []
        index_like = b"sitemapindex" in page.body[:4096]
        if target.body_hash == body_hash and not index_like:
            return _unchanged(target, status, etag, last_modified, body_hash, max_age)
        parsed = await self._parse(page)
        if isinstance(parsed, ParseFailure):
            return _error(target, parsed.message, "temporary" if parsed.temporary else "permanent", status)
        items = list(parsed.items)
        if parsed.warning:
            warnings.append(parsed.warning)
        min_interval = max_age
        if parsed.ttl_minutes:
            min_interval = max(min_interval or 0.0, parsed.ttl_minutes * 60.0)
        if parsed.children:
            # The sitemap protocol lets an index list only sitemaps on its own host;
            # following others would let any index send us anywhere.
            host = urlsplit(page.url).netloc
            children = [c for c in parsed.children if urlsplit(c).netloc == host]
            if len(children) < len(parsed.children):
                warnings.append(f"skipped {len(parsed.children) - len(children)} child sitemaps on other hosts")
            results = await asyncio.gather(*(self._child(c, max_body) for c in children[:MAX_CHILD_SITEMAPS]))
            for child_items, child_warnings in results:
                items.extend(child_items)
                warnings.extend(child_warnings)
        return PollOutcome(
            source_id=target.source_id,
            source=target.name,
            status="ok",
            items=tuple(items),
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            http_status=status,
            warning="; ".join(warnings)[:2000] or None,
            language=parsed.language,
            min_interval=min_interval,
        )

    async def _poll_telegram(self, target: PollTarget) -> PollOutcome:
        """A Telegram channel's preview page, and the older pages while ``target.since`` wants them.

        The first page is a conditional GET like a feed's (its ETag, Last-Modified and
        body hash are the source's); older pages (``?before=<smallest id>``) are plain
        GETs, one after another, each under the policy.  A failing older page ends the
        paging with a warning; the messages already read are kept.
        """
        max_body = target.max_body or self.policy.max_body
        page, ended = await self._first_page(target, PAGE_ACCEPT)
        if ended is not None:
            return ended
        status = page.status or 0
        body_hash = hashlib.sha256(page.body).hexdigest()
        etag = page.headers.get("etag")
        last_modified = page.headers.get("last-modified")
        max_age = parse_max_age(page.headers.get("cache-control"))
        if target.body_hash == body_hash:
            return _unchanged(target, status, etag, last_modified, body_hash, max_age)
        parsed = await self._parse_telegram(page)
        if isinstance(parsed, ParseFailure):
            return _error(target, parsed.message, "temporary" if parsed.temporary else "permanent", status)
        warnings = ["response truncated by the server; kept what parsed"] if page.truncated else []
        pages = [parsed]
        before = older_page(parsed, target.since)
        while before is not None:
            if len(pages) >= TELEGRAM_MAX_PAGES:
                warnings.append(f"stopped paging back after {TELEGRAM_MAX_PAGES} pages")
                break
            url = telegram_page_url(target.url, before)
            older = await self._fetch(url, {"Accept": PAGE_ACCEPT}, max_body)
            if older.error is not None or older.status != 200:
                warnings.append(f"older page {url}: {older.error or f'HTTP {older.status}'}; stopped paging back")
                break
            got = await self._parse_telegram(older)
            if isinstance(got, ParseFailure):
                warnings.append(f"older page {url}: {got.message}; stopped paging back")
                break
            smallest = got.smallest_id
            if smallest is None or smallest >= before:
                break  # the start of the channel, or a page that does not go back: never loop
            pages.append(got)
            before = older_page(got, target.since)
        items: dict[str, RawItem] = {}
        for each in pages:
            for raw in telegram_items(each):
                items.setdefault(raw.guid or "", raw)
        return PollOutcome(
            source_id=target.source_id,
            source=target.name,
            status="ok",
            items=tuple(items.values()),
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            http_status=status,
            warning="; ".join(warnings)[:2000] or None,
            min_interval=max_age,
        )

    async def _parse_telegram(self, page: Page) -> TelegramPage | ParseFailure:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, parse_telegram_for_poll, page.body, page.url)

    async def _child(self, url: str, max_body: int) -> tuple[Sequence[Any], list[str]]:
        """A child sitemap of an index: its entries, or warnings (a child never fails the poll)."""
        page = await self._fetch(url, {"Accept": FEED_ACCEPT}, max_body)
        if page.error is not None:
            return (), [f"sitemap {url}: {page.error}"]
        if (page.status or 0) >= 400:
            return (), [f"sitemap {page.url}: HTTP {page.status}"]
        parsed = await self._parse(page)
        if isinstance(parsed, ParseFailure):
            return (), [f"sitemap {page.url}: {parsed.message}"]
        warnings = [f"sitemap {page.url}: {parsed.warning}"] if parsed.warning else []
        if parsed.children:
            # Nested indexes are legal but rare; one level is followed, deeper is named.
            warnings.append(f"sitemap {page.url} is itself an index; not followed")
        return parsed.items, warnings

    async def _parse(self, page: Page) -> ParsedFeed | ParseFailure:
        loop = asyncio.get_running_loop()
        headers = {"content-type": page.headers.get("content-type", "")}
        return await loop.run_in_executor(self._executor, parse_for_poll, page.body, page.url, headers)

    # ------------------------------------------------------------------ pages

    async def fetch_page(
        self, url: str, *, source_url: str | None = None, accept: str = PAGE_ACCEPT, max_body: int | None = None
    ) -> Page:
        """GET one page (an article, for enrichment) under the same policy and egress check."""
        token = _SOURCE_URL.set(source_url or url)
        try:
            return await self._fetch(url, {"Accept": accept}, max_body or self.policy.max_body)
        finally:
            _SOURCE_URL.reset(token)

    async def _fetch_robots(self, url: str) -> tuple[int, bytes] | None:
        page = await self._fetch(url, {"Accept": "text/plain, */*;q=0.5"}, ROBOTS_MAX_BODY)
        if page.error is not None or page.status is None:
            return None
        return page.status, page.body

    async def _fetch(self, url: str, headers: Mapping[str, str], max_body: int) -> Page:
        """GET ``url`` following redirects hop by hop, each hop under the policy."""
        seen: set[str] = set()
        for _hop in range(self.policy.max_redirects + 1):
            refusal = self.policy.scheme_refusal(url)
            if refusal is not None:
                return _failure(url, refusal, "permanent")
            seen.add(url)
            if not await self.policy.allowed(url, self._fetch_robots):
                return _failure(url, f"forbidden by the site's robots.txt: {url}", "permanent")
            page = await self._request(url, headers, max_body)
            location = page.headers.get("location") if page.status in REDIRECTS else None
            if page.error is not None or not location:
                return page
            target = urljoin(url, location)
            if self.policy.scheme_refusal(target) is not None:
                return _failure(
                    url, f"refused redirect to {location[:200]} (only http and https are followed)", "permanent"
                )
            if target in seen:
                return _failure(url, f"redirect loop or too many redirects: {url} → {target}", "permanent")
            url = target
        return _failure(
            url, f"redirect loop or too many redirects (more than {self.policy.max_redirects})", "permanent"
        )

    async def _request(self, url: str, headers: Mapping[str, str], max_body: int) -> Page:
        """One request, one hop: slot, timeout, bounded read, error classes."""
        try:
            async with self.policy.slot(url):
                async with asyncio.timeout(self.timeout):
                    return await self._send(url, headers, max_body)
        except HostBackoff as exc:
            return Page(url=url, error=str(exc), error_class="temporary", retry_after=exc.retry_after)
        except _CurlFailure as exc:
            return _curl_failure(url, exc.error, self.timeout)
        except TimeoutError:
            return _failure(url, f"timed out after {self.timeout:g}s: {url}", "temporary")
        except EgressRefused as exc:
            return _failure(url, f"{exc.message} ({url})", "permanent")
        except OSError as exc:
            return _failure(url, f"download failed: {type(exc).__name__}: {exc}"[:500], "temporary")

    async def _send(self, url: str, headers: Mapping[str, str], max_body: int) -> Page:
        if self.client == "curl":
            return await self._send_curl(url, headers, max_body)
        import aiohttp

        try:
            return await self._send_aiohttp(url, headers, max_body)
        except (TimeoutError, EgressRefused):
            raise
        except aiohttp.ClientConnectorDNSError as exc:
            return _failure(url, f"host not found: {exc}", "temporary")
        except (
            aiohttp.ClientConnectorCertificateError,
            aiohttp.ClientConnectorSSLError,
            aiohttp.ClientSSLError,
        ) as exc:
            return _failure(url, f"TLS error: {type(exc).__name__}: {exc}"[:500], "permanent")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ConnectionRefusedError):
                return _failure(url, f"connection refused: {url}", "temporary")
            return _failure(url, f"connection failed: {exc}"[:500], "temporary")
        except aiohttp.InvalidURL as exc:
            return _failure(url, f"invalid URL: {exc}"[:500], "permanent")
        except aiohttp.ClientError as exc:
            return _failure(url, f"download failed: {type(exc).__name__}: {exc}"[:500], "temporary")

    async def _send_aiohttp(self, url: str, headers: Mapping[str, str], max_body: int) -> Page:
        import aiohttp

        async with self._client().get(url, headers=headers, allow_redirects=False) as resp:
            self.policy.note_response(url, resp.status, resp.headers.get("Retry-After"))
            got = _first_values(resp.headers)
            length = resp.content_length
            too_big = f"response larger than fetch.max_body ({max_body} bytes), download cancelled: {url}"
            if length is not None and length > max_body:
                return _failure(url, too_big, "permanent", resp.status)
            body = bytearray()
            truncated = False
            try:
                async for chunk in resp.content.iter_any():
                    body += chunk
                    if len(body) > max_body:
                        return _failure(url, too_big, "permanent", resp.status)
            except aiohttp.ClientPayloadError:
                truncated = True  # a body cut short still goes to the parser, which keeps what parses
            try:
                data = _inflate(bytes(body), got.get("content-encoding", ""), max_body)
            except TooLarge:
                return _failure(url, too_big + " (once decompressed)", "permanent", resp.status)
            except ValueError as exc:
                return _failure(url, str(exc), "permanent", resp.status)
            return Page(url=url, status=resp.status, headers=got, body=data, truncated=truncated)

    async def _send_curl(self, url: str, headers: Mapping[str, str], max_body: int) -> Page:
        from crawler.curl import CurlError, CurlTransport

        if self._curl is None:
            self._curl = CurlTransport(
                concurrency=self.concurrency,
                user_agent=self.policy.user_agent,
                accept_encoding=ACCEPT_ENCODING,
                egress=self.egress,
            )
        try:
            resp = await self._curl.get(
                url,
                headers,
                max_body=max_body,
                timeout=self.timeout,
                source_url=_SOURCE_URL.get(),
            )
        except CurlError as exc:
            raise _CurlFailure(exc) from None
        self.policy.note_response(url, resp.status, resp.headers.get("retry-after"))
        too_big = f"response larger than fetch.max_body ({max_body} bytes), download cancelled: {url}"
        if resp.too_big:
            return _failure(url, too_big, "permanent", resp.status)
        try:
            data = _inflate(resp.body, resp.headers.get("content-encoding", ""), max_body)
        except TooLarge:
            return _failure(url, too_big + " (once decompressed)", "permanent", resp.status)
        except ValueError as exc:
            return _failure(url, str(exc), "permanent", resp.status)
        return Page(url=url, status=resp.status, headers=resp.headers, body=data, truncated=resp.truncated)


class _CurlFailure(Exception):
    """A :class:`crawler.curl.CurlError` on its way to :meth:`FeedPoller._request`'s error classes."""

    def __init__(self, error: Any) -> None:
        super().__init__(error.message)
        self.error = error


# libcurl's failures in the words and classes aiohttp's get in FeedPoller._send.
_CURL_FAILURES: dict[str, tuple[str, ErrorClass]] = {
    "timeout": ("timed out after {timeout:g}s: {url}", "temporary"),
    "egress": ("refused by the egress policy: {reason} ({url})", "permanent"),
    "dns": ("host not found: {message}", "temporary"),
    "tls": ("TLS error: {message}", "permanent"),
    "refused": ("connection refused: {url}", "temporary"),
    "connect": ("connection failed: {message}", "temporary"),
    "url": ("invalid URL: {message}", "permanent"),
    "other": ("download failed: {message}", "temporary"),
}


def _curl_failure(url: str, error: Any, timeout: float) -> Page:
    """The same words and classes for libcurl's failures as for aiohttp's."""
    words, error_class = _CURL_FAILURES.get(error.kind, _CURL_FAILURES["other"])
    message = words.format(url=url, timeout=timeout, reason=error.reason, message=error.message)
    return _failure(url, message[:500], error_class)


def _inflate(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding, inflated to at most ``limit`` bytes."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        return gunzip(body, limit) if body[:2] == b"\x1f\x8b" else body
    if coding == "deflate":
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):  # zlib-wrapped, or raw as some servers send
            inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(body, limit + 1)
            except zlib.error:
                continue
            if len(out) > limit:
                raise TooLarge(f"inflated body exceeds {limit} bytes")
            return out
        raise ValueError("response body is not valid deflate data")
    raise ValueError(f"unsupported Content-Encoding {coding!r} (we ask for gzip or deflate)")


def _first_values(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        out.setdefault(key.lower(), value)
    return out


def _unchanged(
    target: PollTarget,
    http_status: int,
    etag: str | None,
    last_modified: str | None,
    body_hash: str,
    max_age: float | None,
) -> PollOutcome:
    """A 200 whose body is byte for byte the last one: "not modified", with the new validators."""
    return PollOutcome(
        source_id=target.source_id,
        source=target.name,
        status="not_modified",
        http_status=http_status,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        min_interval=max_age,
    )


def _error(
    target: PollTarget,
    message: str,
    error_class: ErrorClass,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> PollOutcome:
    return PollOutcome(
        source_id=target.source_id,
        source=target.name,
        status="error",
        http_status=http_status,
        error=message,
        error_class=error_class,
        retry_after=retry_after,
    )
