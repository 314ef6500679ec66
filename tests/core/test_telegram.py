"""The pure Telegram preview parser over the pages in tests/data/telegram (see PROVENANCE.md)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.items import make_item
from monitor.core.telegram import TelegramPage, older_page, page_url, parse_telegram, telegram_items
from monitor.errors import ParseError

DATA = Path(__file__).parent.parent / "data" / "telegram"
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def page(name: str) -> TelegramPage:
    return parse_telegram((DATA / f"{name}.html").read_bytes(), f"https://t.me/s/{name}")


def test_messages_links_times_text_and_marks() -> None:
    p = page("kndr_vesti-1")
    by_id = {m.id: m for m in p.messages}
    # 145 was deleted: the page simply has no block for it.
    assert sorted(by_id) == [142, 143, 144, 146, 147, 148]
    assert by_id[142].link == "https://t.me/kndr_vesti/142"
    assert by_id[142].published == datetime(2026, 12, 6, 5, 10, tzinfo=UTC)
    assert by_id[142].forwarded_from == "Военное обозрение"
    assert by_id[142].forwarded_link == "https://t.me/voen_obozrenie/5120"
    # A video carries its own <time> (the duration); the message's time is the date link's.
    assert by_id[143].published == datetime(2026, 12, 6, 5, 40, tzinfo=UTC)
    assert by_id[143].media and by_id[143].text.startswith("Видео:")
    assert by_id[144].media and by_id[144].text == ""
    # <br> is a newline, tags go, entities are decoded; a literal "<" stays text.
    assert by_id[147].text == "Итоги дня:\nобстановка без изменений\n\n3 < 5 & всё спокойно"
    # A reply quotes the message it answers; only the reply's own text is its text.
    assert by_id[148].text == "Кремль подтвердил разговор."
    assert not any(m.edited for m in p.messages)
    assert p.before == 142 and p.smallest_id == 142


def test_edited_message_keeps_its_id_and_link() -> None:
    before, after = page("kndr_vesti-1"), page("kndr_vesti-1-edited")
    old = {m.id: m for m in before.messages}[146]
    new = {m.id: m for m in after.messages}[146]
    assert new.edited and not old.edited
    assert new.text != old.text and new.link == old.link
    assert {r.guid for r in telegram_items(before)} == {r.guid for r in telegram_items(after)}


def test_items_skip_service_and_textless_posts_and_derive_titles() -> None:
    raw = telegram_items(page("kndr_vesti-1"))
    assert [r.guid for r in raw] == [f"https://t.me/kndr_vesti/{i}" for i in (148, 147, 146, 143, 142)]
    items = {r.guid: make_item(r, NOW) for r in raw}
    daily = items["https://t.me/kndr_vesti/147"]
    assert daily is not None
    assert daily.summary == "Итоги дня:\nобстановка без изменений\n3 < 5 & всё спокойно"
    assert daily.title_derived and daily.title == daily.summary[:120]
    assert daily.language == "ru"
    assert daily.url == "https://t.me/kndr_vesti/147"
    forwarded = items["https://t.me/kndr_vesti/142"]
    assert forwarded is not None
    assert forwarded.text == "Forwarded from: Военное обозрение (https://t.me/voen_obozrenie/5120)"
    assert items["https://t.me/kndr_vesti/146"] is not None and items["https://t.me/kndr_vesti/146"].text == ""
    service = telegram_items(page("kndr_vesti-2"))
    assert "https://t.me/kndr_vesti/141" not in {r.guid for r in service}  # "Channel photo updated"
    korean = [make_item(r, NOW) for r in telegram_items(page("bukhan_sosik-1"))]
    # Post 4 is a photo without a caption; post 3 is a photo with one; post 1 is "Channel created".
    assert [i.url for i in korean if i is not None] == ["https://t.me/bukhan_sosik/3", "https://t.me/bukhan_sosik/2"]
    assert all(i is not None and i.language == "ko" for i in korean)


def test_paging_back_follows_the_page_link_until_since() -> None:
    first = page("kndr_vesti-1")
    assert older_page(first, None) is None  # not asked to page back
    assert older_page(first, first.oldest - timedelta(seconds=1)) == 142  # type: ignore[operator]
    assert older_page(first, first.oldest) == 142
    assert older_page(first, first.oldest + timedelta(seconds=1)) is None  # type: ignore[operator]
    # The start of a channel: no link to an older page.
    assert older_page(page("kndr_vesti-4"), datetime(2000, 1, 1, tzinfo=UTC)) is None
    assert older_page(page("bukhan_sosik-1"), datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_page_url_keeps_the_address_and_sets_before() -> None:
    assert page_url("https://t.me/s/kndr_vesti", 142) == "https://t.me/s/kndr_vesti?before=142"
    assert page_url("http://127.0.0.1:8080/s/x?before=9&q=a", 5) == "http://127.0.0.1:8080/s/x?q=a&before=5"


def test_a_page_that_is_no_preview_is_a_parse_error() -> None:
    # What t.me serves for a name that is no public channel: a page without a message history.
    missing = b"""<!DOCTYPE html><html><head><title>Telegram: Contact @nosuchchannel</title></head>
    <body class="no_transition"><div class="tgme_page"><div class="tgme_page_title">
    <span dir="auto">Telegram</span></div></div></body></html>"""
    with pytest.raises(ParseError) as info:
        parse_telegram(missing, "https://t.me/s/nosuchchannel")
    assert not info.value.temporary and "public" in info.value.message
    with pytest.raises(ParseError) as empty:
        parse_telegram(b"  ", "https://t.me/s/x")
    assert empty.value.temporary
    # A history with no messages (a channel with nothing to show yet) is an empty page, not an error.
    none = b'<html><body><section class="tgme_channel_history js-message_history"></section></body></html>'
    assert parse_telegram(none, "https://t.me/s/x") == TelegramPage((), None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        got = parse_telegram(body, "https://t.me/s/x")
    except ParseError:
        return
    assert isinstance(got, TelegramPage)


_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")) | st.just("\n"), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(_TEXT)
def test_message_text_survives_the_page_and_normalisation(text: str) -> None:
    """Whatever a message says (markup-looking text included) is what the item's summary says."""
    escaped = html.escape(text, quote=False).replace("\n", "<br/>")
    body = (
        '<html><body><section class="tgme_channel_history">'
        '<div class="tgme_widget_message js-widget_message" data-post="chan_x/7">'
        f'<div class="tgme_widget_message_text js-message_text">{escaped}</div>'
        '<a class="tgme_widget_message_date" href="https://t.me/chan_x/7">'
        '<time datetime="2026-12-06T09:00:00+00:00" class="time">09:00</time></a></div>'
        "</section></body></html>"
    ).encode()
    raw = telegram_items(parse_telegram(body, "https://t.me/s/chan_x"))
    words = text.split()
    if not words:
        assert raw == ()
        return
    (one,) = raw
    item = make_item(one, NOW)
    assert item is not None
    assert item.summary.split() == words
