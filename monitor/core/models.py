"""Plain data that flows through the pipeline, named by stage.

``RawItem`` (what a spider read from a source) → ``Item`` (normalised, with its dedupe
key) → ``StoredItem`` (has a database id) → ``RuleHit`` (a rule fired, with spans) →
``Alert`` (one subscriber, one rule, one item) → ``Message`` (rendered for a channel).
Only frozen dataclasses live here; nothing in this module does I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def picklable(cls: type[T]) -> type[T]:
    """Pickle a frozen, slotted dataclass as its constructor and field values.

    Those are what the CPU workers send and return by the thousand.  Python's own pickling
    of a slotted dataclass calls ``fields()`` for every object it writes and a
    ``setattr`` per field for every object it reads; this is about twice as fast over
    items, hits and fingerprints (``tests/core/test_models.py`` pins that every such
    class survives the round trip).  Only for dataclasses whose ``__init__`` takes every
    field, in order: no ``init=False`` or keyword-only fields.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    values = operator.attrgetter(*names)  # one name gives the value itself, not a tuple
    one = len(names) == 1

    def reduce(self: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return cls, ((values(self),) if one else values(self))

    cls.__reduce__ = reduce  # type: ignore[assignment,method-assign]
    return cls


@picklable
@dataclass(frozen=True, slots=True)
class RawItem:
    """One entry as read from a feed, sitemap or page, before normalisation."""

    guid: str | None
    url: str | None
    title: str
    summary: str = ""
    text: str = ""
    language: str | None = None
    published: datetime | None = None


@picklable
@dataclass(frozen=True, slots=True)
class Item:
    """A normalised entry: canonical URL, dedupe key, clean text, aware datetimes."""

    key: str
    guid: str | None
    url: str
    canonical_url: str
    title: str
    summary: str
    text: str
    language: str | None
    published: datetime | None
    # The feed gave no title; ``title`` was made from the summary, URL or GUID for display.
    title_derived: bool = False


@picklable
@dataclass(frozen=True, slots=True)
class Document:
    """What the matcher sees: a title and a body (summary and full text), and a language hint.

    A derived title (``title_derived``: the feed gave none, so it was made from the text)
    is kept for display but never matched: ``title:`` must mean a headline somebody wrote.
    """

    title: str
    body: str
    language: str | None = None
    title_derived: bool = False


@picklable
@dataclass(frozen=True, slots=True)
class Span:
    """A matched stretch of ``Document.title`` or ``Document.body`` (character offsets)."""

    field: str  # "title" | "body"
    start: int
    end: int
    text: str


@picklable
@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired on a document, with the spans that made it fire."""

    rule: str
    spans: tuple[Span, ...] = field(default_factory=tuple)


# Source types the aiohttp FeedPoller polls; the others (listing, spider) are Scrapy crawls.
POLLED_TYPES = frozenset({"feed", "sitemap", "telegram"})


@dataclass(frozen=True, slots=True)
class PollTarget:
    """One source to poll, with the validators of its last successful poll."""

    source_id: int
    name: str
    type: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    language: str | None = None
    max_body: int | None = None
    # Telegram: page back (``?before=``) while the messages are at or after this time.
    since: datetime | None = None


@picklable
@dataclass(frozen=True, slots=True, repr=False)
class PollOutcome:
    """What polling one source produced: entries, "not modified", or an error.

    ``status`` is ``"ok"`` (entries parsed, possibly none), ``"not_modified"`` (304, or a
    body identical to the last one) or ``"error"``.  ``error_class`` is ``"temporary"``
    (worth retrying soon) or ``"permanent"`` (needs an operator).  A feed that parsed
    partly is ``"ok"`` with the entries that parsed and a ``warning``.  ``min_interval``
    (seconds) is what the source asked for as the shortest polling interval: Cache-Control
    max-age or an RSS ``<ttl>``.
    """

    source_id: int
    source: str
    status: str
    items: tuple[RawItem, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    http_status: int | None = None
    error: str | None = None
    error_class: str | None = None
    retry_after: float | None = None
    warning: str | None = None
    language: str | None = None
    min_interval: float | None = None

    def __repr__(self) -> str:
        # One short line whoever prints it (Scrapy logs items it scraped or failed to
        # process): the entries' text never goes into a log (7.8 MB lines before).
        parts = [f"source={self.source!r}", f"status={self.status!r}", f"items={len(self.items)}"]
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        for name in ("error", "warning"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value[:200]!r}")
        return f"PollOutcome({', '.join(parts)})"
