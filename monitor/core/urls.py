"""URL canonicalisation and the versioned identity keys built on it.

Responsible for deciding when two URLs name the same article, at two strengths.
:func:`canonical_url` (tracking parameters, fragments, default ports, host case) feeds
:func:`item_key`, the identity of an item *within its source*; both are frozen at
``KEY_VERSION = 1`` because keys are stored, and a change would make every stored item
look new and re-alert.  :func:`identity_url` goes further (more trackers, ``www.``/``m.``/
``amp.`` hosts, AMP paths and caches, scheme, trailing slash, directory index) and feeds
:func:`url_key`, the identity of an *article across sources* used to fold copies into one
story; it is versioned on its own (``URL_KEY_VERSION``) and only ever compared inside the
story window, so a new version needs the old one looked up for one window, not a data
migration.  :func:`page_canonical_url` reads ``<link rel=canonical>``/``og:url`` from a
fetched page.  Golden tests (``tests/dedupe/test_urls.py``) pin every version's outputs.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

KEY_VERSION = 1
URL_KEY_VERSION = 1

# Query parameters that identify a campaign or a click, never the article.  Frozen: this
# list is part of item_key version 1 (add new trackers to the identity lists below).
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "mtm_", "_hs", "hsa_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "igshid",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "cmpid",
        "ocid",
        "smid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "rss",
        "__twitter_impression",
    }
)
# Identity (url_key v1) strips these as well: analytics, ad-click and newsletter ids, and
# the AMP switches (an AMP rendering is the same article).
_IDENTITY_PREFIXES = (*_TRACKING_PREFIXES, "at_", "ns_", "_ga", "_gl", "guce_", "oly_", "vero_", "wt_", "wt.")
_IDENTITY_NAMES = _TRACKING_NAMES | frozenset(
    {
        "wbraid",
        "gbraid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mkt_tok",
        "s_cid",
        "xtor",
        "cmp",
        "spm",
        "soc_src",
        "soc_trk",
        "guccounter",
        "share",
        "shared",
        "ito",
        "amp",
        "utm",
    }
)
# Switches that select the AMP rendering only when their value says so (?output=rss is not one).
_AMP_SWITCHES = frozenset({"output", "outputtype"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host labels that only select a rendering of the same site (desktop/mobile/AMP).
_VARIANT_LABELS = frozenset({"www", "m", "mobile", "amp"})
_AMP_CACHE = re.compile(r"^/[cvi]/(?:s/)?(?P<rest>[^/]+\..+)$")
_GOOGLE_AMP = re.compile(r"^/amp/(?:s/)?(?P<rest>[^/]+\..+)$")
_INDEX_PAGE = re.compile(r"/index\.(?:html?|php|aspx?|shtml)$", re.IGNORECASE)
_AMP_SUFFIX = re.compile(r"(?:/amp)+/?$", re.IGNORECASE)
_AMP_EXTENSION = re.compile(r"\.amp(\.html?)?$", re.IGNORECASE)


def _canonical(url: str, names: frozenset[str], prefixes: tuple[str, ...]) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url
    host = parts.hostname.lower().rstrip(".")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not (k.lower() in names or k.lower().startswith(prefixes))
    ]
    query.sort()
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))


def canonical_url(url: str) -> str:
    """The form of ``url`` stored with an item and hashed by :func:`item_key` (frozen, v1).

    Lower-cases scheme and host, drops the default port, the fragment, and tracking
    parameters; sorts the remaining query parameters; keeps the path as published
    (paths are case-sensitive on most servers).  A string that is not an absolute
    http(s) URL is returned stripped but otherwise unchanged.
    """
    return _canonical(url, _TRACKING_NAMES, _TRACKING_PREFIXES)


def item_key(guid: str | None, url: str | None) -> str:
    """The identity of an item within its source: its GUID, else its canonical URL.

    Versioned (``"1:g:..."`` / ``"1:u:..."``) and hashed to a fixed length, so that a
    40 kB GUID from a hostile feed cannot bloat the unique index.
    """
    if guid and guid.strip():
        basis = "g:" + guid.strip()
    elif url and url.strip():
        basis = "u:" + canonical_url(url)
    else:
        raise ValueError("an item needs a GUID or a URL")
    digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]
    return f"{KEY_VERSION}:{basis[0]}:{digest}"


def _unwrap_amp_cache(host: str, path: str) -> str | None:
    """The publisher URL inside a Google AMP cache or ``google.com/amp/`` URL, if it is one."""
    match = None
    if host.endswith(".cdn.ampproject.org"):
        match = _AMP_CACHE.match(path)
    elif host in ("google.com", "www.google.com"):
        match = _GOOGLE_AMP.match(path)
    return "https://" + match.group("rest") if match else None


def identity_url(url: str) -> str:
    """The form of ``url`` that names the article whatever rendering or campaign led to it.

    On top of :func:`canonical_url`: more trackers and the AMP switches are dropped,
    ``www.``/``m.``/``mobile.``/``amp.`` host prefixes removed, AMP caches unwrapped,
    ``/amp`` path suffixes and ``.amp.html`` extensions removed, a trailing slash and a
    directory index page (``/index.html``) dropped, and ``http`` treated as ``https``.
    Not an absolute http(s) URL: returned stripped, unchanged.
    """
    base = _canonical(url, _IDENTITY_NAMES, _IDENTITY_PREFIXES)
    parts = urlsplit(base)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return base
    host = parts.netloc
    inner = _unwrap_amp_cache(host, parts.path)
    if inner is not None and inner != url:
        return identity_url(inner + (f"?{parts.query}" if parts.query else ""))
    hostname, sep, port = host.partition(":")
    labels = hostname.split(".")
    # Keep at least two labels: "www.com" must not become "com".
    while len(labels) > 2 and labels[0] in _VARIANT_LABELS:
        labels.pop(0)
    host = ".".join(labels) + (sep + port if sep else "")
    path = parts.path
    path = _AMP_SUFFIX.sub("", path)
    path = _AMP_EXTENSION.sub(lambda m: m.group(1) or "", path)
    path = _INDEX_PAGE.sub("/", path)
    path = path.rstrip("/") or "/"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not (k.lower() in _AMP_SWITCHES and v.lower() == "amp")
        ]
    )
    return urlunsplit(("https", host, path, query, ""))


@lru_cache(maxsize=4096)
def url_key(url: str | None) -> str | None:
    """The cross-source identity of an article URL (``"1:…"``), or ``None`` when it names no article.

    ``None`` for anything that is not an absolute http(s) URL (a GUID used as a link) and
    for a site's root: a feed that links every entry to its home page names no article.
    """
    if not url:
        return None
    ident = identity_url(url)
    parts = urlsplit(ident)
    if parts.scheme != "https" or not parts.netloc or (parts.path == "/" and not parts.query):
        return None
    return f"{URL_KEY_VERSION}:" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


class _HeadLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.canonical: str | None = None
        self.og_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag == "link" and self.canonical is None and "canonical" in a.get("rel", "").lower().split():
            self.canonical = a.get("href") or None
        elif tag == "meta" and self.og_url is None and a.get("property", a.get("name", "")).lower() == "og:url":
            self.og_url = a.get("content") or None


_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)


def page_canonical_url(page: str, page_url: str) -> str | None:
    """The article URL a fetched page declares: ``<link rel=canonical>``, else ``og:url``.

    Relative URLs are resolved against ``page_url``.  A declaration that is not http(s),
    or that points at a site's root (a common CMS template bug that would fold every
    article of the site into one), is ignored.  Only the ``<head>`` is read.
    """
    end = _HEAD_END.search(page)
    parser = _HeadLinks()
    parser.feed(page[: end.start()] if end else page[:200_000])
    for found in (parser.canonical, parser.og_url):
        if not found:
            continue
        absolute = urljoin(page_url, found)
        if url_key(absolute) is not None:
            return absolute
    return None
