"""HTTP header arithmetic every client shares: Retry-After, Cache-Control max-age, status classes.

Responsible for reading the few response headers that decide *when* wirewatch may ask a
server again, in one place for the Scrapy middlewares, the Scrapy spiders and the aiohttp
poller alike, so that a server's "come back in an hour" means the same whichever client
heard it.  Pure: header values and ``now`` come in, numbers come out; no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

# A server may ask us to wait; it may not park a source for longer than a day (a typo
# like "Retry-After: 99999999" would otherwise silence it for years).
MAX_RETRY_AFTER = 86_400.0
# Statuses that say "this URL is wrong or closed to us": an operator must look, retrying
# soon will not help.  Everything else at 4xx/5xx is worth retrying with backoff.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 410, 414, 451})
# The statuses that mean "you are asking too often / I am overloaded": back off the host.
BACKOFF_STATUSES = frozenset({429, 503})

# max-age only: s-maxage is for shared caches, and we are a private client.
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)

ErrorClass = Literal["temporary", "permanent"]


def parse_retry_after(value: str | bytes | None, now: datetime, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), within ``[0, cap]``.

    ``None`` when the header is absent or unreadable.  An HTTP-date without a zone is
    read as UTC (RFC 9110 dates are always GMT).
    """
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return min(float(text), cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - now).total_seconds(), cap))


def parse_max_age(cache_control: str | bytes | None) -> float | None:
    """Cache-Control ``max-age`` in seconds; ``None`` when absent."""
    if not cache_control:
        return None
    text = cache_control.decode("latin-1") if isinstance(cache_control, bytes) else cache_control
    m = _MAX_AGE.search(text)
    return float(m.group(1)) if m else None


def status_class(status: int) -> ErrorClass:
    """Whether an HTTP error status is worth retrying soon (temporary) or needs an operator."""
    return "permanent" if status in PERMANENT_STATUSES else "temporary"
