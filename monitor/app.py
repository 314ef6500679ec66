"""Composition helpers shared by the CLI and the daemon: config, store, runtime, services.

Responsible for wiring adapters to services from the command-line options.  It holds no
logic of its own beyond choosing the database URL (``--database-url`` beats
``WIREWATCH_DATABASE_URL`` beats ``[storage] url``) and migrating before use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import Config, load_config, redact
from monitor.errors import StorageError

if TYPE_CHECKING:
    # Imported where used: the read-only commands need the store only, and Alembic,
    # Apprise, numpy (via ingest) and the rules engine cost most of a second to import.
    from sqlalchemy import Engine

    from monitor.runtime import RuntimeHolder
    from monitor.services.dispatch import Dispatcher, Notifier
    from monitor.services.ingest import Ingestor
    from monitor.store.sql import SqlStore


def utcnow() -> datetime:
    return datetime.now(UTC)


def config_path(option: str | None) -> str:
    return option or os.environ.get("WIREWATCH_CONFIG") or "config.toml"


def database_url(config: Config, option: str | None) -> str:
    url = option or os.environ.get("WIREWATCH_DATABASE_URL") or config.storage.url
    # A relative SQLite path is relative to the config file, not to wherever the
    # daemon happened to be started.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        base = Path(config.path).resolve().parent
        url = prefix + str(base / url[len(prefix) :])
    return url


@dataclass
class App:
    holder: RuntimeHolder
    store: SqlStore
    ingestor: Ingestor
    dispatcher: Dispatcher

    @property
    def config(self) -> Config:
        return self.holder.get().config


def open_store(url: str, *, migrate_first: bool) -> SqlStore:
    """A ready store: reachable and migrated (or a :class:`StorageError` saying why not)."""
    from sqlalchemy.exc import DBAPIError

    from monitor.store.sql import SqlStore, display_url, make_engine

    engine = make_engine(url)
    try:
        if migrate_first:
            upgrade_database(engine)
        store = SqlStore(engine)
        store.check_ready()
    except DBAPIError as exc:
        engine.dispose()
        raise StorageError(f"database unreachable ({display_url(url)}): {redact(str(exc.orig)).strip()}") from None
    return store


def upgrade_database(engine: Engine) -> None:
    """Migrate to head; on PostgreSQL under an advisory lock so that workers starting
    together do not race each other's DDL."""
    from sqlalchemy import text

    from monitor.store import migrate

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(731029)"))
            try:
                migrate.upgrade(engine)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(731029)"))
                conn.commit()
    else:
        migrate.upgrade(engine)


def make_app(
    config_option: str | None,
    database_option: str | None,
    *,
    migrate_first: bool = True,
    notifier: Notifier | None = None,
) -> App:
    from monitor.notify.apprise import AppriseNotifier
    from monitor.runtime import RuntimeHolder, make_runtime
    from monitor.services.dispatch import Dispatcher
    from monitor.services.ingest import Ingestor

    path = config_path(config_option)
    config = load_config(path)
    url = database_url(config, database_option)
    store = open_store(url, migrate_first=migrate_first)
    holder = RuntimeHolder(make_runtime(config), path=path)
    ingestor = Ingestor(store, holder.get, utcnow)
    dispatcher = Dispatcher(store, notifier or AppriseNotifier(), holder.get, utcnow)
    return App(holder=holder, store=store, ingestor=ingestor, dispatcher=dispatcher)
