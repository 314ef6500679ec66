"""Parse feed bytes (RSS 0.9x/1.0/2.0, Atom, JSON Feed) into ``RawItem``s with feedparser.

Responsible for reading a body that was already downloaded: feedparser never fetches
anything here (its own HTTP has no timeout).  Charset: the response headers are passed
so a declared charset is seen; with chardet installed feedparser guesses an undeclared
one.  A feed that is partly broken keeps the entries that parsed; a body that is not a
feed at all raises :class:`~monitor.errors.ParseError`, naming the feed an HTML page
advertises when it advertises one.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser  # type: ignore[import-untyped]

from monitor.core.items import html_to_text
from monitor.core.models import RawItem
from monitor.errors import ParseError

_ALTERNATE = re.compile(
    rb"<link\b[^>]*\brel=[\"']?alternate[\"']?[^>]*>",
    re.IGNORECASE,
)
_FEED_TYPE = re.compile(rb"type=[\"']?application/(rss|atom|feed)\+(xml|json)", re.IGNORECASE)
_HREF = re.compile(rb"href=[\"']?([^\"' >]+)", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: tuple[RawItem, ...]
    language: str | None
    ttl_minutes: int | None
    warning: str | None  # set when feedparser recovered from malformed input


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Entries of the feed in ``body``; ``url`` resolves relative links."""
    head = body[:4096]
    if _HTML_START.match(head):
        discovered = discover_feeds(body, url)
        if discovered:
            raise ParseError(url, f"got an HTML page, not a feed; the page advertises a feed at {discovered[0]}", temporary=False)
        raise ParseError(url, "got an HTML page, not a feed", temporary=False)

    if head.lstrip()[:1] == b"{":
        return parse_json_feed(body, url)

    parsed: Any = feedparser.parse(
        io.BytesIO(body),
        response_headers={**{k.lower(): v for k, v in (headers or {}).items()}, "content-location": url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    if not entries and not version:
        reason = parsed.get("bozo_exception")
        raise ParseError(url, f"not a feed we can read: {_reason(reason)}", temporary=False)

    feed_meta = parsed.get("feed", {})
    language = feed_meta.get("language") or None
    out = []
    for entry in entries:
        raw = _entry(entry, url, language)
        if raw is not None:
            out.append(raw)
    warning = None
    if parsed.get("bozo"):
        warning = f"malformed feed, kept {len(out)} entries: {_reason(parsed.get('bozo_exception'))}"
    ttl = feed_meta.get("ttl")
    ttl_minutes = int(ttl) if isinstance(ttl, str) and ttl.strip().isdigit() else None
    return ParsedFeed(tuple(out), language, ttl_minutes, warning)


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (feedparser 6.0 reads only XML)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(url, f"not a feed we can read: invalid JSON ({exc})", temporary=False) from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ParseError(url, "not a feed we can read: JSON without a JSON Feed version", temporary=False)
    language = doc.get("language") if isinstance(doc.get("language"), str) else None
    out: list[RawItem] = []
    skipped = 0
    for entry in doc.get("items") or []:
        if not isinstance(entry, dict):
            skipped += 1
            continue
        link = _str(entry.get("url")) or _str(entry.get("external_url"))
        guid = _str(entry.get("id"))
        if not guid and not link:
            skipped += 1
            continue
        html_content = _str(entry.get("content_html"))
        text = html_to_text(html_content) if html_content else _str(entry.get("content_text"))
        summary = _str(entry.get("summary"))
        out.append(
            RawItem(
                guid=guid or None,
                url=urljoin(url, link) if link else None,
                title=_str(entry.get("title")),
                summary=summary,
                text=text if text.strip() != summary.strip() else "",
                language=_str(entry.get("language")) or language,
                published=_iso_date(_str(entry.get("date_published")) or _str(entry.get("date_modified"))),
            )
        )
    warning = f"skipped {skipped} malformed JSON Feed items" if skipped else None
    return ParsedFeed(tuple(out), language, None, warning)


def _str(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _iso_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def discover_feeds(body: bytes, url: str) -> list[str]:
    """Feed URLs an HTML page advertises with ``<link rel="alternate" type="application/rss+xml">``."""
    found: list[str] = []
    for tag in _ALTERNATE.findall(body[:200_000]):
        if _FEED_TYPE.search(tag):
            href = _HREF.search(tag)
            if href:
                found.append(urljoin(url, href.group(1).decode("utf-8", "replace")))
    return found


def _entry(entry: Mapping[str, Any], base: str, language: str | None) -> RawItem | None:
    link = entry.get("link") or ""
    if not link:
        for candidate in entry.get("links") or []:
            if candidate.get("href") and candidate.get("rel", "alternate") == "alternate":
                link = candidate["href"]
                break
    link = urljoin(base, link.strip()) if link else ""
    guid = entry.get("id") or None
    if not guid and not link:
        return None
    content = ""
    for part in entry.get("content") or []:
        value = part.get("value") or ""
        if len(value) > len(content):
            content = value
    summary = entry.get("summary") or ""
    if content and content.strip() == summary.strip():
        content = ""
    return RawItem(
        guid=str(guid) if guid else None,
        url=link or None,
        title=entry.get("title") or "",
        summary=summary,
        text=html_to_text(content) if content else "",
        language=entry.get("language") or language,
        published=_date(entry.get("published_parsed") or entry.get("updated_parsed")),
    )


def _date(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _reason(exc: object) -> str:
    if exc is None:
        return "no feed elements found"
    text = str(exc) or type(exc).__name__
    return text[:300]
