"""Hostile feed bodies, parsed in-process: bounded in time and memory, no local file leaks."""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime

import pytest

from monitor.core.feeds import parse_feed
from monitor.core.items import MAX_TITLE, make_item
from monitor.core.render import AlertView, render_alert
from monitor.errors import ParseError

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 2 else "") + ";") * 10}">\n'.encode() for i in range(2, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>&lol9;</title>'
    + b"<item><title>&lol9;</title><guid>1</guid></item></channel></rss>"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
    b'<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title><guid>1</guid>'
    b"<description>&xxe;</description></item></channel></rss>"
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("body", [LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_attacks_are_not_expanded(body: bytes) -> None:
    before = _peak_mb()
    started = time.monotonic()
    try:
        parsed = parse_feed(body, "http://127.0.0.1/feed.xml", {})
    except ParseError:
        return
    assert time.monotonic() - started < 2
    assert _peak_mb() - before < 50
    for item in parsed.items:
        for text in (item.title, item.summary, item.text):
            assert "root:" not in text  # /etc/passwd never leaks into an item
            assert len(text) < 10_000  # entities were not expanded


def test_nul_bytes_invalid_utf8_and_huge_titles() -> None:
    title = "Putin " * 200_000  # 1.2 MB title
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><guid>a</guid><title>" + title.encode() + b"</title><description>bad \xff\xfe bytes\x00 and NUL"
        b"</description><link>http://127.0.0.1/a</link></item></channel></rss>"
    )
    parsed = parse_feed(body, "http://127.0.0.1/feed.xml", {})
    now = datetime.now(UTC)
    items = [make_item(raw, now) for raw in parsed.items]
    for item in items:
        assert item is not None
        assert len(item.title) <= MAX_TITLE
        assert "\x00" not in item.title + item.summary + item.text


def test_script_in_every_field_is_escaped_in_messages() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">&lt;b&gt;\u202eevil'
    view = AlertView(
        rules=("r",),
        title=hostile,
        url='javascript:alert(3)"><script>',
        source=hostile,
        published=None,
        first_seen=datetime.now(UTC),
        body=hostile,
        spans=(),
    )
    message = render_alert(view, "Asia/Seoul")
    # HTML is escaped; the subject is a plain-text header, kept readable but stripped of bidi overrides.
    assert "<script>" not in message.html
    assert "<img" not in message.html
    assert 'href="javascript:' not in message.html
    assert "\u202e" not in message.html + message.subject + message.text + message.markdown
