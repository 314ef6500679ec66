"""Revision 0012 rebuilds story_bands WITHOUT ROWID on SQLite and keeps every band row."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from alembic import command
from monitor.store import migrate
from monitor.store.sql import make_engine
from tests.store.rows import insert_item, insert_source

NOW = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
BANDS = [(-(2**63), 1), (-5, 2), (0, 1), (5, 1), (5, 2), (2**63 - 1, 2)]


def _bands(conn: object) -> list[tuple[int, int]]:
    rows = conn.execute(text('SELECT "key", item_id FROM story_bands ORDER BY 1, 2'))  # type: ignore[attr-defined]
    return [(int(k), int(i)) for k, i in rows]


def _rowid_table(conn: object) -> bool | None:
    """On SQLite, whether story_bands has a rowid; None elsewhere."""
    if conn.dialect.name != "sqlite":  # type: ignore[attr-defined]
        return None
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'story_bands'")).scalar_one()  # type: ignore[attr-defined]
    return "WITHOUT ROWID" not in sql.upper()


def test_band_rows_survive_the_rebuild_both_ways(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0011")
    with engine.begin() as conn:
        insert_source(conn, NOW)
        for item in (1, 2):
            insert_item(conn, NOW, item)
        for key, item in BANDS:
            conn.execute(text('INSERT INTO story_bands ("key", item_id) VALUES (:k, :i)'), {"k": key, "i": item})
        assert _rowid_table(conn) in (True, None)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        assert _bands(conn) == BANDS
        assert _rowid_table(conn) in (False, None)
        # The index and the cascade still hold: deleting an item takes its bands.
        conn.execute(text("DELETE FROM items WHERE id = 2"))
        assert _bands(conn) == [b for b in BANDS if b[1] == 1]
    with engine.begin() as conn:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(migrate.alembic_dir()))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    with engine.begin() as conn:
        assert _bands(conn) == [b for b in BANDS if b[1] == 1]
        assert _rowid_table(conn) in (True, None)
    engine.dispose()
