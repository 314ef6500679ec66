"""Shared fixtures: real SQLite and PostgreSQL databases, real loopback servers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.servers import FeedServer, SmtpServer, WebhookReceiver

if TYPE_CHECKING:
    from tests.daemons import Daemon

ROOT = Path(__file__).resolve().parents[1]
# Real feeds, sitemaps and pages copied from the shared corpus, with their provenance
# (tests/data/corpus/SOURCES.md, LICENSES.md): the suite reads nothing outside the checkout.
CORPUS = ROOT / "tests" / "data" / "corpus"
PG_ADMIN_URL = os.environ.get("WIREWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_database() -> Iterator[str]:
    name = f"ww_test_{uuid.uuid4().hex[:12]}"
    # No pool: a test may restart PostgreSQL, and the drop must not reuse a dead connection.
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, reported clearly
        pytest.fail(f"PostgreSQL is required for the tests ({PG_ADMIN_URL}): {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wirewatch.db'}"
    else:
        yield from _pg_database()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def run_cli(
    *args: str,
    config: Path | None = None,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor`` as a real process (the reactor cannot restart in-process)."""
    cmd = [sys.executable, "-m", "monitor"]
    if config is not None:
        cmd += ["--config", str(config)]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    cmd += list(args)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env, check=False)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[[Path, str], Daemon]]:
    from tests.daemons import Daemon

    started: list[Daemon] = []

    def start(config: Path, database_url: str) -> Daemon:
        d = Daemon(config, database_url, tmp_path / f"daemon{len(started)}.log")
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.log_file.close()
