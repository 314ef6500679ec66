"""From a ``RawItem`` to an ``Item``: clean text, canonical URL, identity key, sane dates.

Responsible for everything that makes one entry comparable with another and safe to
store: markup stripped from summaries, control characters and NULs removed, every
stored field bounded in length (a hostile entry with a 2 MB link made a 6 MB database
and 2 MB of ``items`` output), dates in the future or absurdly old dropped (the store
then falls back to the first-seen time).  Identity keys are computed from the whole
link before it is shortened (the GUID is shortened first, as it always was), so bounding
never changes a stored key.  :func:`oversized_fields` names what was shortened, so the
crawler can record it as a warning on the source.  Pure: ``now`` is passed in.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from monitor.core.models import Document, Item, RawItem
from monitor.core.urls import canonical_url, item_key

MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_TEXT = 200_000
MAX_GUID = 2_000
# Browsers and Scrapy (URLLENGTH_LIMIT) stop at 2,083 characters; a link twice that long
# is not a link anyone can follow.  Stored shortened; never fetched.
MAX_URL = 4_096
MAX_LANGUAGE = 8
# Markup is reduced before the length bound; reading more than this of a fragment could
# only produce text that is then cut (and costs regex time on hostile input).
MAX_HTML = 2_000_000
# A feed clock a little ahead of ours is normal; a date far ahead is a bug or a lie.
FUTURE_SLACK = timedelta(hours=1)
OLDEST = datetime(1995, 1, 1).astimezone()

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"</?(p|br|div|li|h[1-6]|tr|blockquote)\b[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A run of blanks that is not already one plain space (a run of [ \t\u00a0]+ otherwise):
# replacing every single space by itself cost more than the rest of clean_text.
_SPACES = re.compile(r"[\t\u00a0][ \t\u00a0]*| [ \t\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def html_to_text(fragment: str) -> str:
    """Plain text from an HTML fragment: scripts dropped, blocks become newlines, entities decoded."""
    text = _drop_scripts(fragment[:MAX_HTML])
    text = _BLOCK.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    return clean_text(text)


_SCRIPT_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)


def _drop_scripts(html_text: str) -> str:
    """Remove ``<script>``/``<style>`` elements in linear time.

    A regex with ``.*?`` up to the closing tag rescans the rest of the text for every
    unclosed opening tag: quadratic, and a fragment of 100,000 ``<script>`` took minutes.
    An element with no closing tag runs to the end, as in a browser.
    """
    lower = html_text.lower()
    out: list[str] = []
    pos = 0
    while True:
        m = _SCRIPT_OPEN.search(html_text, pos)
        if m is None:
            out.append(html_text[pos:])
            break
        out.append(html_text[pos : m.start()])
        out.append(" ")
        close = lower.find(f"</{m.group(1).lower()}", m.end())
        if close < 0:
            break
        end = lower.find(">", close)
        pos = len(html_text) if end < 0 else end + 1
    return "".join(out)


def clean_text(text: str) -> str:
    """Control characters out, runs of blanks one space, blank space around newlines one newline."""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES.sub("\n", text)
    return text.strip()


def make_item(raw: RawItem, now: datetime, base_language: str | None = None) -> Item | None:
    """Normalise ``raw``; ``None`` when it has no identity at all (no GUID and no link)."""
    url = (raw.url or "").strip()
    guid = clean_text(raw.guid)[:MAX_GUID] if raw.guid else None
    if not guid and not url:
        return None
    # Exactly as before the link was bounded (the GUID always was): stored keys never move.
    key = item_key(guid, url)
    url = url[:MAX_URL]
    title = clean_text(html_to_text(raw.title))[:MAX_TITLE]
    summary = html_to_text(raw.summary)[:MAX_SUMMARY] if raw.summary else ""
    text = clean_text(raw.text)[:MAX_TEXT] if raw.text else ""
    derived = not title
    if derived:
        # Something to show in lists and alerts; marked, so that title: rules never see it.
        title = summary[:120] or url or (guid or "")
    published = raw.published
    if published is not None and (published.tzinfo is None or published > now + FUTURE_SLACK or published < OLDEST):
        published = None
    # The operator's per-source language beats the feed's own claim, which is often a
    # template default ("en-us" on an Arabic feed).
    lang = base_language or raw.language
    language = (
        lang.split("-")[0].split("_")[0].strip().lower()[:MAX_LANGUAGE]
        if lang
        else guess_language(f"{title} {summary}")
    )
    return Item(
        key=key,
        guid=guid,
        url=url or (guid or ""),
        canonical_url=canonical_url(url) if url else "",
        title=title,
        summary=summary,
        text=text,
        language=language or None,
        published=published,
        title_derived=derived,
    )


def oversized_fields(raw: RawItem) -> list[str]:
    """The fields of ``raw`` that :func:`make_item` stores shortened (for a warning)."""
    out = []
    if raw.url and len(raw.url.strip()) > MAX_URL:
        out.append(f"link of {len(raw.url):,} characters")
    if raw.guid and len(raw.guid) > MAX_GUID:
        out.append(f"GUID of {len(raw.guid):,} characters")
    if len(raw.title) > MAX_TITLE * 4:
        out.append(f"title of {len(raw.title):,} characters")
    if len(raw.summary) > MAX_HTML:
        out.append(f"summary of {len(raw.summary):,} characters")
    if len(raw.text) > MAX_TEXT:
        out.append(f"text of {len(raw.text):,} characters")
    return out


# A summary at least this long (in characters of text) is enough to match on; a shorter
# one (or none) makes an item want its article page (the enrichment stage).
SHORT_SUMMARY = 400
# Longer links are never fetched (the de-facto browser limit; Scrapy drops them too).
URL_LIMIT = 2083


def link_too_long(url: str) -> str | None:
    """Why an article link is not fetched because of its length, or None when it may be."""
    if len(url) > URL_LIMIT:
        return f"article link of {len(url):,} characters not fetched (limit {URL_LIMIT:,})"
    return None


def text_wanted(url: str | None, summary: str, text: str) -> tuple[bool, str | None]:
    """Whether an item should get its article page: no text, no or a short summary, a web link.

    ``(False, reason)`` for a web link that will not be fetched (too long); ``(False, None)``
    when the item needs nothing.  ``summary`` is text (markup already removed).
    """
    if text or not url or not url.lower().startswith(("http://", "https://")):
        return False, None
    if summary and len(summary) >= SHORT_SUMMARY:
        return False, None
    too_long = link_too_long(url)
    return too_long is None, too_long


def body_offset(summary: str, text: str) -> int:
    """Where the summary starts in :func:`make_document`'s body once ``text`` joins it.

    A match found on the summary alone has body offsets into the summary; when the
    article text arrives the body becomes the text (which contains the summary) or the
    summary followed by the text, so such offsets move by this much.
    """
    if not text or not summary:
        return 0
    return max(text.find(summary), 0) if summary in text else 0


def make_document(title: str, summary: str, text: str, language: str | None, title_derived: bool = False) -> Document:
    """What rules see: the title, and as body the summary and the full text, once each.

    Stored match spans are offsets into this body, so rendering rebuilds it the same way.
    A derived title is carried for display only (see :class:`Document`).
    """
    if not text:
        body = summary
    elif not summary or summary in text:
        body = text
    else:
        body = f"{summary}\n\n{text}"
    return Document(title=title, body=body, language=language, title_derived=title_derived)


_URDU_LETTERS = frozenset("ٹڈڑںےۓ")
_PERSIAN_LETTERS = frozenset("پچژگک")
_UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")


def guess_language(text: str) -> str | None:
    """The language of ``text`` when its script says it unambiguously, else ``None``.

    Hangul is Korean; Cyrillic is Russian unless Ukrainian-only letters appear; Arabic
    script is Arabic unless Urdu- or Persian-only letters appear.  Latin script is left
    undecided (too many languages share it): such items simply carry no language, and
    rules with a ``languages`` filter skip them.
    """
    counts = {"ko": 0, "cyr": 0, "ar": 0}
    uk = ur = fa = False
    for ch in text[:2000]:
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            counts["ko"] += 1
        elif 0x0400 <= code <= 0x04FF:
            counts["cyr"] += 1
            uk = uk or ch in _UKRAINIAN_LETTERS
        elif 0x0600 <= code <= 0x06FF:
            counts["ar"] += 1
            ur = ur or ch in _URDU_LETTERS
            fa = fa or ch in _PERSIAN_LETTERS
    script, n = max(counts.items(), key=lambda kv: kv[1])
    if n < 3:
        return None
    if script == "cyr":
        return "uk" if uk else "ru"
    if script == "ar":
        return "ur" if ur else "fa" if fa else "ar"
    return script
