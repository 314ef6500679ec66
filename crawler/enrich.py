"""Full text for feed entries polled by the FeedPoller: article pages through the one policy.

A feed entry with no text and no or a short summary gets its article page fetched
(``FeedPoller.fetch_page``: robots.txt, per-host slots and delay, backoff, egress, size
and time bounds all apply) and reduced to the article (``monitor.core.extract``, in an
executor: trafilatura is CPU work).  Only entries the store does not hold yet are
fetched (``known_keys`` is injected: this module knows no database), at most
``max_pages`` per poll, as the Scrapy spiders do.  Every per-page failure (HTTP error,
refusal, timeout, unreadable markup, a link too long) is recorded as a warning on the
poll, and the entry is kept with what the feed gave: one page never fails the poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from urllib.parse import urlsplit

from monitor.core.encoding import charset_from_content_type, decode
from monitor.core.items import html_to_text, make_item, oversized_fields
from monitor.core.models import PollOutcome, RawItem

# Longer links are refused (the de-facto browser limit; Scrapy drops them too).
URL_LIMIT = 2083
# A summary at least this long (in characters of text) is enough to match on.
SHORT_SUMMARY = 400

KnownKeys = Callable[[int, Sequence[str]], Awaitable[set[str]]]


# (status, body, content type, error) of one page, fetched for the source at the second URL.
FetchPage = Callable[[str, str], Awaitable[tuple[int | None, bytes, str | None, str | None]]]


def needs_text(raw: RawItem) -> bool:
    """An entry that should get its article page: no text, no or a short summary, a web link."""
    if raw.text or not raw.url or urlsplit(raw.url).scheme not in ("http", "https"):
        return False
    return not (raw.summary and len(html_to_text(raw.summary)) >= SHORT_SUMMARY)


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "…"


async def with_full_text(
    outcome: PollOutcome,
    fetch: FetchPage,
    known_keys: KnownKeys,
    *,
    source_url: str,
    max_pages: int,
    executor: Executor | None = None,
) -> PollOutcome:
    """``outcome`` with the article text of its new entries that lacked one."""
    if outcome.status != "ok" or not outcome.items or max_pages <= 0:
        return with_field_warnings(outcome)
    now = datetime.now(UTC)
    wanted: list[tuple[int, str]] = []
    for i, raw in enumerate(outcome.items):
        if needs_text(raw):
            item = make_item(raw, now)
            if item is not None:
                wanted.append((i, item.key))
    if not wanted:
        return with_field_warnings(outcome)
    known = await known_keys(outcome.source_id, sorted({key for _, key in wanted}))
    todo = [i for i, key in wanted if key not in known][:max_pages]
    if not todo:
        return with_field_warnings(outcome)
    # trafilatura takes a second to import: only a poll that has a page to read pays it.
    from monitor.core.extract import extract_article

    items = list(outcome.items)
    warnings: list[str] = []
    loop = asyncio.get_running_loop()

    async def one(index: int) -> None:
        raw = items[index]
        url = raw.url or ""
        if len(url) > URL_LIMIT:
            warnings.append(f"article link of {len(url):,} characters not fetched (limit {URL_LIMIT:,})")
            return
        try:
            status, body, content_type, error = await fetch(url, source_url)
            if error is not None:
                warnings.append(f"article {_short(url)}: {error}")
                return
            if status is None or status >= 400:
                warnings.append(f"article {_short(url)}: HTTP {status}")
                return
            html = decode(body, charset_from_content_type(content_type)).text
            extracted = await loop.run_in_executor(executor, extract_article, html, url)
        except Exception as exc:  # one page's failure is recorded on its item, never the poll's
            # trafilatura and lxml raise many types on hostile markup; whatever it is,
            # the item is stored with what the feed gave, and the source's other items too.
            warnings.append(f"article {_short(url)}: could not be read ({type(exc).__name__})")
            return
        if extracted.text:
            items[index] = dataclasses.replace(raw, text=extracted.text, title=raw.title or extracted.title)

    await asyncio.gather(*(one(i) for i in todo))
    warning = "; ".join(w for w in (outcome.warning, *warnings[:5]) if w) or None
    if len(warnings) > 5:
        warning = f"{warning}; and {len(warnings) - 5} more article(s) not read"
    return with_field_warnings(dataclasses.replace(outcome, items=tuple(items), warning=warning))


def with_field_warnings(outcome: PollOutcome) -> PollOutcome:
    """``outcome`` with a warning naming the fields that will be stored shortened (as the spiders say)."""
    oversized = [f for raw in outcome.items for f in oversized_fields(raw)]
    if not oversized:
        return outcome
    note = f"{len(oversized)} oversized field(s) stored shortened: {', '.join(oversized[:3])}"
    return dataclasses.replace(outcome, warning="; ".join(w for w in (note, outcome.warning) if w))
