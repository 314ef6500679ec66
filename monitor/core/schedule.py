"""When to poll a source next, and when to retry an alert: pure arithmetic on ``now``.

Responsible for the intervals and backoffs; it decides nothing about *what* to poll.
The adaptive schedule lives here too: a source that published since the last poll is
asked again sooner, a quiet one later, always within the bounds the config sets, and
never sooner than the source itself asked (Cache-Control max-age, RSS ``<ttl>``).  Its
rhythm (a moving average of the gap between polls that found something new) is what
"silent for far longer than usual" is measured against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_SOURCE_BACKOFF = timedelta(hours=6)
MAX_ALERT_BACKOFF = timedelta(hours=6)
# A permanent error (HTTP 404/410, a TLS certificate, robots.txt) is mostly fixed by a
# person (a moved feed, a renewed certificate), not by waiting: doubling from a short
# interval would take many polls to matter, the cap at once parked a source for six
# hours on one 404.  So the first permanent failures are retried after these steps,
# then at the cap.
PERMANENT_STEPS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=3))
# An article page that could not be read (enrichment) is tried again after these steps,
# then given up (the item keeps what its feed gave): one try and three retries.
TEXT_RETRY_STEPS = (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1))


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
    failure steps through :data:`PERMANENT_STEPS` to the cap.  Never sooner than the
    interval.  A server's Retry-After is a floor.
    """
    cap = max(interval, MAX_SOURCE_BACKOFF)
    if failures <= 0:
        delay = interval
    elif permanent:
        step = PERMANENT_STEPS[failures - 1] if failures <= len(PERMANENT_STEPS) else MAX_SOURCE_BACKOFF
        delay = min(max(interval, step), cap)
    else:
        delay = min(interval * (1 << min(failures, 16)), max(interval, MAX_SOURCE_BACKOFF))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + delay


def failure_notice_due(
    now: datetime,
    *,
    failures: int,
    threshold: int,
    failing_since: datetime | None,
    last_polled: datetime | None,
    after: timedelta,
) -> bool:
    """Whether this failure is the one to tell the operators about.

    ``failures`` counts this one; ``failing_since`` is when the streak began (None: it
    begins now) and ``last_polled`` the previous poll.  The operators are told once per
    streak, at the first failure that reaches either the count or the time: the condition
    is true now and was not at the previous failure, so no state beyond the streak's
    start is needed.
    """
    since = failing_since or now

    def reached(count: int, at: datetime) -> bool:
        return count >= threshold or at - since >= after

    if not reached(failures, now):
        return False
    if failures <= 1 or last_polled is None:
        return True
    return not reached(failures - 1, last_polled)


def alert_retry_at(now: datetime, base: timedelta, attempts: int, alert_id: int) -> datetime:
    """Exponential backoff with deterministic jitter (±20 %, derived from the alert id).

    Jitter spreads the retries of many alerts that failed together (an SMTP outage)
    so they do not all hit the recovered server in the same second.
    """
    delay = min(base * (1 << min(max(attempts - 1, 0), 20)), MAX_ALERT_BACKOFF)
    digest = hashlib.blake2b(str(alert_id).encode(), digest_size=2).digest()
    fraction = int.from_bytes(digest, "big") / 0xFFFF  # 0..1
    return now + delay * (0.8 + 0.4 * fraction)


# How fast the interval follows the news: halve it when a poll finds several new
# entries, shorten it by a quarter for one, lengthen it by a quarter when there is none.
FASTER_MANY = 0.5
FASTER_ONE = 0.75
SLOWER = 1.25
# Weight of the newest gap in the moving average of a source's rhythm.
GAP_WEIGHT = 0.3
# "Silent far longer than its usual rhythm": this many mean gaps, and at least a day.
SILENCE_FACTOR = 10
MIN_SILENCE = timedelta(days=1)
# Without per-source bounds, the interval moves at most this factor away from the configured one.
SPREAD = 4


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the config allows: the configured interval and the adaptive range around it."""

    interval: timedelta
    lowest: timedelta
    highest: timedelta
    adaptive: bool = True


@dataclass(frozen=True, slots=True)
class Rhythm:
    interval: timedelta  # the interval until the next poll
    mean_gap: timedelta | None  # moving average of the gap between polls with new entries


def adapt(
    now: datetime,
    bounds: Bounds,
    *,
    current: timedelta | None,
    new_items: int,
    last_new_item: datetime | None,
    mean_gap: timedelta | None,
    floor: timedelta | None = None,
) -> Rhythm:
    """The next interval after a successful poll that found ``new_items`` new entries.

    ``floor`` (what the source asked for) wins over the configured bounds: polling more
    often than a feed's ``<ttl>`` or max-age only fetches the same bytes.
    """
    gap = mean_gap
    if new_items > 0 and last_new_item is not None:
        seen = max(now - last_new_item, timedelta(0))
        gap = seen if mean_gap is None else mean_gap * (1 - GAP_WEIGHT) + seen * GAP_WEIGHT
    if not bounds.adaptive:
        interval = bounds.interval
    else:
        interval = current if current is not None else bounds.interval
        if new_items > 1:
            interval = interval * FASTER_MANY
        elif new_items == 1:
            interval = interval * FASTER_ONE
        else:
            interval = interval * SLOWER
        interval = min(max(interval, bounds.lowest), bounds.highest)
    if floor is not None:
        interval = max(interval, floor)
    return Rhythm(interval=interval, mean_gap=gap)


def bounds_for(
    interval: timedelta,
    lowest: timedelta | None,
    highest: timedelta | None,
    *,
    floor: timedelta,
    ceiling: timedelta,
    adaptive: bool = True,
) -> Bounds:
    """The adaptive range around a configured interval.

    A source's own ``min_interval``/``max_interval`` are taken as given.  Otherwise the
    interval may move by a factor of :data:`SPREAD` either way, but never below the
    global ``floor`` nor above the global ``ceiling`` (``[fetch] min_interval`` and
    ``max_interval``), and the range always contains the configured interval.
    """
    low = lowest if lowest is not None else max(floor, interval / SPREAD)
    high = highest if highest is not None else min(ceiling, interval * SPREAD)
    return Bounds(interval=interval, lowest=min(low, interval), highest=max(high, interval), adaptive=adaptive)


def is_silent(now: datetime, last_new_item: datetime | None, mean_gap: timedelta | None) -> bool:
    """True when a source that has a rhythm has published nothing for far longer than it."""
    if last_new_item is None or mean_gap is None:
        return False
    return now - last_new_item > max(mean_gap * SILENCE_FACTOR, MIN_SILENCE)


def text_retry_at(now: datetime, attempts: int, retry_after: timedelta | None = None) -> datetime | None:
    """When to try an article page again after its ``attempts``-th failure; ``None``: give up.

    The server's Retry-After is a floor.
    """
    if attempts > len(TEXT_RETRY_STEPS):
        return None
    delay = TEXT_RETRY_STEPS[max(attempts, 1) - 1]
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + delay
