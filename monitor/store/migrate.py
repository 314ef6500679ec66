"""Run Alembic migrations from inside wirewatch (``wirewatch db upgrade``).

Responsible for finding the migration scripts and running them against an engine.
The scripts live in the top-level ``alembic/`` folder of the project, which an installed
wheel carries as the package ``monitor.migrations`` (see setup.py); a deployment may
point elsewhere with ``WIREWATCH_ALEMBIC_DIR``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
