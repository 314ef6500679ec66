"""Golden and property tests for URL canonicalisation and the keys built on it.

The goldens were recorded from ``item_key``/``canonical_url`` *before* identity URLs were
added: they must never change (a change would make stored items look new and re-alert).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.urls import (
    KEY_VERSION,
    URL_KEY_VERSION,
    canonical_url,
    identity_url,
    item_key,
    page_canonical_url,
    url_key,
)
from tests.conftest import CORPUS

ITEM_KEY_V1 = [
    ((None, "https://news.example.org/a?utm_source=rss"), "1:u:fdb4020aa5afbf372f90c04ab2d60061"),
    ((None, "HTTPS://News.Example.org:443/Path/To?b=2&a=1#frag"), "1:u:e7b401667038805d7c0b8df8b433b2ac"),
    ((None, "http://example.com:8080/x?fbclid=abc&id=7"), "1:u:fb7a583aae0b219674fcb080f46b92ac"),
    # Identity-level variants keep their own v1 item keys: www., m., AMP and new trackers.
    ((None, "https://www.example.com/world/story-1"), "1:u:e625de8eee892ac44278d50558b38e7b"),
    ((None, "https://m.example.com/world/story-1/amp"), "1:u:979ede3bebdde93a4f61070886de1e8e"),
    ((None, "https://amp.example.com/world/story-1?amp=1&gclsrc=aw&_ga=1.2"), "1:u:84de6c81b0d71280e695fdb38df88ac5"),
    ((None, "https://example.com/a/index.html?ns_campaign=x&xtor=RSS-1"), "1:u:e669d41cfe699527e1b331ef666a95b4"),
    ((None, "  https://example.com/a/  "), "1:u:93c5d35c1d141749bbf0647d68f9498a"),
    ((None, "not a url"), "1:u:83f5e32355238a71f70fc77a497d4eac"),
    (("tag:example.com,2024:1", "https://example.com/whatever"), "1:g:d88ef7b564ad00a3d58f63c01c5598f0"),
    (("  guid-with-space ", None), "1:g:e8d9e93a4b75a0eb76ce82f964e9ec19"),
    (("https://example.com/?p=123", "https://example.com/?p=123"), "1:g:3290ecbad6c15d77a4f779320ef9c7f1"),
    (("كيم-بوتين", None), "1:g:fdc02abf2696a46a9db581b876438af1"),
]

CANONICAL_V1 = [
    ("https://news.example.org/a?utm_source=rss", "https://news.example.org/a"),
    ("HTTPS://News.Example.org:443/Path/To?b=2&a=1#frag", "https://news.example.org/Path/To?a=1&b=2"),
    (
        "https://amp.example.com/world/story-1?amp=1&gclsrc=aw&_ga=1.2",
        "https://amp.example.com/world/story-1?_ga=1.2&amp=1",
    ),
    (
        "https://example.com/a/index.html?ns_campaign=x&xtor=RSS-1",
        "https://example.com/a/index.html?ns_campaign=x&xtor=RSS-1",
    ),
]


def test_versions() -> None:
    assert KEY_VERSION == 1 and URL_KEY_VERSION == 1


@pytest.mark.parametrize(("args", "expected"), ITEM_KEY_V1)
def test_item_key_v1_is_frozen(args: tuple[str | None, str | None], expected: str) -> None:
    assert item_key(*args) == expected


@pytest.mark.parametrize(("url", "expected"), CANONICAL_V1)
def test_canonical_url_v1_is_frozen(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


STORY = "https://example.com/world/story-1"


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/world/story-1",
        "http://example.com/world/story-1",
        "https://EXAMPLE.com:443/world/story-1/",
        "https://m.example.com/world/story-1",
        "https://mobile.example.com/world/story-1",
        "https://amp.example.com/world/story-1",
        "https://www.example.com/world/story-1/amp",
        "https://www.example.com/world/story-1/amp/",
        "https://example.com/world/story-1?amp=1",
        "https://example.com/world/story-1?outputType=amp",
        "https://example-com.cdn.ampproject.org/c/s/example.com/world/story-1",
        "https://www.google.com/amp/s/www.example.com/world/story-1",
        "https://example.com/world/story-1?utm_source=tw&utm_medium=social&fbclid=x&gclid=y&mc_cid=1&mc_eid=2&ref=home",
        "https://example.com/world/story-1?_ga=2.1&_gl=1*abc&xtor=RSS-3&ns_campaign=n&at_medium=a&wbraid=1&share=1",
        "https://example.com/world/story-1#comments",
    ],
)
def test_identity_url_folds_renderings_and_campaigns(variant: str) -> None:
    assert identity_url(variant) == STORY
    assert url_key(variant) == url_key(STORY) == "1:06fa579f22eeaa82b5d5f405241a3c07"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/world/story-1", "https://example.com/world/story-2"),
        ("https://example.com/article?id=1", "https://example.com/article?id=2"),
        ("https://example.com/World/Story-1", "https://example.com/world/story-1"),  # paths are case-sensitive
        ("https://example.com/a?output=rss", "https://example.com/a"),  # only output=amp is a rendering
        ("https://news.example.com/a", "https://example.com/a"),  # a real subdomain is another site
        ("https://example.com:8080/a", "https://example.com/a"),
    ],
)
def test_identity_url_keeps_articles_apart(a: str, b: str) -> None:
    assert url_key(a) != url_key(b)


def test_identity_url_keeps_two_labels() -> None:
    assert identity_url("https://www.com/a") == "https://www.com/a"
    assert identity_url("https://m.co/a") == "https://m.co/a"


@pytest.mark.parametrize(
    "url",
    [None, "", "not a url", "tag:x,2024:1", "ftp://example.com/a", "https://example.com/", "https://www.example.com"],
)
def test_url_key_is_none_without_an_article(url: str | None) -> None:
    assert url_key(url) is None


def test_url_key_golden() -> None:
    assert url_key("https://example.com/a/index.html") == "1:2dce0a4c50441bfccfa9caf4b58c3cba"


@given(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["", "www.", "m.", "amp."]),
    st.text("abc/-", max_size=12),
    st.lists(st.sampled_from(["utm_source=a", "fbclid=b", "id=3", "amp=1", "p=q"]), max_size=4),
)
def test_identity_url_is_idempotent(scheme: str, prefix: str, path: str, params: list[str]) -> None:
    url = f"{scheme}://{prefix}example.org/{path}" + ("?" + "&".join(params) if params else "")
    once = identity_url(url)
    assert identity_url(once) == once


def test_page_canonical_url_of_the_cnn_arabic_page_saved_twice() -> None:
    a = (CORPUS / "articles" / "goose3__test_cnn_arabic.html").read_text(encoding="utf-8")
    b = (CORPUS / "articles" / "np4k__arabic_article.html").read_text(encoding="utf-8")
    ca = page_canonical_url(a, "http://mirror-a.example/page")
    cb = page_canonical_url(b, "http://mirror-b.example/other")
    assert ca == "http://arabic.cnn.com/2013/middle_east/8/3/syria.clashes/index.html"
    assert url_key(ca) == url_key(cb) is not None


def test_page_canonical_url_prefers_link_resolves_and_rejects_home() -> None:
    page = (
        '<html><head><meta property="og:url" content="https://og.example/x">'
        '<link rel="canonical" href="/news/1"></head></html>'
    )
    assert page_canonical_url(page, "https://site.example/amp/news/1") == "https://site.example/news/1"
    og_only = '<head><meta property="og:url" content="https://site.example/news/2"></head>'
    assert page_canonical_url(og_only, "https://site.example/x") == "https://site.example/news/2"
    home = '<head><link rel="canonical" href="https://site.example/"><meta property="og:url" content="javascript:1">'
    assert page_canonical_url(home, "https://site.example/news/3") is None
    assert page_canonical_url("<p>no head</p>", "https://site.example/n") is None
