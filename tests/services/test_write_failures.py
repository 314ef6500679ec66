"""Writes PostgreSQL rolls back: a conflict is written again, any other failure is loud.

PostgreSQL raises the errors itself, from a trigger installed for the test (a real
``deadlock_detected`` or ``check_violation`` through psycopg and SQLAlchemy); a sequence,
which no rollback undoes, makes a trigger fire only once.  The feed is served on
loopback and ``run --once`` runs as a real process.  Nothing of ours is replaced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, text

from monitor.app import open_store
from monitor.config import load_config
from monitor.core.models import PollOutcome
from monitor.runtime import make_runtime
from monitor.services.ingest import Ingestor
from monitor.store.schema import alerts, items, sources
from monitor.store.sql import SqlStore
from tests.conftest import _pg_database, run_cli
from tests.dedupe.corpus import Copy, rss_of
from tests.servers import FeedServer
from tests.services.test_ingest_batch import CONFIG, NOW, entries, ids, names


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    s = open_store(pg_url, migrate_first=True)
    yield s
    s.engine.dispose()


def trip(conn: Connection, table: str, errcode: str, only_call: int | None = None) -> None:
    """Make PostgreSQL refuse writes to ``table`` with ``errcode``: every statement, or only
    its ``only_call``-th (counted by a sequence, which no rollback undoes)."""
    conn.execute(text(f"CREATE SEQUENCE trip_{table}_seq"))
    when = "TRUE" if only_call is None else f"nextval('trip_{table}_seq') = {only_call}"
    conn.execute(
        text(
            f"""
            CREATE FUNCTION trip_{table}() RETURNS trigger AS $$
            BEGIN
              IF {when} THEN
                RAISE EXCEPTION 'tripped by the test' USING ERRCODE = '{errcode}';
              END IF;
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
    )
    conn.execute(
        text(
            f"CREATE TRIGGER trip_{table} BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION trip_{table}()"
        )
    )


def test_a_write_rolled_back_for_a_deadlock_is_written_again(store: SqlStore, tmp_path: Path) -> None:
    """Three polls of 7 in transactions of 3 items: the third transaction's update of the
    sources is refused once with deadlock_detected; it is written again, and every poll is
    counted exactly as without the conflict (nothing twice, nothing lost)."""
    path = tmp_path / "config.toml"
    srcs = "".join(f'[[sources]]\nname = "{n}"\nurl = "https://{n}.example/feed.xml"\n' for n in names(3))
    path.write_text(CONFIG.format(sources=srcs), encoding="utf-8")
    runtime = make_runtime(load_config(path, env={}))
    store.sync_sources([(s.name, s.type, s.url) for s in runtime.config.sources], NOW)
    sid = ids(store)
    batch = [PollOutcome(sid[n], n, "ok", items=entries(n, 7), etag=f'"{n}"') for n in names(3)]
    with store.begin() as conn:
        # The first chunk's update of the sources passes; the second is the deadlock.
        trip(conn, "sources", "deadlock_detected", only_call=2)
    summaries = Ingestor(store, lambda: runtime, lambda: NOW, max_tx_items=3).ingest_batch(batch)
    assert [(s.new, s.matched, s.alerts) for s in summaries] == [(7, 4, 8)] * 3
    with store.begin() as conn:
        assert conn.execute(text("SELECT last_value FROM trip_sources_seq")).scalar_one() >= 3  # it did trip
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == 21
        assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == 24
        assert conn.execute(select(func.count()).select_from(items).where(items.c.story_id.is_(None))).scalar_one() == 0
    assert {s.name: s.etag for s in store.source_states(names(3))} == {n: f'"{n}"' for n in names(3)}


def test_a_lease_renewal_skips_a_source_ingest_holds(store: SqlStore, tmp_path: Path) -> None:
    """Renewing never waits for a row ingest holds (waiting, in another row order, could deadlock)."""
    path = tmp_path / "config.toml"
    srcs = "".join(f'[[sources]]\nname = "{n}"\nurl = "https://{n}.example/feed.xml"\n' for n in names(2))
    path.write_text(CONFIG.format(sources=srcs), encoding="utf-8")
    config = load_config(path, env={})
    store.sync_sources([(s.name, s.type, s.url) for s in config.sources], NOW)
    claimed = store.claim_due_sources(names(2), NOW, timedelta(seconds=60), "me", 10)
    assert len(claimed) == 2
    sid = ids(store)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.begin() as conn:
            conn.execute(text("SELECT id FROM sources WHERE id = :i FOR UPDATE"), {"i": sid["src0"]})
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        began = time.monotonic()
        renewed = store.renew_source_leases([sid["src0"], sid["src1"]], "me", NOW + timedelta(minutes=5))
        took = time.monotonic() - began
    finally:
        release.set()
        holder.join()
    assert renewed == 1
    assert took < 5
    with store.begin() as conn:
        leases = {r.name: r.lease_until for r in conn.execute(select(sources.c.name, sources.c.lease_until))}
    assert leases["src1"] == NOW + timedelta(minutes=5)
    assert leases["src0"] == NOW + timedelta(seconds=60)


def test_run_once_fails_loudly_when_the_database_refuses_the_items(
    pg_url: str, store: SqlStore, tmp_path: Path, feed_server: FeedServer
) -> None:
    """An error that is no conflict and no lost connection (here a check_violation raised on
    every insert of items) used to vanish: `run --once` said nothing and exited 0.  Now it
    names the source and the error, exits non-zero, and the source's items come on the next
    poll once the database takes them."""
    copies = [
        Copy("s", "src0", e.guid or "", e.url or "", e.title or "", e.summary or "", "en") for e in entries("src0", 5)
    ]
    url = feed_server.serve("/feed.xml", rss_of(copies))
    path = tmp_path / "config.toml"
    path.write_text(
        # No article pages: only ingest writes the items.
        "[fetch]\nfull_text = false\n"
        + CONFIG.format(sources=f'[[sources]]\nname = "src0"\nurl = "{url}"\n').replace(
            'first_poll = "alert"', 'first_poll = "silent"'
        ),
        encoding="utf-8",
    )
    with store.begin() as conn:
        trip(conn, "items", "check_violation")
    failed = run_cli("run", "--once", config=path, database_url=pg_url)
    assert failed.returncode != 0, failed.stdout
    assert "src0 was not stored" in failed.stderr and "tripped by the test" in failed.stderr, failed.stderr
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == 0
        conn.execute(text("DROP TRIGGER trip_items ON items"))
    # The lease was given back: the source is due again at once.
    again = run_cli("run", "--once", config=path, database_url=pg_url)
    assert again.returncode == 0, again.stderr
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == 5
