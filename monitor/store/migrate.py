"""Run Alembic migrations from inside wirewatch (``wirewatch db upgrade``).

Responsible for finding the migration scripts and running them against an engine, all
of them in one database transaction, so that a ``kill -9`` at any moment of ``db
upgrade`` leaves the database at the revision it started from and the next upgrade
brings it to head.  PostgreSQL has transactional DDL and SQLAlchemy's transaction is
enough.  SQLite has transactional DDL too, but Python's sqlite3 driver (before 3.12)
opens a transaction only before INSERT/UPDATE/DELETE and runs DDL in autocommit: a batch
migration's ``CREATE TABLE _alembic_tmp_*``, ``DROP`` and ``RENAME`` then committed one
by one, and a kill in between bricked the file (15 of 40 trials in the issue-18 probe).
So on SQLite the driver's own transaction handling is switched off for the migration
and we issue ``BEGIN IMMEDIATE`` ourselves.  The scripts live in the top-level
``alembic/`` folder of the project, which an installed wheel carries as the package
``monitor.migrations`` (see setup.py); a deployment may point elsewhere with
``WIREWATCH_ALEMBIC_DIR``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from alembic import command


def alembic_dir() -> Path:
    override = os.environ.get("WIREWATCH_ALEMBIC_DIR")
    if override:
        return Path(override)
    # An installed wheel (or an editable install's finder) knows monitor.migrations; a
    # plain checkout on sys.path does not, and has the folder beside the package.
    try:
        spec = importlib.util.find_spec("monitor.migrations")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "alembic"


def _config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(alembic_dir()))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in one real database transaction (DDL included), committed on success."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        previous = driver.isolation_level
        driver.isolation_level = None  # the driver no longer commits DDL behind our back
        try:
            # IMMEDIATE: take the write lock now, so a concurrent writer waits (busy
            # timeout) instead of failing half-way through the migration.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            driver.isolation_level = previous


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    with transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
