"""SourceSpider: what every wirewatch spider shares — one outcome per source, full text, errors.

A spider polls a batch of :class:`~monitor.core.models.PollTarget` and must yield exactly
one :class:`~monitor.core.models.PollOutcome` per target whatever happens, so every poll
is recorded on its source.  This base class holds the bookkeeping that makes that true
when a poll needs more than one request (child sitemaps, article pages): a :class:`Poll`
counts its outstanding requests and the outcome is emitted when the last one settles.
It also fetches the article page of new-looking entries that carry no text (bounded per
poll; entries already stored are skipped through the injected ``known_keys`` callable),
classifies download failures as temporary or permanent, and reads Retry-After and
Cache-Control.  It must not touch the database itself: ``known_keys`` is injected by
the composition root, and outcomes go to the pipeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.enrich import link_too_long, needs_text
from crawler.handlers import SOURCE_META, EgressRefused
from crawler.middlewares import HostBackoff
from monitor.core.extract import extract_article
from monitor.core.http import parse_retry_after
from monitor.core.items import make_item, oversized_fields
from monitor.core.models import PollOutcome, PollTarget, RawItem

# Statuses that reach the callback instead of being dropped by HttpErrorMiddleware.
# Redirects (301/302/307/308) are deliberately absent: RedirectMiddleware follows them.
HANDLED_STATUSES = [304, *range(400, 600)]
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 406, 410, 414, 451}
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d+)", re.IGNORECASE)

# Where a guarded request keeps its real callback (see SourceSpider.request).
_CALLBACK_META = "wirewatch_callback"

KnownKeys = Callable[[int, list[str]], "set[str]"]


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Per-source settings a spider needs beyond the target (from ``[[sources]]``)."""

    links: str | None = None  # listing: CSS selector of article links
    full_text: bool = True


@dataclass(eq=False)
class Poll:
    """One source's poll in flight: what was read so far and how many requests are out."""

    target: PollTarget
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    language: str | None = None
    min_interval: float | None = None
    items: list[RawItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pending: int = 0
    fetch_text: bool = True  # False once the article fetches have been scheduled
    done: bool = False
    # Set by a long-lived crawler (crawler/live.py) once nobody waits for this poll any
    # more: what it still yields (its outcome, more requests) is dropped.
    abandoned: bool = False


class SourceSpider(scrapy.Spider):
    """Base of every wirewatch spider; subclasses read their source's pages into ``RawItem``s.

    It has no ``name``, so Scrapy's spider loader never offers it as a source spider.
    """

    def __init__(
        self,
        targets: list[PollTarget],
        options: Mapping[int, SourceOptions] | None = None,
        known_keys: KnownKeys | None = None,
        full_text_max: int = 10,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.options = dict(options or {})
        self.known_keys = known_keys
        self.full_text_max = full_text_max
        # Fed targets by a long-lived crawler (crawler/live.py): callbacks are guarded so
        # an abandoned poll's late output is dropped.
        self.live = live
        # A long-lived crawler's targets in flight, by source id (kept by crawler/live.py).
        self.live_targets: dict[int, PollTarget] = {}

    def source_urls(self) -> list[str]:
        """The URLs of the sources this crawl is polling now (the egress policy lets robots.txt reach their origins)."""
        return [t.url for t in self.targets] + [t.url for t in self.live_targets.values()]

    async def start(self) -> AsyncIterator[Any]:
        for target in self.targets:
            for request in self.requests_for(target):
                yield request

    def requests_for(self, target: PollTarget) -> Iterable[scrapy.Request]:
        """The first request(s) of one target's poll (made with :meth:`request`); each spider says which."""
        raise NotImplementedError(f"{type(self).__name__} must say how a target is requested")

    def option(self, target: PollTarget) -> SourceOptions:
        return self.options.get(target.source_id, SourceOptions())

    # ------------------------------------------------------------------ requests

    def request(
        self,
        poll: Poll,
        url: str,
        callback: Callable[..., Any],
        *,
        conditional: bool = False,
        accept: str = "*/*",
        meta: Mapping[str, Any] | None = None,
    ) -> scrapy.Request:
        """A request that belongs to ``poll``; counted so the outcome waits for it."""
        headers = {"Accept": accept}
        if conditional and poll.target.etag:
            headers["If-None-Match"] = poll.target.etag
        if conditional and poll.target.last_modified:
            headers["If-Modified-Since"] = poll.target.last_modified
        full_meta: dict[str, Any] = {
            "poll": poll,
            # The egress policy lets a source reach its own (possibly private) origin.
            SOURCE_META: poll.target.url,
            "handle_httpstatus_list": HANDLED_STATUSES,
            "dont_retry": True,
            **(meta or {}),
        }
        if poll.target.max_body:
            full_meta["download_maxsize"] = poll.target.max_body
        poll.pending += 1
        errback: Callable[..., Any] = self.on_error
        if self.live:
            full_meta[_CALLBACK_META] = callback
            callback, errback = self._guarded_callback, self._guarded_errback
        # dont_filter: a feed is fetched every poll; Scrapy's duplicate filter would drop it.
        return scrapy.Request(
            url, headers=headers, callback=callback, errback=errback, dont_filter=True, meta=full_meta
        )

    async def _guarded_callback(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        poll: Poll = response.meta["poll"]
        async for out in _guarded(poll, response.meta[_CALLBACK_META](response, **kwargs)):
            yield out

    async def _guarded_errback(self, failure: Failure) -> AsyncIterator[Any]:
        poll: Poll = failure.request.meta["poll"]  # type: ignore[attr-defined]
        async for out in _guarded(poll, self.on_error(failure)):
            yield out

    async def on_error(self, failure: Failure) -> AsyncIterator[Any]:
        """A request of a poll failed: the main one fails the poll, an extra one only warns."""
        request = failure.request  # type: ignore[attr-defined]
        poll: Poll = request.meta["poll"]
        message, error_class, retry_after = describe_failure(failure)
        poll.pending -= 1
        if request.meta.get("role", "main") == "main":
            # Debug only: ingest logs the one line per failed poll, with the cause in words.
            self.logger.debug("source %s: %s", poll.target.name, message)
            poll.done = True
            yield PollOutcome(
                source_id=poll.target.source_id,
                source=poll.target.name,
                status="error",
                error=message,
                error_class=error_class,
                retry_after=retry_after,
            )
            return
        poll.warnings.append(f"{request.meta.get('role')} {_short(request.url)}: {message}")
        async for out in self.settle(poll):
            yield out

    # ------------------------------------------------------------------ responses

    def begin(self, poll: Poll, response: Response) -> PollOutcome | None:
        """Record the main response's validators; an outcome when the poll ends right here."""
        target = poll.target
        poll.status = response.status
        poll.pending -= 1
        if response.status == 304:
            poll.done = True
            return PollOutcome(
                source_id=target.source_id,
                source=target.name,
                http_status=response.status,
                status="not_modified",
                etag=target.etag,
                last_modified=target.last_modified,
                body_hash=target.body_hash,
                min_interval=max_age(response),
            )
        if response.status >= 400:
            poll.done = True
            return http_error_outcome(target, response)
        poll.etag = header(response, b"ETag")
        poll.last_modified = header(response, b"Last-Modified")
        poll.body_hash = hashlib.sha256(response.body).hexdigest()
        poll.min_interval = max_age(response)
        if "dataloss" in response.flags:
            poll.warnings.append("response truncated by the server; kept what parsed")
        return None

    def unchanged(self, poll: Poll) -> PollOutcome:
        poll.done = True
        t = poll.target
        return PollOutcome(
            source_id=t.source_id,
            source=t.name,
            status="not_modified",
            http_status=poll.status,
            etag=poll.etag,
            last_modified=poll.last_modified,
            body_hash=poll.body_hash,
            min_interval=poll.min_interval,
        )

    def parse_failed(self, poll: Poll, message: str, temporary: bool) -> PollOutcome:
        poll.done = True
        t = poll.target
        return PollOutcome(
            source_id=t.source_id,
            source=t.name,
            status="error",
            http_status=poll.status,
            error=message,
            error_class="temporary" if temporary else "permanent",
        )

    async def settle(self, poll: Poll) -> AsyncIterator[Any]:
        """Move a poll on once its outstanding requests are back: fetch article text, then finish."""
        if poll.done or poll.pending > 0:
            return
        if poll.fetch_text:
            async for out in self.fetch_full_text(poll):
                yield out
            return
        for outcome in self.maybe_finish(poll):
            yield outcome

    def maybe_finish(self, poll: Poll) -> Iterable[PollOutcome]:
        """The poll's outcome, once nothing of it is outstanding (at most once)."""
        if poll.done or poll.pending > 0 or poll.fetch_text:
            return
        poll.done = True
        t = poll.target
        oversized = [f for raw in poll.items for f in oversized_fields(raw)]
        if oversized:
            poll.warnings.insert(0, f"{len(oversized)} oversized field(s) stored shortened: {', '.join(oversized[:3])}")
        yield PollOutcome(
            source_id=t.source_id,
            source=t.name,
            status="ok",
            items=tuple(poll.items),
            etag=poll.etag,
            last_modified=poll.last_modified,
            body_hash=poll.body_hash,
            http_status=poll.status,
            warning="; ".join(poll.warnings)[:2000] or None,
            language=poll.language,
            min_interval=poll.min_interval,
        )

    # ------------------------------------------------------------------ full text

    async def fetch_full_text(self, poll: Poll) -> AsyncIterator[Any]:
        """Request the article page of new entries that carry no text, then finish the poll.

        "New" is judged by the store through ``known_keys`` (the database decides what is
        new only at ingest, but asking it which keys it already holds avoids fetching
        the whole backlog every poll).  At most ``full_text_max`` pages per poll.
        """
        poll.fetch_text = False
        wanted = self.full_text_candidates(poll)
        if wanted and self.known_keys is not None:
            keys = sorted({key for _, key in wanted})
            known = await asyncio.to_thread(self.known_keys, poll.target.source_id, keys)
            wanted = [(i, key) for i, key in wanted if key not in known]
        for index, _key in wanted[: self.full_text_max]:
            url = poll.items[index].url or ""
            too_long = link_too_long(url)
            if too_long is not None:
                # Scrapy's UrlLengthMiddleware would drop this request silently, and the
                # poll would wait for it until the crawl timed out: say so, store the item.
                poll.warnings.append(too_long)
                continue
            yield self.request(
                poll,
                url,
                self.parse_article,
                accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
                meta={"role": "article", "index": index},
            )
        for outcome in self.maybe_finish(poll):
            yield outcome

    def full_text_candidates(self, poll: Poll) -> list[tuple[int, str]]:
        if not self.option(poll.target).full_text:
            return []
        now = datetime.now(UTC)
        out: list[tuple[int, str]] = []
        for i, raw in enumerate(poll.items):
            if not needs_text(raw):
                continue
            item = make_item(raw, now)
            if item is not None:
                out.append((i, item.key))
        return out

    async def parse_article(self, response: Response) -> AsyncIterator[Any]:
        poll: Poll = response.meta["poll"]
        index: int = response.meta["index"]
        try:
            if response.status >= 400:
                poll.warnings.append(f"article {_short(response.url)}: HTTP {response.status}")
            elif isinstance(response, TextResponse):
                extracted = await asyncio.to_thread(extract_article, response.text, response.url)
                raw = poll.items[index]
                if extracted.text:
                    poll.items[index] = dataclasses.replace(
                        raw, text=extracted.text, title=raw.title or extracted.title
                    )
        except Exception as exc:  # one page's failure is recorded on its item, never the poll's
            # trafilatura and lxml raise many types on hostile markup; whatever it is,
            # the item is stored with what the feed gave, and the source's other items too.
            poll.warnings.append(f"article {_short(response.url)}: could not be read ({type(exc).__name__})")
        finally:
            # Only now: counting the request as settled before the extraction (in a
            # thread) returned let a faster sibling finish the poll without this text.
            poll.pending -= 1
        async for out in self.settle(poll):
            yield out


async def _guarded(poll: Poll, output: Any) -> AsyncIterator[Any]:
    """A callback's output, unless (and from the moment) its poll is abandoned."""
    if output is None:
        return
    if hasattr(output, "__aiter__"):
        async for out in output:
            if poll.abandoned:
                return
            yield out
        return
    for out in output:
        if poll.abandoned:
            return
        yield out


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "…"


def http_error_outcome(target: PollTarget, response: Response) -> PollOutcome:
    retry_after = parse_retry_after(response.headers.get(b"Retry-After"), datetime.now(UTC))
    permanent = response.status in PERMANENT_STATUSES
    return PollOutcome(
        source_id=target.source_id,
        source=target.name,
        http_status=response.status,
        status="error",
        error=f"HTTP {response.status} from {response.url}",
        error_class="permanent" if permanent else "temporary",
        retry_after=retry_after,
    )


def describe_failure(failure: Failure) -> tuple[str, str, float | None]:
    """A one-line, operator-readable reason, its class (temporary or permanent) and Retry-After."""
    exc = failure.value
    if isinstance(exc, HostBackoff):
        return str(exc), "temporary", exc.retry_after
    if isinstance(exc, EgressRefused):
        url = failure.request.url  # type: ignore[attr-defined]
        return f"refused {url[:200]}: {exc}", "permanent", None
    if isinstance(exc, HttpError):
        response = exc.response
        location = response.headers.get(b"Location")
        if 300 <= response.status < 400 and location:
            target = location.decode("latin-1")
            return f"refused redirect to {target} (only http and https are followed)", "permanent", None
        return f"HTTP {response.status} from {response.url}", "temporary", None
    if isinstance(exc, DownloadTimeoutError):
        return f"timed out: {exc}", "temporary", None
    if isinstance(exc, CannotResolveHostError):
        return f"host not found: {exc}", "temporary", None
    if isinstance(exc, DownloadConnectionRefusedError):
        return f"connection refused: {exc}", "temporary", None
    if isinstance(exc, DownloadCancelledError):
        return f"response larger than fetch.max_body, download cancelled: {exc}", "permanent", None
    if isinstance(exc, ResponseDataLossError):
        return f"response truncated: {exc}", "temporary", None
    if isinstance(exc, UnsupportedURLSchemeError):
        return f"unsupported URL scheme (only http and https): {exc}", "permanent", None
    if isinstance(exc, IgnoreRequest):
        text = str(exc) or "request refused"
        if "robots" in text.lower():
            return f"forbidden by the site's robots.txt: {failure.request.url}", "permanent", None  # type: ignore[attr-defined]
        if "redirect" in text.lower():
            return f"redirect loop or too many redirects: {text}", "permanent", None
        return f"refused: {text}", "permanent", None
    name = type(exc).__name__
    if "SSL" in name or "TLS" in name or "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
        return f"TLS error: {name}: {exc}"[:500], "permanent", None
    if isinstance(exc, DownloadFailedError):
        return f"download failed: {exc}", "temporary", None
    # The network stack (Twisted) raises many more types; all of them are one poll's
    # failure, recorded on the source and retried with backoff.
    return f"{name}: {exc}"[:500], "temporary", None


def max_age(response: Response) -> float | None:
    """Cache-Control max-age in seconds (``no-cache`` or none: ``None``)."""
    value = header(response, b"Cache-Control")
    if not value:
        return None
    m = _MAX_AGE.search(value)
    return float(m.group(1)) if m else None


def header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def response_headers(response: Response) -> dict[str, str]:
    return {k.decode("latin-1"): v[0].decode("latin-1") for k, v in response.headers.items() if v}
