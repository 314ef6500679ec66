"""FeedSpider: poll feed, sitemap and listing sources once each, with conditional GET.

For each :class:`~monitor.core.models.PollTarget` it sends one request carrying the
stored ETag / Last-Modified and yields exactly one
:class:`~monitor.core.models.PollOutcome` whatever happens (entries, not modified, or a
classified error), so that every poll is recorded on its source.  A 304, or a 200 whose
body hashes to the stored hash (servers that ignore validators), ends the poll without
parsing.  Parsing runs in a worker thread, so a 2 MB feed does not stall every other
download (and trip their timeouts) while feedparser reads it.  The body's format is
sniffed from its bytes: a ``feed`` source that turns out to serve a sitemap is read as
one.  A sitemap index is followed to its newest child sitemaps on the same host
(bounded); a ``listing`` page gives the links its CSS selector picks; then the article
pages of new entries without text are fetched (see
:class:`~crawler.spiders.base.SourceSpider`).  It must not touch the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.spiders.base import Poll, SourceSpider, response_headers
from monitor.core.extract import parse_listing
from monitor.core.feeds import parse_feed
from monitor.core.models import PollTarget
from monitor.errors import ParseError

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# A news sitemap index lists one child per day or section; the newest few hold the news.
MAX_CHILD_SITEMAPS = 5


class FeedSpider(SourceSpider):
    name = "feeds"

    def requests_for(self, target: PollTarget) -> Iterable[Request]:
        poll = Poll(target)
        accept = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5" if target.type == "listing" else FEED_ACCEPT
        return [self.request(poll, target.url, self.parse_response, conditional=True, accept=accept)]

    async def parse_response(self, response: Response) -> AsyncIterator[Any]:
        poll: Poll = response.meta["poll"]
        ended = self.begin(poll, response)
        if ended is not None:
            yield ended
            return
        target = poll.target
        index_like = b"sitemapindex" in response.body[:4096]
        if target.body_hash == poll.body_hash and not index_like:
            yield self.unchanged(poll)
            return
        if target.type == "listing":
            selector = self.option(target).links or "a[href]"
            if not isinstance(response, TextResponse):
                yield self.parse_failed(
                    poll, f"listing page is not text ({response.headers.get(b'Content-Type')!r})", False
                )
                return
            poll.items.extend(await asyncio.to_thread(parse_listing, response.text, response.url, selector))
            if not poll.items:
                poll.warnings.append(f"the selector {selector!r} matched no links")
        else:
            try:
                parsed = await asyncio.to_thread(parse_feed, response.body, response.url, response_headers(response))
            except ParseError as exc:
                yield self.parse_failed(poll, exc.message, exc.temporary)
                return
            poll.items.extend(parsed.items)
            poll.language = parsed.language
            if parsed.warning:
                poll.warnings.append(parsed.warning)
            if parsed.ttl_minutes:
                poll.min_interval = max(poll.min_interval or 0.0, parsed.ttl_minutes * 60.0)
            if parsed.children:
                # The sitemap protocol lets an index list only sitemaps on its own host;
                # following others would let any index send us anywhere.
                host = urlsplit(response.url).netloc
                children = [c for c in parsed.children if urlsplit(c).netloc == host]
                if len(children) < len(parsed.children):
                    poll.warnings.append(
                        f"skipped {len(parsed.children) - len(children)} child sitemaps on other hosts"
                    )
                for child in children[:MAX_CHILD_SITEMAPS]:
                    yield self.request(poll, child, self.parse_child, accept=FEED_ACCEPT, meta={"role": "sitemap"})
                if children:
                    return
        async for out in self.settle(poll):
            yield out

    async def parse_child(self, response: Response) -> AsyncIterator[Any]:
        """A child sitemap of an index: its entries join the poll; a failure only warns."""
        poll: Poll = response.meta["poll"]
        poll.pending -= 1
        if response.status >= 400:
            poll.warnings.append(f"sitemap {response.url}: HTTP {response.status}")
        else:
            try:
                parsed = await asyncio.to_thread(parse_feed, response.body, response.url, response_headers(response))
            except ParseError as exc:
                poll.warnings.append(f"sitemap {response.url}: {exc.message}")
            else:
                poll.items.extend(parsed.items)
                if parsed.warning:
                    poll.warnings.append(f"sitemap {response.url}: {parsed.warning}")
                if parsed.children:
                    # Nested indexes are legal but rare; one level is followed, deeper is named.
                    poll.warnings.append(f"sitemap {response.url} is itself an index; not followed")
        async for out in self.settle(poll):
            yield out
