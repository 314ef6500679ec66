"""Parse XML sitemaps (urlset, sitemap index, Google News extensions) into ``RawItem``s.

Responsible for reading a sitemap body that was already downloaded and decoded to
UTF-8: ``<url>`` entries become items (``news:title``, ``news:publication_date`` and
``news:language`` when the sitemap carries them, ``lastmod`` otherwise), and a
``<sitemapindex>`` yields the child sitemaps to fetch next, most recently modified first.
Namespaces are matched by local name because publishers get them wrong (an old Google
namespace, none at all).  Malformed XML is read in recovery mode and what parses is
kept.  Scrapy's ``SitemapSpider`` drops the news fields, hence this module.  Pure: it
must not fetch the child sitemaps itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

from lxml import etree  # type: ignore[import-untyped]

from monitor.core.models import RawItem

# The sitemap protocol's own limit per file; anything beyond is a broken generator.
MAX_URLS = 50_000


@dataclass(frozen=True, slots=True)
class ParsedSitemap:
    items: tuple[RawItem, ...]
    children: tuple[str, ...]  # child sitemap URLs of a sitemap index, newest first
    warning: str | None


def is_sitemap_root(name: str) -> bool:
    return name in ("urlset", "sitemapindex")


def parse_sitemap(xml_utf8: bytes, url: str) -> ParsedSitemap:
    """Entries (or child sitemaps) of the sitemap in ``xml_utf8``; ``url`` resolves relative links."""
    parser = etree.XMLParser(
        recover=True, resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
    )
    try:
        root = etree.fromstring(xml_utf8, parser)
    except etree.XMLSyntaxError as exc:
        return ParsedSitemap((), (), f"unreadable sitemap: {exc}")
    if root is None:
        return ParsedSitemap((), (), "empty sitemap")
    errors = len(parser.error_log)
    warning = f"malformed sitemap XML ({errors} errors); kept what parsed" if errors else None
    if _local(root) == "sitemapindex":
        return ParsedSitemap((), _children(root, url), warning)
    out: list[RawItem] = []
    for node in root:
        if _local(node) != "url":
            continue
        raw = _url_entry(node, url)
        if raw is not None:
            out.append(raw)
        if len(out) >= MAX_URLS:
            warning = f"sitemap lists more than {MAX_URLS} URLs; kept the first {MAX_URLS}"
            break
    return ParsedSitemap(tuple(out), (), warning)


def _children(root: etree._Element, base: str) -> tuple[str, ...]:
    found: list[tuple[datetime, int, str]] = []
    for i, node in enumerate(root):
        if _local(node) != "sitemap":
            continue
        loc = _child_text(node, "loc") or (node.text or "").strip()
        if not loc:
            continue
        modified = parse_w3c_date(_child_text(node, "lastmod")) or datetime.min.replace(tzinfo=UTC)
        found.append((modified, -i, urljoin(base, loc)))
    found.sort(reverse=True)
    return tuple(dict.fromkeys(u for _, _, u in found))


def _url_entry(node: etree._Element, base: str) -> RawItem | None:
    loc = _child_text(node, "loc")
    if not loc:
        return None
    link = urljoin(base, loc)
    title = ""
    language: str | None = None
    published: datetime | None = None
    for news in node:
        if _local(news) != "news":
            continue
        title = _child_text(news, "title")
        published = parse_w3c_date(_child_text(news, "publication_date"))
        for pub in news:
            if _local(pub) == "publication":
                language = _child_text(pub, "language") or None
    if published is None:
        published = parse_w3c_date(_child_text(node, "lastmod"))
    return RawItem(guid=None, url=link, title=title, language=language, published=published)


def parse_w3c_date(value: str) -> datetime | None:
    """A W3C datetime (``2008-12-23``, ``2004-12-23T18:00:15+00:00``); a bare date is UTC midnight.

    A datetime with a time but no zone is unusable (whose noon?) and gives ``None``; the
    store then falls back to the first-seen time.
    """
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if len(value) <= 10:
            return parsed.replace(tzinfo=UTC)
        return None
    return parsed


def _local(node: etree._Element) -> str:
    tag = node.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].split(":")[-1]


def _child_text(node: etree._Element, name: str) -> str:
    for child in node:
        if _local(child) == name:
            return "".join(child.itertext()).strip()
    return ""
