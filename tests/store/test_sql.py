"""SqlStore against real SQLite and PostgreSQL: the database decides what is new, and leases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from monitor.core.models import Item
from monitor.core.urls import canonical_url, item_key
from monitor.store import migrate
from monitor.store.schema import items
from monitor.store.sql import FetchUpdate, NewAlert, SqlStore, TextUpdate, make_engine

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    s = SqlStore(engine)
    s.check_ready()
    yield s
    engine.dispose()


def item(guid: str, title: str = "t") -> Item:
    url = f"https://example.org/{guid}?utm_source=x"
    return Item(
        key=item_key(guid, url),
        guid=guid,
        url=url,
        canonical_url=canonical_url(url),
        title=title,
        summary="",
        text="",
        language="en",
        published=NOW,
    )


def test_insert_returns_exactly_the_new_rows(store: SqlStore) -> None:
    store.sync_sources([("wire", "feed", "https://example.org/feed")], NOW)
    (src,) = store.source_states()
    with store.begin() as conn:
        first = store.insert_new_items(conn, src.id, "wire", [item("a"), item("b")], NOW)
    with store.begin() as conn:
        # "a" again, "c" new, and "c" twice in one batch.
        second = store.insert_new_items(conn, src.id, "wire", [item("a"), item("c"), item("c", "copy")], NOW)
    assert sorted(s.item.guid or "" for s in first) == ["a", "b"]
    assert [s.item.guid for s in second] == ["c"]
    assert second[0].item.title == "t"  # the first copy in a batch wins
    assert store.source_item_counts() == {"wire": 3}


def test_article_texts_are_written_by_id_not_by_scanning_every_wanted_item(store: SqlStore) -> None:
    """store_texts looks its batch up by id however many items wait for their page.

    On the state index SQLite's planner drove the join from every wanted item and scanned
    the batch's JSON for each (quadratic: 9.4 s of a 24 s poll of 300 feeds); the plan of
    the statement actually sent must read the batch and search items by id.
    """
    store.sync_sources([("wire", "feed", "https://example.org/feed")], NOW)
    (src,) = store.source_states()
    with store.begin() as conn:
        stored = store.insert_new_items(conn, src.id, "wire", [item(f"g{n}") for n in range(400)], NOW)
        conn.execute(update(items).values(text_state="wanted", text_due=NOW))
    ids = sorted(s.id for s in stored)
    sent: list[tuple[str, object]] = []

    def keep(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE ITEMS"):
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    try:
        with store.begin() as conn:
            got = store.store_texts(
                conn,
                [TextUpdate(ids[0], "done", text="the article"), TextUpdate(ids[1], "failed", error="HTTP 404")],
            )
            got_again = store.store_texts(conn, [TextUpdate(ids[0], "done", text="read twice")])
    finally:
        event.remove(store.engine, "before_cursor_execute", keep)
    assert set(got) == {ids[0]} and got_again == {}  # recorded once, only while still wanted
    with store.begin() as conn:
        rows = dict(conn.execute(select(items.c.id, items.c.text_state).where(items.c.id.in_(ids[:3]))).all())
    assert rows == {ids[0]: "done", ids[1]: "failed", ids[2]: "wanted"}
    if store.dialect == "sqlite":
        assert len(sent) == 3
        with store.engine.connect() as conn:
            for statement, parameters in sent:
                plan = [str(r[3]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
                assert "VIRTUAL TABLE" in plan[0], plan  # the batch drives the join
                assert any("INTEGER PRIMARY KEY" in p for p in plan), plan
                assert not any("ix_items_text_state" in p for p in plan), plan


def test_datetimes_come_back_aware_utc(store: SqlStore) -> None:
    store.sync_sources([("wire", "feed", "https://example.org/feed")], NOW)
    (src,) = store.source_states()
    assert src.next_due == NOW
    assert src.next_due.tzinfo is not None


def test_alert_leases_are_exclusive_and_expired_leases_return(store: SqlStore) -> None:
    store.sync_sources([("wire", "feed", "https://example.org/feed")], NOW)
    (src,) = store.source_states()
    with store.begin() as conn:
        (stored,) = store.insert_new_items(conn, src.id, "wire", [item("a")], NOW)
        store.enqueue_alerts(conn, [NewAlert(stored.id, "r", "ops", "normal", NOW)], NOW)
        # Enqueuing the same (item, subscriber) again is a no-op.
        store.enqueue_alerts(conn, [NewAlert(stored.id, "r", "ops", "normal", NOW)], NOW)
    lease = timedelta(seconds=30)

    def claim(now: datetime) -> list[int]:
        with store.subscriber_transaction("ops") as conn:
            ids = [r.id for r in store.due_alerts(conn, "ops", now)]
            store.lease_in(conn, ids, now, lease)
        return ids

    assert store.due_subscribers(NOW) == ["ops"]
    (first,) = claim(NOW)
    assert claim(NOW) == []  # leased
    assert store.renew_alert_leases([first], NOW + lease) == 1  # the send is still in flight
    assert claim(NOW + lease) == []
    # The claimer died: after the lease, the row is due again, attempts counted.
    assert claim(NOW + 2 * lease + timedelta(seconds=1)) == [first]
    store.record_send([first], message_id=None, status="sent", now=NOW, delivered=[0])
    (row,) = store.alert_rows(ids=[first])
    assert (row.status, row.attempts, row.delivered, row.rules) == ("sent", 2, (0,), ("r",))
    assert store.due_subscribers(NOW + timedelta(hours=1)) == []


def test_source_claims_do_not_overlap(store: SqlStore) -> None:
    store.sync_sources([(f"s{i}", "feed", f"https://example.org/{i}") for i in range(5)], NOW)
    names = [f"s{i}" for i in range(5)]
    a = store.claim_due_sources(names, NOW, timedelta(minutes=5), "w1", 3)
    b = store.claim_due_sources(names, NOW, timedelta(minutes=5), "w2", 3)
    assert len(a) == 3
    assert len(b) == 2
    assert not {s.name for s in a} & {s.name for s in b}
    assert store.claim_due_sources(names, NOW, timedelta(minutes=5), "w3", 3) == []


def test_source_lookups_by_name_take_a_whole_config_of_names(store: SqlStore) -> None:
    """The names travel as one parameter (a 10,000-source config every tick): any number, any script."""
    import dataclasses

    from monitor.store.sql import _SOURCE_COLUMNS, SourceState

    # SourceState is built from its row by position.
    assert [f.name for f in dataclasses.fields(SourceState)] == [c.name for c in _SOURCE_COLUMNS]
    names = [f"источник-{i:04d}" for i in range(2500)]
    store.sync_sources([(n, "feed", f"https://example.org/{n}") for n in names], NOW)
    wanted = [*names[::2], "not configured", 'it\'s "quoted"']
    states = store.source_states(wanted)
    assert [s.name for s in states] == sorted(names[::2])
    assert all(s.url == f"https://example.org/{s.name}" and s.consecutive_failures == 0 for s in states)
    claimed = store.claim_due_sources(wanted, NOW, timedelta(minutes=5), "w1", 5000)
    assert sorted(s.name for s in claimed) == sorted(names[::2])
    rest = store.claim_due_sources(names, NOW, timedelta(minutes=5), "w2", 5000)
    assert sorted(s.name for s in rest) == sorted(names[1::2])
    assert store.next_due_source(["not configured"]) is None
    assert store.next_due_source(names[1:2]) == (names[1], NOW)


def test_live_sources_are_claimed_before_the_never_polled_backlog(store: SqlStore) -> None:
    """Under a cold backlog a live source falling due is claimed first (issue 13, responsiveness)."""
    names = [f"s{i}" for i in range(6)]
    store.sync_sources([(n, "feed", f"https://example.org/{n}") for n in names], NOW - timedelta(hours=1))
    sid = {s.name: s.id for s in store.source_states()}
    # s4 and s5 have been polled (s5 longer overdue); s0-s3 never were, and fell due an hour ago.
    with store.begin() as conn:
        store.update_sources(
            conn,
            [
                (sid["s4"], FetchUpdate(success=True, next_due=NOW - timedelta(seconds=1))),
                (sid["s5"], FetchUpdate(success=True, next_due=NOW - timedelta(seconds=30))),
            ],
            NOW - timedelta(minutes=2),
        )
    first = store.claim_due_sources(names, NOW, timedelta(minutes=5), "w1", 2)
    assert [s.name for s in first] in (["s5", "s4"], ["s4", "s5"])
    rest = store.claim_due_sources(names, NOW, timedelta(minutes=5), "w1", 10)
    assert sorted(s.name for s in rest) == ["s0", "s1", "s2", "s3"]


def test_purge_keeps_matched_items(store: SqlStore) -> None:
    from monitor.core.models import RuleHit, Span

    store.sync_sources([("wire", "feed", "https://example.org/feed")], NOW)
    (src,) = store.source_states()
    with store.begin() as conn:
        kept, _gone = store.insert_new_items(
            conn, src.id, "wire", [item("kept"), item("gone")], NOW - timedelta(days=100)
        )
        store.insert_matches(conn, kept.id, [RuleHit("r", (Span("title", 0, 1, "t"),))], NOW)
    assert store.purge_unmatched(NOW - timedelta(days=90)) == 1
    assert [r["title"] for r in store.recent_items(None, None, 10)] == ["t"]
