"""When a subscriber receives an alert: realtime now, digest at the next local digest time.

Pure functions over ``now`` and the subscriber's zone.  Digest times are local wall-clock
times ("08:00" in Asia/Seoul) and are computed with ``zoneinfo`` so that a daylight-saving
change moves them with the clock, not by an hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_digest_time(now: datetime, digest_at: Sequence[str], timezone: str) -> datetime:
    """The first local ``HH:MM`` in ``digest_at`` strictly after ``now``, as an aware UTC-comparable datetime."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    candidates = []
    for day in range(0, 3):
        date = (local_now + timedelta(days=day)).date()
        for hhmm in digest_at:
            hour, minute = (int(x) for x in hhmm.split(":"))
            # fold=0: in a repeated hour, the first occurrence; a skipped hour maps forward.
            local = datetime.combine(date, time(hour, minute), tzinfo=zone)
            # Round-trip through UTC normalises a wall time that does not exist (spring forward).
            candidate = local.astimezone(ZoneInfo("UTC"))
            if candidate > now:
                candidates.append(candidate)
    return min(candidates)


def first_delivery_time(mode: str, digest_at: Sequence[str], timezone: str, now: datetime) -> datetime:
    if mode == "digest" and digest_at:
        return next_digest_time(now, digest_at, timezone)
    return now
