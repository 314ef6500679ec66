"""The database schema: one SQLAlchemy ``MetaData`` shared by the store and Alembic.

Responsible for table definitions only.  Timestamps are stored in UTC and always come
back timezone-aware (SQLite has no time zones, so :class:`UtcDateTime` restores them).
Changing anything here needs an Alembic revision; ``alembic check`` in CI catches drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; wirewatch uses aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json: Any = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
Id: Any = BigInteger().with_variant(Integer(), "sqlite")

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("type", String(16), nullable=False),
    Column("url", Text, nullable=False),
    # fetch state
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("last_polled", UtcDateTime),
    Column("last_success", UtcDateTime),
    Column("first_success", UtcDateTime),
    Column("last_error", Text),
    Column("error_class", String(16)),  # "temporary" | "permanent"
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("next_due", UtcDateTime),
    Column("lease_until", UtcDateTime),
    Column("lease_owner", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(48), nullable=False),
    Column("guid", Text),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("language", String(16)),
    Column("published", UtcDateTime),
    Column("first_seen", UtcDateTime, nullable=False),
    UniqueConstraint("source_id", "key"),
    Index(None, "first_seen"),
    Index(None, "canonical_url"),
)

matches = Table(
    "matches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("spans", Json, nullable=False),
    Column("matched_at", UtcDateTime, nullable=False),
    UniqueConstraint("item_id", "rule"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("subscriber", String(64), nullable=False),
    Column("severity", String(16), nullable=False, default="normal"),
    # pending → sending (claimed, leased) → sent | pending again (retry) | failed (gave up)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("delivered", Json, nullable=False),  # indexes of subscriber URLs already delivered
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    UniqueConstraint("item_id", "rule", "subscriber"),
    Index(None, "status", "next_attempt"),
)
