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
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# A script's own revision lines, as Alembic writes them (``revision: str = "0011"``).
_REVISION = re.compile(r'^revision(?:\s*:\s*[\w\[\], |]+)?\s*=\s*"([^"]+)"', re.M)
_DOWN = re.compile(r'^down_revision(?:\s*:\s*[\w\[\], |]+)?\s*=\s*(?:None|"([^"]+)")', re.M)


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
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(alembic_dir()))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def script_head() -> str | None:
    """The head revision, read from the scripts' own ``revision``/``down_revision`` lines.

    Without importing Alembic (~0.1 s of every command's start): ``None`` when any script
    does not say both plainly, or the scripts do not make one chain with one head, and
    then the caller asks Alembic.  A test holds it equal to :func:`head_revision`.
    """
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (alembic_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision[1])
        if down[1]:
            downs.add(down[1])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 and downs <= revisions else None


def at_head(engine: Engine) -> bool:
    """Whether the database is at the scripts' head (one ``SELECT``, no Alembic import)."""
    head = script_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            stamped = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    except DBAPIError:  # no such table yet: a new database
        return False
    return stamped == [head]


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
    """Bring the database to ``revision``; at head already (every start but the first), one ``SELECT``."""
    if revision == "head" and at_head(engine):
        return
    from alembic import command

    cfg = _config()
    with transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
