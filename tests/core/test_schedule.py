"""Backoff that fits the error, and when operators hear of a failing source (core/schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.schedule import (
    MAX_SOURCE_BACKOFF,
    PERMANENT_STEPS,
    TEXT_RETRY_STEPS,
    failure_notice_due,
    next_poll,
    text_retry_at,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)


def delays(permanent: bool, interval: timedelta = TEN, n: int = 6) -> list[timedelta]:
    return [next_poll(NOW, interval, failures=f, permanent=permanent) - NOW for f in range(1, n + 1)]


def test_one_permanent_error_is_retried_sooner_in_steps_before_the_cap() -> None:
    # A single 404 used to park a source for six hours at once.
    assert delays(permanent=True) == [
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=3),
        MAX_SOURCE_BACKOFF,
        MAX_SOURCE_BACKOFF,
        MAX_SOURCE_BACKOFF,
    ]
    assert PERMANENT_STEPS[0] < MAX_SOURCE_BACKOFF


def test_temporary_errors_double_to_the_cap() -> None:
    assert delays(permanent=False, n=7) == [
        timedelta(minutes=20),
        timedelta(minutes=40),
        timedelta(minutes=80),
        timedelta(minutes=160),
        timedelta(minutes=320),
        MAX_SOURCE_BACKOFF,
        MAX_SOURCE_BACKOFF,
    ]


def test_never_sooner_than_the_interval_nor_retry_after() -> None:
    day = timedelta(days=1)
    assert next_poll(NOW, day, failures=1, permanent=True) - NOW == day
    assert next_poll(NOW, TEN, failures=1, permanent=True, retry_after=timedelta(hours=2)) - NOW == timedelta(hours=2)


@given(st.integers(1, 40), st.booleans(), st.integers(1, 24 * 60))
def test_backoff_is_monotonic_and_capped(failures: int, permanent: bool, minutes: int) -> None:
    interval = timedelta(minutes=minutes)
    now = next_poll(NOW, interval, failures=failures, permanent=permanent) - NOW
    later = next_poll(NOW, interval, failures=failures + 1, permanent=permanent) - NOW
    assert interval <= now <= later <= max(interval, MAX_SOURCE_BACKOFF)


def notices(times: list[timedelta], threshold: int, after: timedelta) -> list[int]:
    """Which failures (1-based) of a streak at ``times`` (from its start) tell the operators."""
    out = []
    start = NOW
    previous = None
    for n, t in enumerate(times, start=1):
        now = start + t
        if failure_notice_due(
            now,
            failures=n,
            threshold=threshold,
            failing_since=None if n == 1 else start + times[0],
            last_polled=previous,
            after=after,
        ):
            out.append(n)
        previous = now
    return out


def test_operators_are_told_once_after_a_time_or_a_count_whichever_first() -> None:
    steps = [timedelta(0), timedelta(minutes=15), timedelta(hours=1, minutes=15), timedelta(hours=4, minutes=15)]
    steps += [timedelta(hours=10, minutes=15), timedelta(hours=16, minutes=15)]
    # The time comes first (3 h, reached at the 4th failure), the count (5) does not tell again.
    assert notices(steps, threshold=5, after=timedelta(hours=3)) == [4]
    # The count comes first.
    assert notices(steps, threshold=2, after=timedelta(hours=3)) == [2]
    # A threshold of 1: the first failure.
    assert notices(steps, threshold=1, after=timedelta(hours=3)) == [1]
    # Quick failures: the count decides.
    quick = [timedelta(minutes=i) for i in range(8)]
    assert notices(quick, threshold=5, after=timedelta(hours=3)) == [5]


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=30), st.integers(1, 10), st.integers(1, 2_000))
def test_at_most_one_notice_per_streak(gaps: list[int], threshold: int, after_minutes: int) -> None:
    times, total = [], 0
    for g in gaps:
        total += g
        times.append(timedelta(minutes=total))
    told = notices(times, threshold, timedelta(minutes=after_minutes))
    assert len(told) <= 1
    if len(times) >= threshold:
        assert told and told[0] <= threshold


def test_article_pages_are_retried_in_steps_then_given_up() -> None:
    assert [text_retry_at(NOW, n) for n in (1, 2, 3)] == [NOW + step for step in TEXT_RETRY_STEPS]
    assert text_retry_at(NOW, len(TEXT_RETRY_STEPS) + 1) is None
    assert text_retry_at(NOW, 1, retry_after=timedelta(hours=2)) == NOW + timedelta(hours=2)
