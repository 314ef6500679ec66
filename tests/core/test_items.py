"""Items: clean text, identity, dates and the script-based language guess."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.items import (
    MAX_TITLE,
    SHORT_SUMMARY,
    body_offset,
    clean_text,
    guess_language,
    html_to_text,
    make_document,
    make_item,
    text_wanted,
)
from monitor.core.models import RawItem

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("김정은, 푸틴과 정상회담", "ko"),
        ("Путин посетил Курск", "ru"),
        ("Зеленський і Путін у Курській області", "uk"),
        ("كيم جونغ أون يرسل تهنئة لبوتين", "ar"),
        ("پاکستان میں انتخابات ہوئے", "ur"),
        ("Kim Jong Un meets Putin", None),
        ("", None),
    ],
)
def test_guess_language_by_script(text: str, language: str | None) -> None:
    assert guess_language(text) == language


def test_language_hint_order() -> None:
    raw = RawItem(guid="1", url="https://x.org/1", title="Путин", language="en-US")
    assert make_item(raw, NOW, "ru") is not None
    assert make_item(raw, NOW, "ru").language == "ru"  # type: ignore[union-attr]
    assert make_item(raw, NOW).language == "en"  # type: ignore[union-attr]
    bare = RawItem(guid="1", url=None, title="Путин посетил Курск")
    assert make_item(bare, NOW).language == "ru"  # type: ignore[union-attr]


def test_future_and_absurd_dates_are_dropped() -> None:
    for published in (NOW + timedelta(days=2), datetime(1970, 1, 1, tzinfo=UTC)):
        item = make_item(RawItem(guid="1", url=None, title="t", published=published), NOW)
        assert item is not None
        assert item.published is None
    kept = make_item(RawItem(guid="1", url=None, title="t", published=NOW - timedelta(hours=1)), NOW)
    assert kept is not None
    assert kept.published == NOW - timedelta(hours=1)


def test_no_identity_no_item_and_bounded_fields() -> None:
    assert make_item(RawItem(guid=None, url=None, title="orphan"), NOW) is None
    item = make_item(RawItem(guid="g", url=None, title="x" * 50_000, summary="<p>a</p><script>evil()</script>"), NOW)
    assert item is not None
    assert len(item.title) == MAX_TITLE
    assert item.summary == "a"


def test_html_to_text_and_document_body() -> None:
    assert html_to_text("<p>One &amp; two</p><p>three</p>") == "One & two\nthree"
    assert make_document("t", "summary", "", None).body == "summary"
    assert make_document("t", "sum", "the sum and more", None).body == "the sum and more"
    assert make_document("t", "lead", "body text", None).body == "lead\n\nbody text"


def test_a_missing_title_is_derived_and_marked() -> None:
    from monitor.core.rules import make_matcher

    now = datetime(2026, 12, 1, tzinfo=UTC)
    raw = RawItem(guid="g", url="https://example.org/a", title="", summary="Putin met Kim in Pyongyang.")
    item = make_item(raw, now)
    assert item is not None and item.title_derived and item.title == "Putin met Kim in Pyongyang."
    titled = make_item(RawItem(guid="h", url="https://example.org/b", title="Putin", summary="x"), now)
    assert titled is not None and not titled.title_derived
    matcher = make_matcher({"putin": ["Putin"]}, [("t", "title:putin"), ("b", "body:putin"), ("any", "putin")])
    doc = make_document(item.title, item.summary, item.text, item.language, item.title_derived)
    hits = matcher.match(doc)
    assert [h.rule for h in hits] == ["b", "any"]  # title: never sees the derived title
    assert all(s.field == "body" for h in hits for s in h.spans)
    assert doc.title == item.title  # still there for display


def test_which_items_want_their_article_page() -> None:
    assert text_wanted("https://x.example/a", "Short teaser.", "") == (True, None)
    assert text_wanted("http://x.example/a", "", "") == (True, None)
    assert text_wanted("https://x.example/a", "s" * SHORT_SUMMARY, "") == (False, None)  # the summary will do
    assert text_wanted("https://x.example/a", "", "Already the text.") == (False, None)
    assert text_wanted("mailto:a@example.org", "", "") == (False, None)
    assert text_wanted(None, "", "") == (False, None)
    wanted, reason = text_wanted("https://x.example/" + "a" * 3000, "", "")
    assert not wanted and reason is not None and "not fetched" in reason


@pytest.mark.parametrize(
    ("summary", "text"),
    [
        ("Kursk troops.", "Long article. Kursk troops. More."),  # the summary is inside the text
        ("Kursk troops.", "An article that does not repeat it."),  # the summary comes first
        ("", "Only the text."),
    ],
)
def test_spans_on_the_summary_move_with_the_body(summary: str, text: str) -> None:
    before = make_document("t", summary, "", None).body
    after = make_document("t", summary, text, None).body
    shift = body_offset(summary, text)
    assert after[shift : shift + len(before)] == before


_BLANKS = st.text(
    alphabet=st.sampled_from([" ", "\t", "\u00a0", "\n", "\r", "\x00", "\x0b", "a", "ж", "김"]), max_size=40
)


@given(_BLANKS)
def test_clean_text_collapses_every_run_of_blanks_and_newlines(text: str) -> None:
    """What clean_text promises, stated plainly: no control characters, no two blanks in a
    row, no blank beside a newline, nothing blank at either end."""
    out = clean_text(text)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out)
    assert not re.search(r"[ \t\u00a0]{2}|\t|\u00a0", out)
    assert not re.search(r"\s\n|\n\s", out)
    assert out == out.strip()
    # Words keep their order, and nothing but blanks goes.
    assert re.sub(r"\s|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", out) == re.sub(
        r"\s|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text
    )
