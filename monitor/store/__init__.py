"""The database adapter: SQLAlchemy tables and :class:`SqlStore` (SQLite or PostgreSQL)."""

from monitor.store.sql import SqlStore, make_engine

__all__ = ["SqlStore", "make_engine"]
