"""Alembic migrations: upgrade from empty, match the models (``alembic check``), downgrade."""

from __future__ import annotations

from alembic.config import Config as AlembicConfig
from alembic.util.exc import CommandError

from alembic import command
from monitor.store import migrate
from monitor.store.sql import make_engine


def _config(connection: object) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrate.alembic_dir()))
    cfg.attributes["connection"] = connection
    return cfg


def test_upgrade_check_downgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.begin() as conn:
        try:
            command.check(_config(conn))
        except CommandError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"models and migrations differ: {exc}") from None
    with engine.begin() as conn:
        command.downgrade(_config(conn), "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_the_start_up_head_check_agrees_with_alembic(database_url: str) -> None:
    """``upgrade`` skips Alembic when the database is at head: that check must never be wrong."""
    assert migrate.script_head() == migrate.head_revision()
    engine = make_engine(database_url)
    assert not migrate.at_head(engine)  # a new database: no alembic_version table
    migrate.upgrade(engine)
    assert migrate.at_head(engine)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "-1")
    assert not migrate.at_head(engine)
    migrate.upgrade(engine)  # not at head: Alembic runs the last script again
    assert migrate.at_head(engine) and migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
