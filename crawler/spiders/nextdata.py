"""NextDataSpider: the example of a site that needs code — articles inside ``__NEXT_DATA__``.

Many news sites built on Next.js publish no feed, and their front page renders its
article list with JavaScript from a JSON blob in ``<script id="__NEXT_DATA__">``.  This
spider reads that blob and takes every object that looks like an article (a URL or slug
plus a title, and a date or summary when present), anywhere in it.  Use it as
``type = "spider"``, ``spider = "nextdata"``, ``url`` = the page.  It shows the shape
every site spider follows: subclass :class:`~crawler.spiders.base.SourceSpider`, make
one main request per target with :meth:`request`, turn the page into ``RawItem``s, then
hand over to :meth:`settle` (article text for entries that need it, then exactly one
outcome).  It must not touch the database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.spiders.base import Poll, SourceSpider
from monitor.core.feeds import parse_date
from monitor.core.models import PollTarget, RawItem

_URL_KEYS = ("url", "link", "href", "canonicalUrl", "permalink", "slug")
_TITLE_KEYS = ("title", "headline", "name")
_SUMMARY_KEYS = ("summary", "description", "excerpt", "dek", "standfirst")
_DATE_KEYS = ("publishedAt", "published_at", "datePublished", "date", "publishDate", "firstPublished")
MAX_ITEMS = 200


class NextDataSpider(SourceSpider):
    name = "nextdata"

    def requests_for(self, target: PollTarget) -> Iterable[Request]:
        poll = Poll(target)
        return [self.request(poll, target.url, self.parse_page, conditional=True, accept="text/html")]

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        poll: Poll = response.meta["poll"]
        ended = self.begin(poll, response)
        if ended is not None:
            yield ended
            return
        if poll.target.body_hash == poll.body_hash:
            yield self.unchanged(poll)
            return
        if not isinstance(response, TextResponse):
            yield self.parse_failed(poll, "page is not text", False)
            return
        blob = Selector(text=response.text).css("script#__NEXT_DATA__::text").get()
        if not blob:
            yield self.parse_failed(poll, 'no <script id="__NEXT_DATA__"> on the page (has the site changed?)', False)
            return
        try:
            data = json.loads(blob)
        except json.JSONDecodeError as exc:
            yield self.parse_failed(poll, f"__NEXT_DATA__ is not JSON: {exc}", True)
            return
        seen: set[str] = set()
        for raw in articles_in(data, response.url):
            if raw.url and raw.url not in seen:
                seen.add(raw.url)
                poll.items.append(raw)
            if len(poll.items) >= MAX_ITEMS:
                break
        if not poll.items:
            poll.warnings.append("__NEXT_DATA__ holds no article-like objects")
        async for out in self.settle(poll):
            yield out


def articles_in(node: Any, base: str) -> Iterator[RawItem]:
    """Every dict in the JSON tree with a link and a title, depth first, in document order."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            link = _first(current, _URL_KEYS)
            title = _first(current, _TITLE_KEYS)
            if link and title and not link.startswith(("data:", "javascript:")):
                yield RawItem(
                    guid=str(current["id"]) if isinstance(current.get("id"), (str, int)) else None,
                    url=urljoin(base, link),
                    title=title,
                    summary=_first(current, _SUMMARY_KEYS),
                    published=parse_date(_first(current, _DATE_KEYS) or None),
                )
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _first(node: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = node.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
