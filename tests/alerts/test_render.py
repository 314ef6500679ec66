"""Rendering hostile feed text: escaped, shortened, stripped of direction overrides."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.render import (
    MAX_SUBJECT,
    MAX_TITLE,
    AlertView,
    render_alert,
    render_digest,
    render_notice,
    render_summary,
)

WHEN = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
HOSTILE = (
    '<script>alert("x")</script> &amp; &lt;b&gt; Kim Jong Un \u202egnp.exe\u202c meets Putin'
    + " filler" * 1700  # ~10 kB
)


def view(**kw: object) -> AlertView:
    base: dict[str, object] = {
        "rules": ("kim-putin",),
        "title": HOSTILE,
        "url": "https://news.example.org/a?x=1&y=<2>",
        "source": "wire\u202e",
        "published": WHEN,
        "first_seen": WHEN,
        "body": "Kim Jong Un met Putin. <img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))",
        "spans": (("body", 0, 11), ("body", 16, 21)),
        "also_reported_by": ("tass", "<i>kcna</i>"),
    }
    base.update(kw)
    return AlertView(**base)  # type: ignore[arg-type]


def test_hostile_title_is_escaped_shortened_and_has_no_bidi_overrides() -> None:
    m = render_alert(view(), "Asia/Seoul")
    for part in (m.subject, m.text, m.html, m.markdown):
        assert "\u202e" not in part and "\u202c" not in part
    assert len(m.subject) <= MAX_SUBJECT and "\n" not in m.subject
    assert m.subject.startswith("[kim-putin] <script>")  # a header is text: nothing to escape
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html
    assert "&amp;amp;" in m.html  # the feed's literal "&amp;" stays literal
    assert "<img" not in m.html and "&lt;img src=x onerror=alert(1)&gt;" in m.html
    assert "<i>kcna</i>" not in m.html
    assert 'href="https://news.example.org/a?x=1&amp;y=&lt;2&gt;"' in m.html
    assert 'dir="auto"' in m.html
    assert "<https://news.example.org/a?x=1&y=%3C2%3E>" in m.markdown
    title_line = next(line for line in m.text.splitlines() if line.startswith("Title: "))
    assert len(title_line) <= len("Title: ") + MAX_TITLE and title_line.endswith("…")
    assert len(m.html) < 4000 and len(m.text) < 2000
    assert "\\*\\*bold\\*\\*" in m.markdown and "\\[link\\]" in m.markdown
    assert "**Kim Jong Un**" in m.markdown and "<mark>Kim Jong Un</mark>" in m.html and "[Kim Jong Un]" in m.text


def test_links_that_are_not_http_are_not_links() -> None:
    m = render_alert(view(url="javascript:alert(1)", body="Kim Jong Un met Putin."), "UTC")
    assert "href" not in m.html
    assert "](javascript" not in m.markdown and "<javascript" not in m.markdown
    d = render_digest([view(url="javascript:alert(1)"), view()], "UTC", "analysts")
    assert 'href="javascript' not in d.html and "(javascript" not in d.markdown


def test_control_characters_cannot_inject_headers() -> None:
    m = render_alert(view(title="Kim\r\nBcc: victim@example.org\x00\x1b[31m"), "UTC")
    assert "\r" not in m.subject and "\n" not in m.subject and "\x00" not in m.subject and "\x1b" not in m.subject


def test_arabic_title_is_marked_for_direction() -> None:
    m = render_alert(view(title="كيم جونغ أون يلتقي بوتين", body="بوتين"), "Asia/Seoul")
    assert '<h3 dir="auto">' in m.html and "كيم جونغ أون" in m.html


def test_published_time_in_the_subscribers_zone() -> None:
    assert "2026-11-01 14:00 KST" in render_alert(view(), "Asia/Seoul").text
    # New York leaves daylight saving at 06:00 UTC on 2026-11-01.
    assert "2026-11-01 01:00 EDT" in render_alert(view(), "America/New_York").text
    after = view(published=datetime(2026, 11, 1, 7, tzinfo=UTC))
    assert "2026-11-01 02:00 EST" in render_alert(after, "America/New_York").text


def test_summary_lists_every_folded_alert_with_title_and_link() -> None:
    views = [view(title=f"Item {i} <b>", url=f"https://news.example.org/{i}") for i in range(95)]
    m = render_summary(views, "UTC", "analysts", 5)
    assert "95 more alerts" in m.subject and len(m.subject) <= MAX_SUBJECT
    for i in range(95):
        assert f"Item {i} &lt;b&gt;" in m.html and f"https://news.example.org/{i}" in m.text
    assert m.html.count("<li") == 95


def test_notice_escapes_what_it_quotes() -> None:
    m = render_notice("source wire keeps failing", "HTTP 500: <html><script>x</script>\n\n```boom```")
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html
    assert m.subject == "[wirewatch] source wire keeps failing"
