"""Parse the public web preview of a Telegram channel (``https://t.me/s/<name>``) into ``RawItem``\\s.

Responsible for reading a preview page that was already downloaded: each message block
(``div.tgme_widget_message`` with ``data-post="<channel>/<id>"``) becomes one
:class:`TelegramMessage` (its link ``https://t.me/<channel>/<id>``, the ``<time datetime>``
of its date link, its text with ``<br>`` as newlines and markup stripped, the channel it
was forwarded from, whether it carries an "edited" mark or media), and the page says where
the older page is (``?before=<smallest id>``).  :func:`telegram_items` turns messages into
``RawItem``\\s: a service message ("Channel created", "pinned …") and a post with no text
(a photo, video, sticker or poll without a caption) are skipped, since there is nothing
to match; a media post with a caption is an item whose text is the caption.
:func:`older_page` decides whether to page back.  Pure: no I/O and no clock (the cut-off
is passed in); it must not fetch the older pages itself (the poller does, under the
fetch policy).

The markup is Telegram's, unversioned and undocumented; the selectors follow the pages
described in tests/data/telegram/PROVENANCE.md.  A page with no message history at all
(a private or missing channel redirects to a page without one) is a
:class:`~monitor.errors.ParseError`, not an empty channel.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lxml import etree  # type: ignore[import-untyped]
from lxml import html as lxml_html  # type: ignore[import-untyped]

from monitor.core.models import RawItem
from monitor.errors import ParseError

# A first poll pages back at most this many pages (the preview shows about 20 messages a page).
MAX_PAGES = 10
# One page holds about 20 messages; anything far beyond it is not a preview page.
MAX_MESSAGES = 500


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_MESSAGES = etree.XPath(f"//div[{_has_class('tgme_widget_message')} and @data-post]")
_TEXT = etree.XPath(
    f".//div[{_has_class('js-message_text')}][not(ancestor::*[{_has_class('tgme_widget_message_reply')}])]"
)
_DATE = etree.XPath(f".//a[{_has_class('tgme_widget_message_date')}]")
_META = etree.XPath(f".//*[{_has_class('tgme_widget_message_meta')}]")
_FORWARDED = etree.XPath(f".//*[{_has_class('tgme_widget_message_forwarded_from_name')}]")
_MEDIA = etree.XPath(
    " | ".join(
        f".//*[{_has_class(c)}]"
        for c in (
            "tgme_widget_message_photo_wrap",
            "tgme_widget_message_video_player",
            "tgme_widget_message_roundvideo_player",
            "tgme_widget_message_document",
            "tgme_widget_message_voice",
            "tgme_widget_message_sticker_wrap",
            "tgme_widget_message_poll",
            "tgme_widget_message_location_wrap",
        )
    )
)
_HISTORY = etree.XPath(f"//*[{_has_class('tgme_channel_history')}]")
_PREV = etree.XPath("//link[@rel='prev']/@href")
_MORE = etree.XPath(f"//a[{_has_class('js-messages_more')}]/@data-before")


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """One message block of a preview page."""

    id: int
    link: str  # https://t.me/<channel>/<id>
    published: datetime | None
    text: str  # plain text, "\n" where the message had <br>
    forwarded_from: str | None = None  # the name shown after "Forwarded from"
    forwarded_link: str | None = None  # its t.me link, when the preview gives one
    edited: bool = False
    media: bool = False
    service: bool = False  # "Channel created", "pinned …": not a post


@dataclass(frozen=True, slots=True)
class TelegramPage:
    """A preview page: its messages, oldest first as shown, and the older page's ``before`` id."""

    messages: tuple[TelegramMessage, ...]
    before: int | None  # the page's own ``?before=`` link to the older page; None: it has none

    @property
    def smallest_id(self) -> int | None:
        return min((m.id for m in self.messages), default=None)

    @property
    def oldest(self) -> datetime | None:
        return min((m.published for m in self.messages if m.published is not None), default=None)


def parse_telegram(body: bytes, url: str) -> TelegramPage:
    """The messages of the preview page ``body`` (fetched from ``url``); raise ``ParseError`` if it is none."""
    if not body.strip():
        raise ParseError(url, "empty response, not a Telegram channel preview", temporary=True)
    parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, no_network=True)
    try:
        root = lxml_html.document_fromstring(body, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(url, f"unreadable Telegram preview page: {exc}", temporary=True) from exc
    blocks = _MESSAGES(root)
    if not blocks and not _HISTORY(root):
        raise ParseError(
            url,
            "not a Telegram channel preview (no message history on the page): "
            "is the channel public, and its name right?",
            temporary=False,
        )
    messages = []
    for block in blocks[:MAX_MESSAGES]:
        message = _message(block)
        if message is not None:
            messages.append(message)
    return TelegramPage(tuple(messages), _before(root, messages))


def _message(block: etree._Element) -> TelegramMessage | None:
    post = (block.get("data-post") or "").strip().strip("/")
    channel, _, number = post.rpartition("/")
    if not channel or not number.isdigit():
        return None
    classes = (block.get("class") or "").split()
    texts = _TEXT(block)
    text = _plain(texts[0]) if texts else ""
    forwarded = _FORWARDED(block)
    meta = _META(block)
    return TelegramMessage(
        id=int(number),
        link=f"https://t.me/{channel}/{number}",
        published=_published(block),
        text=text,
        forwarded_from=(" ".join(forwarded[0].text_content().split()) or None) if forwarded else None,
        forwarded_link=(forwarded[0].get("href") or None) if forwarded else None,
        edited=bool(meta) and "edited" in meta[0].text_content().lower(),
        media=bool(_MEDIA(block)),
        service="service_message" in classes,
    )


def _plain(element: etree._Element) -> str:
    """The text of a message element: ``<br>`` as a newline, tags dropped, lines trimmed."""
    for br in element.iter("br"):
        br.tail = "\n" + (br.tail or "")
    lines = (" ".join(line.split()) for line in element.text_content().split("\n"))
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _published(block: etree._Element) -> datetime | None:
    for link in _DATE(block):
        for time in link.iter("time"):
            value = time.get("datetime")
            if not value:
                continue
            try:
                when = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            return when if when.tzinfo is not None else None
    return None


def _before(root: etree._Element, messages: list[TelegramMessage]) -> int | None:
    """The older page's ``before`` id: the page's own link to it, else none.

    The preview links the older page (``<link rel="prev" href="/s/name?before=N">`` and
    the "load more" anchor's ``data-before``) only while older messages exist.
    """
    for href in _PREV(root):
        for key, value in parse_qsl(urlsplit(str(href)).query):
            if key == "before" and value.isdigit():
                return int(value)
    for value in _MORE(root):
        if str(value).isdigit():
            return int(value)
    return None


def telegram_items(page: TelegramPage) -> tuple[RawItem, ...]:
    """The page's posts as ``RawItem``\\s, newest first; service and text-less posts skipped.

    The GUID is the message link, so an edited message (same id, new text) is the same
    item.  There is no title (the ingest derives one, which ``title:`` rules do not see);
    the summary is the text, escaped so that normalisation (which strips markup from
    summaries) keeps a literal ``<`` the author wrote.  The channel a message was
    forwarded from is kept as the item's text, one line, ``Forwarded from: NAME (LINK)``.
    """
    out = []
    for m in sorted(page.messages, key=lambda m: m.id, reverse=True):
        if m.service or not m.text:
            continue
        forwarded = ""
        if m.forwarded_from:
            forwarded = f"Forwarded from: {m.forwarded_from}" + (f" ({m.forwarded_link})" if m.forwarded_link else "")
        out.append(
            RawItem(
                guid=m.link,
                url=m.link,
                title="",
                summary=html.escape(m.text, quote=False).replace("\n", "<br>"),
                text=forwarded,
                published=m.published,
            )
        )
    return tuple(out)


def older_page(page: TelegramPage, since: datetime | None) -> int | None:
    """The ``before`` id of the page to fetch next, or None to stop paging back.

    Pages back (``?before=<smallest id on the page>``) while every dated message on
    ``page`` is at or after ``since`` (so older ones may still be wanted) and the page
    links an older page.  The poller also stops when the id stops going down.
    """
    smallest = page.smallest_id
    if since is None or smallest is None or smallest <= 1:
        return None
    oldest = page.oldest
    if oldest is not None and oldest < since:
        return None
    return smallest if page.before is not None else None


def page_url(url: str, before: int) -> str:
    """``url`` (the preview address) asking for the messages older than ``before``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("before", "after")]
    query.append(("before", str(before)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
