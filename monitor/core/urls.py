"""URL canonicalisation and item identity keys.

Responsible for deciding when two URLs name the same article (tracking parameters,
fragments, default ports, host case) and for the versioned key that identifies an item
within its source.  Keys are stored: changing what they contain would make every stored
item look new and re-alert, so a change means a new ``KEY_VERSION`` and golden tests
(``tests/core/test_urls.py``) that pin the old outputs.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

KEY_VERSION = 1

# Query parameters that identify a campaign or a click, never the article.
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
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The form of ``url`` used to compare articles.

    Lower-cases scheme and host, drops the default port, the fragment, and tracking
    parameters; sorts the remaining query parameters; keeps the path as published
    (paths are case-sensitive on most servers).  A string that is not an absolute
    http(s) URL is returned stripped but otherwise unchanged.
    """
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
        if not (k.lower() in _TRACKING_NAMES or k.lower().startswith(_TRACKING_PREFIXES))
    ]
    query.sort()
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))


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
