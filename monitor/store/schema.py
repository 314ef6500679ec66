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
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

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


class _Json(TypeDecorator[Any]):
    """JSON, and JSONB on PostgreSQL.

    Chosen per dialect when a connection first needs it, so that the PostgreSQL dialect
    (~50 ms of imports) is loaded only where it is used: ``JSON().with_variant(JSONB(),
    "postgresql")`` imported it in every command on SQLite.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


Json: Any = _Json()
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
    # Health and adaptive schedule (revision 0003): the interval in force (seconds), the
    # floor the source asked for (Cache-Control max-age, RSS <ttl>), its rhythm (mean gap
    # between polls that found new items), when operators were told it went silent, and
    # the last parse warning (a feed that parses only partly still counts as a success).
    Column("poll_interval", Integer),
    Column("min_interval", Integer),
    Column("last_new_item", UtcDateTime),
    Column("mean_gap", Integer),
    Column("silence_noticed", UtcDateTime),
    Column("last_warning", Text),
    # Operator overrides (revision 0007): `wirewatch sources enable|disable` against the
    # config's `enabled` (NULL: the config decides), and the start of the failure streak.
    Column("enabled_override", Boolean),
    Column("failing_since", UtcDateTime),
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
    # The feed gave no title; ``title`` was derived from the text (revision 0006).
    Column("title_derived", Boolean, nullable=False, server_default=false()),
    # Story clustering (revision 0002): versioned exact-duplicate keys (monitor.core.dedupe,
    # monitor.core.urls.url_key) and the story the item belongs to.
    Column("story_id", ForeignKey("stories.id", ondelete="SET NULL")),
    Column("url_key", String(48)),
    Column("title_hash", String(48)),
    Column("text_hash", String(48)),
    # Enrichment (revision 0010): the article page an item wants, as a durable queue.
    # ``text_state``: NULL (nothing to fetch) | wanted | done | failed | skipped.
    # ``text_due``: when a wanted item may be claimed; a claim moves it a lease ahead, so
    # it is the lease too (a worker killed mid-fetch leaves it due again when it lapses).
    # ``text_attempts`` counts claims; ``text_error`` is the last failure's reason;
    # ``text_silent``: stored by a silent first poll, so matches on its text do not alert either.
    Column("text_state", String(8)),
    Column("text_due", UtcDateTime),
    Column("text_attempts", Integer, nullable=False, server_default="0"),
    Column("text_error", Text),
    Column("text_silent", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("source_id", "key"),
    Index(None, "first_seen"),
    Index(None, "canonical_url"),
    Index(None, "story_id"),
    Index(None, "url_key"),
    Index(None, "text_hash"),
    Index(None, "source_id", "title_hash"),
    # The console's items per source per day (revision 0009): a covering index.
    Index(None, "first_seen", "source_id"),
    # The enrichment queue (revision 0010): wanted items by due time.
    Index(None, "text_state", "text_due"),
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
    # The console's matches per rule per day (revision 0009): a covering index.
    Index(None, "matched_at", "rule"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("subscriber", String(64), nullable=False),
    Column("severity", String(16), nullable=False, default="normal"),
    # [waiting (held for corroboration) →] pending → sending (claimed, leased) → sent
    # | pending again (retry) | failed (gave up)
    # | unknown (timed out again after its one resend: nobody knows whether it arrived)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("delivered", Json, nullable=False),  # indexes of subscriber URLs already delivered
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    # Delivery policy (revision 0004): why the row was put back unsent (quiet hours, rate
    # limit), and the message it was planned into, so a retry resends that same message.
    Column("hold_reason", String(16)),
    Column("message_id", ForeignKey("messages.id", ondelete="SET NULL")),
    # One alert per story, rule and subscriber (revision 0002): later copies of a story
    # insert nothing.  NULL (alerts from before stories existed) never conflicts.
    Column("story_id", ForeignKey("stories.id", ondelete="SET NULL")),
    # One alert per story and subscriber (revision 0008): ``rules`` lists every rule that
    # fired on the item for this subscriber (``rule`` is the one that routed it: a
    # critical one when any is); ``unknown_sends`` counts sends that timed out, whose
    # outcome nobody knows, so such a row is resent at most once.
    Column("rules", Json, nullable=False),
    Column("unknown_sends", Integer, nullable=False, default=0, server_default="0"),
    # Corroboration (revision 0012): a row whose rules ask for ``min_outlets`` /
    # ``min_languages`` is queued ``waiting`` with what it needs and its deadline
    # (``max_wait``); the dispatcher makes it ``pending`` when the story gets there
    # (``released`` = confirmed) or the deadline passes (``released`` = unconfirmed).
    Column("need_outlets", Integer),
    Column("need_languages", Integer),
    Column("wait_until", UtcDateTime),
    Column("released", String(16)),
    UniqueConstraint("item_id", "rule", "subscriber"),
    UniqueConstraint("story_id", "subscriber"),
    Index(None, "status", "next_attempt"),
    Index(None, "message_id"),
    # The console's outbox by status, newest first (revision 0009).
    Index(None, "status", "id"),
)

# One row per message planned for a subscriber: a single alert, a flood summary, a
# digest or what quiet hours held.  Counting a subscriber's recent rows is the rate limit.
messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # alert | summary | digest | quiet
    Column("alert_count", Integer, nullable=False),
    Column("planned_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),  # first URL that accepted it
    Index(None, "subscriber", "planned_at"),
)

# Messages beside the alerts (revision 0012): a story's corroboration update ("now 7
# outlets in 3 languages") and a rule's surge.  A small outbox of its own, one row per
# message and subscriber; ``key`` makes each one once: ``update:<story>:<threshold>``,
# ``surge:<rule>:<hour>``.  ``payload`` is what the message needs beyond the database
# (a surge's counts and top stories as they were when it was detected).
bulletins = Table(
    "bulletins",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # update | surge
    Column("subscriber", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("rule", String(64)),
    Column("story_id", ForeignKey("stories.id", ondelete="SET NULL")),
    Column("payload", Json, nullable=False),
    # pending → sending (leased) → sent | pending again (retry) | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("delivered", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    UniqueConstraint("subscriber", "key"),
    Index(None, "status", "next_attempt"),
    Index(None, "kind", "rule", "created_at"),
    Index(None, "story_id"),
)

# A story: one cluster of copies of the same article across outlets (revision 0002).  Its
# outlets and languages are read from its items; ``size`` counts the items that joined.
# ``first_item_id`` has no foreign key on purpose: items.story_id already points here,
# and a cycle of foreign keys would make creating and dropping tables order-dependent.
stories = Table(
    "stories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("first_item_id", Id, nullable=False),
    Column("title", Text, nullable=False),
    Column("size", Integer, nullable=False, default=1),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Index(None, "last_seen"),
)

# The LSH index (revision 0002): one row per (band key, item).  ``key`` folds the band
# number and the band's MinHash rows into one signed 64-bit hash
# (monitor.core.dedupe.band_keys), so a candidate lookup is one ``key IN (…)`` on the
# primary key; the item_id index serves the cascade when items are purged.
story_bands = Table(
    "story_bands",
    metadata,
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "item_id"),
    # SQLite: the primary key is the table (revision 0012): two B-trees per row, not three.
    sqlite_with_rowid=False,
)

# Rule backfills done (revision 0005): a ``backfill = true`` rule runs over stored items
# once per version of its query, so a restart or an unrelated reload never repeats it.
rule_backfills = Table(
    "rule_backfills",
    metadata,
    Column("rule", String(64), primary_key=True),
    Column("query_hash", String(64), primary_key=True),
    Column("done_at", UtcDateTime, nullable=False),
    Column("matched", Integer, nullable=False),
)
