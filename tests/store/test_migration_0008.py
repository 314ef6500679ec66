"""Revision 0008 keeps every alert row while the outbox key moves to (story, subscriber)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from monitor.store import migrate
from monitor.store.sql import SqlStore, make_engine
from tests.store.rows import insert_item, insert_source

NOW = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)


def test_per_rule_rows_of_one_story_survive_the_new_key(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        insert_source(conn, NOW)
        conn.execute(
            text(
                "INSERT INTO stories (id, first_item_id, title, size, first_seen, last_seen) "
                "VALUES (7, 1, 't', 1, :t, :t)"
            ),
            {"t": NOW},
        )
        insert_item(conn, NOW, 1, story_id=7)
        for alert_id, rule in ((1, "kim-putin"), (2, "kursk"), (3, "troops")):
            conn.execute(
                text(
                    "INSERT INTO alerts (id, item_id, rule, subscriber, severity, status, attempts, next_attempt, "
                    "delivered, created_at, story_id) VALUES (:id, 1, :rule, 'analysts', 'normal', 'sent', 1, :t, "
                    "'[0]', :t, 7)"
                ),
                {"id": alert_id, "rule": rule, "t": NOW},
            )
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    rows = SqlStore(engine).alert_rows()
    assert sorted((r.id, r.rules, r.story_id, r.status, r.unknown_sends) for r in rows) == [
        (1, ("kim-putin",), 7, "sent", 0),  # the oldest keeps the story
        (2, ("kursk",), None, "sent", 0),  # the others keep everything else
        (3, ("troops",), None, "sent", 0),
    ]
    engine.dispose()
