"""SqlStore: every read and write wirewatch makes, on SQLite or PostgreSQL.

Responsible for SQL and transactions.  The database decides what is new: items go in
with ``INSERT … ON CONFLICT DO NOTHING RETURNING`` and only the rows returned are new.
A subscriber's due alerts are planned and leased in one transaction under a
per-subscriber lock (a PostgreSQL advisory lock, SQLite's ``BEGIN IMMEDIATE``), so two
dispatchers never send the same row or exceed a subscriber's rate together.  This module does no
matching, rendering or policy: callers pass plain data in and get plain data out.
Only expected driver errors (connection refused, database missing, not migrated) become
:class:`~monitor.errors.StorageError`; anything else is a bug and propagates.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    String,
    Text,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.sql import Select

from monitor.core.corroboration import SURGE_BASELINE, Reach, Requirement, make_reach, merge_requirements
from monitor.core.models import Item, RuleHit
from monitor.errors import StorageError
from monitor.store.bulk import id_list, json_rows, text_list
from monitor.store.schema import (
    UtcDateTime,
    alerts,
    bulletins,
    items,
    matches,
    messages,
    rule_backfills,
    sources,
    stories,
    story_bands,
)

if TYPE_CHECKING:
    # Imported where used: dedupe pulls in numpy, which the read-only commands never
    # need (start-up time, issue 13).
    from monitor.core.dedupe import BandHit, Fingerprint, SeenEntry, StoryPlan

log = logging.getLogger(__name__)


def _dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (with ON CONFLICT), its module imported only where it is used:
    the PostgreSQL dialect is ~50 ms of imports that no command on SQLite needs."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the operator wrote (or none)."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine with the settings wirewatch relies on (WAL and busy timeout on SQLite)."""
    try:
        engine = create_engine(normalise_database_url(url), pool_pre_ping=True)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise StorageError(f"no driver for this database URL: {exc.name}") from None
    if engine.dialect.name == "sqlite":
        guard = _FileGuard(engine.url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # FULL, not NORMAL: in WAL mode NORMAL does not sync the WAL at commit, so a
            # power loss rolls back commits already acted on (alerts marked sent were
            # sent again: 20 of 36 in the issue-18 probe).  FULL syncs at every commit.
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()
            guard.remember()

        @event.listens_for(engine, "checkout")
        def _same_file(_dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            guard.check()

        @event.listens_for(engine, "do_connect")
        def _no_new_file(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
            # A reconnect must not quietly create an empty file where ours was deleted.
            guard.check()

    # Close the pooled connections when the process ends.  On SQLite the last connection
    # to close checkpoints the WAL into the database file and deletes it: without this, a
    # `run --once` left its last commits in wirewatch.db-wal, and an operator's copy of
    # wirewatch.db alone (a backup) missed them.  A weak reference: tests make many engines.
    atexit.register(_dispose_at_exit, weakref.ref(engine))
    return engine


def _dispose_at_exit(ref: weakref.ref[Engine]) -> None:
    engine = ref()
    if engine is not None:
        engine.dispose()


class _FileGuard:
    """Notices a SQLite file deleted or replaced under a running process.

    SQLite keeps writing to an unlinked file (and a renamed-over one) through its open
    descriptor, silently: everything written is gone at the next start.  The device and
    inode seen at the first connection are compared with the path's on every pool
    checkout (a ``stat``, about a microsecond), and a difference fails every
    transaction with a :class:`StorageError`, so the daemon reports unhealthy.
    """

    def __init__(self, database: str | None) -> None:
        memory = not database or database == ":memory:" or database.startswith("file::memory:")
        self.path = None if memory else database
        self.identity: tuple[int, int] | None = None
        # Sticky: once the file is gone, a new file at the path (the inode number may
        # even be reused) must not make the process carry on as if nothing happened.
        self.failure: StorageError | None = None

    def _stat(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def remember(self) -> None:
        if self.path is not None and self.identity is None:
            self.identity = self._stat()

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.path is None or self.identity is None:
            return
        now = self._stat()
        if now is None:
            self.failure = StorageError(
                f"database file {self.path} was deleted while wirewatch was running; "
                "nothing written since is kept: restore it from a backup and restart"
            )
        elif now != self.identity:
            self.failure = StorageError(
                f"database file {self.path} was replaced while wirewatch was running "
                "(another file now has its name): restart wirewatch to use the new file"
            )
        if self.failure is not None:
            log.critical("%s", self.failure)
            raise self.failure


def display_url(url: str) -> str:
    """The database URL with its password hidden, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


@dataclass(frozen=True, slots=True)
class SourceState:
    id: int
    name: str
    type: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_polled: datetime | None
    last_success: datetime | None
    first_success: datetime | None
    last_error: str | None
    error_class: str | None
    consecutive_failures: int
    next_due: datetime | None
    poll_interval: int | None = None  # seconds: the adaptive interval in force
    min_interval: int | None = None  # seconds: the floor the source asked for (max-age, <ttl>)
    last_new_item: datetime | None = None
    mean_gap: int | None = None  # seconds between polls that found new items (moving average)
    silence_noticed: datetime | None = None
    last_warning: str | None = None
    enabled_override: bool | None = None  # `wirewatch sources enable|disable`; None: the config decides
    failing_since: datetime | None = None  # first failure of the current streak


@dataclass(frozen=True, slots=True)
class FetchUpdate:
    """What one poll changes on its source row.

    On success the schedule fields are written as given (``None`` clears them);
    ``new_items`` stamps ``last_new_item`` and ends a silence notice.  On failure only the
    error fields and ``next_due`` change: the rhythm learnt so far is kept.
    """

    success: bool
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error: str | None = None
    error_class: str | None = None
    next_due: datetime | None = None
    poll_interval: int | None = None
    min_interval: int | None = None
    mean_gap: int | None = None
    new_items: bool = False
    silence_noticed: datetime | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: int
    source: str
    item: Item
    first_seen: datetime
    fingerprint: Fingerprint | None = None  # dedupe keys computed on insert (issue 4)


@dataclass(frozen=True, slots=True)
class NewItemRow:
    """An item a batch may insert, with the source it belongs to and its dedupe keys."""

    source_id: int
    item: Item
    fingerprint: Fingerprint
    # Enrichment: "wanted" (its article page is queued), "skipped" (with the reason in
    # ``text_error``) or None; ``text_silent`` when matches on its text may not alert.
    text_state: str | None = None
    text_error: str | None = None
    text_silent: bool = False


@dataclass(frozen=True, slots=True)
class TextTask:
    """A claimed item whose article page the enrichment stage fetches, with what re-matching needs."""

    item_id: int
    source_id: int
    source: str
    source_url: str
    url: str
    title: str
    title_derived: bool
    summary: str
    language: str | None
    published: datetime | None
    first_seen: datetime
    silent: bool
    attempts: int  # claims so far, this one included
    story_id: int | None = None


@dataclass(frozen=True, slots=True)
class TextUpdate:
    """What one article page gave: ``text`` (state done), or a retry at ``due`` or a final failure."""

    item_id: int
    state: str  # "done" | "wanted" (retry at ``due``) | "failed"
    text: str = ""
    due: datetime | None = None
    error: str | None = None


# Items per band key a candidate lookup returns (the newest): see story_candidates.
BAND_FANOUT = 50
# Story lock keys one transaction may take on PostgreSQL (see lock_story_keys): each is a
# slot in the shared lock table (max_locks_per_transaction x connections, ~7,800 at the
# defaults), so this leaves room for several workers at once.
STORY_LOCK_BUDGET = 1_000
# The lock every assignment takes shared, and an oversized one exclusively; the least
# signed 64-bit value, so it sorts before every key.
STORY_LOCK_ALL = -(1 << 63)


@dataclass(frozen=True, slots=True)
class NewAlert:
    item_id: int
    rule: str
    subscriber: str
    severity: str
    next_attempt: datetime
    story_id: int | None = None  # one alert per (story, rule, subscriber): the database enforces it
    need: Requirement = field(default_factory=Requirement)  # min_outlets, min_languages, deadline


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    item_id: int
    rule: str
    subscriber: str
    severity: str
    status: str
    attempts: int
    next_attempt: datetime
    last_error: str | None
    delivered: tuple[int, ...]
    created_at: datetime
    sent_at: datetime | None
    title: str
    url: str
    source: str
    language: str | None
    published: datetime | None
    first_seen: datetime
    summary: str
    text: str
    spans: list[dict[str, Any]]
    hold_reason: str | None = None  # why it was last put back unsent: "quiet" | "rate"
    message_id: int | None = None  # the message it was planned into (resent as such on retry)
    message_kind: str | None = None
    rules: tuple[str, ...] = ()  # every rule that fired (the routing rule first)
    rule_spans: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rule → its spans
    unknown_sends: int = 0  # sends that timed out (outcome unknown)
    story_id: int | None = None
    need_outlets: int | None = None  # what a held row waited for (revision 0012)
    need_languages: int | None = None
    wait_until: datetime | None = None
    released: str | None = None  # "confirmed" | "unconfirmed" once a held row was let go


@dataclass(frozen=True, slots=True)
class BulletinRow:
    id: int
    kind: str
    subscriber: str
    key: str
    rule: str | None
    story_id: int | None
    payload: dict[str, Any]
    attempts: int
    delivered: tuple[int, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueRow:
    """What planning needs of one due alert row (no item text: a digest may hold thousands)."""

    id: int
    severity: str
    status: str
    hold_reason: str | None
    message_id: int | None
    message_kind: str | None


# Per-subscriber planning lock on PostgreSQL: this class id, and the subscriber's name
# hashed into the second key ("wwsb" in ASCII).
SUBSCRIBER_LOCK_CLASS = 0x77_77_73_62


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Seconds spent waiting for story locks (PostgreSQL), for benchmarks and metrics.
        self.lock_wait = 0.0

    # ------------------------------------------------------------------ lifecycle

    def check_ready(self) -> None:
        """Raise :class:`StorageError` unless the database is reachable and migrated to head."""
        from monitor.store.migrate import at_head, current_revision, head_revision

        try:
            if at_head(self.engine):  # one SELECT, no Alembic import: every start but the first
                return
            current = current_revision(self.engine)
        except OperationalError as exc:
            raise StorageError(f"database unreachable ({display_url(str(self.engine.url))}): {exc.orig}") from None
        head = head_revision()
        if current != head:
            raise StorageError(
                f"database is at revision {current or 'none'}, code expects {head}: run `wirewatch db upgrade`"
            )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, ProgrammingError) as exc:
            if _is_connection_error(exc):
                raise StorageError(f"database error: {exc.orig}") from exc
            raise

    # ------------------------------------------------------------------ sources

    def _names(self, names: Sequence[str]) -> Select[Any]:
        """Source names for ``sources.c.name.in_(…)``: one bound parameter, however many."""
        rows = text_list(self.engine.dialect, list(names), "sn")
        return select(rows.c.value)

    def sync_sources(self, configured: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make the sources table know every configured (name, type, url); new ones are due now.

        Sources removed from the config keep their rows (and items); they are simply no
        longer polled.  A changed URL resets the validators, which belonged to the old one.
        """
        wanted = list(configured)
        if not wanted:
            return
        insert = _dialect_insert(self.dialect)
        with self.begin() as conn:
            # Insert-or-ignore: several workers starting at once all sync the same config.
            conn.execute(
                insert(sources).on_conflict_do_nothing(index_elements=["name"]),
                [
                    {"name": n, "type": k, "url": u, "next_due": now, "created_at": now, "consecutive_failures": 0}
                    for n, k, u in wanted
                ],
            )
            stored = {
                r.name: (r.type, r.url) for r in conn.execute(select(sources.c.name, sources.c.type, sources.c.url))
            }
            for name, kind, url in wanted:
                if stored.get(name) != (kind, url):
                    conn.execute(
                        update(sources)
                        .where(sources.c.name == name)
                        .values(type=kind, url=url, etag=None, last_modified=None, body_hash=None, next_due=now)
                    )

    def source_states(self, names: Sequence[str] | None = None) -> list[SourceState]:
        query = select(*_SOURCE_COLUMNS).order_by(sources.c.name)
        if names is not None:
            query = query.where(sources.c.name.in_(self._names(names)))
        with self.begin() as conn:
            return [SourceState(*tuple(r)) for r in conn.execute(query)]

    def claim_due_sources(
        self, names: Sequence[str], now: datetime, lease: timedelta, owner: str, limit: int
    ) -> list[SourceState]:
        """Lease up to ``limit`` due sources among ``names`` so no other worker polls them now.

        Sources with a successful poll behind them are claimed before never-polled ones,
        each group the longest overdue first.
        """
        if not names:
            return []
        due = (
            select(sources.c.id)
            .where(
                sources.c.name.in_(self._names(names)),
                or_(sources.c.next_due.is_(None), sources.c.next_due <= now),
                or_(sources.c.lease_until.is_(None), sources.c.lease_until < now),
            )
            # Sources polled before come first, the longest overdue first: under a cold
            # backlog of never-polled sources (whose first poll is silent by default), a
            # live source falling due is polled at the next tick, not behind the backlog.
            .order_by(sources.c.first_success.is_(None), sources.c.next_due.asc().nulls_first(), sources.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(sources)
            .where(sources.c.id.in_(due.scalar_subquery()))
            .values(lease_until=now + lease, lease_owner=owner)
            .returning(*_SOURCE_COLUMNS)
        )
        with self.begin() as conn:
            return [SourceState(*tuple(r)) for r in conn.execute(stmt)]

    def renew_source_leases(self, ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend the leases this worker still holds; a dead worker's leases simply run out.

        On PostgreSQL a source row another transaction holds is skipped, not waited for:
        that is ingest finishing the poll (which clears the lease), and waiting for it,
        rows taken in another order, could deadlock the two.
        """
        if not ids:
            return 0
        held = (sources.c.id.in_(list(ids)), sources.c.lease_owner == owner, sources.c.lease_until.is_not(None))
        if self.dialect == "postgresql":
            free = select(sources.c.id).where(*held).order_by(sources.c.id).with_for_update(skip_locked=True)
            stmt = update(sources).where(sources.c.id.in_(free.scalar_subquery())).values(lease_until=until)
        else:
            stmt = update(sources).where(*held).values(lease_until=until)
        with self.begin() as conn:
            return conn.execute(stmt).rowcount or 0

    def release_source_leases(self, ids: Sequence[int], owner: str) -> int:
        """Give up the leases this worker holds on ``ids`` (polls whose outcome the database
        refused): they are due again at once, and their unchanged fetch state means the next
        poll fetches the same items again."""
        if not ids:
            return 0
        stmt = (
            update(sources)
            .where(sources.c.id.in_(list(ids)), sources.c.lease_owner == owner)
            .values(lease_until=None, lease_owner=None)
        )
        with self.begin() as conn:
            return conn.execute(stmt).rowcount or 0

    def set_enabled_override(self, name: str, value: bool | None) -> bool:
        """Record an operator's enable/disable of a source (None: the config decides again).

        False when no source of that name is stored.
        """
        with self.begin() as conn:
            return bool(
                conn.execute(update(sources).where(sources.c.name == name).values(enabled_override=value)).rowcount
            )

    def enabled_overrides(self) -> dict[str, bool]:
        """Sources whose enabled state an operator set against the config."""
        query = select(sources.c.name, sources.c.enabled_override).where(sources.c.enabled_override.is_not(None))
        with self.begin() as conn:
            return {r.name: bool(r.enabled_override) for r in conn.execute(query)}

    def next_due_source(self, names: Sequence[str]) -> tuple[str, datetime] | None:
        """The source among ``names`` due soonest, and when (for the cycle's summary line)."""
        if not names:
            return None
        query = (
            select(sources.c.name, sources.c.next_due)
            .where(sources.c.name.in_(self._names(names)), sources.c.next_due.is_not(None))
            .order_by(sources.c.next_due)
            .limit(1)
        )
        with self.begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        due = _aware(row.next_due)
        return None if due is None else (row.name, due)

    def reset_source(self, name: str, now: datetime) -> bool:
        """Forget a source's failure streak and make it due now (``wirewatch sources reset``)."""
        stmt = (
            update(sources)
            .where(sources.c.name == name)
            .values(consecutive_failures=0, last_error=None, error_class=None, failing_since=None, next_due=now)
        )
        with self.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def update_source(self, conn: Connection, source_id: int, change: FetchUpdate, now: datetime) -> None:
        values: dict[str, Any] = {
            "last_polled": now,
            "next_due": change.next_due,
            "lease_until": None,
            "lease_owner": None,
        }
        if change.success:
            values.update(
                etag=change.etag,
                last_modified=change.last_modified,
                body_hash=change.body_hash,
                last_success=now,
                first_success=func.coalesce(sources.c.first_success, now),
                consecutive_failures=0,
                last_error=None,
                error_class=None,
                failing_since=None,
                poll_interval=change.poll_interval,
                min_interval=change.min_interval,
                mean_gap=change.mean_gap,
                last_warning=change.warning,
            )
            if change.new_items:
                values.update(last_new_item=now, silence_noticed=None)
            elif change.silence_noticed is not None:
                values["silence_noticed"] = change.silence_noticed
        else:
            values.update(
                last_error=change.error,
                error_class=change.error_class,
                consecutive_failures=sources.c.consecutive_failures + 1,
                failing_since=func.coalesce(sources.c.failing_since, now),
            )
        conn.execute(update(sources).where(sources.c.id == source_id).values(**values))

    def known_keys(self, source_id: int, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` the source already has stored (to skip fetching their article pages)."""
        found: set[str] = set()
        with self.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                query = select(items.c.key).where(items.c.source_id == source_id, items.c.key.in_(chunk))
                found.update(r.key for r in conn.execute(query))
        return found

    def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except OperationalError as exc:
            raise StorageError(f"database unreachable: {exc.orig}") from None

    def last_poll_times(self) -> tuple[datetime | None, datetime | None]:
        """The newest ``last_polled`` and the newest ``last_success`` over all sources."""
        with self.begin() as conn:
            row = conn.execute(select(func.max(sources.c.last_polled), func.max(sources.c.last_success))).one()
        # SQLite's max() bypasses the column type: normalise to aware UTC here.
        return _aware(row[0]), _aware(row[1])

    def source_item_counts(self) -> dict[str, int]:
        with self.begin() as conn:
            rows = conn.execute(
                select(sources.c.name, func.count(items.c.id))
                .select_from(sources.outerjoin(items, items.c.source_id == sources.c.id))
                .group_by(sources.c.name)
            )
            return {row[0]: row[1] for row in rows}

    # ------------------------------------------------------------------ items

    def insert_new_items(
        self, conn: Connection, source_id: int, source_name: str, batch: Sequence[Item], now: datetime
    ) -> list[StoredItem]:
        """Insert ``batch``; return exactly the rows that were new (the database decides).

        Beyond the key (GUID, else URL), an entry that repeats one its source already has
        (same article URL, same normalised text, same normalised title within
        ``TITLE_WINDOW``: a fresh GUID or a bumped date on an unchanged entry) is not new
        either (:func:`monitor.core.dedupe.repeats`).  Those checks read before writing,
        which is safe because one source is polled by one worker at a time (its lease);
        the key is still decided by ``ON CONFLICT DO NOTHING``.  Entries already stored
        under their key are dropped first, so fingerprints are computed only for the few
        that may be new, not for the whole feed on every poll.
        """
        if not batch:
            return []
        # A feed may repeat a GUID within one document: the first copy wins, as the
        # database would decide across polls.
        unique: dict[str, Item] = {}
        for it in batch:
            unique.setdefault(it.key, it)
        for _, key in self.known_item_keys(conn, [(source_id, k) for k in unique]):
            del unique[key]
        if not unique:
            return []

        from monitor.core.dedupe import find_ambiguity, make_fingerprint, make_probe, repeats

        # Ambiguity is judged on the whole document, known entries included: a section
        # link shared by many entries shows only when they are seen together.
        ambiguity = find_ambiguity([make_probe(it.url, it.title, it.summary, it.text) for it in batch])
        prints = {k: make_fingerprint(it.url, it.title, it.summary, it.text, ambiguity) for k, it in unique.items()}
        seen = self.seen_entries(conn, [(source_id, fp) for fp in prints.values()]).get(source_id, [])
        for key, repeat in zip(list(prints), repeats(list(prints.values()), seen, now), strict=True):
            if repeat:
                del unique[key], prints[key]
        ids = self.insert_items(conn, [NewItemRow(source_id, it, prints[k]) for k, it in unique.items()], now)
        return [
            StoredItem(id=ids[(source_id, k)], source=source_name, item=it, first_seen=now, fingerprint=prints[k])
            for k, it in unique.items()
            if (source_id, k) in ids
        ]

    # ------------------------------------------------------------------ batched ingest (issue 13)
    #
    # Each of these is one statement for a whole batch of polls, whatever it holds: the
    # rows travel as one JSON parameter (monitor/store/bulk.py).

    def source_health(self, conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
        """The rows ingest reads before it writes a poll's fetch state, by source id."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = id_list(self.engine.dialect, wanted, "sh")
        query = select(
            sources.c.id,
            sources.c.first_success,
            sources.c.consecutive_failures,
            sources.c.poll_interval,
            sources.c.last_new_item,
            sources.c.mean_gap,
            sources.c.silence_noticed,
            sources.c.failing_since,
            sources.c.last_polled,
        ).where(sources.c.id.in_(select(rows.c.id)))
        return {int(r.id): r for r in conn.execute(query)}

    def known_item_keys(self, conn: Connection, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which ``(source_id, key)`` pairs are stored already."""
        wanted = sorted(set(pairs))
        if not wanted:
            return set()
        rows = json_rows(self.engine.dialect, [("source_id", BigInteger()), ("key", String())], wanted, "kk")
        query = select(items.c.source_id, items.c.key).join(
            rows, and_(items.c.source_id == rows.c.source_id, items.c.key == rows.c.key)
        )
        return {(int(r.source_id), str(r.key)) for r in conn.execute(query)}

    def seen_entries(self, conn: Connection, prints: Iterable[tuple[int, Fingerprint]]) -> dict[int, list[SeenEntry]]:
        """Per source, its stored entries sharing an exact key (URL, title, text) with ``prints``."""
        from monitor.core.dedupe import SeenEntry

        wanted: set[tuple[int, str, str]] = set()
        for source_id, fp in prints:
            for kind, value in (("u", fp.url_key), ("t", fp.title_hash), ("x", fp.text_hash)):
                if value:
                    wanted.add((source_id, kind, value))
        if not wanted:
            return {}
        rows = json_rows(
            self.engine.dialect,
            [("source_id", BigInteger()), ("kind", String()), ("value", String())],
            sorted(wanted),
            "se",
        )
        columns = (items.c.source_id, items.c.url_key, items.c.title_hash, items.c.text_hash, items.c.first_seen)
        # URL and text keys are looked up by value alone, on their own indexes, and the
        # source checked here: joined on the source too, SQLite walked the source's whole
        # (source_id, title_hash) index instead.  Titles use that composite index.
        parts = [
            select(*columns).where(column.in_(select(rows.c.value).where(rows.c.kind == kind)))
            for kind, column in (("u", items.c.url_key), ("x", items.c.text_hash))
        ]
        parts.append(
            select(*columns).join(
                rows,
                and_(items.c.source_id == rows.c.source_id, rows.c.kind == "t", items.c.title_hash == rows.c.value),
            )
        )
        sources_of = {sid for sid, _, _ in wanted}
        found: dict[int, list[SeenEntry]] = {}
        for r in conn.execute(union_all(*parts)):
            sid = int(r.source_id)
            if sid in sources_of:
                found.setdefault(sid, []).append(
                    SeenEntry(r.url_key, r.title_hash, r.text_hash, _aware(r.first_seen) or r.first_seen)
                )
        return found

    def insert_items(self, conn: Connection, batch: Sequence[NewItemRow], now: datetime) -> dict[tuple[int, str], int]:
        """Insert-or-ignore the batch's items; ``(source_id, key) → id`` of exactly the new ones.

        ``ON CONFLICT DO NOTHING RETURNING``: the database decides what is new.
        """
        if not batch:
            return {}
        rows = json_rows(
            self.engine.dialect,
            [(name, items.c[name].type) for name in _ITEM_COLUMNS],
            [
                (
                    r.source_id,
                    r.item.key,
                    r.item.guid,
                    r.item.url,
                    r.item.canonical_url,
                    r.item.title,
                    r.item.title_derived,
                    r.item.summary,
                    r.item.text,
                    r.item.language,
                    r.item.published,
                    now,
                    r.fingerprint.url_key,
                    r.fingerprint.title_hash,
                    r.fingerprint.text_hash,
                    r.text_state,
                    now if r.text_state == "wanted" else None,
                    r.text_error,
                    r.text_silent,
                )
                for r in batch
            ],
            "ni",
        )
        insert = _dialect_insert(self.dialect)
        stmt = (
            insert(items)
            # SQLite parses "SELECT … FROM v ON CONFLICT" as a join unless the SELECT has a WHERE.
            .from_select(list(_ITEM_COLUMNS), select(rows).where(true()))
            .on_conflict_do_nothing(index_elements=["source_id", "key"])
            .returning(items.c.id, items.c.source_id, items.c.key)
        )
        return {(int(r.source_id), str(r.key)): int(r.id) for r in conn.execute(stmt)}

    def insert_match_rows(
        self, conn: Connection, found: Iterable[tuple[int, RuleHit]], now: datetime, *, update_spans: bool = False
    ) -> None:
        """Store ``(item_id, hit)`` pairs: the matches of a whole batch in one statement.

        ``update_spans``: a match already stored gets the new spans (its item's body
        changed when its article text arrived, and spans are offsets into the body).
        """
        data = [
            (
                item_id,
                hit.rule,
                [{"field": s.field, "start": s.start, "end": s.end, "text": s.text} for s in hit.spans],
                now,
            )
            for item_id, hit in found
        ]
        if not data:
            return
        rows = json_rows(
            self.engine.dialect,
            [(name, matches.c[name].type) for name in ("item_id", "rule", "spans", "matched_at")],
            data,
            "mr",
        )
        insert = _dialect_insert(self.dialect)
        stmt = insert(matches).from_select(  # WHERE: SQLite's upsert-after-SELECT rule
            ["item_id", "rule", "spans", "matched_at"], select(rows).where(true())
        )
        if update_spans:
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["item_id", "rule"], set_={"spans": stmt.excluded.spans})
            )
        else:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["item_id", "rule"]))

    def alerts_per_item(self, conn: Connection, item_ids: Iterable[int]) -> dict[int, int]:
        """How many alert rows each of ``item_ids`` has (to tell each poll of a batch what it queued)."""
        wanted = sorted(set(item_ids))
        if not wanted:
            return {}
        rows = id_list(self.engine.dialect, wanted, "ai")
        query = (
            select(alerts.c.item_id, func.count())
            .where(alerts.c.item_id.in_(select(rows.c.id)))
            .group_by(alerts.c.item_id)
        )
        return {int(r[0]): int(r[1]) for r in conn.execute(query)}

    def update_sources(self, conn: Connection, changes: Sequence[tuple[int, FetchUpdate]], now: datetime) -> None:
        """Write the fetch state of every poll of a batch: one ``UPDATE … FROM`` for the
        successes (the 304s above all), one for the failures.  The same values as
        :meth:`update_source`, which stays the one-poll form."""
        dialect = self.engine.dialect
        ok = [(sid, c) for sid, c in changes if c.success]
        failed = [(sid, c) for sid, c in changes if not c.success]
        if ok:
            rows = json_rows(
                dialect,
                [
                    ("id", BigInteger()),
                    ("etag", Text()),
                    ("last_modified", Text()),
                    ("body_hash", String()),
                    ("next_due", UtcDateTime()),
                    ("poll_interval", Integer()),
                    ("min_interval", Integer()),
                    ("mean_gap", Integer()),
                    ("last_warning", Text()),
                    ("new_items", Integer()),
                    ("silence_noticed", UtcDateTime()),
                ],
                [
                    (
                        sid,
                        c.etag,
                        c.last_modified,
                        c.body_hash,
                        c.next_due,
                        c.poll_interval,
                        c.min_interval,
                        c.mean_gap,
                        c.warning,
                        1 if c.new_items else 0,
                        c.silence_noticed,
                    )
                    for sid, c in ok
                ],
                "su",
            )
            fresh = rows.c.new_items == 1
            conn.execute(
                update(sources)
                .where(sources.c.id == rows.c.id)
                .values(
                    last_polled=now,
                    next_due=rows.c.next_due,
                    lease_until=None,
                    lease_owner=None,
                    etag=rows.c.etag,
                    last_modified=rows.c.last_modified,
                    body_hash=rows.c.body_hash,
                    last_success=now,
                    first_success=func.coalesce(sources.c.first_success, now),
                    consecutive_failures=0,
                    last_error=None,
                    error_class=None,
                    failing_since=None,
                    poll_interval=rows.c.poll_interval,
                    min_interval=rows.c.min_interval,
                    mean_gap=rows.c.mean_gap,
                    last_warning=rows.c.last_warning,
                    last_new_item=case((fresh, now), else_=sources.c.last_new_item),
                    silence_noticed=case(
                        (fresh, None),
                        (rows.c.silence_noticed.is_not(None), rows.c.silence_noticed),
                        else_=sources.c.silence_noticed,
                    ),
                )
            )
        if failed:
            rows = json_rows(
                dialect,
                [("id", BigInteger()), ("next_due", UtcDateTime()), ("error", Text()), ("error_class", String())],
                [(sid, c.next_due, c.error, c.error_class) for sid, c in failed],
                "sf",
            )
            conn.execute(
                update(sources)
                .where(sources.c.id == rows.c.id)
                .values(
                    last_polled=now,
                    next_due=rows.c.next_due,
                    lease_until=None,
                    lease_owner=None,
                    last_error=rows.c.error,
                    error_class=rows.c.error_class,
                    consecutive_failures=sources.c.consecutive_failures + 1,
                    failing_since=func.coalesce(sources.c.failing_since, now),
                )
            )

    def recent_items(
        self, since: datetime | None, source: str | None, limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Stored items, newest first, with what listing, backtesting and backfill need."""
        query = (
            select(
                items.c.id,
                items.c.story_id,
                items.c.title,
                items.c.title_derived,
                items.c.url,
                sources.c.name.label("source"),
                items.c.language,
                items.c.published,
                items.c.first_seen,
                items.c.summary,
                items.c.text,
                items.c.text_state,
                items.c.text_error,
            )
            .join(sources, sources.c.id == items.c.source_id)
            .order_by(items.c.first_seen.desc(), items.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if since is not None:
            query = query.where(items.c.first_seen >= since)
        if source is not None:
            query = query.where(sources.c.name == source)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def backfills_done(self) -> set[tuple[str, str]]:
        with self.begin() as conn:
            return {
                (r.rule, r.query_hash) for r in conn.execute(select(rule_backfills.c.rule, rule_backfills.c.query_hash))
            }

    def record_backfill(self, conn: Connection, rule: str, query_hash: str, matched: int, now: datetime) -> None:
        insert = _dialect_insert(self.dialect)
        conn.execute(
            insert(rule_backfills)
            .values(rule=rule, query_hash=query_hash, done_at=now, matched=matched)
            .on_conflict_do_nothing(index_elements=["rule", "query_hash"])
        )

    def purge_unmatched(self, older_than: datetime) -> int:
        """Delete items first seen before ``older_than`` that no rule matched."""
        stmt = delete(items).where(
            items.c.first_seen < older_than, ~select(matches.c.id).where(matches.c.item_id == items.c.id).exists()
        )
        with self.begin() as conn:
            return conn.execute(stmt).rowcount or 0

    # ------------------------------------------------------------------ enrichment (the text queue)

    def claim_texts(
        self, now: datetime, lease: timedelta, limit: int, per_source: int, scan: int = 10_000
    ) -> list[TextTask]:
        """Lease up to ``limit`` wanted items that are due, at most ``per_source`` of each source.

        Sources take turns (every source's first item before any source's second), so one
        large backlog does not hold up the others.  A claim moves ``text_due`` a lease
        ahead and counts an attempt, in one ``UPDATE … WHERE id IN (… FOR UPDATE SKIP
        LOCKED) RETURNING`` (PostgreSQL; SQLite's one statement is atomic), so two
        workers never fetch one page at once; a worker killed mid-fetch leaves its items
        due again when the lease lapses.  The ranking reads at most ``scan`` due rows.
        Two workers that rank the same candidates at the same instant: the second skips
        the rows the first has locked and takes fewer this round, never the same ones.
        """
        if limit <= 0 or per_source <= 0:
            return []
        due = (
            select(items.c.id, items.c.source_id, items.c.text_due)
            .where(items.c.text_state == "wanted", items.c.text_due <= now)
            .order_by(items.c.text_due, items.c.id)
            .limit(scan)
            .subquery("td")
        )
        rank = func.row_number().over(partition_by=due.c.source_id, order_by=(due.c.text_due, due.c.id))
        ranked = select(due.c.id, due.c.text_due, rank.label("turn")).subquery("tr")
        picked = (
            select(ranked.c.id)
            .where(ranked.c.turn <= per_source)
            .order_by(ranked.c.turn, ranked.c.text_due, ranked.c.id)
            .limit(limit)
        )
        # Checked again on the row itself: another worker may have claimed it meanwhile.
        lockable = select(items.c.id).where(
            items.c.id.in_(picked.scalar_subquery()), items.c.text_state == "wanted", items.c.text_due <= now
        )
        if self.dialect == "postgresql":
            lockable = lockable.with_for_update(skip_locked=True)
        stmt = (
            update(items)
            .where(items.c.id.in_(lockable.scalar_subquery()))
            .values(text_due=now + lease, text_attempts=items.c.text_attempts + 1)
            .returning(items.c.id)
        )
        with self.begin() as conn:
            ids = sorted(int(r.id) for r in conn.execute(stmt))
            if not ids:
                return []
            rows = id_list(self.engine.dialect, ids, "ct")
            query = (
                select(
                    items.c.id,
                    items.c.source_id,
                    sources.c.name.label("source"),
                    sources.c.url.label("source_url"),
                    items.c.url,
                    items.c.title,
                    items.c.title_derived,
                    items.c.summary,
                    items.c.language,
                    items.c.published,
                    items.c.first_seen,
                    items.c.text_silent,
                    items.c.text_attempts,
                    items.c.story_id,
                )
                .join(sources, sources.c.id == items.c.source_id)
                .where(items.c.id.in_(select(rows.c.id)))
                .order_by(items.c.id)
            )
            return [
                TextTask(
                    item_id=int(r.id),
                    source_id=int(r.source_id),
                    source=r.source,
                    source_url=r.source_url,
                    url=r.url,
                    title=r.title,
                    title_derived=bool(r.title_derived),
                    summary=r.summary,
                    language=r.language,
                    published=r.published,
                    first_seen=r.first_seen,
                    silent=bool(r.text_silent),
                    attempts=int(r.text_attempts),
                    story_id=int(r.story_id) if r.story_id is not None else None,
                )
                for r in conn.execute(query)
            ]

    def renew_text_leases(self, ids: Sequence[int], until: datetime) -> int:
        """Keep claimed items leased while their pages are being read."""
        if not ids:
            return 0
        rows = id_list(self.engine.dialect, sorted(set(ids)), "rt")
        stmt = (
            update(items)
            .where(items.c.id.in_(select(rows.c.id)), items.c.text_state == "wanted")
            .values(text_due=until)
        )
        with self.begin() as conn:
            return conn.execute(stmt).rowcount or 0

    def store_texts(self, conn: Connection, updates: Sequence[TextUpdate]) -> dict[int, int | None]:
        """Write what a batch of article pages gave; ``item id → story id`` of the items that got their text.

        Two statements at most (texts, failures), each an ``UPDATE … FROM`` of the whole
        batch, and only on items still wanted: a page read twice (a lease that lapsed
        while it was read) is recorded, and re-matched, once.
        """
        dialect = self.engine.dialect
        done = [u for u in updates if u.state == "done"]
        other = [u for u in updates if u.state != "done"]
        got: dict[int, int | None] = {}
        # Still wanted, written so that no index can serve it: on the state index SQLite's
        # planner drove the join from every wanted item (tens of thousands after a cold
        # poll) and scanned the batch's JSON for each, instead of looking up the batch's
        # ids: 9.4 of a 24 s poll of 300 feeds with full text (tests/store/test_sql.py).
        wanted = func.coalesce(items.c.text_state, "") == "wanted"
        if done:
            rows = json_rows(
                dialect, [("id", BigInteger()), ("text", Text())], [(u.item_id, u.text) for u in done], "tx"
            )
            result = conn.execute(
                update(items)
                .where(items.c.id == rows.c.id, wanted)
                .values(text=rows.c.text, text_state="done", text_due=None, text_error=None)
                .returning(items.c.id, items.c.story_id)
            )
            got = {int(r.id): (int(r.story_id) if r.story_id is not None else None) for r in result}
        if other:
            rows = json_rows(
                dialect,
                [("id", BigInteger()), ("state", String()), ("due", UtcDateTime()), ("error", Text())],
                [(u.item_id, u.state, u.due, u.error) for u in other],
                "tf",
            )
            conn.execute(
                update(items)
                .where(items.c.id == rows.c.id, wanted)
                .values(text_state=rows.c.state, text_due=rows.c.due, text_error=rows.c.error)
            )
        return got

    def match_spans(self, conn: Connection, item_ids: Sequence[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
        """The stored matches of ``item_ids``: item id → rule → spans."""
        return self._match_spans(conn, item_ids) if item_ids else {}

    def text_queue(self, now: datetime) -> dict[str, int]:
        """Items by enrichment state (``wanted`` split into ``due`` and ``waiting``), for /metrics."""
        query = (
            select(items.c.text_state, (items.c.text_due <= now).label("due"), func.count())
            .where(items.c.text_state.is_not(None))
            .group_by(items.c.text_state, "due")
        )
        out: dict[str, int] = {}
        with self.begin() as conn:
            for state, due, count in conn.execute(query):
                key = ("due" if due else "waiting") if state == "wanted" else str(state)
                out[key] = out.get(key, 0) + int(count)
        return out

    # ------------------------------------------------------------------ matches and alerts

    def insert_matches(self, conn: Connection, item_id: int, hits: Sequence[RuleHit], now: datetime) -> None:
        if not hits:
            return
        insert = _dialect_insert(self.dialect)
        conn.execute(
            insert(matches).on_conflict_do_nothing(index_elements=["item_id", "rule"]),
            [
                {
                    "item_id": item_id,
                    "rule": hit.rule,
                    "spans": [{"field": s.field, "start": s.start, "end": s.end, "text": s.text} for s in hit.spans],
                    "matched_at": now,
                }
                for hit in hits
            ],
        )

    def enqueue_alerts(self, conn: Connection, new: Sequence[NewAlert], now: datetime) -> int:
        """Queue one alert row per story (or item) and subscriber, naming every rule that fired.

        ``new`` holds one :class:`NewAlert` per rule and subscriber, as the policy decided
        them.  They fold here into one row per (story, subscriber): its item is the first
        one that alerted, ``rules`` lists every rule that fired on that item for the
        subscriber, and a critical rule wins the routing (``rule``, ``severity`` and the
        earliest ``next_attempt``, so a critical match skips a digest's wait).  Rules that
        fired on a *later* copy of the same story add no row: the story alerts once (while
        its row is still held for corroboration, they join it: :meth:`_join_waiting`).
        """
        if not new:
            return 0
        merged: dict[tuple[str, int, str], dict[str, Any]] = {}
        for a in new:
            key = ("story", a.story_id, a.subscriber) if a.story_id is not None else ("item", a.item_id, a.subscriber)
            row = merged.get(key)
            if row is None:
                merged[key] = {
                    "story_id": a.story_id,
                    "item_id": a.item_id,
                    "rule": a.rule,
                    "rules": [a.rule],
                    "subscriber": a.subscriber,
                    "severity": a.severity,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt": a.next_attempt,
                    "delivered": [],
                    "created_at": now,
                    "unknown_sends": 0,
                    "_needs": [a.need],
                }
                continue
            if a.item_id != row["item_id"] or a.rule in row["rules"]:
                continue
            row["rules"].append(a.rule)
            row["_needs"].append(a.need)
            row["next_attempt"] = min(row["next_attempt"], a.next_attempt)
            if a.severity == "critical" and row["severity"] != "critical":
                row["severity"], row["rule"] = "critical", a.rule
        for row in merged.values():
            # The routing rule first, then the others in the order they fired.
            row["rules"] = [row["rule"]] + [r for r in row["rules"] if r != row["rule"]]
            # Held for corroboration only when every rule that fired asks for it (revision 0012).
            need = merge_requirements(row.pop("_needs"))
            row["need_outlets"] = need.min_outlets if need else None
            row["need_languages"] = need.min_languages if need else None
            row["wait_until"] = need.deadline if need else None
            if need is not None:
                row["status"] = "waiting"
        insert = _dialect_insert(self.dialect)
        # No conflict target: a row is skipped when its item or its story is already
        # queued for the subscriber, so a story alerts a subscriber once.
        # RETURNING counts what was really queued (executemany's rowcount is -1 on psycopg).
        stmt = insert(alerts).on_conflict_do_nothing().returning(alerts.c.story_id, alerts.c.subscriber)
        queued = conn.execute(stmt, list(merged.values())).all()
        inserted = {(r.story_id, r.subscriber) for r in queued}
        skipped = {
            (row["story_id"], row["subscriber"]): row["rules"]
            for row in merged.values()
            if row["story_id"] is not None and (row["story_id"], row["subscriber"]) not in inserted
        }
        if skipped:
            self._join_waiting(conn, skipped)
        return len(queued)

    def _join_waiting(self, conn: Connection, skipped: Mapping[tuple[int, str], Sequence[str]]) -> None:
        """Rules that fired on a later copy of a story whose alert is still held for
        corroboration join that alert: its one message will name them, and one that
        asks for no corroboration lets it go at the next dispatch run (revision 0012)."""
        for chunk in _chunks(sorted({story for story, _ in skipped})):
            waiting = conn.execute(
                select(alerts.c.id, alerts.c.story_id, alerts.c.subscriber, alerts.c.rules).where(
                    alerts.c.status == "waiting", alerts.c.story_id.in_(chunk)
                )
            ).all()
            for w in waiting:
                rules = list(w.rules or [])
                added = [r for r in skipped.get((w.story_id, w.subscriber), ()) if r not in rules]
                if added:
                    conn.execute(
                        update(alerts)
                        .where(alerts.c.id == w.id, alerts.c.status == "waiting")
                        .values(rules=rules + added)
                    )

    # ------------------------------------------------------------------ planning (issue 19)

    @contextmanager
    def subscriber_transaction(self, subscriber: str) -> Iterator[Connection]:
        """One transaction that no other dispatcher plans ``subscriber`` in at the same time.

        PostgreSQL: ``pg_advisory_xact_lock`` on the subscriber (released at commit), so
        dispatchers of different subscribers never wait on each other.  SQLite has one
        writer: ``BEGIN IMMEDIATE`` takes it before the first read, so the plan reads
        what the last writer committed and nobody writes in between.
        """
        with self.begin() as conn:
            if self.dialect == "postgresql":
                key = int.from_bytes(hashlib.sha256(subscriber.encode()).digest()[:4], "big", signed=True)
                conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": SUBSCRIBER_LOCK_CLASS, "b": key})
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def _due(self, now: datetime) -> Any:
        return or_(
            and_(alerts.c.status == "pending", alerts.c.next_attempt <= now),
            and_(alerts.c.status == "sending", alerts.c.lease_until < now),
        )

    def due_subscribers(self, now: datetime) -> list[str]:
        """Subscribers with at least one alert due now (pending and due, or a lapsed send lease)."""
        query = select(alerts.c.subscriber).where(self._due(now)).distinct()
        with self.begin() as conn:
            return sorted(r.subscriber for r in conn.execute(query))

    def due_alerts(self, conn: Connection, subscriber: str, now: datetime) -> list[DueRow]:
        """Every alert of ``subscriber`` due now, oldest first: the whole set, not a batch."""
        query = (
            select(
                alerts.c.id,
                alerts.c.severity,
                alerts.c.status,
                alerts.c.hold_reason,
                alerts.c.message_id,
                messages.c.kind.label("message_kind"),
            )
            .outerjoin(messages, messages.c.id == alerts.c.message_id)
            .where(alerts.c.subscriber == subscriber, self._due(now))
            .order_by(alerts.c.id)
        )
        return [DueRow(**dict(r._mapping)) for r in conn.execute(query)]

    def recent_messages_in(self, conn: Connection, subscriber: str, since: datetime) -> list[tuple[str, datetime]]:
        query = select(messages.c.kind, messages.c.planned_at).where(
            messages.c.subscriber == subscriber, messages.c.planned_at > since
        )
        return [(r.kind, r.planned_at) for r in conn.execute(query)]

    def hold_in(self, conn: Connection, alert_ids: Sequence[int], *, until: datetime, reason: str) -> None:
        """Put due rows back unsent until ``until`` (quiet hours, rate limit); not an attempt."""
        for chunk in _chunks(alert_ids):
            conn.execute(
                update(alerts)
                .where(alerts.c.id.in_(chunk))
                .values(status="pending", next_attempt=until, lease_until=None, hold_reason=reason)
            )

    def plan_message_in(
        self, conn: Connection, subscriber: str, kind: str, alert_ids: Sequence[int], now: datetime
    ) -> int:
        """Record a message and the rows it carries; returns its id (counts towards the rate at once)."""
        message_id = int(
            conn.execute(
                messages.insert()
                .values(subscriber=subscriber, kind=kind, alert_count=len(alert_ids), planned_at=now)
                .returning(messages.c.id)
            ).scalar_one()
        )
        for chunk in _chunks(alert_ids):
            conn.execute(update(alerts).where(alerts.c.id.in_(chunk)).values(message_id=message_id, hold_reason=None))
        return message_id

    def lease_in(self, conn: Connection, alert_ids: Sequence[int], now: datetime, lease: timedelta) -> None:
        """Lease rows for sending; each lease is one delivery attempt."""
        for chunk in _chunks(alert_ids):
            conn.execute(
                update(alerts)
                .where(alerts.c.id.in_(chunk))
                .values(status="sending", lease_until=now + lease, attempts=alerts.c.attempts + 1)
            )

    def fail_in(self, conn: Connection, alert_ids: Sequence[int], now: datetime, error: str) -> None:
        for chunk in _chunks(alert_ids):
            conn.execute(
                update(alerts).where(alerts.c.id.in_(chunk)).values(status="failed", lease_until=None, last_error=error)
            )

    def renew_alert_leases(self, alert_ids: Sequence[int], until: datetime) -> int:
        """Extend the leases of sends still in flight (rows still ``sending``)."""
        renewed = 0
        with self.begin() as conn:
            for chunk in _chunks(alert_ids):
                stmt = update(alerts).where(alerts.c.id.in_(chunk), alerts.c.status == "sending")
                renewed += conn.execute(stmt.values(lease_until=until)).rowcount or 0
        return renewed

    def record_send(
        self,
        alert_ids: Sequence[int],
        *,
        message_id: int | None,
        status: str,
        now: datetime,
        delivered: Sequence[int],
        error: str | None = None,
        next_attempt: datetime | None = None,
        unknown: bool = False,
        accepted: bool = False,
    ) -> None:
        """Record the outcome of one message for every row it carried, in one transaction.

        Only rows still ``sending`` are touched (a row another dispatcher already finished
        after a lapsed lease is not overwritten).  ``unknown`` counts a timed-out send;
        ``accepted`` stamps the message's first acceptance by any URL.
        """
        values = _outcome_values(status, now, delivered, error, next_attempt)
        if unknown:
            values["unknown_sends"] = alerts.c.unknown_sends + 1
        with self.begin() as conn:
            for chunk in _chunks(alert_ids):
                conn.execute(
                    update(alerts).where(alerts.c.id.in_(chunk), alerts.c.status == "sending").values(**values)
                )
            if accepted and message_id is not None:
                conn.execute(
                    update(messages)
                    .where(messages.c.id == message_id, messages.c.sent_at.is_(None))
                    .values(sent_at=now)
                )

    def story_reach(self, item_ids: Sequence[int]) -> dict[int, Reach]:
        """``item → reach`` of its story as stored now: every copy's outlet, language and
        first-seen time.  An item with no story reaches its own source only."""
        unique = sorted(set(item_ids))
        out: dict[int, Reach] = {}
        with self.begin() as conn:
            for chunk in _chunks(unique):
                mine = conn.execute(
                    select(items.c.id, items.c.story_id, sources.c.name, items.c.language, items.c.first_seen)
                    .join(sources, sources.c.id == items.c.source_id)
                    .where(items.c.id.in_(chunk))
                ).all()
                reaches = self._reaches(conn, sorted({r.story_id for r in mine if r.story_id is not None}))
                for r in mine:
                    reach = reaches.get(r.story_id) if r.story_id is not None else None
                    out[r.id] = reach or make_reach([(r.name, r.language, r.first_seen)])
        return out

    def story_reaches(self, story_ids: Sequence[int]) -> dict[int, Reach]:
        """``story → reach`` as stored now."""
        with self.begin() as conn:
            return self._reaches(conn, sorted(set(story_ids)))

    def _reaches(self, conn: Connection, story_ids: Sequence[int]) -> dict[int, Reach]:
        members: dict[int, list[tuple[str, str | None, datetime]]] = {}
        for chunk in _chunks(story_ids):
            rows = conn.execute(
                select(items.c.story_id, sources.c.name, items.c.language, items.c.first_seen)
                .join(sources, sources.c.id == items.c.source_id)
                .where(items.c.story_id.in_(chunk))
            )
            for m in rows:
                members.setdefault(m.story_id, []).append((m.name, m.language, m.first_seen))
        return {story: make_reach(its) for story, its in members.items()}

    # ------------------------------------------------------------------ corroboration (revision 0012)

    def waiting_alerts(self) -> list[dict[str, Any]]:
        """Alerts held for corroboration: id, item, story, subscriber, rules, deadline."""
        query = select(
            alerts.c.id,
            alerts.c.item_id,
            alerts.c.story_id,
            alerts.c.subscriber,
            alerts.c.rule,
            alerts.c.rules,
            alerts.c.wait_until,
        ).where(alerts.c.status == "waiting")
        with self.begin() as conn:
            return [dict(r._mapping) | {"rules": tuple(r.rules or (r.rule,))} for r in conn.execute(query)]

    def release_alerts(self, released: Sequence[tuple[int, str]]) -> int:
        """Make held rows ``pending`` (``(id, "confirmed" | "unconfirmed")``); guarded by
        ``status = 'waiting'``, so two dispatchers releasing one row write the same thing
        once, and a row is planned (and sent) only from ``pending``."""
        done = 0
        with self.begin() as conn:
            for alert_id, how in released:
                stmt = update(alerts).where(alerts.c.id == alert_id, alerts.c.status == "waiting")
                done += conn.execute(stmt.values(status="pending", released=how)).rowcount or 0
        return done

    def alerted_stories_grown(self, since: datetime) -> list[tuple[int, int, str, datetime]]:
        """``(alert, story, subscriber, sent_at)`` of sent alerts whose story gained copies
        after the send and was last seen after ``since``."""
        query = (
            select(alerts.c.id, alerts.c.story_id, alerts.c.subscriber, alerts.c.sent_at)
            .join(stories, stories.c.id == alerts.c.story_id)
            .where(
                alerts.c.status == "sent",
                alerts.c.sent_at.is_not(None),
                stories.c.last_seen >= since,
                stories.c.last_seen > alerts.c.sent_at,
            )
        )
        with self.begin() as conn:
            return [(r.id, r.story_id, r.subscriber, r.sent_at) for r in conn.execute(query)]

    def updates_done(self, story_ids: Sequence[int]) -> dict[tuple[int, str], set[int]]:
        """``(story, subscriber) → thresholds`` already announced (or queued)."""
        out: dict[tuple[int, str], set[int]] = {}
        with self.begin() as conn:
            for chunk in _chunks(sorted(set(story_ids))):
                rows = conn.execute(
                    select(bulletins.c.story_id, bulletins.c.subscriber, bulletins.c.payload).where(
                        bulletins.c.kind == "update", bulletins.c.story_id.in_(chunk)
                    )
                )
                for r in rows:
                    out.setdefault((r.story_id, r.subscriber), set()).add(int(r.payload["threshold"]))
        return out

    def add_bulletins(self, rows: Sequence[dict[str, Any]], now: datetime) -> int:
        """Queue bulletins; one whose (subscriber, key) exists is skipped.  Returns how many were queued."""
        if not rows:
            return 0
        values = [
            {
                "rule": None,
                "story_id": None,
                **r,
                "status": "pending",
                "attempts": 0,
                "next_attempt": now,
                "delivered": [],
                "created_at": now,
            }
            for r in rows
        ]
        insert = _dialect_insert(self.dialect)
        with self.begin() as conn:
            result = conn.execute(insert(bulletins).on_conflict_do_nothing().returning(bulletins.c.id), values)
            return len(result.all())

    def last_surges(self, rules: Sequence[str]) -> dict[str, datetime]:
        query = (
            select(bulletins.c.rule, func.max(bulletins.c.created_at).label("at"))
            .where(bulletins.c.kind == "surge", bulletins.c.rule.in_(list(rules)))
            .group_by(bulletins.c.rule)
        )
        with self.begin() as conn:
            found = {r.rule: _aware(r.at) for r in conn.execute(query)}
        return {rule: at for rule, at in found.items() if at is not None}

    def surge_counts(self, rules: Sequence[str], now: datetime) -> dict[str, tuple[int, int]]:
        """``rule → (matches in the last hour, matches in the 7 days before it)``: two
        range counts on the (matched_at, rule) covering index."""
        hour = now - timedelta(hours=1)
        start = hour - SURGE_BASELINE
        query = (
            select(
                matches.c.rule,
                func.count().filter(matches.c.matched_at > hour).label("last_hour"),
                func.count().filter(matches.c.matched_at <= hour).label("baseline"),
            )
            .where(matches.c.matched_at > start, matches.c.matched_at <= now, matches.c.rule.in_(list(rules)))
            .group_by(matches.c.rule)
        )
        with self.begin() as conn:
            return {r.rule: (int(r.last_hour), int(r.baseline)) for r in conn.execute(query)}

    def match_times(self, rule: str, since: datetime, until: datetime) -> list[datetime]:
        query = select(matches.c.matched_at).where(
            matches.c.rule == rule, matches.c.matched_at > since, matches.c.matched_at <= until
        )
        with self.begin() as conn:
            return [r.matched_at for r in conn.execute(query)]

    def top_stories(self, rule: str, since: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
        """The stories with most matches of ``rule`` in ``(since, until]``: id, title, link, copies."""
        story = func.coalesce(items.c.story_id, -items.c.id)
        query = (
            select(story.label("key"), func.count().label("n"), func.min(items.c.id).label("first"))
            .join(items, items.c.id == matches.c.item_id)
            .where(matches.c.rule == rule, matches.c.matched_at > since, matches.c.matched_at <= until)
            .group_by(story)
            .order_by(func.count().desc(), func.min(items.c.id))
            .limit(limit)
        )
        with self.begin() as conn:
            found = conn.execute(query).all()
            firsts = {
                r.id: r
                for r in conn.execute(
                    select(items.c.id, items.c.title, items.c.url, items.c.story_id).where(
                        items.c.id.in_([f.first for f in found])
                    )
                )
            }
        out = []
        for f in found:
            it = firsts[f.first]
            out.append({"story_id": it.story_id, "title": it.title, "url": it.url, "matches": int(f.n)})
        return out

    def claim_bulletins(self, now: datetime, lease: timedelta, limit: int = 100) -> list[BulletinRow]:
        """Lease due bulletins (pending and due, or a lapsed lease); each lease is one attempt."""
        due = or_(
            and_(bulletins.c.status == "pending", bulletins.c.next_attempt <= now),
            and_(bulletins.c.status == "sending", bulletins.c.lease_until < now),
        )
        query = select(bulletins).where(due).order_by(bulletins.c.id).limit(limit)
        # A plain read first: most runs find nothing, and on SQLite the claim below takes
        # the one write lock, which ingest should not wait for on every dispatch run.
        with self.begin() as conn:
            if conn.execute(select(bulletins.c.id).where(due).limit(1)).first() is None:
                return []
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            rows = [dict(r._mapping) for r in conn.execute(query)]
            ids = [r["id"] for r in rows]
            for chunk in _chunks(ids):
                conn.execute(
                    update(bulletins)
                    .where(bulletins.c.id.in_(chunk))
                    .values(status="sending", lease_until=now + lease, attempts=bulletins.c.attempts + 1)
                )
        return [
            BulletinRow(
                id=r["id"],
                kind=r["kind"],
                subscriber=r["subscriber"],
                key=r["key"],
                rule=r["rule"],
                story_id=r["story_id"],
                payload=dict(r["payload"]),
                attempts=r["attempts"] + 1,
                delivered=tuple(r["delivered"] or ()),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def record_bulletin(
        self,
        bulletin_id: int,
        *,
        status: str,
        now: datetime,
        delivered: Sequence[int],
        error: str | None = None,
        next_attempt: datetime | None = None,
        refund: bool = False,
    ) -> None:
        """Record one bulletin's outcome (only while it is still ``sending``); ``refund``
        puts it back without counting the lease as an attempt (quiet hours, stopping)."""
        values = _outcome_values(status, now, delivered, error, next_attempt)
        if refund:
            values["attempts"] = bulletins.c.attempts - 1
        with self.begin() as conn:
            conn.execute(
                update(bulletins).where(bulletins.c.id == bulletin_id, bulletins.c.status == "sending").values(**values)
            )

    def story_bulletins(self, story_id: int) -> list[dict[str, Any]]:
        """The corroboration updates queued for one story (the console's story page)."""
        query = select(bulletins).where(bulletins.c.story_id == story_id).order_by(bulletins.c.id)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def bulletin_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(bulletins).order_by(bulletins.c.id)
        if kind is not None:
            query = query.where(bulletins.c.kind == kind)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless the database accepts a write now.

        SQLite: take the write lock (``BEGIN IMMEDIATE``) and write nothing; a read-only
        file system or a held lock fails here (within a short busy timeout).
        PostgreSQL: a read-only server (a standby, ``default_transaction_read_only``) says so.
        """
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.exec_driver_sql("PRAGMA busy_timeout=2000")
                    try:
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        # A read-only file system lets the lock be taken and fails only
                        # when a page is written: write the header's user_version back
                        # unchanged and commit, which SQLite still writes to the WAL.
                        version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
                        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
                        conn.commit()
                    finally:
                        conn.rollback()
                        conn.exec_driver_sql("PRAGMA busy_timeout=30000")
                else:
                    read_only = conn.execute(text("SELECT current_setting('transaction_read_only')")).scalar_one()
                    conn.rollback()
                    if read_only == "on":
                        raise StorageError("database is read-only")
        except (OperationalError, ProgrammingError) as exc:
            raise StorageError(f"database refuses writes: {exc.orig}") from None

    def retry_alerts(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Put failed (dead-lettered) and unknown alerts back in the queue, all of them when ``ids`` is None."""
        stmt = (
            update(alerts)
            .where(alerts.c.status.in_(["failed", "unknown"]))
            .values(status="pending", next_attempt=now, attempts=0, unknown_sends=0)
        )
        if ids is not None:
            stmt = stmt.where(alerts.c.id.in_(list(ids)))
        with self.begin() as conn:
            return conn.execute(stmt).rowcount or 0

    def alert_rows(
        self,
        *,
        ids: Sequence[int] | None = None,
        status: str | None = None,
        limit: int = 1000,
        by_item: bool = False,
        offset: int = 0,
    ) -> list[AlertRow]:
        """Outbox rows, newest first; ``ids`` are alert ids, or item ids with ``by_item``."""
        query = (
            select(
                alerts.c.id,
                alerts.c.item_id,
                alerts.c.rule,
                alerts.c.subscriber,
                alerts.c.severity,
                alerts.c.status,
                alerts.c.attempts,
                alerts.c.next_attempt,
                alerts.c.last_error,
                alerts.c.delivered,
                alerts.c.created_at,
                alerts.c.sent_at,
                items.c.title,
                items.c.url,
                sources.c.name.label("source"),
                items.c.language,
                items.c.published,
                items.c.first_seen,
                items.c.summary,
                items.c.text,
                alerts.c.hold_reason,
                alerts.c.message_id,
                messages.c.kind.label("message_kind"),
                alerts.c.rules,
                alerts.c.unknown_sends,
                alerts.c.story_id,
                alerts.c.need_outlets,
                alerts.c.need_languages,
                alerts.c.wait_until,
                alerts.c.released,
            )
            .join(items, items.c.id == alerts.c.item_id)
            .join(sources, sources.c.id == items.c.source_id)
            .outerjoin(messages, messages.c.id == alerts.c.message_id)
            .order_by(alerts.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            query = query.where(alerts.c.status == status)
        key = alerts.c.item_id if by_item else alerts.c.id
        with self.begin() as conn:
            if ids is None:
                found = [dict(r._mapping) for r in conn.execute(query)]
            else:
                # In chunks: a digest can hold more rows than SQLite takes parameters.
                found = [dict(r._mapping) for c in _chunks(ids) for r in conn.execute(query.where(key.in_(c)))]
                found.sort(key=lambda m: -int(m["id"]))
            spans = self._match_spans(conn, [m["item_id"] for m in found])
        out = []
        for m in found:
            m["delivered"] = tuple(m["delivered"] or ())
            m["rules"] = tuple(m["rules"] or (m["rule"],))
            of_item = spans.get(m["item_id"], {})
            m["rule_spans"] = {rule: of_item[rule] for rule in m["rules"] if rule in of_item}
            m["spans"] = [sp for rule in m["rules"] for sp in of_item.get(rule, [])]
            out.append(AlertRow(**m))
        return out

    def _match_spans(self, conn: Connection, item_ids: Sequence[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
        """``item → rule → spans`` of the stored matches of ``item_ids``."""
        out: dict[int, dict[str, list[dict[str, Any]]]] = {}
        unique = sorted(set(item_ids))
        for i in range(0, len(unique), _CHUNK):
            query = select(matches.c.item_id, matches.c.rule, matches.c.spans).where(
                matches.c.item_id.in_(unique[i : i + _CHUNK])
            )
            for r in conn.execute(query):
                out.setdefault(r.item_id, {})[r.rule] = list(r.spans or [])
        return out

    def alert_counts(self) -> dict[str, int]:
        with self.begin() as conn:
            rows = conn.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status))
            return {row[0]: row[1] for row in rows}

    # ------------------------------------------------------------------ stories (issue 4)

    def lock_story_keys(self, conn: Connection, keys: Iterable[int]) -> None:
        """Serialise story assignment with every transaction that shares one of ``keys``, until commit.

        On PostgreSQL, one transaction-scoped advisory lock per key an item can join a
        story by (its article URL, its text, its LSH band keys: ``story_lock_keys``),
        taken in sorted order in one statement, so two transactions wait for each other
        only when they carry copies of one story, and cannot deadlock.  A waiter's lookups
        run after the holder committed and see its stories (READ COMMITTED takes a new
        snapshot per statement).  Each lock takes a slot in PostgreSQL's shared lock
        table, so a transaction takes at most :data:`STORY_LOCK_BUDGET`; the first, in the
        same sorted statement, is a *shared* lock on :data:`STORY_LOCK_ALL`.  A transaction
        with more keys (a caller that did not cut its batch) takes that one lock
        exclusively instead: it waits for every other assignment and holds them off, which
        is correct at any size and costs one lock.  SQLite admits one writer at a time,
        and this transaction has already written (its items), so it needs none.
        """
        if self.dialect != "postgresql":
            return
        wanted = sorted(set(keys) - {STORY_LOCK_ALL})
        if not wanted:
            return
        started = time.perf_counter()
        if len(wanted) > STORY_LOCK_BUDGET:
            log.info("story assignment of %d keys takes the exclusive story lock", len(wanted))
            conn.execute(select(func.pg_advisory_xact_lock(STORY_LOCK_ALL)))
        else:
            rows = id_list(self.engine.dialect, [STORY_LOCK_ALL, *wanted], "lk")
            ordered = select(rows.c.id).order_by(rows.c.id).subquery("lk_sorted")
            take = case(
                (ordered.c.id == STORY_LOCK_ALL, func.pg_advisory_xact_lock_shared(ordered.c.id)),
                else_=func.pg_advisory_xact_lock(ordered.c.id),
            )
            conn.execute(select(func.count(take)).select_from(ordered))
        self.lock_wait += time.perf_counter() - started

    def lock_story_rows(self, conn: Connection, ids: Iterable[int]) -> bool:
        """Lock the stored stories a plan joins or merges, in id order; False if one is gone.

        PostgreSQL only.  Two transactions that share no story key may still join the same
        story; taking its row lock before writing, in one sorted statement, makes them
        queue instead of deadlocking on its row and its alerts' unique keys.  A story that
        vanished (merged away by another worker since the lookup) means the plan is stale.
        """
        wanted = sorted(set(ids))
        if self.dialect != "postgresql" or not wanted:
            return True
        started = time.perf_counter()
        rows = id_list(self.engine.dialect, wanted, "ls")
        query = select(stories.c.id).where(stories.c.id.in_(select(rows.c.id))).order_by(stories.c.id).with_for_update()
        found = conn.execute(query).all()
        self.lock_wait += time.perf_counter() - started
        return len(found) == len(wanted)

    def stories_for_keys(
        self, conn: Connection, url_keys: Iterable[str], text_hashes: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """For a batch: the oldest story per article URL key, and per text hash (one statement)."""
        urls, texts = sorted(set(url_keys)), sorted(set(text_hashes))
        if not urls and not texts:
            return {}, {}
        dialect = self.engine.dialect
        wanted = json_rows(
            dialect,
            [("kind", String()), ("value", String())],
            [*(("u", u) for u in urls), *(("t", t) for t in texts)],
            "sk",
        )
        by_url = (
            select(
                literal("u").label("kind"), items.c.url_key.label("value"), func.min(items.c.story_id).label("story")
            )
            .where(
                items.c.url_key.in_(select(wanted.c.value).where(wanted.c.kind == "u")), items.c.story_id.is_not(None)
            )
            .group_by(items.c.url_key)
        )
        by_text = (
            select(
                literal("t").label("kind"), items.c.text_hash.label("value"), func.min(items.c.story_id).label("story")
            )
            .where(
                items.c.text_hash.in_(select(wanted.c.value).where(wanted.c.kind == "t")), items.c.story_id.is_not(None)
            )
            .group_by(items.c.text_hash)
        )
        out: dict[str, dict[str, int]] = {"u": {}, "t": {}}
        for kind, value, story in conn.execute(union_all(by_url, by_text)):
            out[kind][str(value)] = int(story)
        return out["u"], out["t"]

    def story_candidates(self, conn: Connection, keys: Iterable[int], since: datetime) -> list[BandHit]:
        """Stored items first seen since ``since`` that share LSH band keys with ``keys``, with their stories.

        One statement for the whole batch.  Per key only the :data:`BAND_FANOUT` newest
        items come back: a band key shared by hundreds of items (a boilerplate lead) is
        no identity, and the bound keeps the answer proportional to the batch.
        """
        from monitor.core.dedupe import BandHit

        wanted = sorted(set(keys))
        if not wanted:
            return []
        rows = id_list(self.engine.dialect, wanted, "bk")
        ranked = (
            select(
                story_bands.c.key,
                story_bands.c.item_id,
                items.c.story_id,
                func.row_number()
                .over(partition_by=story_bands.c.key, order_by=story_bands.c.item_id.desc())
                .label("n"),
            )
            .join(items, items.c.id == story_bands.c.item_id)
            .where(
                story_bands.c.key.in_(select(rows.c.id)),
                items.c.first_seen >= since,
                items.c.story_id.is_not(None),
            )
            .subquery("ranked")
        )
        query = select(ranked.c.key, ranked.c.item_id, ranked.c.story_id).where(ranked.c.n <= BAND_FANOUT)
        return [BandHit(int(r.key), int(r.item_id), int(r.story_id)) for r in conn.execute(query)]

    def item_texts(self, conn: Connection, ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
        """``item_id → (title, summary, text)`` (one statement)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = id_list(self.engine.dialect, wanted, "it")
        found = conn.execute(
            select(items.c.id, items.c.title, items.c.summary, items.c.text).where(items.c.id.in_(select(rows.c.id)))
        )
        return {r.id: (r.title, r.summary, r.text) for r in found}

    def apply_story_plan(
        self, conn: Connection, plan: StoryPlan, titles: Mapping[int, str], now: datetime
    ) -> dict[int, int]:
        """Apply a :func:`~monitor.core.dedupe.plan_stories` plan; returns item id → story id.

        A bounded number of statements whatever the batch holds: one insert for the new
        stories, one update filing the items, one bumping the stories they joined, one
        insert of band keys; each merge of two stored stories (rare) adds five.
        """
        from monitor.core.dedupe import NewStory

        dialect = self.engine.dialect
        opened: dict[NewStory, int] = {}
        if plan.new_stories:
            size: dict[NewStory, int] = {}
            for d in plan.decisions:
                if isinstance(d.story, NewStory):
                    size[d.story] = size.get(d.story, 0) + 1
            rows = json_rows(
                dialect,
                [
                    ("first_item_id", BigInteger()),
                    ("title", Text()),
                    ("size", Integer()),
                    ("first_seen", UtcDateTime()),
                    ("last_seen", UtcDateTime()),
                ],
                [(first, titles[first], size[ref], now, now) for ref, first in plan.new_stories],
                "ns",
            )
            created = conn.execute(
                stories.insert()
                .from_select(["first_item_id", "title", "size", "first_seen", "last_seen"], select(rows))
                .returning(stories.c.id, stories.c.first_item_id)
            ).all()
            by_first = {int(r.first_item_id): int(r.id) for r in created}
            opened = {ref: by_first[first] for ref, first in plan.new_stories}
        for into, gone in plan.merges:
            self.merge_stories(conn, into, gone, now)
        story_of = {d.item_id: opened[d.story] if isinstance(d.story, NewStory) else d.story for d in plan.decisions}
        if story_of:
            rows = json_rows(
                dialect, [("item_id", BigInteger()), ("story_id", BigInteger())], list(story_of.items()), "fi"
            )
            conn.execute(update(items).where(items.c.id == rows.c.item_id).values(story_id=rows.c.story_id))
        joined: dict[int, int] = {}
        for d in plan.decisions:
            if not isinstance(d.story, NewStory):
                joined[d.story] = joined.get(d.story, 0) + 1
        if joined:
            rows = json_rows(dialect, [("story_id", BigInteger()), ("n", Integer())], list(joined.items()), "js")
            conn.execute(
                update(stories)
                .where(stories.c.id == rows.c.story_id)
                .values(size=stories.c.size + rows.c.n, last_seen=now)
            )
        if plan.bands:
            # In key order: each page of the (key, item_id) index is then touched once, in
            # order, instead of at random (SQLite: about half the time for this insert, the
            # largest of a cold poll's writes, 12.4 -> 5.8-6.8 s at 1,000 x 30; RESULTS.md).
            bands = sorted(plan.bands)
            rows = json_rows(dialect, [("key", BigInteger()), ("item_id", BigInteger())], bands, "sb")
            conn.execute(story_bands.insert().from_select(["key", "item_id"], select(rows)))
        return story_of

    def merge_stories(self, conn: Connection, into: int, other: int, now: datetime) -> None:
        """Fold story ``other`` into ``into``: its items, its size, and its alerts where ``into`` has none.

        An alert ``into`` already has for the same subscriber keeps pointing at
        nothing (``other`` is deleted): both were sent before anyone knew they were one story.
        """
        taken = alerts.alias("taken")
        conn.execute(update(items).where(items.c.story_id == other).values(story_id=into))
        conn.execute(
            update(alerts)
            .where(
                alerts.c.story_id == other,
                ~select(taken.c.id)
                .where(
                    taken.c.story_id == into,
                    taken.c.subscriber == alerts.c.subscriber,
                )
                .exists(),
            )
            .values(story_id=into)
        )
        size = select(stories.c.size).where(stories.c.id == other).scalar_subquery()
        conn.execute(update(stories).where(stories.c.id == into).values(size=stories.c.size + size, last_seen=now))
        conn.execute(update(alerts).where(alerts.c.story_id == other).values(story_id=None))
        conn.execute(delete(stories).where(stories.c.id == other))
        log.info("story %d merged into story %d", other, into)

    def recent_stories(self, since: datetime | None, limit: int) -> list[dict[str, Any]]:
        """Stories seen most recently, each with its first item, outlets and languages.

        ``outlets`` lists source names in the order they first carried the story.
        """
        query = select(stories).order_by(stories.c.last_seen.desc(), stories.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(stories.c.last_seen >= since)
        with self.begin() as conn:
            found = [dict(r._mapping) for r in conn.execute(query)]
            members = self._story_members(conn, [s["id"] for s in found])
        for story in found:
            its = members.get(story["id"], [])
            first = next((m for m in its if m["id"] == story["first_item_id"]), its[0] if its else None)
            story["outlets"] = list(dict.fromkeys(m["source"] for m in its))
            story["languages"] = sorted({m["language"] for m in its if m["language"]})
            story["first_item"] = first
            story["items"] = its
        return found

    def _story_members(self, conn: Connection, story_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for i in range(0, len(story_ids), _CHUNK):
            rows = conn.execute(
                select(
                    items.c.id,
                    items.c.story_id,
                    items.c.title,
                    items.c.url,
                    sources.c.name.label("source"),
                    items.c.language,
                    items.c.published,
                    items.c.first_seen,
                )
                .join(sources, sources.c.id == items.c.source_id)
                .where(items.c.story_id.in_(list(story_ids[i : i + _CHUNK])))
                .order_by(items.c.first_seen, items.c.id)
            )
            for r in rows:
                out.setdefault(r.story_id, []).append(dict(r._mapping))
        return out

    # ------------------------------------------------------------------ the console's reads (issue 15)
    #
    # Each is one short read transaction: nothing here takes a write lock, so a page
    # never holds up ingest or dispatch while it renders.

    def console_stories(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """Recent stories (as :meth:`recent_stories`), each with the rules its copies
        matched and, for its first item, the text and match spans a snippet needs."""
        query = select(stories).order_by(stories.c.last_seen.desc(), stories.c.id.desc()).limit(limit).offset(offset)
        with self.begin() as conn:
            found = [dict(r._mapping) for r in conn.execute(query)]
            ids = [s["id"] for s in found]
            members = self._story_members(conn, ids)
            firsts = [s["first_item_id"] for s in found]
            texts = {
                r.id: dict(r._mapping)
                for c in _chunks(firsts)
                for r in conn.execute(
                    select(items.c.id, items.c.summary, items.c.text, items.c.title_derived).where(items.c.id.in_(c))
                )
            }
            spans = self._match_spans(conn, firsts)
            rules: dict[int, set[str]] = {}
            for c in _chunks(ids):
                rows = conn.execute(
                    select(items.c.story_id, matches.c.rule)
                    .join(matches, matches.c.item_id == items.c.id)
                    .where(items.c.story_id.in_(c))
                    .distinct()
                )
                for r in rows:
                    rules.setdefault(r.story_id, set()).add(r.rule)
        for story in found:
            its = members.get(story["id"], [])
            story["outlets"] = list(dict.fromkeys(m["source"] for m in its))
            story["languages"] = sorted({m["language"] for m in its if m["language"]})
            story["first_item"] = next((m for m in its if m["id"] == story["first_item_id"]), its[0] if its else None)
            story["text"] = texts.get(story["first_item_id"])
            story["spans"] = spans.get(story["first_item_id"], {})
            story["rules"] = sorted(rules.get(story["id"], ()))
        return found

    def console_story(self, story_id: int) -> dict[str, Any] | None:
        """One story: every copy (source, times, language, link, rules matched) and the alerts it caused."""
        with self.begin() as conn:
            row = conn.execute(select(stories).where(stories.c.id == story_id)).first()
            if row is None:
                return None
            story = dict(row._mapping)
            its = self._story_members(conn, [story_id]).get(story_id, [])
            ids = [m["id"] for m in its]
            spans = self._match_spans(conn, ids)
            texts = {
                r.id: dict(r._mapping)
                for c in _chunks(ids)
                for r in conn.execute(
                    select(items.c.id, items.c.summary, items.c.text, items.c.title_derived).where(items.c.id.in_(c))
                )
            }
        for m in its:
            m["spans"] = spans.get(m["id"], {})
            m.update(texts.get(m["id"], {}))
        story["items"] = its
        story["outlets"] = list(dict.fromkeys(m["source"] for m in its))
        story["languages"] = sorted({m["language"] for m in its if m["language"]})
        story["alerts"] = self.alert_rows(ids=ids, by_item=True, limit=len(ids) * 50) if ids else []
        return story

    def daily_counts(self, since: datetime, until: datetime | None = None) -> dict[str, list[tuple[str, str, int]]]:
        """Counts per UTC day in ``[since, until)``: ``(day, key, n)`` for matches by rule
        and by language, and items by source (what the console's charts draw).  Served by
        covering indexes (revision 0009)."""
        match_day = self._day(matches.c.matched_at)
        item_day = self._day(items.c.first_seen)
        in_matches = [matches.c.matched_at >= since]
        in_items = [items.c.first_seen >= since]
        if until is not None:
            in_matches.append(matches.c.matched_at < until)
            in_items.append(items.c.first_seen < until)
        by_rule = (
            select(match_day.label("day"), matches.c.rule, func.count())
            .where(*in_matches)
            .group_by("day", matches.c.rule)
        )
        by_language = (
            select(match_day.label("day"), func.coalesce(items.c.language, "?"), func.count())
            .join(items, items.c.id == matches.c.item_id)
            .where(*in_matches)
            .group_by("day", items.c.language)
        )
        by_source = (
            select(item_day.label("day"), items.c.source_id, func.count())
            .where(*in_items)
            .group_by("day", items.c.source_id)
        )
        with self.begin() as conn:
            names = {r.id: r.name for r in conn.execute(select(sources.c.id, sources.c.name))}
            return {
                "rule": [(str(d), str(k), int(n)) for d, k, n in conn.execute(by_rule)],
                "language": [(str(d), str(k), int(n)) for d, k, n in conn.execute(by_language)],
                "source": [(str(d), names.get(k, "?"), int(n)) for d, k, n in conn.execute(by_source)],
            }

    def _day(self, column: Any) -> Any:
        """The UTC calendar day of a timestamp column, as ``YYYY-MM-DD`` text."""
        if self.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
        return func.substr(column, 1, 10)  # SQLite stores UTC as ISO text

    def poll_now(self, name: str, now: datetime) -> bool:
        """Make a source due now, its failure streak kept (the console's "poll now": the
        running daemon claims it on its next tick)."""
        with self.begin() as conn:
            return bool(conn.execute(update(sources).where(sources.c.name == name).values(next_due=now)).rowcount)

    def also_reported_by(self, item_id: int) -> tuple[str, ...]:
        """The other outlets carrying the story of ``item_id``, in the order they carried it."""
        mine = select(items.c.story_id, items.c.source_id).where(items.c.id == item_id).subquery()
        query = (
            select(sources.c.name, func.min(items.c.id).label("first"))
            .join(items, items.c.source_id == sources.c.id)
            .join(mine, and_(mine.c.story_id == items.c.story_id, mine.c.source_id != items.c.source_id))
            .group_by(sources.c.name)
            .order_by("first")
        )
        with self.begin() as conn:
            return tuple(r.name for r in conn.execute(query))


# Values per IN list: well under SQLite's bound on parameters, and plans stay index lookups.
_CHUNK = 500

_ITEM_COLUMNS = (
    "source_id",
    "key",
    "guid",
    "url",
    "canonical_url",
    "title",
    "title_derived",
    "summary",
    "text",
    "language",
    "published",
    "first_seen",
    "url_key",
    "title_hash",
    "text_hash",
    "text_state",
    "text_due",
    "text_error",
    "text_silent",
)


def _outcome_values(
    status: str, now: datetime, delivered: Sequence[int], error: str | None, next_attempt: datetime | None
) -> dict[str, Any]:
    """The columns a send's outcome sets on an outbox row (an alert or a bulletin): the lease
    ends, the URLs that took it are kept, ``sent_at`` on success, the next try when one is due."""
    values: dict[str, Any] = {
        "status": status,
        "lease_until": None,
        "delivered": sorted(set(delivered)),
        "last_error": error,
    }
    if status == "sent":
        values["sent_at"] = now
    if next_attempt is not None:
        values["next_attempt"] = next_attempt
    return values


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    values = list(ids)
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


_SOURCE_COLUMNS = (
    sources.c.id,
    sources.c.name,
    sources.c.type,
    sources.c.url,
    sources.c.etag,
    sources.c.last_modified,
    sources.c.body_hash,
    sources.c.last_polled,
    sources.c.last_success,
    sources.c.first_success,
    sources.c.last_error,
    sources.c.error_class,
    sources.c.consecutive_failures,
    sources.c.next_due,
    sources.c.poll_interval,
    sources.c.min_interval,
    sources.c.last_new_item,
    sources.c.mean_gap,
    sources.c.silence_noticed,
    sources.c.last_warning,
    sources.c.enabled_override,
    sources.c.failing_since,
)


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _is_connection_error(exc: OperationalError | ProgrammingError) -> bool:
    return isinstance(exc, OperationalError)
