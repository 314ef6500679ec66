"""The pure parts of the source layer: charset decisions, sniffing, dates, sitemaps, listings, schedule."""

from __future__ import annotations

import contextlib
import gzip
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.encoding import TooLarge, decode, fix_c1, fix_mojibake, gunzip, xml_as_utf8
from monitor.core.extract import extract_article, parse_listing
from monitor.core.feeds import content_id, parse_date, parse_feed, sniff
from monitor.core.schedule import adapt, bounds_for, is_silent
from monitor.core.sitemaps import parse_sitemap, parse_w3c_date
from monitor.errors import ParseError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "http", "encoding", "text"),
    [
        ('<?xml version="1.0" encoding="ISO-8859-1"?><a>Café</a>'.encode(), None, "utf-8", "Café"),
        ('<?xml version="1.0" encoding="windows-1251"?><a>Путин</a>'.encode("cp1251"), None, "cp1251", "Путин"),
        (
            "<a>Президент России Владимир Путин провёл переговоры с руководством страны</a>".encode("koi8_r"),
            None,
            "koi8-r",
            "Путин",
        ),
        ("<a>Rival de Putin é condenado a mais 20 dias de prisão</a>".encode("latin-1"), "utf-8", "cp1252", "prisão"),
        ('<?xml version="1.0" encoding="gb2312"?><a>建国35周年纪念</a>'.encode("gb18030"), None, "gb18030", "建国"),
        ('<?xml version="1.0" encoding="utf-8"?><a>Jürgen</a>'.encode("latin-1"), None, None, "Jürgen"),
        (b"\xef\xbb\xbf<a>x</a>", None, "utf-8-sig", "<a>x</a>"),
    ],
)
def test_decode_picks_the_charset_the_bytes_are_in(
    body: bytes, http: str | None, encoding: str | None, text: str
) -> None:
    decoded = decode(body, http)
    if encoding:
        assert decoded.encoding == encoding
    assert text in decoded.text


def test_declaration_rewritten_to_utf8_and_junk_before_it_dropped() -> None:
    doc = '\n\n<!-- c --><?xml version="1.0" encoding="koi8-r"?><rss/>'
    assert xml_as_utf8(doc) == b"<!-- c --><rss/>"
    assert xml_as_utf8('<?xml version="1.0" encoding="x"?>\n<rss/>') == b"<rss/>"


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        ("&#xD800;", False),
        ("&#xdfff;", False),
        ("&#55296;", False),
        ("&#57343;", False),
        ("&#x110000;", False),
        ("&#1114112;", False),
        ("&#x0000D83D;", False),
        ("&#xD7FF;", True),
        ("&#xE000;", True),
        ("&#54620;", True),  # 한: Korean feeds spell whole words so
        ("&#x2019;", True),
        ("&#x10FFFF;", True),
        ("&#8217;", True),
    ],
)
def test_references_no_encoder_can_write_become_the_replacement_character(ref: str, kept: bool) -> None:
    doc = f"<rss><title>a {ref} b</title></rss>"
    assert xml_as_utf8(doc) == (doc if kept else "<rss><title>a &#xFFFD; b</title></rss>").encode()


def test_c1_and_mojibake_repairs() -> None:
    assert fix_c1("don\x92t") == "don’t"
    assert fix_mojibake("Itâ€™s") == "It’s"
    assert fix_mojibake("Ça va, señor") == "Ça va, señor"  # genuine Latin text is left alone


def test_gunzip_twice_and_bounded() -> None:
    body = gzip.compress(gzip.compress(b"<rss/>"))
    assert gunzip(body) == b"<rss/>"
    with pytest.raises(TooLarge):
        gunzip(gzip.compress(b"x" * 2_000), limit=1_000)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('<?xml version="1.0"?><!-- <urlset> --><rss version="2.0"/>', "feed"),
        ('<rss xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9"/>', "feed"),
        ("<urlset/>", "sitemap"),
        ("<sitemapindex/>", "sitemap"),
        ("<rdf:RDF/>", "feed"),
        ("<!DOCTYPE html><html></html>", "html"),
        ('  {"version": "https://jsonfeed.org/version/1.1"}', "json"),
        ("<note/>", "unknown"),
    ],
)
def test_sniff_reads_the_root_element(text: str, kind: str) -> None:
    assert sniff(text) == kind


def test_html_page_error_names_the_advertised_feed() -> None:
    page = b'<html><head><link rel="alternate" type="application/atom+xml" href="/atom.xml"></head></html>'
    with pytest.raises(ParseError) as info:
        parse_feed(page, "https://example.org/news/")
    assert "https://example.org/atom.xml" in info.value.message
    assert not info.value.temporary


def test_entries_without_id_or_link_get_a_stable_content_id() -> None:
    body = b"<rss><channel><item><title>Only a title</title></item></channel></rss>"
    first = parse_feed(body, "http://x/").items[0]
    assert first.guid == content_id("Only a title", "")
    assert parse_feed(body, "http://x/").items[0].guid == first.guid


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 19, 42, 40, tzinfo=timezone(timedelta(hours=-3)))),
        ("Tue, 17 Oct 2017 12:17:00 +0900", datetime(2017, 10, 17, 12, 17, tzinfo=timezone(timedelta(hours=9)))),
        ("2026-11-26T10:00:00+03:00", datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=3)))),
        ("2026-11-26T10:00:00", None),  # a time without a zone is not guessed
        ("1518478934", None),
        ("", None),
    ],
)
def test_dates_keep_their_offset(value: str, expected: datetime | None) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    if expected is not None:
        assert parsed is not None and parsed.utcoffset() == expected.utcoffset()


def test_w3c_dates() -> None:
    assert parse_w3c_date("2008-12-23") == datetime(2008, 12, 23, tzinfo=UTC)
    assert parse_w3c_date("2004-12-23T18:00:15+00:00") == datetime(2004, 12, 23, 18, 0, 15, tzinfo=UTC)
    assert parse_w3c_date("2004-12-23T18:00:15") is None


def test_sitemap_with_bad_namespace_and_text_only_index() -> None:
    urlset = b'<urlset xmlns="http://www.google.com/schemas/sitemap/0.9"><url><loc> /a </loc></url></urlset>'
    assert [i.url for i in parse_sitemap(urlset, "https://example.org/sitemap.xml").items] == ["https://example.org/a"]
    index = b"<sitemapindex><sitemap>\nhttps://example.org/s1.xml?x=1&amp;y=2\n</sitemap></sitemapindex>"
    assert parse_sitemap(index, "https://example.org/").children == ("https://example.org/s1.xml?x=1&y=2",)


def test_listing_selector_on_containers_and_anchors() -> None:
    html = (
        '<div class="c"><a href="/1">One</a></div><div class="c"><span>no link</span></div>'
        '<a class="x" href="javascript:1">J</a>'
    )
    assert [(i.url, i.title) for i in parse_listing(html, "https://e.org/", "div.c")] == [("https://e.org/1", "One")]
    assert parse_listing(html, "https://e.org/", "a.x") == ()


def test_extraction_drops_boilerplate() -> None:
    paragraphs = "".join(
        f"<p>The delegation met in the capital for talks, paragraph {i} of the report.</p>" for i in range(8)
    )
    sidebar = "<aside class='most-read'>Putin wins</aside>"
    page = f"<html><body><nav>Home World</nav><article>{paragraphs}</article>{sidebar}</body></html>"
    out = extract_article(page)
    assert "paragraph 7" in out.text and "Putin" not in out.text


def test_adaptive_interval_follows_the_news_within_bounds() -> None:
    b = bounds_for(timedelta(minutes=10), None, None, floor=timedelta(minutes=1), ceiling=timedelta(hours=6))
    assert (b.lowest, b.highest) == (timedelta(minutes=2, seconds=30), timedelta(minutes=40))
    busy = adapt(NOW, b, current=None, new_items=5, last_new_item=NOW - timedelta(minutes=10), mean_gap=None)
    assert busy.interval == timedelta(minutes=5) and busy.mean_gap == timedelta(minutes=10)
    interval = timedelta(minutes=10)
    for _ in range(20):
        interval = adapt(NOW, b, current=interval, new_items=0, last_new_item=None, mean_gap=None).interval
    assert interval == timedelta(minutes=40)
    for _ in range(20):
        interval = adapt(NOW, b, current=interval, new_items=3, last_new_item=None, mean_gap=None).interval
    assert interval == timedelta(minutes=2, seconds=30)
    # The source's own floor (max-age, <ttl>) beats the configured bounds.
    floored = adapt(NOW, b, current=interval, new_items=3, last_new_item=None, mean_gap=None, floor=timedelta(hours=1))
    assert floored.interval == timedelta(hours=1)
    fixed = bounds_for(
        timedelta(minutes=10), None, None, floor=timedelta(minutes=1), ceiling=timedelta(hours=6), adaptive=False
    )
    assert adapt(
        NOW, fixed, current=timedelta(minutes=3), new_items=9, last_new_item=None, mean_gap=None
    ).interval == timedelta(minutes=10)


def test_silence_is_measured_against_the_rhythm() -> None:
    assert not is_silent(NOW, None, None)
    assert not is_silent(NOW, NOW - timedelta(hours=20), timedelta(hours=1))  # under a day: never
    assert is_silent(NOW, NOW - timedelta(days=2), timedelta(hours=1))
    assert not is_silent(NOW, NOW - timedelta(days=2), timedelta(days=1))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_feed(body, "http://x/", {"Content-Type": "text/xml; charset=utf-8"})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500), st.sampled_from([None, "utf-8", "koi8-r", "nonsense", "iso-8859-1"]))
def test_decode_always_gives_text(body: bytes, http: str | None) -> None:
    assert isinstance(decode(body, http).text, str)
