"""FeedSpider: poll a batch of feed sources once each, with conditional GET.

For each :class:`~monitor.core.models.PollTarget` it sends one request carrying the
stored ETag / Last-Modified, and yields exactly one
:class:`~monitor.core.models.PollOutcome` whatever happens (entries, not modified, or a
classified error), so that every poll is recorded on its source.  A 304, or a 200 whose
body hashes to the stored hash (servers that ignore validators), ends the poll without
parsing.  It must not touch the database: outcomes go to the pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from email.utils import parsedate_to_datetime
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
from scrapy.http import Response
from twisted.python.failure import Failure

from monitor.core.feeds import parse_feed
from monitor.core.models import PollOutcome, PollTarget
from monitor.errors import ParseError

# Statuses that reach the callback instead of being dropped by HttpErrorMiddleware.
# Redirects (301/302/307/308) are deliberately absent: RedirectMiddleware follows them.
HANDLED_STATUSES = [304, *range(400, 600)]
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 406, 410, 414, 451}


class FeedSpider(scrapy.Spider):
    name = "feeds"

    def __init__(self, targets: list[PollTarget], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.targets = targets

    async def start(self) -> AsyncIterator[Any]:
        for target in self.targets:
            yield self.make_request(target)

    def make_request(self, target: PollTarget) -> scrapy.Request:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5"}
        if target.etag:
            headers["If-None-Match"] = target.etag
        if target.last_modified:
            headers["If-Modified-Since"] = target.last_modified
        meta: dict[str, Any] = {"target": target, "handle_httpstatus_list": HANDLED_STATUSES, "dont_retry": True}
        if target.max_body:
            meta["download_maxsize"] = target.max_body
        return scrapy.Request(
            target.url,
            headers=headers,
            callback=self.parse_response,
            errback=self.on_error,
            dont_filter=True,
            meta=meta,
        )

    def parse_response(self, response: Response) -> Iterator[PollOutcome]:
        target: PollTarget = response.meta["target"]
        yield outcome_from_response(target, response)

    def on_error(self, failure: Failure) -> Iterator[PollOutcome]:
        request = failure.request  # type: ignore[attr-defined]
        target: PollTarget = request.meta["target"]
        message, error_class = describe_failure(failure)
        self.logger.info("source %s: %s", target.name, message)
        yield PollOutcome(source_id=target.source_id, source=target.name, status="error", error=message, error_class=error_class)


def outcome_from_response(target: PollTarget, response: Response) -> PollOutcome:
    """Turn a downloaded response into the outcome of the poll (pure but for hashing)."""
    base = {"source_id": target.source_id, "source": target.name, "http_status": response.status}
    if response.status == 304:
        return PollOutcome(**base, status="not_modified", etag=target.etag, last_modified=target.last_modified, body_hash=target.body_hash)
    if response.status >= 400:
        retry_after = parse_retry_after(response.headers.get(b"Retry-After"), datetime.now(UTC))
        permanent = response.status in PERMANENT_STATUSES
        return PollOutcome(
            **base,
            status="error",
            error=f"HTTP {response.status} from {response.url}",
            error_class="permanent" if permanent else "temporary",
            retry_after=retry_after,
        )
    etag = _header(response, b"ETag")
    last_modified = _header(response, b"Last-Modified")
    body_hash = hashlib.sha256(response.body).hexdigest()
    if target.body_hash == body_hash:
        return PollOutcome(**base, status="not_modified", etag=etag, last_modified=last_modified, body_hash=body_hash)
    headers = {k.decode("latin-1"): v[0].decode("latin-1") for k, v in response.headers.items() if v}
    try:
        parsed = parse_feed(response.body, response.url, headers)
    except ParseError as exc:
        return PollOutcome(**base, status="error", error=exc.message, error_class="temporary" if exc.temporary else "permanent")
    return PollOutcome(
        **base,
        status="ok",
        items=parsed.items,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        warning=parsed.warning,
        language=parsed.language,
    )


def describe_failure(failure: Failure) -> tuple[str, str]:
    """A one-line, operator-readable reason and its class (temporary or permanent)."""
    exc = failure.value
    if isinstance(exc, DownloadTimeoutError):
        return f"timed out: {exc}", "temporary"
    if isinstance(exc, CannotResolveHostError):
        return f"host not found: {exc}", "temporary"
    if isinstance(exc, DownloadConnectionRefusedError):
        return f"connection refused: {exc}", "temporary"
    if isinstance(exc, DownloadCancelledError):
        return f"response too large or cancelled: {exc}", "permanent"
    if isinstance(exc, ResponseDataLossError):
        return f"response truncated: {exc}", "temporary"
    if isinstance(exc, UnsupportedURLSchemeError):
        return f"unsupported URL scheme: {exc}", "permanent"
    if isinstance(exc, IgnoreRequest):
        text = str(exc) or "request refused"
        if "robots" in text.lower() or type(exc).__name__ == "IgnoreRequest":
            return f"refused: {text} (robots.txt or redirect limit)", "permanent"
        return text, "permanent"
    if isinstance(exc, DownloadFailedError):
        return f"download failed: {exc}", "temporary"
    name = type(exc).__name__
    return f"{name}: {exc}"[:500], "temporary"


def parse_retry_after(value: bytes | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), at most a day."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return min(float(text), 86400.0)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - now).total_seconds(), 86400.0))


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
