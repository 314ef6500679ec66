"""When to poll a source next, and when to retry an alert: pure arithmetic on ``now``.

Responsible for the intervals and backoffs; it decides nothing about *what* to poll.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

MAX_SOURCE_BACKOFF = timedelta(hours=6)
MAX_ALERT_BACKOFF = timedelta(hours=6)


def next_poll(
    now: datetime,
    interval: timedelta,
    *,
    failures: int = 0,
    permanent: bool = False,
    retry_after: timedelta | None = None,
) -> datetime:
    """The next due time of a source after a poll.

    Success: one interval.  Failure: the interval doubled per consecutive failure, capped
    at six hours (a broken source is never dropped, only asked less often); a permanent
    failure goes straight to the cap.  A server's Retry-After is a floor.
    """
    if failures <= 0:
        delay = interval
    elif permanent:
        delay = max(interval, MAX_SOURCE_BACKOFF)
    else:
        delay = min(interval * (2 ** min(failures, 16)), max(interval, MAX_SOURCE_BACKOFF))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + delay


def alert_retry_at(now: datetime, base: timedelta, attempts: int, alert_id: int) -> datetime:
    """Exponential backoff with deterministic jitter (±20 %, derived from the alert id).

    Jitter spreads the retries of many alerts that failed together (an SMTP outage)
    so they do not all hit the recovered server in the same second.
    """
    delay = min(base * (2 ** max(attempts - 1, 0)), MAX_ALERT_BACKOFF)
    digest = hashlib.blake2b(str(alert_id).encode(), digest_size=2).digest()
    fraction = int.from_bytes(digest, "big") / 0xFFFF  # 0..1
    return now + delay * (0.8 + 0.4 * fraction)
