"""AppriseNotifier: send one rendered message to a list of Apprise URLs, one result per URL.

Responsible for choosing the body format per channel (email gets our own escaped HTML,
so Apprise builds the text part from markup we control; chat gets Markdown) and for
reporting each URL's success or failure with a secret-free error.  One ``Apprise``
object per URL and per message: results are per URL, and Apprise's per-instance
throttle (5.5 s between messages of one plugin instance) never delays a burst; flood
control is wirewatch's job, decided in the dispatcher per subscriber.
This module must not read the database or decide who gets what.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import apprise

from monitor.config import redact
from monitor.core.render import Message

_EMAIL_SCHEMES = ("mailto", "mailtos")


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
        with apprise.LogCapture(level=logging.WARNING) as captured:
            if not notifier.add(url):
                return UrlResult(index, False, scheme, f"{scheme}:// URL rejected by Apprise (check its syntax)")
            if scheme in _EMAIL_SCHEMES:
                body, body_format = message.html, apprise.NotifyFormat.HTML
            else:
                body, body_format = message.markdown, apprise.NotifyFormat.MARKDOWN
            result = notifier.notify(body=body, title=message.subject, body_format=body_format)
            log_text = captured.getvalue() if hasattr(captured, "getvalue") else ""
        if result:
            return UrlResult(index, True, scheme)
        detail = _last_line(log_text) or "delivery failed"
        # Apprise sometimes echoes the URL; never let a secret out through an error.
        detail = redact(detail.replace(url, f"{scheme}://…"))
        return UrlResult(index, False, scheme, f"{scheme}: {detail}")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""
