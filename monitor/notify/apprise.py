"""AppriseNotifier: send one rendered message to a list of Apprise URLs, one result per URL.

Responsible for choosing the body format per channel and for reporting each URL's
success or failure with a secret-free error.  Email gets our own escaped HTML with
``body_format=HTML``: Apprise then sends multipart/alternative with a text/plain part it
derives from that HTML (entities decoded, tags dropped; our HTML puts one field per
block and every link's address in visible text so that part reads well).  A chat
service that supports Markdown gets our Markdown; generic webhooks (json, form, xml)
and everything else get our plain text, unless the URL asks for a ``format=``.  Where
Markdown is sent, the title is Markdown-escaped too.  One ``Apprise``
object per URL and per message: results are per URL, and Apprise's per-instance
throttle (5.5 s between messages of one plugin instance) never delays a burst; flood
control is wirewatch's job, decided in the dispatcher per subscriber.
This module must not read the database or decide who gets what.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apprise

from monitor.config import redact
from monitor.core.render import Message, markdown_escape

_EMAIL_SCHEMES = ("mailto", "mailtos")
# Webhooks hand the body to a program, not a chat window: plain text unless asked.
_GENERIC_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")
_FORMAT_PARAM = re.compile(r"[?&]format=", re.IGNORECASE)
# Chats that render Markdown in what Apprise declares as plain text (Mattermost renders
# its incoming-webhook text): they get our escaped Markdown, or a feed's "[x](evil)"
# would become a live link.
_MARKDOWN_CHATS = ("mmost", "mmosts")


@dataclass(frozen=True, slots=True)
class UrlResult:
    index: int  # position in the subscriber's ``urls``
    ok: bool
    service: str  # the URL scheme, safe to print
    error: str | None = None


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "?"


class AppriseNotifier:
    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout

    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]:
        """Send ``message`` to each ``(index, url)``; never raises for a delivery failure."""
        return [self._send_one(index, url, message) for index, url in targets]

    def _send_one(self, index: int, url: str, message: Message) -> UrlResult:
        scheme = scheme_of(url)
        notifier = apprise.Apprise()
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
            if not notifier.add(url):
                return UrlResult(index, False, scheme, f"{scheme}:// URL rejected by Apprise (check its syntax)")
            body, body_format = _body_for(scheme, url, notifier[0], message)
            # A channel that renders Markdown renders the title too: escape it there.
            title = markdown_escape(message.subject) if body == message.markdown else message.subject
            result = notifier.notify(body=body, title=title, body_format=body_format)
            log_text = captured.getvalue() if hasattr(captured, "getvalue") else ""
        if result:
            return UrlResult(index, True, scheme)
        detail = _last_line(log_text) or "delivery failed"
        # Apprise sometimes echoes the URL; never let a secret out through an error.
        detail = redact(detail.replace(url, f"{scheme}://…"))
        return UrlResult(index, False, scheme, f"{scheme}: {detail}")


def _body_for(scheme: str, url: str, plugin: Any, message: Message) -> tuple[str, Any]:
    """The body and its Apprise format for one channel (see the module docstring)."""
    fmt = apprise.NotifyFormat
    if scheme in _EMAIL_SCHEMES and not _FORMAT_PARAM.search(url):
        return message.html, fmt.HTML
    supported = plugin.notify_format if isinstance(plugin.notify_format, tuple) else (plugin.notify_format,)
    if _FORMAT_PARAM.search(url):
        wanted = plugin.resolve_format(None)
    elif scheme in _GENERIC_SCHEMES:
        wanted = fmt.TEXT
    elif scheme in _MARKDOWN_CHATS:
        wanted = fmt.MARKDOWN
    else:
        wanted = fmt.MARKDOWN if fmt.MARKDOWN in supported else fmt.TEXT
    if wanted == fmt.HTML:
        return message.html, fmt.HTML
    if wanted == fmt.MARKDOWN:
        return message.markdown, fmt.MARKDOWN
    return message.text, fmt.TEXT


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""
