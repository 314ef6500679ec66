"""When and how a subscriber receives alerts: the delivery policy as pure functions.

Responsible for timing and grouping: realtime now, digest at the next local digest time,
quiet hours held until they end, ``max_per_hour`` flood control, and ``critical``
severity breaking through quiet hours and rate limits.  Every function takes ``now`` and
plain data and returns plain data; the dispatcher applies the result.  Local times
("08:00", "22:00-07:00") are wall-clock times in the subscriber's zone, computed with
``zoneinfo`` so a daylight-saving change moves them with the clock, not by an hour.
This module must not read a clock, the database or the network.

The flood-control contract (see :func:`plan_delivery`): per rolling hour a realtime
subscriber gets at most ``max_per_hour`` single-alert messages and one *summary*; the
first alert beyond the cap folds, with every other alert due at that moment, into a
summary sent at once (a burst is news in itself, and it should not wait an hour); later
overflow in the same hour is held until the window frees a slot.  Critical alerts are
always sent, one message each, and count towards the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

RATE_WINDOW = timedelta(hours=1)

# Message kinds: one alert; several alerts folded by flood control; a digest; what quiet
# hours held back.  Stored with each message, so a retry resends the same message.
SINGLE = "alert"
SUMMARY = "summary"
DIGEST = "digest"
QUIET = "quiet"
KINDS = (SINGLE, SUMMARY, DIGEST, QUIET)

# Why a row was put back without being sent (stored as ``alerts.hold_reason``).
HELD_QUIET = "quiet"
HELD_RATE = "rate"


def _local_instant(day: datetime, hhmm: str, zone: ZoneInfo) -> datetime:
    """``hhmm`` on the local date of ``day``, as a UTC instant.

    fold=0: in a repeated hour (autumn), the first occurrence; a wall time that does not
    exist (spring forward) is normalised forward by the round trip through UTC.
    """
    hour, minute = (int(x) for x in hhmm.split(":"))
    local = datetime.combine(day.date(), time(hour, minute), tzinfo=zone)
    return local.astimezone(UTC)


def next_digest_time(now: datetime, digest_at: Sequence[str], timezone: str) -> datetime:
    """The first local ``HH:MM`` in ``digest_at`` strictly after ``now``, as an aware UTC datetime."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    candidates = []
    for day in range(3):
        date = local_now + timedelta(days=day)
        for hhmm in digest_at:
            candidate = _local_instant(date, hhmm, zone)
            if candidate > now:
                candidates.append(candidate)
    return min(candidates)


def first_delivery_time(
    mode: str, digest_at: Sequence[str], timezone: str, now: datetime, severity: str = "normal"
) -> datetime:
    """When a new alert becomes due: now, or at the next digest time for a digest subscriber.

    A critical alert is due now even for a digest subscriber: severity is the rule
    author's statement that this one must not wait.
    """
    if mode == "digest" and digest_at and severity != "critical":
        return next_digest_time(now, digest_at, timezone)
    return now


def parse_quiet_hours(spec: str) -> tuple[str, str] | None:
    """``"22:00-07:00"`` → ``("22:00", "07:00")``; empty, or equal ends, means no quiet hours."""
    if not spec.strip():
        return None
    start, end = (part.strip() for part in spec.split("-", 1))
    return None if start == end else (start, end)


def quiet_until(now: datetime, quiet_hours: str, timezone: str) -> datetime | None:
    """The UTC instant the current quiet period ends, or None when ``now`` is not in one.

    The window is ``[start, end)`` in local wall-clock time and may cross midnight.  The
    end is computed on the right local date, so across a daylight-saving change a
    22:00-07:00 window still ends at 07:00 local (a night one hour longer or shorter).
    """
    window = parse_quiet_hours(quiet_hours)
    if window is None:
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    # Every quiet period that could contain ``now`` starts yesterday or today.
    for offset in (-1, 0):
        day = local + timedelta(days=offset)
        start = _local_instant(day, window[0], zone)
        end_day = day if window[1] > window[0] else day + timedelta(days=1)
        end = _local_instant(end_day, window[1], zone)
        if start <= now < end:
            return end
    return None


@dataclass(frozen=True, slots=True)
class DueAlert:
    """What the policy needs to know of one claimed alert."""

    id: int
    severity: str = "normal"
    hold_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriberPolicy:
    mode: str = "realtime"
    timezone: str = "UTC"
    max_per_hour: int = 30
    quiet_hours: str = ""


@dataclass(frozen=True, slots=True)
class RecentMessage:
    """A message planned for the subscriber within the rate window."""

    kind: str
    planned_at: datetime


@dataclass(frozen=True, slots=True)
class Send:
    """Send one message containing ``ids`` (one alert, or several as ``kind``)."""

    kind: str
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Hold:
    """Put ``ids`` back, unsent, until ``until``; not a delivery attempt."""

    ids: tuple[int, ...]
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    sends: tuple[Send, ...] = ()
    holds: tuple[Hold, ...] = ()


def plan_delivery(
    policy: SubscriberPolicy,
    due: Sequence[DueAlert],
    recent: Sequence[RecentMessage],
    now: datetime,
) -> DeliveryPlan:
    """Decide, for one subscriber, what of ``due`` goes out now, in which messages, and what waits.

    ``recent`` is every message planned for this subscriber in the last hour (by this or
    another dispatcher).  Order of the rules:

    1. critical alerts: one message each, now (through quiet hours and the rate limit);
    2. quiet hours: everything else is held until they end (reason ``quiet``);
    3. alerts released from quiet hours go out together as one message (``quiet``);
       a single one is an ordinary alert;
    4. digest subscribers: the rest is one digest (already one message: no rate limit);
    5. realtime: single messages while under ``max_per_hour``; the overflow is one
       ``summary`` if none was sent in the last hour, else held until a slot frees.
    """
    ordered = sorted(due, key=lambda a: a.id)
    sends: list[Send] = [Send(SINGLE, (a.id,)) for a in ordered if a.severity == "critical"]
    rest = [a for a in ordered if a.severity != "critical"]
    if not rest:
        return DeliveryPlan(tuple(sends))

    end = quiet_until(now, policy.quiet_hours, policy.timezone)
    if end is not None:
        return DeliveryPlan(tuple(sends), (Hold(tuple(a.id for a in rest), end, HELD_QUIET),))

    released = [a for a in rest if a.hold_reason == HELD_QUIET]
    if len(released) > 1:
        sends.append(Send(QUIET, tuple(a.id for a in released)))
        rest = [a for a in rest if a.hold_reason != HELD_QUIET]
    if not rest:
        return DeliveryPlan(tuple(sends))

    if policy.mode == "digest":
        sends.append(Send(DIGEST if len(rest) > 1 else SINGLE, tuple(a.id for a in rest)))
        return DeliveryPlan(tuple(sends))

    window = [m for m in recent if now - m.planned_at < RATE_WINDOW]
    singles = sorted(m.planned_at for m in window if m.kind != SUMMARY)
    summaries = sorted(m.planned_at for m in window if m.kind == SUMMARY)
    # Sends planned above in this same call are messages too.
    budget = max(0, policy.max_per_hour - len(singles) - len(sends))
    sends += [Send(SINGLE, (a.id,)) for a in rest[:budget]]
    overflow = rest[budget:]
    if not overflow:
        return DeliveryPlan(tuple(sends))
    if not summaries:
        sends.append(Send(SUMMARY, tuple(a.id for a in overflow)))
        return DeliveryPlan(tuple(sends))
    # Capped and a summary already went out this hour: wait for the first free slot,
    # a single one (the oldest single leaving the window) or the summary's.
    frees = [summaries[-1] + RATE_WINDOW]
    excess = len(singles) + len(sends) - policy.max_per_hour
    if singles and excess < len(singles):
        frees.append(singles[max(excess, 0)] + RATE_WINDOW)
    until = max(min(frees), now + timedelta(seconds=1))
    return DeliveryPlan(tuple(sends), (Hold(tuple(a.id for a in overflow), until, HELD_RATE),))
