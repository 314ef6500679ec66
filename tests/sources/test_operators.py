"""Operators are told once per failure streak, by real email (aiosmtpd), through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.feeds import rss
from tests.servers import FeedServer, SmtpServer
from tests.sources.helpers import Source, run_once, sources_json, write_config

# Each test runs the real CLI as a subprocess, on SQLite and PostgreSQL.
pytestmark = pytest.mark.slow


def test_failure_streak_notifies_operators_once(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    url = feed_server.serve("/feed.xml", "gone", status=500)
    tail = f'\n[[subscribers]]\nname = "oncall"\nurls = ["{smtp_server.url("oncall@example.org")}"]\n'
    config = write_config(
        tmp_path,
        [Source("flaky", url)],
        alerts='operators = ["oncall"]\nsource_failure_threshold = 2',
        tail=tail,
    )

    run_once(config, database_url)
    assert smtp_server.messages == []
    run_once(config, database_url)
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert "flaky" in mail["Subject"] and "2 times in a row" in mail["Subject"]
    body = mail.get_body(preferencelist=("plain", "html"))
    assert body is not None and "HTTP 500" in body.get_content()
    run_once(config, database_url)
    assert len(smtp_server.messages) == 1, "one notice per streak, not one per poll"
    health = sources_json(config, database_url)["flaky"]
    assert health["status"] == "failing" and health["consecutive_failures"] == 3

    # Recovery ends the streak; the next streak is told again.
    feed_server.serve("/feed.xml", rss([("a", "A", "a")]))
    run_once(config, database_url)
    feed_server.serve("/feed.xml", "gone", status=500)
    run_once(config, database_url)
    run_once(config, database_url)
    assert len(smtp_server.messages) == 2
