"""The corroboration and surge arithmetic (monitor.core.corroboration): pure, so tested on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.corroboration import (
    CONFIRMED,
    UNCONFIRMED,
    Requirement,
    SurgeCheck,
    hour_buckets,
    hourly_mean,
    is_surge,
    make_reach,
    merge_requirements,
    reach_phrase,
    release,
    update_due,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_reach_counts_outlets_and_languages_in_the_order_they_joined() -> None:
    reach = make_reach(
        [
            ("tass", "ru", at(5)),
            ("yonhap", "en", at(0)),
            ("yonhap-ko", "ko", at(9)),
            ("tass", "ru", at(12)),  # a second copy from an outlet adds nothing
            ("kcna", None, at(20)),  # no language: an outlet, not a language
        ]
    )
    assert reach.outlets == ("yonhap", "tass", "yonhap-ko", "kcna")
    assert reach.languages == ("en", "ru", "ko")
    assert reach_phrase(len(reach.outlets), reach.languages) == "4 outlets in 3 languages (en, ru, ko)"
    assert reach_phrase(1, ()) == "1 outlet"
    assert reach_phrase(1, ("en",)) == "1 outlet in 1 language (en)"
    then = reach.as_of(at(6))
    assert then.outlets == ("yonhap", "tass") and then.languages == ("en", "ru")


def test_timeline_lists_each_arrival_of_a_new_outlet_or_language_with_running_counts() -> None:
    reach = make_reach(
        [
            ("yonhap", "en", at(0)),
            ("tass", "ru", at(5)),
            ("tass", "ru", at(6)),
            ("ria", "ru", at(7)),
            ("yna", "ko", at(9)),
        ]
    )
    rows = [(e.outlet, e.new_outlet, e.new_language, e.outlets, e.languages) for e in reach.firsts()]
    assert rows == [
        ("yonhap", True, True, 1, 1),
        ("tass", True, True, 2, 2),
        ("ria", True, False, 3, 2),
        ("yna", True, True, 4, 3),
    ]


def test_release_waits_until_any_rule_is_met_or_the_deadline_passes() -> None:
    three_outlets = Requirement(min_outlets=3)
    two_languages = Requirement(min_languages=2)
    deadline = at(360)
    assert release([three_outlets], 2, 2, deadline, at(10)) is None
    assert release([three_outlets], 3, 1, deadline, at(10)) == CONFIRMED
    # Two rules on one row: the first satisfied lets it go.
    assert release([three_outlets, two_languages], 2, 2, deadline, at(10)) == CONFIRMED
    assert release([three_outlets, two_languages], 2, 1, deadline, at(10)) is None
    # Both dimensions asked by one rule: both must be met.
    both = Requirement(min_outlets=3, min_languages=2)
    assert release([both], 5, 1, deadline, at(10)) is None
    assert release([both], 3, 2, deadline, at(10)) == CONFIRMED
    # The wait runs out: sent unconfirmed, exactly at the deadline.
    assert release([both], 1, 1, deadline, deadline - timedelta(seconds=1)) is None
    assert release([both], 1, 1, deadline, deadline) == UNCONFIRMED
    # Met and late: confirmed wins.
    assert release([both], 3, 2, deadline, deadline + timedelta(hours=1)) == CONFIRMED
    # A rule that asks for nothing (or is gone) holds nothing.
    assert release([Requirement()], 1, 0, deadline, at(0)) == CONFIRMED
    assert release([], 1, 0, deadline, at(0)) == CONFIRMED


def test_a_row_is_held_only_when_every_rule_on_it_asks() -> None:
    assert merge_requirements([Requirement(3, 0, at(60)), Requirement()]) is None
    assert merge_requirements([Requirement(3, 0, at(60)), Requirement(5, 2, at(30))]) == Requirement(3, 2, at(30))
    # Different kinds: held (both ask), showing the least of each.
    assert merge_requirements([Requirement(3, 0, at(60)), Requirement(0, 2, at(60))]) == Requirement(3, 2, at(60))
    assert merge_requirements([Requirement(1, 1, at(60))]) is None  # one outlet is every story
    assert merge_requirements([]) is None


def test_update_is_owed_once_per_threshold_and_only_for_the_highest_crossed() -> None:
    thresholds = (3, 7)
    assert update_due(thresholds, told=1, outlets=2, done=()) is None
    assert update_due(thresholds, told=1, outlets=3, done=()) == 3
    assert update_due(thresholds, told=1, outlets=4, done={3}) is None  # already announced
    assert update_due(thresholds, told=1, outlets=7, done={3}) == 7
    assert update_due(thresholds, told=1, outlets=9, done={3, 7}) is None
    # A jump past both thresholds: one update, for the higher one; the lower never follows.
    assert update_due(thresholds, told=2, outlets=8, done=()) == 7
    assert update_due(thresholds, told=2, outlets=8, done={7}) is None
    # The alert itself already said 4 outlets: 3 is no news.
    assert update_due(thresholds, told=4, outlets=6, done=()) is None
    assert update_due(thresholds, told=4, outlets=7, done=()) == 7
    assert update_due((), told=1, outlets=50, done=()) is None


def test_surge_needs_the_floor_the_factor_and_no_recent_surge() -> None:
    # 7 days at 2 an hour: a mean of 2.
    baseline = 2 * 24 * 7
    assert hourly_mean(baseline) == 2.0
    now = T0

    def check(last_hour: int, last: datetime | None = None, *, factor: float = 3.0, floor: int = 10) -> bool:
        return is_surge(SurgeCheck("r", last_hour, baseline, last), factor, floor, timedelta(hours=6), now)

    assert not check(6)  # three times the mean, not more
    assert not check(7)  # more than three times, under the floor
    assert check(10) and check(11)
    assert not check(10, factor=5.0)  # 5 × 2 = 10: not more
    assert check(11, factor=5.0)
    assert not check(40, now - timedelta(hours=5, minutes=59))  # cool-down
    assert check(40, now - timedelta(hours=6))
    assert not check(40, factor=0)  # surges off
    # A rule with no history surges on the floor alone.
    assert is_surge(SurgeCheck("new", 10, 0), 3.0, 10, timedelta(hours=6), now)
    assert not is_surge(SurgeCheck("new", 9, 0), 3.0, 10, timedelta(hours=6), now)


def test_hour_buckets_put_the_last_hour_last_and_drop_what_is_outside() -> None:
    now = T0
    times = [
        now,  # the last hour includes now
        now - timedelta(minutes=59),
        now - timedelta(hours=1),  # exactly an hour ago: the hour before
        now - timedelta(hours=47, minutes=59),
        now - timedelta(hours=48),  # outside
        now + timedelta(seconds=1),  # the future: outside
    ]
    buckets = hour_buckets(times, now, 48)
    assert len(buckets) == 48
    assert buckets[-1] == 2 and buckets[-2] == 1 and buckets[0] == 1 and sum(buckets) == 4


@given(st.lists(st.integers(min_value=-3 * 3600, max_value=60 * 3600), max_size=200))
def test_hour_buckets_count_every_time_in_the_window_once(offsets: list[int]) -> None:
    now = T0
    times = [now - timedelta(seconds=s) for s in offsets]
    buckets = hour_buckets(times, now, 48)
    assert sum(buckets) == sum(1 for s in offsets if 0 <= s < 48 * 3600)
    assert buckets[-1] == sum(1 for s in offsets if 0 <= s < 3600)
