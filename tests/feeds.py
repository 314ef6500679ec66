"""Build small RSS documents for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


def rss(items: list[tuple[str, str, str]], *, title: str = "Test wire", published: datetime | None = None) -> str:
    """``items`` are (guid, title, description); every item is dated ``published`` (now by default)."""
    when = format_datetime(published or datetime.now(UTC))
    entries = "".join(
        f"<item><guid>{escape(g)}</guid><title>{escape(t)}</title>"
        f"<link>https://news.example.org/{escape(g)}?utm_source=rss</link>"
        f"<description>{escape(d)}</description><pubDate>{when}</pubDate></item>"
        for g, t, d in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example.org/</link><description>t</description>"
        f"{entries}</channel></rss>"
    )
