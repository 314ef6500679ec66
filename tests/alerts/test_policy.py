"""The delivery policy as pure functions: digest and quiet-hour times across daylight
saving, flood control, severity.  No database, no clock: ``now`` is passed in."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.delivery import (
    HELD_QUIET,
    HELD_RATE,
    QUIET,
    SINGLE,
    SUMMARY,
    DueAlert,
    Hold,
    RecentMessage,
    Send,
    SubscriberPolicy,
    first_delivery_time,
    next_digest_time,
    plan_delivery,
    quiet_until,
)
from tests.alerts.conftest import utc


def test_digest_times_follow_the_local_clock_across_dst_end() -> None:
    # New York leaves daylight saving at 02:00 on 2026-11-01: 08:00 is 12:00 UTC the day
    # before and 13:00 UTC that day.  Seoul has no DST: 08:00 KST is always 23:00 UTC.
    before = utc(2026, 10, 31, 12, 30)
    assert next_digest_time(before, ["08:00"], "America/New_York") == utc(2026, 11, 1, 13, 0)
    assert next_digest_time(before, ["08:00"], "Asia/Seoul") == utc(2026, 10, 31, 23, 0)
    assert next_digest_time(utc(2026, 10, 31, 11, 59), ["08:00"], "America/New_York") == utc(2026, 10, 31, 12, 0)


def test_digest_time_inside_a_skipped_hour_moves_forward() -> None:
    # 2026-03-08 02:30 does not exist in New York; it is read as 03:30 EDT.
    assert next_digest_time(utc(2026, 3, 8, 0, 0), ["02:30"], "America/New_York") == utc(2026, 3, 8, 7, 30)


def test_several_digest_times_a_day() -> None:
    now = utc(2026, 6, 1, 0, 30)  # 09:30 KST
    assert next_digest_time(now, ["08:00", "18:00"], "Asia/Seoul") == utc(2026, 6, 1, 9, 0)


def test_critical_is_due_now_even_for_digest_subscribers() -> None:
    now = utc(2026, 6, 1, 0, 30)
    assert first_delivery_time("digest", ["08:00"], "Asia/Seoul", now) > now
    assert first_delivery_time("digest", ["08:00"], "Asia/Seoul", now, severity="critical") == now
    assert first_delivery_time("realtime", ["08:00"], "Asia/Seoul", now) == now


def test_quiet_hours_cross_midnight_in_the_subscribers_zone() -> None:
    zone = "Europe/Berlin"  # CEST in June: UTC+2
    assert quiet_until(utc(2026, 6, 1, 19, 59), "22:00-07:00", zone) is None  # 21:59 local
    assert quiet_until(utc(2026, 6, 1, 20, 0), "22:00-07:00", zone) == utc(2026, 6, 2, 5, 0)
    assert quiet_until(utc(2026, 6, 2, 4, 59), "22:00-07:00", zone) == utc(2026, 6, 2, 5, 0)
    assert quiet_until(utc(2026, 6, 2, 5, 0), "22:00-07:00", zone) is None  # 07:00: over
    assert quiet_until(utc(2026, 6, 1, 12, 0), "13:00-15:00", zone) == utc(2026, 6, 1, 13, 0)
    assert quiet_until(utc(2026, 6, 1, 12, 0), "", zone) is None
    assert quiet_until(utc(2026, 6, 1, 12, 0), "07:00-07:00", zone) is None


def test_quiet_night_across_dst_end_is_an_hour_longer() -> None:
    # Berlin leaves CEST on 2026-10-25 at 03:00: 22:00 CEST is 20:00 UTC, 07:00 CET 06:00 UTC.
    assert quiet_until(utc(2026, 10, 24, 20, 0), "22:00-07:00", "Europe/Berlin") == utc(2026, 10, 25, 6, 0)
    assert quiet_until(utc(2026, 10, 25, 5, 59), "22:00-07:00", "Europe/Berlin") == utc(2026, 10, 25, 6, 0)


@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 400),
    zone=st.sampled_from(["Asia/Seoul", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]),
)
def test_quiet_until_is_always_in_the_future_and_at_the_local_end(minutes: int, zone: str) -> None:
    from zoneinfo import ZoneInfo

    now = utc(2026, 1, 1) + timedelta(minutes=minutes)
    end = quiet_until(now, "22:00-07:00", zone)
    local = now.astimezone(ZoneInfo(zone))
    in_window = local.hour >= 22 or local.hour < 7
    assert (end is not None) == in_window
    if end is not None:
        assert now < end <= now + timedelta(hours=10)
        assert end.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "07:00"


REALTIME = SubscriberPolicy(mode="realtime", timezone="Asia/Seoul", max_per_hour=5)
NOON = utc(2026, 6, 1, 3, 0)  # 12:00 KST


def test_burst_of_100_gives_5_singles_and_one_summary_of_95() -> None:
    plan = plan_delivery(REALTIME, [DueAlert(i) for i in range(1, 101)], [], NOON)
    assert plan.sends[:5] == tuple(Send(SINGLE, (i,)) for i in range(1, 6))
    assert plan.sends[5] == Send(SUMMARY, tuple(range(6, 101)))
    assert len(plan.sends) == 6 and plan.holds == ()


def test_overflow_after_a_summary_waits_for_the_window_to_free() -> None:
    recent = [RecentMessage(SINGLE, NOON - timedelta(minutes=50 - i)) for i in range(5)]
    recent.append(RecentMessage(SUMMARY, NOON - timedelta(minutes=45)))
    plan = plan_delivery(REALTIME, [DueAlert(7), DueAlert(8)], recent, NOON)
    # The oldest single (50 minutes ago) leaves the window in 10 minutes.
    assert plan == type(plan)((), (Hold((7, 8), NOON + timedelta(minutes=10), HELD_RATE),))
    # Ten minutes later one slot is free: one single, the other waits again (summary still recent).
    later = NOON + timedelta(minutes=10)
    plan = plan_delivery(REALTIME, [DueAlert(7), DueAlert(8)], recent, later)
    assert plan.sends == (Send(SINGLE, (7,)),)
    assert plan.holds[0].ids == (8,) and plan.holds[0].until == NOON + timedelta(minutes=11)


def test_overflow_with_no_summary_this_hour_is_summarised_at_once() -> None:
    recent = [RecentMessage(SINGLE, NOON - timedelta(minutes=5))] * 5
    plan = plan_delivery(REALTIME, [DueAlert(9), DueAlert(10)], recent, NOON)
    assert plan.sends == (Send(SUMMARY, (9, 10)),)


def test_messages_older_than_an_hour_do_not_count() -> None:
    recent = [RecentMessage(SINGLE, NOON - timedelta(minutes=61))] * 5 + [
        RecentMessage(SUMMARY, NOON - timedelta(hours=2))
    ]
    plan = plan_delivery(REALTIME, [DueAlert(1), DueAlert(2)], recent, NOON)
    assert plan.sends == (Send(SINGLE, (1,)), Send(SINGLE, (2,)))


def test_critical_breaks_through_rate_limit_and_quiet_hours() -> None:
    quiet = SubscriberPolicy(mode="realtime", timezone="Asia/Seoul", max_per_hour=1, quiet_hours="11:00-13:00")
    recent = [RecentMessage(SINGLE, NOON - timedelta(minutes=1)), RecentMessage(SUMMARY, NOON - timedelta(minutes=1))]
    due = [DueAlert(1, "critical"), DueAlert(2), DueAlert(3, "critical")]
    plan = plan_delivery(quiet, due, recent, NOON)
    assert plan.sends == (Send(SINGLE, (1,)), Send(SINGLE, (3,)))
    assert plan.holds == (Hold((2,), utc(2026, 6, 1, 4, 0), HELD_QUIET),)


def test_alerts_released_from_quiet_hours_go_out_as_one_message() -> None:
    quiet = SubscriberPolicy(mode="realtime", timezone="Asia/Seoul", max_per_hour=1, quiet_hours="22:00-07:00")
    due = [DueAlert(i, hold_reason=HELD_QUIET) for i in (4, 5, 6)] + [DueAlert(7)]
    plan = plan_delivery(quiet, due, [], NOON)
    assert plan.sends == (Send(QUIET, (4, 5, 6)), Send(SUMMARY, (7,)))


def test_digest_subscribers_get_one_message_and_no_rate_limit() -> None:
    digest = SubscriberPolicy(mode="digest", timezone="Asia/Seoul", max_per_hour=1)
    plan = plan_delivery(digest, [DueAlert(i) for i in range(1, 40)], [], NOON)
    assert [s.kind for s in plan.sends] == ["digest"] and len(plan.sends[0].ids) == 39
