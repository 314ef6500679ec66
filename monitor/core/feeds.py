"""Parse a downloaded feed or sitemap body into ``RawItem``s: sniff, decode, then parse.

Responsible for reading a body that was already downloaded; nothing here fetches (not
feedparser either: its own HTTP has no timeout).  The format is sniffed from the bytes,
never from the file name or the content type: gzip by its magic number, JSON Feed by its
opening brace, and otherwise the root element (``rss``/``RDF``/``feed`` → feedparser,
``urlset``/``sitemapindex`` → :mod:`monitor.core.sitemaps`, ``html`` → an error naming
the feed the page advertises).  The charset is decided by :mod:`monitor.core.encoding`
and feedparser is handed UTF-8 that says it is UTF-8, because real feeds lie about their
encoding.  A feed that is partly broken keeps the entries that parsed, with a warning;
an entry with neither id nor link gets a stable content-derived id rather than being
lost.  Dates keep their own offset; one that cannot be read is left out (the store then
uses the first-seen time).  A body that is not a feed at all raises
:class:`~monitor.errors.ParseError`.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin
from xml.parsers import expat

from monitor.core.encoding import (
    TooLarge,
    charset_from_content_type,
    decode,
    fix_c1,
    fix_mojibake,
    gunzip,
    xml_as_utf8,
)
from monitor.core.items import html_to_text
from monitor.core.models import RawItem
from monitor.core.sitemaps import is_sitemap_root, parse_sitemap
from monitor.errors import ParseError

_ALTERNATE = re.compile(
    rb"<link\b[^>]*\brel=[\"']?alternate[\"']?[^>]*>",
    re.IGNORECASE,
)
_FEED_TYPE = re.compile(rb"type=[\"']?application/(rss|atom|feed)\+(xml|json)", re.IGNORECASE)
_HREF = re.compile(rb"href=[\"']?([^\"' >]+)", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_ROOT = re.compile(r"<(?![?!/])([A-Za-z_][\w.:-]*)")
_EMBEDDED_FEED = re.compile(r"<(feed|rss|rdf:RDF)\b", re.IGNORECASE)
# feedparser's "bozo" reasons that say nothing about the document being broken.
_HARMLESS = ("CharacterEncodingOverride", "NonXMLContentType")
_FEED_ROOTS = ("rss", "rdf", "feed", "channel")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: tuple[RawItem, ...]
    language: str | None
    ttl_minutes: int | None
    warning: str | None  # set when the parser recovered from malformed input
    kind: str = "feed"  # "feed" | "sitemap"
    children: tuple[str, ...] = ()  # a sitemap index: the sitemaps it lists


def sniff(text: str) -> str:
    """``"json"``, ``"html"``, ``"sitemap"``, ``"feed"`` or ``"unknown"``, from the text alone."""
    head = text[:65536].lstrip("\ufeff \t\r\n")
    if head[:1] in ("{", "["):
        return "json"
    root = _ROOT.search(_COMMENT.sub("", head))
    if root is None:
        return "unknown"
    name = root.group(1).rsplit(":", 1)[-1].lower()
    if name == "html":
        return "html"
    if is_sitemap_root(name):
        return "sitemap"
    if name in _FEED_ROOTS:
        return "feed"
    return "unknown"


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Entries of the feed (or sitemap) in ``body``; ``url`` resolves relative links."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        body = gunzip(body)
    except TooLarge as exc:
        raise ParseError(url, f"body too large once decompressed: {exc}", temporary=False) from None
    if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        return parse_json_feed(body, url)
    decoded = decode(body, charset_from_content_type(lowered.get("content-type")))
    kind = sniff(decoded.text)
    if kind == "sitemap":
        sm = parse_sitemap(xml_as_utf8(decoded.text), url)
        return ParsedFeed(sm.items, None, None, _join(decoded.note, sm.warning), kind="sitemap", children=sm.children)
    if kind == "html" and not _EMBEDDED_FEED.search(decoded.text[:200_000]):
        discovered = discover_feeds(body, url)
        if discovered:
            raise ParseError(
                url, f"got an HTML page, not a feed; the page advertises a feed at {discovered[0]}", temporary=False
            )
        raise ParseError(url, "got an HTML page, not a feed", temporary=False)
    return _parse_xml_feed(xml_as_utf8(decoded.text), url, decoded.note)


# Entries read from one feed per poll, at most.  A feed lists its newest entries first;
# one of 150,000 entries (8.6 MB, under max_body) peaked at 518 MB in feedparser and held
# the database's write lock for 95 s.  Cut before parsing, so memory stays bounded.
MAX_ENTRIES = 5_000
_ENTRY_END = re.compile(rb"</(?:[A-Za-z0-9_.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)


def cap_entries(xml_utf8: bytes, limit: int = MAX_ENTRIES) -> tuple[bytes, int | None]:
    """The document cut after its ``limit``-th entry, and how many entries it had (``None``
    when it had no more than ``limit``: then the document is returned as is)."""
    ends = _ENTRY_END.finditer(xml_utf8)
    cut = None
    count = 0
    for m in ends:
        count += 1
        if count == limit:
            cut = m.end()
        elif count > limit:
            break
    if cut is None or count <= limit:
        return xml_utf8, None
    total = limit + 1 + sum(1 for _ in ends)
    return xml_utf8[:cut], total


def _parse_xml_feed(xml_utf8: bytes, url: str, note: str | None) -> ParsedFeed:
    xml_utf8, total = cap_entries(xml_utf8)
    if total is not None:
        # feedparser reads a document cut short as far as it goes (and says "malformed").
        note = _join(note, f"feed has {total:,} entries; read the first {MAX_ENTRIES:,} (the newest)")
    fast = parse_fast(xml_utf8, url, note)
    return fast if fast is not None else parse_reference(xml_utf8, url, note, capped=total is not None)


def parse_reference(xml_utf8: bytes, url: str, note: str | None = None, *, capped: bool = False) -> ParsedFeed:
    """The reference reading of an XML feed (feedparser), for whatever the fast path declines.

    ``capped``: the document was cut after MAX_ENTRIES entries, so feedparser's complaint
    that it ends early is expected and not reported.
    """
    import feedparser  # here, not at import: a warm poll (all 304) never parses (~40 ms)

    parsed: Any = feedparser.parse(
        io.BytesIO(xml_utf8),
        response_headers={"content-type": "application/xml; charset=utf-8", "content-location": url},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    if not entries and not version:
        raise ParseError(url, f"not a feed we can read: {_reason(parsed.get('bozo_exception'))}", temporary=False)

    feed_meta = parsed.get("feed", {})
    language = feed_meta.get("language") or None
    out = []
    for entry in entries:
        raw = _entry(entry, url, language)
        if raw is not None:
            out.append(raw)
    warning = note
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and type(exc).__name__ not in _HARMLESS and not capped:
        warning = _join(note, f"malformed feed, kept {len(out)} entries: {_reason(exc)}")
    ttl = feed_meta.get("ttl")
    ttl_minutes = int(ttl) if isinstance(ttl, str) and ttl.strip().isdigit() else None
    return ParsedFeed(tuple(out), language, ttl_minutes, warning)


# ---------------------------------------------------------------------- the fast path
#
# fastfeedparser reads the common RSS 2.0 and Atom 1.0 feed some 40x faster than
# feedparser, but it is not feedparser: it synthesises a description from the content,
# falls back from a missing <guid> to the link, strips child elements out of mixed
# content, and skips dates it cannot read.  So it is trusted only where a cheap look at
# the raw bytes shows none of those differences can arise: well-formed XML (expat, the
# parser feedparser itself uses, accepts it), no xml:base or per-entry language, and in
# every entry one title, link, id and summary of plain text or CDATA, a date our own
# parse_date reads.  Anything else goes to feedparser, the reference.  The test
# tests/sources/test_fast_parsing.py holds the two to the same items on every corpus feed.

_RSS_ROOT = re.compile(rb"<rss\b[^>]*\bversion=[\"']2\.0", re.IGNORECASE)
_ATOM_ROOT = re.compile(rb"<feed\b[^>]*xmlns=[\"']http://www\.w3\.org/2005/Atom[\"']")
# Anything whose reading differs between the two parsers sends the document to feedparser
# (plain substring tests: one pass of memchr each, where one regex alternation cost more
# than fastfeedparser's whole parse).
_DECLINE = (
    b"xml:base",
    b"<dc:date",
    b"<dc:language",
    b"<dc:title",
    b"<dc:description",
    b"<dc:identifier",
    b"<dcterms:",
    b"<itunes:summary",
    b"<media:",
    b'type="xhtml"',
    b"type='xhtml'",
    b"<!DOCTYPE",
    b"<!doctype",
    b"<source",
)
_CONTENT_SRC = re.compile(rb"<content\b[^>]*\bsrc=")
_CHANNEL_LANGUAGE = re.compile(rb"<language>\s*([^<&]*?)\s*</language>")
_CHANNEL_TTL = re.compile(rb"<ttl>\s*([^<&]*?)\s*</ttl>")
_ATOM_LANG = re.compile(rb"<feed\b[^>]*\bxml:lang=[\"']([^\"']*)[\"']")


def _segments(xml_utf8: bytes, tag: bytes) -> list[bytes] | None:
    """The inside of every ``<tag>…</tag>`` (not nested: the document is well-formed)."""
    out: list[bytes] = []
    opening, closing = b"<" + tag, b"</" + tag + b">"
    at = xml_utf8.find(opening)
    while at >= 0:
        after = xml_utf8[at + len(opening) : at + len(opening) + 1]
        if after not in (b">", b" ", b"\t", b"\n", b"\r", b"/"):
            at = xml_utf8.find(opening, at + 1)  # <items>, <entryfoo>: another element
            continue
        inner = xml_utf8.find(b">", at) + 1
        end = xml_utf8.find(closing, inner)
        if inner == 0 or end < 0:
            return None
        out.append(xml_utf8[inner:end])
        at = xml_utf8.find(opening, end)
    return out


def _text_field(segment: bytes, tag: bytes, *, required: bool) -> bool:
    """Whether ``tag`` occurs as the fast path needs: at most once, text or one CDATA, no children."""
    opens = segment.count(b"<" + tag + b">") + segment.count(b"<" + tag + b" ")
    if opens > 1 or (required and opens == 0):
        return False
    if opens == 0:
        return segment.count(b"<" + tag + b"/>") == 0
    start = segment.find(b"<" + tag)
    inner_start = segment.find(b">", start) + 1
    end = segment.find(b"</" + tag + b">", inner_start)
    if inner_start == 0 or end < 0:
        return False
    inner = segment[inner_start:end].strip()
    if inner.startswith(b"<![CDATA[") and inner.endswith(b"]]>") and inner.count(b"<![CDATA[") == 1:
        return True
    return b"<" not in inner


_RAW_TEXT = {
    tag: re.compile(rb"<" + tag + rb"(?:\s[^>]*)?>([^<&]*)</" + tag + rb">")
    for tag in (b"guid", b"pubDate", b"published", b"updated")
}


def _raw_text(segment: bytes, tag: bytes) -> str | None:
    m = _RAW_TEXT[tag].search(segment)
    return m.group(1).decode("utf-8").strip() if m else None


def parse_fast(xml_utf8: bytes, url: str, note: str | None = None) -> ParsedFeed | None:
    """The feed read by fastfeedparser, or ``None`` when feedparser must read it (see above)."""
    if _RSS_ROOT.search(xml_utf8[:4096]):
        atom = False
    elif _ATOM_ROOT.search(xml_utf8[:4096]):
        atom = True
    else:
        return None
    if any(marker in xml_utf8 for marker in _DECLINE) or (b"src=" in xml_utf8 and _CONTENT_SRC.search(xml_utf8)):
        return None
    if not _well_formed(xml_utf8):
        return None
    segments = _segments(xml_utf8, b"entry" if atom else b"item")
    if segments is None:
        return None
    # feedparser takes the language of an Atom feed from xml:lang on its root, and only
    # that one is read the same way here; anywhere else, or in RSS, it declines.
    lang_count = xml_utf8.count(b"xml:lang")
    root_lang = _ATOM_LANG.search(xml_utf8[:4096]) if atom else None
    if lang_count > (1 if root_lang else 0):
        return None
    first = xml_utf8.find(b"<entry" if atom else b"<item")
    header = xml_utf8[:first] if first >= 0 else xml_utf8
    fields = (b"title", b"summary") if atom else (b"title", b"link", b"description")
    id_tag = b"id" if atom else b"guid"
    dates = (b"published", b"updated") if atom else (b"pubDate",)
    raw_dates: list[datetime | None] = []
    has_id: list[bool] = []
    for seg in segments:
        if not all(_text_field(seg, f, required=True) for f in fields) or not _text_field(seg, id_tag, required=False):
            return None
        # fastfeedparser falls back from a missing id to the link; feedparser leaves it out.
        has_id.append(b"<" + id_tag in seg)
        if not all(_text_field(seg, f, required=False) for f in dates):
            return None
        if atom:
            if seg.count(b"<link") != 1 or (b'rel="alternate"' not in seg and b"rel=" in seg):
                return None
        else:
            guid_open = seg[seg.find(b"<guid") : seg.find(b">", seg.find(b"<guid"))]
            guid = _raw_text(seg, b"guid")
            # feedparser resolves a relative permalink GUID against the feed URL; not this path.
            if has_id[-1] and (guid is None or ("://" not in guid and b'isPermaLink="false"' not in guid_open)):
                return None
        when: datetime | None = None
        for tag in dates:
            if b"<" + tag not in seg:
                continue
            value = _raw_text(seg, tag)
            parsed_date = parse_date(value) if value else None
            if parsed_date is None:
                return None  # feedparser's own date reading would decide: decline
            when = when or parsed_date
        raw_dates.append(when)
    import fastfeedparser  # here, not at import (~45 ms), as feedparser in parse_reference

    try:
        parsed: Any = fastfeedparser.parse(xml_utf8, include_tags=False, include_media=False, include_enclosures=False)
    except ValueError:
        return None
    entries = parsed.get("entries") or []
    if len(entries) != len(segments):
        return None
    lang_match = root_lang if atom else _CHANNEL_LANGUAGE.search(header)
    language = (lang_match.group(1).decode("utf-8") or None) if lang_match else None
    out: list[RawItem] = []
    for entry, published, with_id in zip(entries, raw_dates, has_id, strict=True):
        raw = _fast_entry(entry, url, language, published, with_id)
        if raw is not None:
            out.append(raw)
    ttl = _CHANNEL_TTL.search(header) if not atom else None
    ttl_text = ttl.group(1).decode("utf-8") if ttl else ""
    return ParsedFeed(tuple(out), language, int(ttl_text) if ttl_text.isdigit() else None, note)


def _fast_entry(
    entry: Mapping[str, Any], base: str, language: str | None, published: datetime | None, with_id: bool
) -> RawItem | None:
    link = entry.get("link") or ""
    link = urljoin(base, link.strip()) if link else ""
    summary = _clean(entry.get("description") or "")
    guid = (entry.get("id") or None) if with_id else None
    return _raw_item(entry, link, summary, guid, language, published)


def _raw_item(
    entry: Mapping[str, Any],
    link: str,
    summary: str,
    guid: Any,
    language: str | None,
    published: datetime | None,
) -> RawItem | None:
    """The RawItem of a parsed entry, the same for both parsers: the longest content
    part (dropped when it only repeats the summary), and a content id for an entry
    with neither GUID nor link (``None`` when it has nothing at all)."""
    content = ""
    for part in entry.get("content") or []:
        value = part.get("value") or ""
        if len(value) > len(content):
            content = value
    content = _clean(content)
    title = _clean(entry.get("title") or "")
    if content and content.strip() == summary.strip():
        content = ""
    if not guid and not link:
        if not title and not summary and not content:
            return None
        guid = content_id(title, summary or content)
    return RawItem(
        guid=str(guid) if guid else None,
        url=link or None,
        title=title,
        summary=summary,
        text=html_to_text(content) if content else "",
        language=language,
        published=published,
    )


def _well_formed(xml_utf8: bytes) -> bool:
    """Whether expat (feedparser's strict parser) reads the document without an error."""
    parser = expat.ParserCreate(namespace_separator=" ")
    try:
        parser.Parse(xml_utf8, True)
    except expat.ExpatError:
        return False
    return True


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (feedparser 6.0 reads only XML)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except RecursionError:
        raise ParseError(url, "not a feed we can read: JSON nested too deeply", temporary=False) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(url, f"not a feed we can read: invalid JSON ({exc})", temporary=False) from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ParseError(url, "not a feed we can read: JSON without a JSON Feed version", temporary=False)
    language = _str(doc.get("language")) or None
    out: list[RawItem] = []
    skipped = 0
    items = doc.get("items") or []
    capped = isinstance(items, list) and len(items) > MAX_ENTRIES
    for entry in items[:MAX_ENTRIES] if isinstance(items, list) else []:
        if not isinstance(entry, dict):
            skipped += 1
            continue
        link = _str(entry.get("url")) or _str(entry.get("external_url"))
        guid = _str(entry.get("id"))
        html_content = _str(entry.get("content_html"))
        text = html_to_text(html_content) if html_content else _str(entry.get("content_text"))
        summary = _str(entry.get("summary"))
        title = _str(entry.get("title"))
        if not guid and not link:
            guid = content_id(title, summary or text)
        out.append(
            RawItem(
                guid=guid or None,
                url=urljoin(url, link) if link else None,
                title=title,
                summary=summary,
                text=text if text.strip() != summary.strip() else "",
                language=_str(entry.get("language")) or language,
                published=parse_date(_str(entry.get("date_published")) or _str(entry.get("date_modified"))),
            )
        )
    warning = f"skipped {skipped} malformed JSON Feed items" if skipped else None
    if capped:
        warning = _join(warning, f"feed has {len(items):,} entries; read the first {MAX_ENTRIES:,} (the newest)")
    return ParsedFeed(tuple(out), language, None, warning)


def content_id(title: str, body: str) -> str:
    """A stable id for an entry that has neither id nor link: a hash of what it says."""
    digest = hashlib.sha256(f"{title.strip()}\n{body.strip()}".encode()).hexdigest()[:32]
    return f"urn:wirewatch:content:{digest}"


_UTF16_HALF = re.compile("[\ud800-\udfff]")


def _str(value: object) -> str:
    """A JSON value as text.  JSON's ``\\ud800`` escapes can name half a UTF-16 pair, which no
    encoder writes (hashing a key or storing the item raised): each becomes U+FFFD."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return _UTF16_HALF.sub("\ufffd", value) if _UTF16_HALF.search(value) else value


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
    summary = _clean(entry.get("summary") or "")
    return _raw_item(
        entry, link, summary, entry.get("id") or None, entry.get("language") or language, _entry_date(entry)
    )


def _clean(value: str) -> str:
    return fix_mojibake(fix_c1(value))


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for raw_key, parsed_key in (("published", "published_parsed"), ("updated", "updated_parsed")):
        raw = entry.get(raw_key)
        when = parse_date(raw) if isinstance(raw, str) else None
        if when is None:
            when = _struct_date(entry.get(parsed_key))
        if when is not None:
            return when
    return None


# Month names of the languages our sources write dates in when they ignore RFC 822.
_MONTHS = {
    **dict.fromkeys(["jan", "janv", "ene", "gen", "jän", "janeiro", "janvier"], 1),
    **dict.fromkeys(["feb", "fev", "fév", "févr", "fevereiro"], 2),
    **dict.fromkeys(["mar", "mär", "mars", "março", "marzo"], 3),
    **dict.fromkeys(["apr", "abr", "avr", "avril", "abril"], 4),
    **dict.fromkeys(["may", "mai", "mag", "maio", "mayo"], 5),
    **dict.fromkeys(["jun", "juin", "giu", "junho", "junio"], 6),
    **dict.fromkeys(["jul", "juil", "lug", "julho", "julio"], 7),
    **dict.fromkeys(["aug", "ago", "aoû", "août", "agosto"], 8),
    **dict.fromkeys(["sep", "set", "sept", "setembro", "septiembre"], 9),
    **dict.fromkeys(["oct", "out", "okt", "ott", "outubro", "octubre"], 10),
    **dict.fromkeys(["nov", "novembro", "noviembre"], 11),
    **dict.fromkeys(["dec", "dez", "dic", "déc", "dezembro", "diciembre"], 12),
}
_LOCAL_DATE = re.compile(
    r"(\d{1,2})\.?\s+([^\W\d_]{3,10})\.?\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{2}:?\d{2}|GMT|UTC|Z)?",
    re.IGNORECASE,
)


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime from RFC 822, ISO 8601 or a localised "24 Set 2018 19:42 -0300"; else ``None``.

    The publisher's own offset is kept.  A time without any zone is not guessed.
    """
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo is not None else None
    try:
        rfc822: datetime | None = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        rfc822 = None
    if rfc822 is not None and rfc822.tzinfo is not None:
        return rfc822
    m = _LOCAL_DATE.search(value)
    if m is None:
        return None
    month = _MONTHS.get(m.group(2).lower().rstrip("."))
    zone = m.group(7)
    if month is None or zone is None:
        return None
    if zone.upper() in ("GMT", "UTC", "Z"):
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)), int(m.group(6) or 0), tzinfo=tz
        )
    except ValueError:
        return None


def _struct_date(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _reason(exc: object) -> str:
    if exc is None:
        return "no feed elements found"
    text = str(exc) or type(exc).__name__
    return text[:300]
