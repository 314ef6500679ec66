"""The one Retry-After / Cache-Control reader (monitor/core/http.py) every client uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.http import MAX_RETRY_AFTER, parse_max_age, parse_retry_after, status_class

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(b" 7200 ", NOW) == 7200.0
    assert parse_retry_after("Tue, 01 Dec 2026 13:00:00 GMT", NOW) == 3600.0
    assert parse_retry_after("Tue, 01 Dec 2026 11:00:00 GMT", NOW) == 0.0  # in the past: now
    assert parse_retry_after("Tue, 01 Dec 2026 13:00:00", NOW) == 3600.0  # no zone: GMT, as RFC 9110 says
    assert parse_retry_after("99999999", NOW) == MAX_RETRY_AFTER
    assert parse_retry_after("120", NOW, cap=60) == 60
    for junk in (None, "", b"", "soon", "-5", "1.5"):
        assert parse_retry_after(junk, NOW) is None


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_is_always_within_bounds(seconds: int) -> None:
    delta = parse_retry_after(str(seconds), NOW)
    date = parse_retry_after((NOW + timedelta(seconds=min(seconds, 10**8))).strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW)
    assert delta is not None and 0 <= delta <= MAX_RETRY_AFTER
    assert date is not None and 0 <= date <= MAX_RETRY_AFTER


def test_max_age_and_status_classes() -> None:
    assert parse_max_age("public, max-age=1800") == 1800
    assert parse_max_age(b"s-maxage=60, max-age=30") == 30
    assert parse_max_age("s-maxage=60") is None
    assert parse_max_age("no-cache") is None and parse_max_age(None) is None
    assert status_class(404) == "permanent" and status_class(410) == "permanent"
    assert status_class(500) == "temporary" and status_class(429) == "temporary"
