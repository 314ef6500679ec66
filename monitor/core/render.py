"""Render alerts into the messages a subscriber reads: plain text, HTML and Markdown.

Responsible for what a message says and for making feed-supplied text safe: everything
that came from a feed is escaped for the format it lands in, bidirectional and other
control characters are removed (they can make a link read backwards or break a header),
long fields are shortened, and HTML is marked ``dir="auto"`` so Arabic reads right to
left.  Subjects are short and stable (rule + title) so mail clients thread them.  The
HTML is also shaped to read well when a mail library derives the text/plain part from
it (one field per block, every link's address visible as text).  Pure: no I/O; times
are converted with the subscriber's zone passed in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

MAX_SUBJECT = 120
MAX_TITLE = 300
MAX_SOURCE = 80
SNIPPET_RADIUS = 160

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


@dataclass(frozen=True, slots=True)
class AlertView:
    """Everything a message shows, as plain data from the store."""

    rule: str
    title: str
    url: str
    source: str
    published: datetime | None
    first_seen: datetime
    body: str  # summary and text, as matched
    spans: tuple[tuple[str, int, int], ...]  # (field, start, end) into title / body
    also_reported_by: tuple[str, ...] = ()
    severity: str = "normal"


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    html: str
    markdown: str


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe(text: str) -> str:
    """Remove bidirectional overrides, direction marks and control characters."""
    return _CONTROLS.sub("", _BIDI_CONTROLS.sub("", text))


def _snippet(body: str, spans: tuple[tuple[str, int, int], ...]) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``body`` around the first body match, with match offsets re-based."""
    body_spans = sorted((s, e) for f, s, e in spans if f == "body" and 0 <= s < e <= len(body))
    if not body_spans:
        text = body[: 2 * SNIPPET_RADIUS]
        return text, []
    start = max(0, body_spans[0][0] - SNIPPET_RADIUS)
    end = min(len(body), body_spans[0][1] + SNIPPET_RADIUS)
    marks: list[tuple[int, int]] = []
    last = start
    for s, e in body_spans:
        if s >= last and e <= end:
            marks.append((s - start, e - start))
            last = e
    return body[start:end], marks


def _marked(text: str, marks: list[tuple[int, int]], mark: tuple[str, str], escape: Callable[[str], str]) -> str:
    out: list[str] = []
    pos = 0
    for s, e in marks:
        out.append(escape(text[pos:s]))
        out.append(mark[0] + escape(text[s:e]) + mark[1])
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def markdown_escape(text: str) -> str:
    """``text`` shown literally by a Markdown renderer (for titles a channel renders too)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


_md_escape = markdown_escape


def _plain(text: str) -> str:
    return text


def _e(text: str) -> str:
    return html.escape(text, quote=True)


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


def _when(view: AlertView, zone: ZoneInfo) -> str:
    return (view.published or view.first_seen).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


@dataclass(frozen=True, slots=True)
class _Clean:
    """One view's fields made safe and short, shared by every format."""

    rule: str
    title: str
    source: str
    url: str
    when: str
    others: str
    critical: bool


def _clean(view: AlertView, zone: ZoneInfo) -> _Clean:
    return _Clean(
        rule=shorten(safe(view.rule), 64),
        title=shorten(safe(view.title), MAX_TITLE) or "(untitled)",
        source=shorten(safe(view.source), MAX_SOURCE),
        url=shorten(safe(view.url), 2000).replace(" ", "%20"),
        when=_when(view, zone),
        others=shorten(", ".join(safe(o) for o in view.also_reported_by), 400),
        critical=view.severity == "critical",
    )


def alert_subject(view: AlertView) -> str:
    """Stable for one alert: the same rule and title always give the same subject."""
    prefix = "[CRITICAL] " if view.severity == "critical" else ""
    return shorten(f"{prefix}[{safe(view.rule)}] {safe(view.title)}", MAX_SUBJECT)


def render_alert(view: AlertView, timezone: str) -> Message:
    zone = ZoneInfo(timezone)
    c = _clean(view, zone)
    snippet, marks = _snippet(safe(view.body), view.spans)
    subject = alert_subject(view)

    text_lines = [
        f"Rule: {c.rule}" + (" (critical)" if c.critical else ""),
        f"Title: {c.title}",
        f"Source: {c.source}",
        f"Published: {c.when}",
        f"Link: {c.url}",
    ]
    if c.others:
        text_lines.append(f"Also reported by: {c.others}")
    if snippet:
        text_lines += ["", shorten(_marked(snippet, marks, ("[", "]"), _plain), 2 * SNIPPET_RADIUS + 80)]
    text = "\n".join(text_lines)

    href = _href(c.url)
    title_html = f'<a href="{href}">{_e(c.title)}</a>' if href else _e(c.title)
    html_parts = [
        '<div dir="auto">',
        f"<p><b>Rule:</b> {_e(c.rule)}{' <b>(critical)</b>' if c.critical else ''}</p>",
        f'<h3 dir="auto">{title_html}</h3>',
        f'<p><b>Source:</b> <span dir="auto">{_e(c.source)}</span></p>',
        f"<p><b>Published:</b> {_e(c.when)}</p>",
    ]
    if snippet:
        html_parts.append(f'<p dir="auto">{_marked(snippet, marks, ("<mark>", "</mark>"), _e)}</p>')
    if c.others:
        html_parts.append(f'<p><b>Also reported by:</b> <span dir="auto">{_e(c.others)}</span></p>')
    html_parts.append(f'<p><a href="{href}">{_e(c.url)}</a></p></div>' if href else f"<p>{_e(c.url)}</p></div>")

    flag = " (critical)" if c.critical else ""
    md = [
        f"**{_md_escape(c.title)}**",
        f"Rule: {_md_escape(c.rule)}{flag} · {_md_escape(c.source)} · {_md_escape(c.when)}",
    ]
    if snippet:
        md.append(_marked(snippet, marks, ("**", "**"), _md_escape))
    if c.others:
        md.append(f"Also reported by: {_md_escape(c.others)}")
    md.append(f"<{_md_url(c.url)}>" if href else _md_escape(c.url))
    return Message(subject=subject, text=text, html="\n".join(html_parts), markdown="\n\n".join(md))


def render_list(views: Sequence[AlertView], timezone: str, subject: str, intro: str = "") -> Message:
    """One message listing several alerts: a digest, a flood summary, what quiet hours held.

    Each entry names the rule, title, source, time, the other outlets, and the link as
    visible text (so a text part derived from the HTML still carries it).
    """
    zone = ZoneInfo(timezone)
    subject = shorten(safe(subject), MAX_SUBJECT)
    intro = safe(intro)
    text_lines = [subject, ""] + ([intro, ""] if intro else [])
    html_parts = ['<div dir="auto">', f"<h3>{_e(subject)}</h3>"]
    if intro:
        html_parts.append(f"<p>{_e(intro)}</p>")
    html_parts.append("<ol>")
    md = [f"**{_md_escape(subject)}**"] + ([_md_escape(intro)] if intro else [])
    for v in views:
        c = _clean(v, zone)
        flag = "[CRITICAL] " if c.critical else ""
        also = f" (also: {c.others})" if c.others else ""
        text_lines.append(f"- {flag}[{c.rule}] {c.title}\n  {c.source}, {c.when}{also}\n  {c.url}")
        href = _href(c.url)
        link = f'<a href="{href}">{_e(c.url)}</a>' if href else _e(c.url)
        html_parts.append(
            f'<li dir="auto"><b>{_e(flag)}[{_e(c.rule)}]</b> <span dir="auto">{_e(c.title)}</span><br>'
            f"{_e(c.source)}, {_e(c.when)}{_e(also)}<br>{link}</li>"
        )
        md.append(
            f"- {_md_escape(flag)}\\[{_md_escape(c.rule)}\\] {_md_link(c.title, c.url)} — "
            f"{_md_escape(c.source)}, {_md_escape(c.when)}{_md_escape(also)}"
        )
    html_parts += ["</ol>", "</div>"]
    return Message(subject=subject, text="\n".join(text_lines), html="\n".join(html_parts), markdown="\n".join(md))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_digest(views: Sequence[AlertView], timezone: str, name: str) -> Message:
    return render_list(views, timezone, f"[wirewatch] {name}: digest, {_count(len(views), 'item')}")


def render_summary(views: Sequence[AlertView], timezone: str, name: str, max_per_hour: int) -> Message:
    """Flood control: the alerts beyond ``max_per_hour``, folded into one message."""
    intro = (
        f"More than {max_per_hour} alerts matched within an hour; instead of "
        f"{_count(len(views), 'more message')}, here they are in one."
    )
    subject = f"[wirewatch] {name}: {_count(len(views), 'more alert')} (flood control)"
    return render_list(views, timezone, subject, intro)


def render_held(views: Sequence[AlertView], timezone: str, name: str) -> Message:
    """What quiet hours held back, sent as one message when they end."""
    intro = "These alerts arrived during your quiet hours."
    return render_list(views, timezone, f"[wirewatch] {name}: {_count(len(views), 'alert')} from quiet hours", intro)


def render_notice(subject: str, text: str) -> Message:
    """An operator notice (a failing source, an invalid config edit); ``text`` may quote untrusted input."""
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
