"""OPML in and out: the subscription lists every feed reader imports and exports.

Responsible for reading the feeds of an OPML file (any nesting of ``<outline>``, the
``xmlUrl`` attribute, OPML 1.0 and 2.0), turning them into ``[[sources]]`` TOML blocks with
unique, valid names, and writing the configured feeds as OPML 2.0.  The XML is parsed by
lxml with entities and the network off (an OPML file is input from elsewhere).  It must
not write files or read the config: the CLI does both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from monitor.errors import WirewatchError

_SLUG = re.compile(r"[^a-z0-9]+")
MAX_FEEDS = 10_000


class OpmlError(WirewatchError):
    """The file is not OPML that we can read."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    title: str
    url: str
    language: str | None = None


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``, in document order, duplicates dropped."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not readable OPML: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"not OPML: the root element is <{root.tag}>, not <opml>")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = (outline.get("title") or outline.get("text") or "").strip()
        language = (outline.get("language") or "").strip() or None
        feeds.append(OpmlFeed(title=title, url=url, language=language))
        if len(feeds) > MAX_FEEDS:
            raise OpmlError(f"more than {MAX_FEEDS} feeds in one file")
    return feeds


def source_name(feed: OpmlFeed, taken: set[str]) -> str:
    """A valid, unused source name from the feed's title (else its host)."""
    base = _SLUG.sub("-", feed.title.lower()).strip("-")[:48]
    if not base:
        host = re.sub(r"^https?://", "", feed.url, flags=re.IGNORECASE).split("/", 1)[0]
        base = _SLUG.sub("-", host.lower()).strip("-")[:48] or "feed"
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    return name


def toml_sources(
    feeds: Iterable[OpmlFeed], taken_names: set[str], taken_urls: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[OpmlFeed, str]]]:
    """``[[sources]]`` blocks (name, TOML text) for the new feeds, and the feeds skipped, with why."""
    names = set(taken_names)
    added: list[tuple[str, str]] = []
    skipped: list[tuple[OpmlFeed, str]] = []
    for feed in feeds:
        if feed.url in taken_urls:
            skipped.append((feed, "already a source"))
            continue
        if not re.match(r"^https?://[^\s/]+", feed.url, re.IGNORECASE):
            skipped.append((feed, "only http(s) feeds can be polled"))
            continue
        name = source_name(feed, names)
        names.add(name)
        lines = ["[[sources]]", f"name = {_toml(name)}", 'type = "feed"', f"url = {_toml(feed.url)}"]
        if feed.title:
            lines.insert(1, f"# {feed.title[:100]}".replace("\n", " "))
        added.append((name, "\n".join(lines) + "\n\n"))
    return added, skipped


def _toml(text: str) -> str:
    # A JSON string is a valid TOML basic string for everything a feed title or URL holds
    # once control characters are escaped, which json.dumps does.
    return json.dumps(text, ensure_ascii=False)


def make_opml(feeds: Iterable[tuple[str, str, str | None]], title: str = "wirewatch sources") -> str:
    """OPML 2.0 for ``(name, url, language)`` feeds."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    body = etree.SubElement(root, "body")
    for name, url, language in feeds:
        attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": url}
        if language:
            attrs["language"] = language
        etree.SubElement(body, "outline", attrs)
    return str(
        etree.tostring(root, encoding="unicode", pretty_print=True, doctype='<?xml version="1.0" encoding="UTF-8"?>')
    )
