"""The fast feed-parsing path (fastfeedparser) against the reference (feedparser) on every corpus feed.

Wherever the fast path takes a feed, its entries must be exactly feedparser's as our
``RawItem`` sees them (GUID, link, title, summary, text, language, date) and so must the
feed's language, ``<ttl>`` and warning; wherever it declines, ``parse_feed`` must give
feedparser's reading.  The encoding traps of the corpus (windows-1251, KOI8-R, EUC-KR,
ISO-8859-1 with and without a declaration, lying prologs) go through the same check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.encoding import decode, gunzip, xml_as_utf8
from monitor.core.feeds import ParsedFeed, parse_fast, parse_feed, parse_reference, sniff
from tests.conftest import CORPUS
from tests.feeds import rss

FEEDS = sorted(p for p in (CORPUS / "feeds").rglob("*") if p.is_file() and "expected" not in p.parts)
BASE = "https://example.org/feed.xml"
WHEN = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # fixed: test ids must not change between xdist workers


def _xml(path: Path) -> tuple[bytes, str | None] | None:
    decoded = decode(gunzip(path.read_bytes()))
    if sniff(decoded.text) != "feed":
        return None  # JSON Feed and sitemaps have their own readers, not feedparser
    return xml_as_utf8(decoded.text), decoded.note


def _same(fast: ParsedFeed, ref: ParsedFeed) -> None:
    assert len(fast.items) == len(ref.items)
    for a, b in zip(fast.items, ref.items, strict=True):
        assert a == b
    assert (fast.language, fast.ttl_minutes, fast.warning) == (ref.language, ref.ttl_minutes, ref.warning)


@pytest.mark.parametrize("path", FEEDS, ids=[p.name for p in FEEDS])
def test_fast_path_equals_feedparser_or_declines(path: Path) -> None:
    got = _xml(path)
    if got is None:
        pytest.skip("not an XML feed")
    xml, note = got
    ref = parse_reference(xml, BASE, note)
    fast = parse_fast(xml, BASE, note)
    if fast is not None:
        _same(fast, ref)
    # Whichever path parse_feed takes, the result is feedparser's reading.
    _same(parse_feed(path.read_bytes(), BASE), parse_feed_reference(path.read_bytes()))


def parse_feed_reference(body: bytes) -> ParsedFeed:
    decoded = decode(gunzip(body))
    return parse_reference(xml_as_utf8(decoded.text), BASE, decoded.note)


def test_the_fast_path_takes_the_common_feeds_and_the_encoding_traps() -> None:
    taken = set()
    for path in FEEDS:
        got = _xml(path)
        if got is not None and parse_fast(got[0], BASE, got[1]) is not None:
            taken.add(path.name)
    # Measured: 18 of the 60 XML corpus feeds; the rest carry something it does not read
    # as feedparser does (xml:base, mixed content, dc:date, media groups, RSS 1.0, …).
    assert len(taken) >= 15, sorted(taken)
    traps = {
        "miniflux__encoding_WINDOWS-1251.xml",
        "miniflux__encoding_ISO-8859-1.xml",
        "miniflux__koi8r.xml",
        "nodefp__iconv.xml",
    }
    assert traps <= taken


@pytest.mark.parametrize(
    ("why", "body"),
    [
        ("malformed", rss([("https://x.example/1", "One", "a")], published=WHEN)[:-40]),
        ("relative permalink GUID", rss([("g1", "One", "a")], published=WHEN)),
        (
            "mixed content",
            rss([("https://x.example/1", "One", "a")], published=WHEN).replace(
                "<description>a", "<description>a <b>b</b>"
            ),
        ),
        (
            "dc:date",
            rss([("https://x.example/1", "One", "a")], published=WHEN).replace(
                "<title>One", "<dc:date>2026-01-01</dc:date><title>One"
            ),
        ),
        ("RSS 1.0", '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><item/></rdf:RDF>'),
    ],
    ids=lambda value: value if len(value) < 40 else "body",
)
def test_fallback_engages_where_the_fast_path_would_differ(why: str, body: str) -> None:
    xml = xml_as_utf8(body)
    assert parse_fast(xml, BASE) is None, why


def test_fast_path_reads_a_plain_feed() -> None:
    body = rss([("https://x.example/1", "Kim meets Putin", "Talks in <b>Vladivostok</b>.")])
    fast = parse_fast(xml_as_utf8(body), BASE)
    assert fast is not None
    (item,) = fast.items
    assert (item.guid, item.title, item.summary) == (
        "https://x.example/1",
        "Kim meets Putin",
        "Talks in <b>Vladivostok</b>.",
    )
    assert item.url == "https://news.example.org/https://x.example/1?utm_source=rss"
    assert item.published is not None
    _same(fast, parse_reference(xml_as_utf8(body), BASE))
