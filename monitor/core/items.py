"""From a ``RawItem`` to an ``Item``: clean text, canonical URL, identity key, sane dates.

Responsible for everything that makes one entry comparable with another and safe to
store: markup stripped from summaries, control characters and NULs removed, titles and
texts bounded in length, dates in the future or absurdly old dropped (the store then
falls back to the first-seen time).  Pure: ``now`` is passed in.
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
# A feed clock a little ahead of ours is normal; a date far ahead is a bug or a lie.
FUTURE_SLACK = timedelta(hours=1)
OLDEST = datetime(1995, 1, 1).astimezone()

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"</?(p|br|div|li|h[1-6]|tr|blockquote)\b[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def html_to_text(fragment: str) -> str:
    """Plain text from an HTML fragment: scripts dropped, blocks become newlines, entities decoded."""
    text = _SCRIPT.sub(" ", fragment)
    text = _BLOCK.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    return clean_text(text)


def clean_text(text: str) -> str:
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


def make_item(raw: RawItem, now: datetime, base_language: str | None = None) -> Item | None:
    """Normalise ``raw``; ``None`` when it has no identity at all (no GUID and no link)."""
    url = (raw.url or "").strip()
    guid = clean_text(raw.guid)[:MAX_GUID] if raw.guid else None
    if not guid and not url:
        return None
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
    language = lang.split("-")[0].split("_")[0].strip().lower()[:8] if lang else guess_language(f"{title} {summary}")
    return Item(
        key=item_key(guid, url),
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
