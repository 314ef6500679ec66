"""The wording of the log lines a person reads most (monitor/logs.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.logs import cause_in_words, cycle_summary, failure_line, format_delay

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("HTTP 404 from https://example.org/feed.xml", "HTTP 404 Not Found"),
        ("HTTP 503 from https://example.org/feed.xml", "HTTP 503 Service Unavailable"),
        ("HTTP 599 from https://example.org/", "HTTP 599"),
        ("host not found: DNS lookup failed: no results for hostname lookup: x.invalid.", "DNS lookup failed"),
        ("[Errno -2] Name or service not known", "DNS lookup failed"),
        (
            "TLS error: SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
            "TLS certificate expired",
        ),
        ("TLS error: certificate verify failed: self-signed certificate", "TLS certificate is self-signed"),
        ("TLS error: Error: [('SSL routines', '', 'wrong version number')]", "TLS handshake failed"),
        ("connection refused: Connection was refused by other side: 111: Connection refused.", "connection refused"),
        ("timed out: Getting https://x took longer than 30.0 seconds.", "timed out"),
        ("forbidden by the site's robots.txt: https://x/feed", "forbidden by robots.txt"),
        ("response larger than fetch.max_body, download cancelled: ...", "response too large (fetch.max_body)"),
        ("poll did not complete (crawl timed out or was stopped)", "poll did not finish in time"),
        (
            "no spider named 'nope' in crawler/spiders (have: nextdata)",
            "no spider named 'nope' in crawler/spiders (have: nextdata)",
        ),
        (None, "unknown error"),
    ],
)
def test_the_cause_in_words(error: str | None, cause: str) -> None:
    assert cause_in_words(error) == cause


def test_an_unknown_long_error_is_cut_to_one_short_line() -> None:
    text = cause_in_words("Weird: " + "x" * 400 + "\nsecond line")
    assert "\n" not in text and len(text) == 160 and text.endswith("…")


def test_one_line_per_failure() -> None:
    assert failure_line("bbc", "HTTP 404 from u", 1, NOW + timedelta(minutes=15), NOW) == (
        "source bbc: HTTP 404 Not Found (next try in 15m)"
    )
    assert failure_line("bbc", "host not found: x", 3, NOW + timedelta(hours=3), NOW) == (
        "source bbc: DNS lookup failed (next try in 3h, 3 failures in a row)"
    )


def test_cycle_summary_and_the_hint() -> None:
    assert cycle_summary(3, 1, 7, NOW, ("bbc", NOW + timedelta(seconds=95))) == [
        "poll: 3 sources (2 ok, 1 failed), 7 new items; next due bbc in 1m"
    ]
    assert cycle_summary(2, 2, 0, NOW, None) == [
        "poll: 2 sources (0 ok, 2 failed), 0 new items",
        (
            "every source failed at once: this machine probably has no network or no DNS "
            "(check `wirewatch sources` for the causes)"
        ),
    ]
    # One source failing alone is not a network outage.
    assert len(cycle_summary(1, 1, 0, NOW, None)) == 1


def test_format_delay() -> None:
    assert [format_delay(timedelta(seconds=s)) for s in (0, 59, 60, 3599, 3600, 5400, 86400, 90000)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h",
        "1h 30m",
        "1d",
        "1d 1h",
    ]
