"""Run Alembic migrations from inside wirewatch (``wirewatch db upgrade``).

Responsible for finding the migration scripts and running them against an engine.
The scripts live in the top-level ``alembic/`` folder of the project; a deployment may
point elsewhere with ``WIREWATCH_ALEMBIC_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from alembic import command


def alembic_dir() -> Path:
    override = os.environ.get("WIREWATCH_ALEMBIC_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "alembic"


def _config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(alembic_dir()))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
