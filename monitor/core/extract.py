"""Read HTML pages: the main text of an article page, and the article links of a listing page.

Responsible for turning an already-downloaded page into what rules should see: the
article's own text, without menus, "most read" boxes, related links or comments (a page
that mentions the topic only in its sidebar must not match).  trafilatura does the work
with comments off; when it finds too little, the longest of the page's schema.org
``articleBody`` (JSON-LD), trafilatura's baseline extractor and a small paragraph-density
heuristic is taken, and for a page that renders its text with JavaScript only, its meta
description.  :func:`parse_listing` picks article
links out of a listing page with the CSS selector from the config.  Pure: no I/O (the
page is fetched by the crawler), no clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import trafilatura
from lxml import etree  # type: ignore[import-untyped]
from parsel import Selector

from monitor.core.items import clean_text, html_to_text
from monitor.core.models import RawItem

# An article shorter than this is more likely a paywall stub or a cookie wall than text.
MIN_TEXT = 200
MAX_LINKS = 300
_BLOCKS = ("p", "h2", "h3", "li", "blockquote")
_BOILERPLATE = re.compile(
    r"comment|sidebar|footer|header|nav|menu|related|promo|share|social|newsletter|most-?read|popular|advert|cookie|subscribe",
    re.IGNORECASE,
)
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Extracted:
    title: str
    text: str
    method: str  # "trafilatura" | "json-ld" | "baseline" | "density" | "description" | "none"


def extract_article(html: str, url: str | None = None) -> Extracted:
    """The title and main text of the article page ``html`` (already decoded)."""
    if not html.strip():
        return Extracted("", "", "none")
    title = _title(html)
    text = trafilatura.extract(
        html,
        url=url,
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        favor_precision=False,
        deduplicate=False,
        with_metadata=False,
    )
    if text and len(text) >= MIN_TEXT:
        return Extracted(title, clean_text(text), "trafilatura")
    try:
        _tree, base_text, _length = trafilatura.baseline(html)
    except (ValueError, etree.LxmlError):
        base_text = ""
    candidates = [
        (text or "", "trafilatura"),
        (json_ld_body(html), "json-ld"),
        (base_text, "baseline"),
        (density_text(html), "density"),
    ]
    best = max(candidates, key=lambda t: len(t[0]))
    if not best[0].strip():
        description = _meta_description(html)
        return Extracted(title, description, "description" if description else "none")
    return Extracted(title, clean_text(best[0]), best[1])


def json_ld_body(html: str) -> str:
    """The ``articleBody`` of the page's schema.org JSON-LD, if it has one."""
    for blob in Selector(text=html).css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(blob)
        except (json.JSONDecodeError, RecursionError):
            # RecursionError: JSON nested thousands deep (the json module recurses per
            # level); one hostile page made the whole crawl hang before this.
            continue
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                body = node.get("articleBody")
                if isinstance(body, str) and body.strip():
                    return html_to_text(body)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return ""


def _meta_description(html: str) -> str:
    sel = Selector(text=html[:300_000])
    for query in ('meta[property="og:description"]::attr(content)', 'meta[name="description"]::attr(content)'):
        found = sel.css(query).get()
        if found and found.strip():
            return clean_text(found)
    return ""


def density_text(html: str) -> str:
    """A last-resort extractor: the paragraphs of the element that holds most paragraph text.

    Boilerplate containers (class or id naming comments, sidebars, menus, "most read")
    are dropped first; then the parent whose direct ``<p>`` children carry the most text
    wins, which is where an article body lives on nearly every news page.
    """
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, etree.LxmlError):
        return ""
    for bad in doc.xpath("//script|//style|//noscript|//nav|//aside|//footer|//header|//form|//iframe"):
        bad.drop_tree()
    for el in doc.xpath("//*[@class or @id]"):
        label = f"{el.get('class', '')} {el.get('id', '')}"
        if _BOILERPLATE.search(label) and el.getparent() is not None and el.tag not in ("body", "html"):
            el.drop_tree()
    scores: dict[etree._Element, int] = {}
    for p in doc.iter("p"):
        parent = p.getparent()
        if parent is None:
            continue
        length = len(_WS.sub(" ", p.text_content()).strip())
        if length >= 40:
            scores[parent] = scores.get(parent, 0) + length
    if not scores:
        return ""
    best = max(scores, key=lambda el: scores[el])
    parts = [_WS.sub(" ", el.text_content()).strip() for el in best.iter(*_BLOCKS)]
    return "\n".join(p for p in parts if p)


def _title(html: str) -> str:
    sel = Selector(text=html[:300_000])
    for query in ('meta[property="og:title"]::attr(content)', "h1 ::text", "title::text"):
        found = " ".join(t.strip() for t in sel.css(query).getall() if t.strip())
        if found:
            return clean_text(found)[:1000]
    return ""


def parse_listing(html: str, url: str, selector: str) -> tuple[RawItem, ...]:
    """The article links on listing page ``html`` picked by the CSS ``selector``, in page order.

    The selector may point at the ``<a>`` elements or at containers holding one; a
    link's text (or its ``title`` attribute) becomes the item title until the article
    page itself is read.  Only http(s) links are kept, each once.
    """
    sel = Selector(text=html)
    out: dict[str, RawItem] = {}
    for node in sel.css(selector):
        anchor = node if node.root.tag == "a" else node.css("a[href]")
        if not anchor:
            continue
        first = anchor[0] if isinstance(anchor, list) else anchor
        href = (first.attrib.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        link = urljoin(url, href)
        if urlsplit(link).scheme not in ("http", "https"):
            continue
        text = clean_text(" ".join(first.css("::text").getall())) or (first.attrib.get("title") or "").strip()
        out.setdefault(link, RawItem(guid=None, url=link, title=text[:1000]))
        if len(out) >= MAX_LINKS:
            break
    return tuple(out.values())
