"""Render an alert into the messages a subscriber reads: plain text, HTML and Markdown.

Responsible for what an alert says and for making feed-supplied text safe: everything
that came from a feed is escaped for the format it lands in, bidirectional control
characters are removed (they can make a link read backwards), long fields are shortened,
and HTML is marked ``dir="auto"`` so Arabic reads right to left.  Subjects are short and
stable (rule + title) so mail clients thread them.  Pure: no I/O, times converted with
the subscriber's zone passed in.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

MAX_SUBJECT = 120
MAX_TITLE = 300
SNIPPET_RADIUS = 160

_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# Characters that start Markdown syntax mid-line; "-", "." and "+" only matter at the
# start of a line, and every line we build starts with our own text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|#])")


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
    """Remove bidirectional overrides and other invisible direction controls."""
    return _BIDI_CONTROLS.sub("", text)


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


def _marked(text: str, marks: list[tuple[int, int]], mark: tuple[str, str], escape: object) -> str:
    assert callable(escape)
    out: list[str] = []
    pos = 0
    for s, e in marks:
        out.append(escape(text[pos:s]))
        out.append(mark[0] + escape(text[s:e]) + mark[1])
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def render_alert(view: AlertView, timezone: str) -> Message:
    zone = ZoneInfo(timezone)
    when = (view.published or view.first_seen).astimezone(zone)
    when_text = when.strftime("%Y-%m-%d %H:%M %Z")
    title = shorten(safe(view.title), MAX_TITLE)
    source = shorten(safe(view.source), 80)
    url = safe(view.url).strip()
    snippet, marks = _snippet(safe(view.body), view.spans)
    prefix = "[CRITICAL] " if view.severity == "critical" else ""
    subject = shorten(f"{prefix}[{view.rule}] {title}", MAX_SUBJECT)
    others = ", ".join(safe(o) for o in view.also_reported_by)

    text_lines = [
        f"Rule: {view.rule}",
        f"Title: {title}",
        f"Source: {source}",
        f"Published: {when_text}",
        f"Link: {url}",
    ]
    if others:
        text_lines.append(f"Also reported by: {others}")
    if snippet:
        text_lines += ["", shorten(_marked(snippet, marks, ("[", "]"), str), 2 * SNIPPET_RADIUS + 80)]
    text = "\n".join(text_lines)

    e = html.escape
    href = e(url, quote=True) if re.match(r"^https?://", url, re.IGNORECASE) else "#"
    html_parts = [
        '<div dir="auto">',
        f"<p><b>Rule:</b> {e(view.rule)}</p>",
        f'<h3 dir="auto"><a href="{href}">{e(title)}</a></h3>',
        f"<p><b>Source:</b> {e(source)} &middot; <b>Published:</b> {e(when_text)}</p>",
    ]
    if snippet:
        html_parts.append(f'<p dir="auto">{_marked(snippet, marks, ("<mark>", "</mark>"), e)}</p>')
    if others:
        html_parts.append(f"<p><b>Also reported by:</b> {e(others)}</p>")
    html_parts.append(f'<p><a href="{href}">{e(url)}</a></p></div>')

    md = [f"**{_md_escape(title)}**", f"Rule: {_md_escape(view.rule)} · {_md_escape(source)} · {_md_escape(when_text)}"]
    if snippet:
        md.append(_marked(snippet, marks, ("**", "**"), _md_escape))
    if others:
        md.append(f"Also reported by: {_md_escape(others)}")
    md.append(f"<{url}>" if href != "#" else _md_escape(url))
    return Message(subject=subject, text=text, html="\n".join(html_parts), markdown="\n\n".join(md))


def render_digest(views: list[AlertView], timezone: str, name: str) -> Message:
    """One message listing several alerts (a digest, or what quiet hours held back)."""
    zone = ZoneInfo(timezone)
    count = len(views)
    subject = f"[wirewatch] {name}: {count} new item{'s' if count != 1 else ''}"
    e = html.escape
    text_lines = [subject, ""]
    html_parts = ['<div dir="auto">', f"<h3>{e(subject)}</h3>", "<ol>"]
    md = [f"**{_md_escape(subject)}**"]
    for v in views:
        when = (v.published or v.first_seen).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        title = shorten(safe(v.title), MAX_TITLE)
        url = safe(v.url).strip()
        href = e(url, quote=True) if re.match(r"^https?://", url, re.IGNORECASE) else "#"
        others = f" (also: {', '.join(safe(o) for o in v.also_reported_by)})" if v.also_reported_by else ""
        text_lines.append(f"- [{v.rule}] {title} — {safe(v.source)}, {when}{others}\n  {url}")
        html_parts.append(
            f'<li dir="auto"><b>[{e(v.rule)}]</b> <a href="{href}">{e(title)}</a> — {e(safe(v.source))}, {e(when)}{e(others)}</li>'
        )
        md.append(f"- \\[{_md_escape(v.rule)}\\] [{_md_escape(title)}]({url.replace('(', '%28').replace(')', '%29') if href != '#' else ''}) — {_md_escape(safe(v.source))}, {_md_escape(when)}")
    html_parts += ["</ol>", "</div>"]
    return Message(subject=subject, text="\n".join(text_lines), html="\n".join(html_parts), markdown="\n".join(md))
