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


# --------------------------------------------------------------------------- issue 19

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from monitor.core.render import LIST_FULL, LIST_LINES, render_list, snippet  # noqa: E402

WORDS = {
    "ar": ["كيم", "جونغ", "أون", "يرسل", "تهنئة", "دموية", "لبوتين", "تقاسمنا", "الدماء", "في", "حرب", "أوكرانيا"],
    "ru": ["Ким", "Чен", "Ын", "направил", "Путину", "поздравление", "о", "пролитой", "вместе", "крови"],
    "ko": ["김정은이", "푸틴에게", "피로", "맺은", "동맹을", "강조하는", "축전을", "보냈다"],
    "en": ["Kim", "Jong", "Un", "sent", "Putin", "a", "message", "about", "blood", "shared", "in", "the", "trenches"],
}


@settings(max_examples=60, deadline=None)
@given(
    lang=st.sampled_from(sorted(WORDS)),
    picks=st.lists(st.integers(0, 9), min_size=60, max_size=200),
    at=st.integers(0, 59),
)
def test_a_snippet_is_whole_words_with_an_ellipsis_where_text_was_cut(lang: str, picks: list[int], at: int) -> None:
    words = [WORDS[lang][i % len(WORDS[lang])] for i in picks]
    body = " ".join(words)
    start = len(" ".join(words[:at])) + (1 if at else 0)
    spans = (("body", start, start + len(words[at])),)
    segments = snippet(body, spans)
    text = "".join(t for t, _ in segments)
    inner = text.removeprefix("…").removesuffix("…")
    assert inner.split() and all(w in words for w in inner.split())
    assert inner.strip() in body  # one contiguous run of the body
    if not text.startswith("…"):
        assert body.startswith(inner.strip())
    if not text.endswith("…"):
        assert body.endswith(inner.strip())
    assert len(inner) < len(body) or text == body
    assert [t for t, marked in segments if marked] == [words[at]]


def test_cjk_without_spaces_is_cut_at_the_radius_with_an_ellipsis() -> None:
    body = "北朝鮮" * 300 + "プーチン" + "北朝鮮" * 300
    at = body.index("プーチン")
    text = "".join(t for t, _ in snippet(body, (("body", at, at + 4),)))
    assert text.startswith("…") and text.endswith("…") and "プーチン" in text


def test_title_matches_are_marked_in_every_format() -> None:
    v = view(title="Kim Jong Un meets Putin", spans=(("title", 0, 11), ("title", 18, 23)), body="")
    m = render_alert(v, "UTC")
    assert "<mark>Kim Jong Un</mark> meets <mark>Putin</mark>" in m.html
    assert "Title: [Kim Jong Un] meets [Putin]" in m.text
    assert "**Kim Jong Un** meets **Putin**" in m.markdown
    assert m.subject == "[kim-putin] Kim Jong Un meets Putin"  # a header stays plain


def test_several_rules_their_words_language_and_reach() -> None:
    v = view(
        rules=("kursk-nk", "kim-putin"),
        rule_words=(("kursk-nk", ("Kursk",)), ("kim-putin", ("Kim Jong Un", "Putin"))),
        severity="critical",
        language="ar",
        outlets=("wire", "tass", "kcna"),
        languages=("ar", "en", "ru"),
    )
    m = render_alert(v, "UTC")
    assert m.subject.startswith("[CRITICAL] [kursk-nk, kim-putin] ")
    assert "Matched: kursk-nk (Kursk); kim-putin (Kim Jong Un, Putin) (critical)" in m.text
    assert "Language: Arabic (ar)" in m.text and "Language:</b> Arabic (ar)" in m.html
    assert "reported by 3 outlets in 3 languages" in m.text and "reported by 3 outlets in 3 languages" in m.html


def test_a_list_pages_its_body_and_stays_one_message() -> None:
    n = LIST_FULL + LIST_LINES + 250
    views = [view(title=f"Item {i}", url=f"https://news.example.org/{i}", spans=()) for i in range(n)]
    m = render_list(views, "UTC", "[wirewatch] analysts: digest")
    assert m.html.count("<li") == LIST_FULL + LIST_LINES
    assert f"{LIST_LINES:,} more stories, one line each" in m.text
    assert "… and 250 more stories not listed here" in m.text
    assert "https://news.example.org/1099" in m.text and "https://news.example.org/1100" not in m.text


def test_surge_and_update_messages_escape_feed_text() -> None:
    from monitor.core.corroboration import make_reach
    from monitor.core.render import SurgeStory, render_surge, render_update

    stories = [
        SurgeStory(HOSTILE, "javascript:alert(1)", 7, 2),
        SurgeStory("Kim <b>x</b>", "https://a.example/1?a=1&b=2", 3),
    ]
    m = render_surge("kim-putin", 10, 0.5, 3.0, stories, WHEN, "Asia/Seoul", chart=b"\x89PNG fake-free bytes")
    assert m.subject == "[surge] kim-putin: 10 matches in the last hour"
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html and "Kim &lt;b&gt;x&lt;/b&gt;" in m.html
    assert 'href="javascript' not in m.html and "\u202e" not in m.html + m.text + m.markdown
    assert 'href="https://a.example/1?a=1&amp;b=2"' in m.html
    assert "7 matches, 2 outlets" in m.text and "2026-11-01 14:00 KST" in m.text
    assert [(a.name, a.mime) for a in m.attachments] == [("surge.png", "image/png")]
    assert "\\<b\\>" in m.markdown
    reach = make_reach(
        [("wire", "en", WHEN), ("tass", "ru", WHEN.replace(hour=6)), ("yna", "ko", WHEN.replace(hour=7))]
    )
    u = render_update(view(outlets=reach.outlets, languages=reach.languages, timeline=reach.firsts()), "UTC", 3)
    assert u.subject.startswith("[update] [kim-putin] now 3 outlets in 3 languages (en, ru, ko): <script>")
    assert "&lt;script&gt;" in u.html and "<script>" not in u.html
    assert "2026-11-01 07:00 UTC: yna (ko), new outlet and language: 3 outlets, 3 languages" in u.text
    held = render_alert(view(released="unconfirmed", need_outlets=3, need_languages=2), "UTC")
    assert held.subject.startswith("[unconfirmed] [kim-putin]")
    assert held.text.startswith("UNCONFIRMED: the rule waited for 3 outlets or 2 languages; its wait ran out first.")
