"""Every corpus feed and sitemap, served from loopback, goes through the real ``wirewatch run --once``.

Nothing crashes; every source gets exactly one recorded poll; item counts and titles
match the gold outputs the corpus ships (``feeds/expected/``); and the encoding cases
come out as the exact strings a reader sees, whatever the file declares.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS
from tests.servers import FeedServer
from tests.sources.helpers import Source, run_once, states, stored, write_config

# Each test runs the real CLI as a subprocess, on SQLite and PostgreSQL.
pytestmark = pytest.mark.slow

FEEDS = CORPUS / "feeds"
FILES = sorted([p for p in FEEDS.iterdir() if p.is_file()] + [p for p in (FEEDS / "sitemaps").iterdir() if p.is_file()])
# The one corpus file that is not a feed at all (an XML <note>): an error, recorded, no crash.
NOT_A_FEED = {"miniflux__iso88591_utf8_mismatch.xml"}

# Exact text a reader must see, per file: (field, substring) — each file lies about its
# charset, or declares none, or is not even in the charset its declaration names.
ENCODING_CASES = {
    "rssparser__uolNoticias.rss": ("title", "Rival de Putin é condenado a mais 20 dias de prisão"),
    "miniflux__encoding_WINDOWS-1251.xml": ("title", "Цитата #17703"),
    "nodefp__iconv.xml": ("title", "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"),
    "miniflux__koi8r.xml": ("title", "Первая новость"),
    "feedparser__chardet_koi8r.xml": ("title", "Как пережить новогоднюю ночь"),
    "feedparser__chardet_euckr.xml": ("title", "EUC-KR 에서 TypeKey 한글닉네임 표시하기"),
    "rsparser__kc0011.rss": ("title", "建国35周年纪念，华表，和平鸽"),
    "miniflux__utf8-incorrect-prolog.xml": ("title", "Café"),
    "miniflux__invalid-prolog.xml": ("title", "Café"),
    "miniflux__no_encoding_ISO-8859-1.xml": ("title", "Perturbateurs endocriniens : quels effets sur le cerveau ?"),
    "rssparser__encoding.rss": ("title", "Mãe de utente é a nova presidente da Raríssimas"),
    "miniflux__encoding_ISO-8859-1.xml": ("title", "Red Dead Redemption 2: Hinweise auf PC-Umsetzung"),
    "feedrs__rss_1.0_iso8859.xml": ("title", "Digitalministerium: Neue Glasfaserförderung"),
    "feedparser__demoronize-1.xml": ("summary", "don’t"),
    "feedparser__bozo_double-encoded-html.xml": ("summary", "…"),
    "miniflux__urdu_UTF8.xml": ("title", "امریکی عسکری امداد کی بندش کی وجوہات"),
}

# Entries per file where we know the right answer without a gold file.
COUNTS = {
    "nodefp__invalid-characters-gzipped.xml": 25,
    "rssparser__giantbomb-podcast.rss": 730,
    "feedjira__InvalidDateFormat.xml": 2,  # truncated document: both items kept
    "cc__sitemap-news.xml": 2,
    "newscrawl__sitemap-news.xml": 1,
    "cc__xmlSitemap.gz": 5,
    "cc__sitemap.badns.xml": 2,
    "traf__sitemap.xml": 84,
    "cc__sitemap.index.xml": 0,  # its children are on another host: skipped, with a warning
    "newscrawl__feed-with-sitemap-namespace.xml": 2,
}


def name_of(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", path.name)[:60]


def _load_json(path: Path) -> Any:
    raw = path.read_bytes()
    for codec in ("utf-8", "cp1252"):
        try:
            return json.loads(raw.decode(codec))
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"cannot read {path}")


def expected_titles(feed: Path) -> list[str] | None:
    """Titles from the corpus gold file for ``feed`` (rss-parser or feed-rs format), if any."""
    stem = feed.name.rsplit(".", 1)[0]
    for gold in (FEEDS / "expected" / f"{stem}.json", FEEDS / "expected" / f"{stem}.serde.json"):
        if gold.exists():
            doc = _load_json(gold)
            if "feed" in doc:
                return [str(i.get("title", "")) for i in doc["feed"]["items"]]
            return [str((e.get("title") or {}).get("content", "")) for e in doc["entries"]]
    return None


def norm(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())


def test_every_corpus_file_ingests(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    sources = []
    for path in FILES:
        route = f"/corpus/{path.parent.name}/{path.name}"
        # A generic content type on purpose: the format is sniffed from the bytes.
        feed_server.serve(route, path.read_bytes(), content_type="application/octet-stream")
        kind = "sitemap" if path.parent.name == "sitemaps" and "feed-with" not in path.name else "feed"
        sources.append(Source(name_of(path), feed_server.base + route, kind))
    # full_text off: corpus entries link to the real web, and tests never leave loopback.
    # A generous timeout: 77 sources on one shared 2-core machine; timeouts are tested elsewhere.
    config = write_config(tmp_path, sources, fetch='full_text = false\ntimeout = "30s"')
    output = run_once(config, database_url, timeout=300)
    assert "Traceback" not in output

    problems: list[str] = []
    polled = states(database_url)
    assert len(polled) == len(FILES)
    for path in FILES:
        st = polled[name_of(path)]
        if st.last_polled is None:
            problems.append(f"{path.name}: never polled")
            continue
        if path.name in NOT_A_FEED:
            if not (st.consecutive_failures == 1 and st.error_class == "permanent"):
                problems.append(f"{path.name}: expected a permanent error, got {st.last_error!r}")
            continue
        if st.consecutive_failures:
            problems.append(f"{path.name}: {st.last_error}")
            continue
        items = stored(database_url, name_of(path))
        problems += [f"{path.name}: mojibake in {i['title']!r}" for i in items if "\ufffd" in i["title"]]
        if path.name in COUNTS and len(items) != COUNTS[path.name]:
            problems.append(f"{path.name}: {len(items)} items, expected {COUNTS[path.name]}")
        titles = expected_titles(path)
        if titles is not None:
            if len(items) != len(titles):
                problems.append(f"{path.name}: {len(items)} items, gold has {len(titles)}")
                continue
            for item, title in zip(items, titles, strict=True):
                # Gold written by a parser that got the charset wrong has U+FFFD: skip those.
                if title and "\ufffd" not in title and norm(item["title"]) != norm(title):
                    problems.append(f"{path.name}: title {item['title']!r} != gold {title!r}")
        if path.name in ENCODING_CASES:
            field, expected = ENCODING_CASES[path.name]
            if not any(expected in i[field] for i in items):
                problems.append(f"{path.name}: {expected!r} not in {[i[field] for i in items][:3]!r}")
    assert not problems, "\n".join(problems)
