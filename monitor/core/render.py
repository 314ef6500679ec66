"""Render everything wirewatch sends: alerts, summaries, digests and operator notices.

Responsible for what a message says and for making text from feeds and servers safe:
everything from outside is escaped for the format it lands in (HTML, Markdown, plain
text), bidirectional and other control characters are removed (they can make a link read
backwards or break a header), long fields are shortened, and HTML is marked
``dir="auto"`` so Arabic reads right to left.  An alert names every rule that fired and
its matched words, marks them in the title and in a snippet cut at word boundaries (with
an ellipsis, in any script), gives the language and how far the story has travelled
("reported by N outlets in M languages").  The plain text says the same as the HTML: the
HTML is shaped so that a text part derived from it (Apprise's email) carries every fact
(one field per block, each link's address as visible text, the matched words written out).
A list (digest, summary, quiet hours) is one message however long: its body is paged
(entries in full, then one line each, then a count), never split into more messages.
Pure: no I/O, no clock; times are converted with the subscriber's zone passed in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.core.corroboration import UNCONFIRMED, TimelineEntry, reach_phrase

MAX_SUBJECT = 120
MAX_TITLE = 300
MAX_SOURCE = 80
SNIPPET_RADIUS = 160
# A list message shows this many entries in full, then this many as one line each, then
# counts the rest: a digest of 50,000 stays one readable message of bounded size.
# An alert's corroboration timeline shows this many arrivals, then counts the rest.
TIMELINE_MAX = 25
LIST_FULL = 100
LIST_LINES = 1000

# Bidirectional embeddings, overrides and isolates, and the implicit marks: a feed has
# no business steering the direction of our text (a RIGHT-TO-LEFT OVERRIDE can make
# "moc.elgoog//:sptth" read as a trusted link).  ZWJ/ZWNJ stay: Persian needs them.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# C0/C1 controls other than tab and newline: invisible, and some break mail headers.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Characters that start Markdown syntax mid-line; "-", "." and "+" only matter at the
# start of a line, and every line we build starts with our own text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|#])")
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_SPACE = re.compile(r"\s")

LANGUAGE_NAMES = {
    "en": "English",
    "ar": "Arabic",
    "ru": "Russian",
    "ko": "Korean",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "ja": "Japanese",
    "fa": "Persian",
    "ur": "Urdu",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
}

Span = tuple[str, int, int]  # (field, start, end) into the view's title or body


@dataclass(frozen=True, slots=True)
class AlertView:
    """Everything a message shows of one story, as plain data from the store.

    ``rules`` lists every rule that fired, the routing rule first; ``rule_words`` the
    matched words of each; ``spans`` all their spans into ``title`` and ``body``.
    ``outlets`` and ``languages`` describe the story as far as it is known now.
    """

    rules: tuple[str, ...]
    title: str
    url: str
    source: str
    published: datetime | None
    first_seen: datetime
    body: str  # summary and text, as matched
    spans: tuple[Span, ...]
    rule_words: tuple[tuple[str, tuple[str, ...]], ...] = ()
    also_reported_by: tuple[str, ...] = ()
    severity: str = "normal"
    language: str | None = None
    outlets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    story_url: str | None = None  # the story in the console, once there is one
    # When each outlet and language joined the story (as of rendering), and, for an
    # alert held for corroboration, how it was let go and what its rules asked for.
    timeline: tuple[TimelineEntry, ...] = ()
    released: str | None = None
    need_outlets: int = 0
    need_languages: int = 0

    @property
    def unconfirmed(self) -> bool:
        return self.released == UNCONFIRMED

    @property
    def rule(self) -> str:
        return self.rules[0] if self.rules else ""


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    html: str
    markdown: str
    # A stable identity for the message (the ``messages`` row), used as the email
    # Message-ID so a resend is recognisable as the same mail.
    ref: str | None = field(default=None, compare=False)
    # Files sent with the message where the channel takes them (a surge's chart).
    attachments: tuple[Attachment, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    mime: str
    data: bytes = field(repr=False)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe(text: str) -> str:
    """Remove bidirectional overrides, direction marks and control characters."""
    return _CONTROLS.sub("", _BIDI_CONTROLS.sub("", text))


# --------------------------------------------------------------------------- marked text

Segment = tuple[str, bool]  # (text, marked)


def _segments(text: str, spans: Sequence[tuple[int, int]]) -> list[Segment]:
    """``text`` split into unmarked and marked runs (overlapping spans merged)."""
    out: list[Segment] = []
    pos = 0
    for start, end in sorted(spans):
        s, e = max(start, pos), min(end, len(text))
        if s >= e:
            continue
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _clean_segments(segments: list[Segment], limit: int) -> list[Segment]:
    """Made safe, whitespace collapsed, shortened to ``limit`` characters with an ellipsis."""
    cleaned: list[Segment] = []
    prev_space = True
    for raw, marked in segments:
        piece = re.sub(r"\s+", " ", safe(raw))
        if prev_space:
            piece = piece.lstrip(" ")
        if piece:
            cleaned.append((piece, marked))
            prev_space = piece.endswith(" ")
    if cleaned:
        last, marked = cleaned[-1]
        cleaned[-1] = (last.rstrip(" "), marked)
    total = 0
    out: list[Segment] = []
    for text, marked in cleaned:
        if total + len(text) > limit:
            room = max(0, limit - 1 - total)
            cut = text[:room].rstrip()
            if cut:
                out.append((cut, marked))
            out.append(("…", False))
            return out
        out.append((text, marked))
        total += len(text)
    return out


def _join(segments: Sequence[Segment], mark: tuple[str, str], escape: Callable[[str], str]) -> str:
    return "".join(mark[0] + escape(t) + mark[1] if m else escape(t) for t, m in segments)


def _plain_text(segments: Sequence[Segment]) -> str:
    return "".join(t for t, _ in segments)


def snippet(body: str, spans: Sequence[Span]) -> list[Segment]:
    """A window of ``body`` around the first body match, cut at word boundaries.

    The window reaches about ``SNIPPET_RADIUS`` characters either side of the first
    match and is widened or narrowed to the nearest whitespace, so no word is cut in
    half in any script that separates words by spaces (Arabic, Cyrillic, Hangul, Latin);
    text without spaces (Chinese, Japanese) is cut where the radius ends.  An ellipsis
    shows each side where text was left out.  Every match inside the window is marked.
    """
    body_spans = sorted((s, e) for f, s, e in spans if f == "body" and 0 <= s < e <= len(body))
    if body_spans:
        start = max(0, body_spans[0][0] - SNIPPET_RADIUS)
        end = min(len(body), body_spans[0][1] + SNIPPET_RADIUS)
    else:
        start, end = 0, min(len(body), 2 * SNIPPET_RADIUS)
    if start > 0 and not _SPACE.match(body[start - 1]):
        # Move forward to the start of the next word (not past the first match).
        limit = body_spans[0][0] if body_spans else end
        m = _SPACE.search(body, start, limit)
        if m is not None:
            start = m.end()
    if end < len(body) and not _SPACE.match(body[end]):
        # Move back to the end of the previous word (not before the first match's end).
        floor = body_spans[0][1] if body_spans else start
        cut = max((m.start() for m in _SPACE.finditer(body, floor, end)), default=None)
        if cut is not None:
            end = cut
    marks = [(s - start, e - start) for s, e in body_spans if s >= start and e <= end]
    segments = _segments(body[start:end], marks)
    limit = 2 * SNIPPET_RADIUS + 80
    cleaned = _clean_segments(segments, limit)
    if not cleaned:
        return []
    if start > 0:
        cleaned.insert(0, ("…", False))
    if end < len(body) and cleaned[-1][0] != "…":
        cleaned.append(("…", False))
    return cleaned


def marked(text: str, spans: Sequence[tuple[int, int]], limit: int = MAX_TITLE) -> list[Segment]:
    """``text`` with ``spans`` marked, made safe and shortened (the console's titles)."""
    return _clean_segments(_segments(text, spans), limit)


def title_segments(view: AlertView) -> list[Segment]:
    """The title with its matches marked, made safe and shortened."""
    spans = [(s, e) for f, s, e in view.spans if f == "title" and 0 <= s < e <= len(view.title)]
    return _clean_segments(_segments(view.title, spans), MAX_TITLE) or [("(untitled)", False)]


# --------------------------------------------------------------------------- escaping


def markdown_escape(text: str) -> str:
    """``text`` shown literally by a Markdown renderer (for titles a channel renders too)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


_md_escape = markdown_escape


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _as_is(text: str) -> str:
    return text


def _href(url: str) -> str:
    """An attribute-safe link target; anything but http(s) (``javascript:``, ``data:``) is dropped."""
    return _e(url) if _HTTP.match(url) else ""


def _md_url(url: str) -> str:
    """Percent-encode what would end a Markdown link target or autolink early."""
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")


def _md_link(label: str, url: str) -> str:
    if not _HTTP.match(url):
        return _md_escape(label)
    return f"[{_md_escape(label)}]({_md_url(url)})"


def _count(n: int, word: str) -> str:
    if n == 1:
        return f"{n:,} {word}"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        plural = word[:-1] + "ies"
    elif word.endswith(("ch", "sh", "s", "x")):
        plural = word + "es"
    else:
        plural = word + "s"
    return f"{n:,} {plural}"


def language_name(code: str | None) -> str:
    if not code:
        return "unknown"
    name = LANGUAGE_NAMES.get(code.lower())
    return f"{name} ({code})" if name else code


# --------------------------------------------------------------------------- one alert


@dataclass(frozen=True, slots=True)
class _Clean:
    """One view's fields made safe and short, shared by every format."""

    rules: str
    matched: str  # "kim-putin (Kim Jong Un, Putin); kursk (Kursk)"
    title: list[Segment]
    source: str
    url: str
    when: str
    language: str
    reach: str  # "reported by 3 outlets in 2 languages"
    others: str
    story_url: str
    critical: bool
    timeline: list[str]  # "2026-06-01 12:05 KST: tass (ru) joined: 2 outlets, 2 languages"
    unconfirmed: str  # the note on an alert whose max_wait ran out, or ""


def _timeline(view: AlertView, zone: ZoneInfo) -> list[str]:
    lines = []
    for e in view.timeline[:TIMELINE_MAX]:
        brought = [w for w, new in (("outlet", e.new_outlet), ("language", e.new_language)) if new]
        lines.append(
            f"{e.at.astimezone(zone).strftime('%Y-%m-%d %H:%M %Z')}: "
            f"{shorten(safe(e.outlet), MAX_SOURCE)} ({safe(e.language or '?')}), new {' and '.join(brought)}: "
            f"{_count(e.outlets, 'outlet')}, {_count(e.languages, 'language')}"
        )
    if len(view.timeline) > TIMELINE_MAX:
        lines.append(f"… and {_count(len(view.timeline) - TIMELINE_MAX, 'more arrival')}")
    return lines


def _html_items(lines: Sequence[str]) -> str:
    """Plain lines (a corroboration timeline) as an HTML list, escaped."""
    return "<ul>\n" + "\n".join(f'<li dir="auto">{_e(line)}</li>' for line in lines) + "\n</ul>"


def _md_items(lines: Sequence[str]) -> str:
    """Plain lines as a Markdown list, escaped."""
    return "\n".join(f"- {_md_escape(line)}" for line in lines)


def _unconfirmed(view: AlertView) -> str:
    if not view.unconfirmed:
        return ""
    wanted = [
        _count(n, word) for n, word in ((view.need_outlets, "outlet"), (view.need_languages, "language")) if n > 1
    ]
    return f"UNCONFIRMED: the rule waited for {' or '.join(wanted) or 'corroboration'}; its wait ran out first."


def _clean(view: AlertView, zone: ZoneInfo) -> _Clean:
    words = dict(view.rule_words)
    matched = []
    for rule in view.rules:
        said = ", ".join(dict.fromkeys(shorten(safe(w), 60) for w in words.get(rule, ()) if w.strip()))
        matched.append(f"{safe(rule)} ({said})" if said else safe(rule))
    languages = view.languages or ((view.language,) if view.language else ())
    reach = "reported by " + reach_phrase(len(view.outlets), [shorten(safe(x), 16) for x in languages])
    return _Clean(
        rules=shorten(", ".join(safe(r) for r in view.rules), 200),
        matched=shorten("; ".join(matched), 600),
        title=title_segments(view),
        source=shorten(safe(view.source), MAX_SOURCE),
        url=shorten(safe(view.url), 2000).replace(" ", "%20"),
        when=(view.published or view.first_seen).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
        language=language_name(view.language),
        reach=reach,
        others=shorten(", ".join(safe(o) for o in view.also_reported_by), 400),
        story_url=safe(view.story_url or ""),
        critical=view.severity == "critical",
        timeline=_timeline(view, zone),
        unconfirmed=_unconfirmed(view),
    )


def alert_subject(view: AlertView) -> str:
    """Stable for one alert: the same rules and title always give the same subject."""
    prefix = "[CRITICAL] " if view.severity == "critical" else ""
    prefix += "[unconfirmed] " if view.unconfirmed else ""
    rules = ", ".join(safe(r) for r in view.rules)
    return shorten(f"{prefix}[{rules}] {safe(view.title)}", MAX_SUBJECT)


def render_alert(view: AlertView, timezone: str, ref: str | None = None) -> Message:
    zone = ZoneInfo(timezone)
    c = _clean(view, zone)
    snip = snippet(view.body, view.spans)
    subject = alert_subject(view)
    flag = " (critical)" if c.critical else ""

    text_lines = [
        f"Matched: {c.matched}{flag}",
        f"Title: {_join(c.title, ('[', ']'), _as_is)}",
        f"Source: {c.source}, {c.reach}",
        f"Language: {c.language}",
        f"Published: {c.when}",
        f"Link: {c.url}",
    ]
    if c.unconfirmed:
        text_lines.insert(0, c.unconfirmed)
    if c.others:
        text_lines.append(f"Also reported by: {c.others}")
    if c.story_url:
        text_lines.append(f"Story: {c.story_url}")
    if snip:
        text_lines += ["", _join(snip, ("[", "]"), _as_is)]
    if len(c.timeline) > 1:
        text_lines += ["", "Corroboration (as of this message):"] + [f"- {line}" for line in c.timeline]
    text = "\n".join(text_lines)

    href = _href(c.url)
    title_html = _join(c.title, ("<mark>", "</mark>"), _e)
    title_html = f'<a href="{href}">{title_html}</a>' if href else title_html
    html_parts = [
        '<div dir="auto">',
        *([f"<p><b>{_e(c.unconfirmed)}</b></p>"] if c.unconfirmed else []),
        f"<p><b>Matched:</b> {_e(c.matched)}{' <b>(critical)</b>' if c.critical else ''}</p>",
        f'<h3 dir="auto">{title_html}</h3>',
        f'<p><b>Source:</b> <span dir="auto">{_e(c.source)}</span>, {_e(c.reach)}</p>',
        f"<p><b>Language:</b> {_e(c.language)}</p>",
        f"<p><b>Published:</b> {_e(c.when)}</p>",
    ]
    if snip:
        html_parts.append(f'<p dir="auto">{_join(snip, ("<mark>", "</mark>"), _e)}</p>')
    if c.others:
        html_parts.append(f'<p><b>Also reported by:</b> <span dir="auto">{_e(c.others)}</span></p>')
    story_href = _href(c.story_url)
    if story_href:
        html_parts.append(f'<p><b>Story:</b> <a href="{story_href}">{_e(c.story_url)}</a></p>')
    if len(c.timeline) > 1:
        html_parts.append("<p><b>Corroboration (as of this message):</b></p>")
        html_parts.append(_html_items(c.timeline))
    html_parts.append(f'<p><a href="{href}">{_e(c.url)}</a></p></div>' if href else f"<p>{_e(c.url)}</p></div>")

    md = [
        *([_md_escape(c.unconfirmed)] if c.unconfirmed else []),
        # Not bold as a whole: bold inside bold does not nest, and the marks must show.
        _join(c.title, ("**", "**"), _md_escape),
        f"Matched: {_md_escape(c.matched)}{flag}",
        f"{_md_escape(c.source)}, {_md_escape(c.reach)} · {_md_escape(c.language)} · {_md_escape(c.when)}",
    ]
    if snip:
        md.append(_join(snip, ("**", "**"), _md_escape))
    if c.others:
        md.append(f"Also reported by: {_md_escape(c.others)}")
    if story_href:
        md.append(f"Story: <{_md_url(c.story_url)}>")
    if len(c.timeline) > 1:
        md.append("Corroboration:\n" + _md_items(c.timeline))
    md.append(f"<{_md_url(c.url)}>" if href else _md_escape(c.url))
    return Message(subject=subject, text=text, html="\n".join(html_parts), markdown="\n\n".join(md), ref=ref)


# --------------------------------------------------------------------------- lists


def render_list(
    views: Sequence[AlertView], timezone: str, subject: str, intro: str = "", ref: str | None = None
) -> Message:
    """One message listing several stories: a digest, a flood summary, what quiet hours held.

    The first ``LIST_FULL`` entries name the rules and matched words, title (marked),
    source, reach, language, time and link (as visible text, so a text part derived from
    the HTML still carries it); the next ``LIST_LINES`` get one line each (title and
    link); the rest are counted.  One message, however many stories.
    """
    zone = ZoneInfo(timezone)
    subject = shorten(safe(subject), MAX_SUBJECT)
    intro = safe(intro)
    full, lines, rest = views[:LIST_FULL], views[LIST_FULL : LIST_FULL + LIST_LINES], views[LIST_FULL + LIST_LINES :]
    text_lines = [subject, ""] + ([intro, ""] if intro else [])
    html_parts = ['<div dir="auto">', f"<h3>{_e(subject)}</h3>"]
    if intro:
        html_parts.append(f"<p>{_e(intro)}</p>")
    html_parts.append("<ol>")
    md = [f"**{_md_escape(subject)}**"] + ([_md_escape(intro)] if intro else [])
    for v in full:
        c = _clean(v, zone)
        flag = ("[CRITICAL] " if c.critical else "") + ("[unconfirmed] " if c.unconfirmed else "")
        also = f" (also: {c.others})" if c.others else ""
        text_lines.append(
            f"- {flag}{_join(c.title, ('[', ']'), _as_is)}\n  matched: {c.matched}\n"
            f"  {c.source}, {c.reach}, {c.language}, {c.when}{also}\n  {c.url}"
        )
        href = _href(c.url)
        link = f'<a href="{href}">{_e(c.url)}</a>' if href else _e(c.url)
        html_parts.append(
            f'<li dir="auto"><b>{_e(flag)}</b><span dir="auto">{_join(c.title, ("<mark>", "</mark>"), _e)}</span><br>'
            f"matched: {_e(c.matched)}<br>"
            f"{_e(c.source)}, {_e(c.reach)}, {_e(c.language)}, {_e(c.when)}{_e(also)}<br>{link}</li>"
        )
        md.append(
            f"- {_md_escape(flag)}{_md_link(_plain_text(c.title), c.url)} — matched: {_md_escape(c.matched)}; "
            f"{_md_escape(c.source)}, {_md_escape(c.reach)}, {_md_escape(c.language)}, {_md_escape(c.when)}"
            f"{_md_escape(also)}"
        )
    html_parts.append("</ol>")
    if lines:
        text_lines += ["", f"{_count(len(lines), 'more story')}, one line each:"]
        html_parts.append(f"<p>{_e(_count(len(lines), 'more story'))}, one line each:</p><ul>")
        md.append(_md_escape(f"{_count(len(lines), 'more story')}, one line each:"))
        for v in lines:
            c = _clean(v, zone)
            title = _plain_text(c.title)
            text_lines.append(f"- [{c.rules}] {title} {c.url}")
            html_parts.append(f'<li dir="auto">[{_e(c.rules)}] {_e(title)} {_e(c.url)}</li>')
            md.append(f"- \\[{_md_escape(c.rules)}\\] {_md_link(title, c.url)}")
        html_parts.append("</ul>")
    if rest:
        more = f"… and {_count(len(rest), 'more story')} not listed here (see `wirewatch alerts`)."
        text_lines += ["", more]
        html_parts.append(f"<p>{_e(more)}</p>")
        md.append(_md_escape(more))
    html_parts.append("</div>")
    return Message(
        subject=subject, text="\n".join(text_lines), html="\n".join(html_parts), markdown="\n".join(md), ref=ref
    )


def render_digest(views: Sequence[AlertView], timezone: str, name: str, ref: str | None = None) -> Message:
    return render_list(views, timezone, f"[wirewatch] {name}: digest, {_count(len(views), 'item')}", ref=ref)


def render_summary(
    views: Sequence[AlertView], timezone: str, name: str, max_per_hour: int, ref: str | None = None
) -> Message:
    """Flood control: the alerts beyond ``max_per_hour``, folded into one message."""
    intro = (
        f"More than {max_per_hour} alerts matched within an hour; instead of "
        f"{_count(len(views), 'more message')}, here they are in one."
    )
    subject = f"[wirewatch] {name}: {_count(len(views), 'more alert')} (flood control)"
    return render_list(views, timezone, subject, intro, ref=ref)


def render_held(views: Sequence[AlertView], timezone: str, name: str, ref: str | None = None) -> Message:
    """What quiet hours held back, sent as one message when they end."""
    intro = "These alerts arrived during your quiet hours."
    subject = f"[wirewatch] {name}: {_count(len(views), 'alert')} from quiet hours"
    return render_list(views, timezone, subject, intro, ref=ref)


# --------------------------------------------------------------------------- notices


def render_notice(subject: str, text: str) -> Message:
    """An operator notice (a failing source, an invalid config edit); ``text`` may quote untrusted input.

    Quoted text is data in every format: escaped in HTML, in a code block in Markdown (a
    redirect target written as ``[label](url)`` stays text, never a live link), and
    stripped of bidirectional controls everywhere.
    """
    subject = shorten(safe(f"[wirewatch] {subject}"), MAX_SUBJECT)
    body = safe(text).strip()
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    html_body = "\n".join(f'<p dir="auto">{_e(p).replace(chr(10), "<br>")}</p>' for p in paragraphs)
    md = "\n\n".join(f"```\n{p.replace('```', 'ʼʼʼ')}\n```" for p in paragraphs)
    return Message(
        subject=subject,
        text=f"{subject}\n\n{body}",
        html=f'<div dir="auto">\n<h3>{_e(subject)}</h3>\n{html_body}\n</div>',
        markdown=f"**{_md_escape(subject)}**\n\n{md}",
    )


# --------------------------------------------------------------------------- bulletins


def render_update(view: AlertView, timezone: str, threshold: int, ref: str | None = None) -> Message:
    """A story already alerted has reached ``threshold`` outlets: say how far it has travelled now."""
    zone = ZoneInfo(timezone)
    c = _clean(view, zone)
    now_phrase = c.reach.removeprefix("reported by ")
    title = _plain_text(c.title)
    subject = shorten(f"[update] [{c.rules}] now {now_phrase}: {safe(view.title)}", MAX_SUBJECT)
    passed = _count(threshold, "outlet")
    head = f"Update: a story you were alerted to is now reported by {now_phrase} (it reached {passed})."
    text_lines = [head, f"Title: {title}", f"Matched: {c.matched}", f"First source: {c.source}", f"Link: {c.url}"]
    if c.story_url:
        text_lines.append(f"Story: {c.story_url}")
    text_lines += ["", "Corroboration:"] + [f"- {line}" for line in c.timeline]
    href = _href(c.url)
    story_href = _href(c.story_url)
    html_parts = [
        '<div dir="auto">',
        f"<p><b>{_e(head)}</b></p>",
        '<h3 dir="auto">' + (f'<a href="{href}">{_e(title)}</a>' if href else _e(title)) + "</h3>",
        f"<p><b>Matched:</b> {_e(c.matched)}</p>",
        f'<p><b>First source:</b> <span dir="auto">{_e(c.source)}</span></p>',
        "<p><b>Corroboration:</b></p>",
        _html_items(c.timeline),
    ]
    if story_href:
        html_parts.append(f'<p><b>Story:</b> <a href="{story_href}">{_e(c.story_url)}</a></p>')
    html_parts.append(f"<p>{_e(c.url)}</p></div>")
    md = [
        f"**{_md_escape(head)}**",
        _md_link(title, c.url),
        _md_items(c.timeline),
    ]
    if story_href:
        md.append(f"Story: <{_md_url(c.story_url)}>")
    return Message(
        subject=subject, text="\n".join(text_lines), html="\n".join(html_parts), markdown="\n\n".join(md), ref=ref
    )


@dataclass(frozen=True, slots=True)
class SurgeStory:
    title: str
    url: str
    matches: int
    outlets: int = 1


def render_surge(
    rule: str,
    last_hour: int,
    mean: float,
    factor: float,
    stories: Sequence[SurgeStory],
    detected: datetime,
    timezone: str,
    chart: bytes | None = None,
    ref: str | None = None,
) -> Message:
    """A rule's matches surged: how much, the top stories of the hour, and the 48-hour chart attached."""
    zone = ZoneInfo(timezone)
    name = safe(rule)
    when = detected.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    subject = shorten(f"[surge] {name}: {_count(last_hour, 'match')} in the last hour", MAX_SUBJECT)
    head = (
        f"{name}: {_count(last_hour, 'match')} in the hour to {when}, against a 7-day mean of {mean:.1f} an hour "
        f"(a surge is more than {factor:g} times the mean)."
    )
    entries = []
    for st in stories:
        title = shorten(safe(st.title), MAX_TITLE) or "(untitled)"
        url = shorten(safe(st.url), 2000).replace(" ", "%20")
        entries.append((title, url, f"{_count(st.matches, 'match')}, {_count(st.outlets, 'outlet')}"))
    note = "The chart of the last 48 hours is attached (surge.png)." if chart else ""
    text_lines = [head, "", "Top stories of the hour:"] + [f"- {t} ({n})\n  {u}" for t, u, n in entries]
    if note:
        text_lines += ["", note]
    html_parts = ['<div dir="auto">', f"<p><b>{_e(head)}</b></p>", "<p>Top stories of the hour:</p>", "<ol>"]
    for t, u, n in entries:
        href = _href(u)
        link = f'<a href="{href}">{_e(u)}</a>' if href else _e(u)
        html_parts.append(f'<li dir="auto">{_e(t)} ({_e(n)})<br>{link}</li>')
    html_parts.append("</ol>")
    if note:
        html_parts.append(f"<p>{_e(note)}</p>")
    html_parts.append("</div>")
    md = [f"**{_md_escape(head)}**", "Top stories of the hour:"] + [
        f"- {_md_link(t, u)} ({_md_escape(n)})" for t, u, n in entries
    ]
    if note:
        md.append(_md_escape(note))
    attachments = (Attachment("surge.png", "image/png", chart),) if chart else ()
    return Message(
        subject=subject,
        text="\n".join(text_lines),
        html="\n".join(html_parts),
        markdown="\n".join(md),
        ref=ref,
        attachments=attachments,
    )
