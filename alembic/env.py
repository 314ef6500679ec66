"""Alembic environment: migrates the database named by the caller or WIREWATCH_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from monitor.store.migrate import transaction
from monitor.store.schema import metadata
from monitor.store.sql import make_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("WIREWATCH_DATABASE_URL", "sqlite:///wirewatch.db")
    engine = make_engine(url)
    # One real transaction on SQLite too (see monitor/store/migrate.py).
    with transaction(engine) as conn:
        _run(conn)
    engine.dispose()
