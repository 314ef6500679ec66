"""Rows written with plain SQL, for migration tests that seed a database at an old revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text


def insert_source(conn: Any, now: datetime, source_id: int = 1, name: str = "wire") -> None:
    conn.execute(
        text(
            "INSERT INTO sources (id, name, type, url, consecutive_failures, created_at) "
            "VALUES (:id, :name, 'feed', 'u', 0, :t)"
        ),
        {"id": source_id, "name": name, "t": now},
    )


def insert_item(conn: Any, now: datetime, item_id: int, story_id: int | None = None, source_id: int = 1) -> None:
    conn.execute(
        text(
            "INSERT INTO items (id, source_id, key, url, canonical_url, title, summary, text, first_seen, story_id) "
            "VALUES (:id, :source, :key, 'u', 'u', 'Kim meets Putin', '', '', :t, :story)"
        ),
        {"id": item_id, "source": source_id, "key": f"k{item_id}", "t": now, "story": story_id},
    )
