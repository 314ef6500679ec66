"""Article pages for the enrichment stage: one page through the one policy, reduced to its text.

:func:`read_article` fetches an item's article page (``FeedPoller.fetch_page``:
robots.txt, per-host slots and delay, backoff, egress, size and time bounds all apply)
and reduces it to the article (``monitor.core.extract``, in an executor: trafilatura is
CPU work).  Every failure (HTTP error, refusal, timeout, unreadable markup) is a value,
an :class:`Article` with its reason and whether trying again could help; it never
raises.  It knows no database and no queue: the enrichment stage (monitor/stages/enrich.py,
wired in the daemon) decides what to fetch and records what came back.  Scrapy spiders
use :func:`needs_text` for their own in-crawl full text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from monitor.core.encoding import charset_from_content_type, decode
from monitor.core.items import html_to_text, link_too_long, oversized_fields, text_wanted
from monitor.core.models import PollOutcome, RawItem

__all__ = ["Article", "link_too_long", "needs_text", "read_article", "with_field_warnings"]

# (status, body, content type, error, error class, retry-after) of one page, fetched for the source at the second URL.
FetchPage = Callable[[str, str], Awaitable[tuple[int | None, bytes, str | None, str | None, str | None, float | None]]]


@dataclass(frozen=True, slots=True)
class Article:
    """What reading one article page gave: its text (and title), or why not.

    ``final`` means trying again cannot help (egress refused it, robots.txt forbids it,
    it is larger than ``max_body``, the link is not a web link): the item is marked failed
    at once rather than retried.  ``retry_after`` is the server's, in seconds.
    """

    text: str = ""
    title: str = ""
    error: str | None = None
    final: bool = False
    retry_after: float | None = None


def needs_text(raw: RawItem) -> bool:
    """An entry that should get its article page (:func:`~monitor.core.items.text_wanted`),
    its link's length aside: the caller says why a long one is not fetched."""
    wanted, too_long = text_wanted(raw.url, html_to_text(raw.summary) if raw.summary else "", raw.text or "")
    return wanted or too_long is not None


async def read_article(fetch: FetchPage, url: str, source_url: str, executor: Executor | None = None) -> Article:
    """The article text at ``url`` (fetched on behalf of the source at ``source_url``)."""
    too_long = link_too_long(url)
    if too_long is not None:
        return Article(error=too_long, final=True)
    # trafilatura takes a second to import: only a process that reads a page pays it.
    from monitor.core.extract import extract_article

    try:
        status, body, content_type, error, error_class, retry_after = await fetch(url, source_url)
        if error is not None:
            return Article(error=error, final=error_class == "permanent", retry_after=retry_after)
        if status is None or status >= 400:
            return Article(error=f"HTTP {status}", retry_after=retry_after)
        html = decode(body, charset_from_content_type(content_type)).text
        extracted = await asyncio.get_running_loop().run_in_executor(executor, extract_article, html, url)
    except Exception as exc:  # one page's failure is recorded on its item, never raised
        # trafilatura and lxml raise many types on hostile markup; whatever it is, the
        # item keeps what its feed gave, and the other pages of the batch go on.
        return Article(error=f"could not be read ({type(exc).__name__})")
    if not extracted.text:
        return Article(error="no article text found in the page")
    return Article(text=extracted.text, title=extracted.title or "")


def with_field_warnings(outcome: PollOutcome) -> PollOutcome:
    """``outcome`` with a warning naming the fields that will be stored shortened (as the spiders say)."""
    oversized = [f for raw in outcome.items for f in oversized_fields(raw)]
    if not oversized:
        return outcome
    note = f"{len(oversized)} oversized field(s) stored shortened: {', '.join(oversized[:3])}"
    return dataclasses.replace(outcome, warning="; ".join(w for w in (note, outcome.warning) if w))
