"""Fuzzing with Hypothesis: no exception escapes but our own error types.

Targets: the config loader (any TOML document, any bytes), the query parser (any text),
URL canonicalisation and item keys (any text), and the feed parser (any bytes, and
mutations of real corpus feeds).
"""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import parse_config
from monitor.core.feeds import parse_feed
from monitor.core.items import make_item
from monitor.core.models import RawItem
from monitor.core.rules import parse_query
from monitor.core.urls import canonical_url, item_key
from monitor.errors import ConfigError, ParseError, QueryError
from tests.conftest import CORPUS

TERMS = {"putin": ("Putin", "بوتين"), "kursk": ("Kursk",), "kim_jong_un": ("Kim Jong Un", "김정은")}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

toml_scalars = st.one_of(
    st.text(max_size=30), st.integers(), st.booleans(), st.floats(allow_nan=False), st.just("5m"), st.just("10MB")
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
known_keys = st.sampled_from(
    ["storage", "server", "fetch", "alerts", "sources", "terms", "rules", "subscribers", "url", "name", "query"]
)
documents = st.dictionaries(st.one_of(known_keys, st.text(max_size=10)), toml_values, max_size=8)


@FUZZ
@given(documents)
def test_config_loader_raises_only_config_error(doc: dict[str, Any]) -> None:
    try:
        parse_config(doc, "fuzz.toml", {})
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.toml"


@FUZZ
@given(st.binary(max_size=400))
def test_config_bytes_raise_only_config_error(data: bytes) -> None:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    with contextlib.suppress(ConfigError):
        parse_config(doc, "fuzz.toml", {})


query_alphabet = st.sampled_from(
    ["putin", "kursk", "kim_jong_un", "AND", "OR", "NOT", "NEAR/3", "(", ")", '"', "title:", "body:", "*", " ", "x"]
)


@FUZZ
@given(st.one_of(st.text(max_size=60), st.lists(query_alphabet, max_size=14).map(" ".join)))
def test_query_parser_raises_only_query_error(query: str) -> None:
    try:
        parse_query(query, TERMS)
    except QueryError as exc:
        assert 1 <= exc.column <= len(query) + 1


@FUZZ
@given(st.text(max_size=200))
def test_url_canonicalisation_never_raises(text: str) -> None:
    canonical_url(text)
    if text.strip():
        key = item_key(None, text)
        assert key.startswith("1:u:")
        assert len(key) < 48


@FUZZ
@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=200))
def test_make_item_never_raises(guid: str, url: str, title: str) -> None:
    from datetime import UTC, datetime

    make_item(RawItem(guid=guid or None, url=url or None, title=title, summary=title), datetime.now(UTC))


@FUZZ
@given(st.binary(max_size=2000))
def test_feed_parser_raises_only_parse_error_on_random_bytes(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_feed(body, "http://127.0.0.1/feed.xml", {})


CORPUS_FEEDS = sorted(p for p in (CORPUS / "feeds").glob("*") if p.is_file())[:20]


@FUZZ
@given(st.sampled_from(CORPUS_FEEDS), st.integers(0, 10_000), st.binary(max_size=16), st.booleans())
def test_feed_parser_on_mutated_corpus_feeds(path: Path, at: int, junk: bytes, truncate: bool) -> None:
    body = path.read_bytes()
    at = at % (len(body) + 1)
    mutated = body[:at] if truncate else body[:at] + junk + body[at:]
    with contextlib.suppress(ParseError):
        parse_feed(mutated, "http://127.0.0.1/feed.xml", {})
