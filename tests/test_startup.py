"""Fast start (issue 13): the read-only commands import only what they use.

Each command runs in a fresh interpreter, as the console script would, and reports which
heavy libraries it loaded.  numpy (MinHash), Scrapy, trafilatura, kiwipiepy, Alembic and
the Apprise plugins cost from a tenth of a second to seconds each at start-up; a command
that lists sources or items must not pay for them.  Timings themselves are measured in
``benchmarks/startup.py``, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

HEAVY = (
    "numpy",
    "scrapy",
    "twisted",
    "trafilatura",
    "kiwipiepy",
    "pymorphy3",
    "alembic",
    "apprise",
    "aiohttp",
    "feedparser",
    "fastfeedparser",
)

PROBE = """
import json, runpy, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["wirewatch", *args]
try:
    runpy.run_module("monitor", run_name="__main__")
except SystemExit:
    pass
print("LOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def loaded(args: list[str], heavy: tuple[str, ...]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(heavy)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED ")), None)
    assert line is not None, proc.stdout + proc.stderr
    return list(json.loads(line.removeprefix("LOADED ")))


@pytest.fixture
def migrated(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "a"\nurl = "http://127.0.0.1:9/a.xml"\n'
        '[terms]\nkim = ["김정은", "Kim Jong Un"]\n'
        '[[rules]]\nname = "kim"\nquery = "kim"\nnotify = ["ops"]\n'
        '[[subscribers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/hook"]\n',
        encoding="utf-8",
    )
    database_url = f"sqlite:///{tmp_path / 'w.db'}"
    assert run_cli("db", "upgrade", config=config, database_url=database_url).returncode == 0
    return config, database_url


@pytest.mark.parametrize("command", [["sources"], ["items"], ["alerts"], ["stories"]])
def test_read_only_commands_load_no_heavy_library(migrated: tuple[Path, str], command: list[str]) -> None:
    config, database_url = migrated
    args = ["--config", str(config), "--database-url", database_url, *command]
    assert loaded(args, HEAVY) == []


@pytest.mark.parametrize("command", [["sources"], ["items"], ["run", "--once"]])
def test_sqlite_never_loads_the_postgresql_dialect(migrated: tuple[Path, str], command: list[str]) -> None:
    """~50 ms of every start-up: the JSON columns, the bulk rows and the upserts load it only on PostgreSQL."""
    config, database_url = migrated
    args = ["--config", str(config), "--database-url", database_url, *command]
    assert loaded(args, ("sqlalchemy.dialects.postgresql",)) == []


def test_a_poll_that_parses_nothing_loads_no_feed_parser(migrated: tuple[Path, str]) -> None:
    """A warm poll (every feed 304) parses nothing: feedparser and fastfeedparser wait for a body."""
    config, database_url = migrated  # its one source refuses the connection: polled, nothing to parse
    args = ["--config", str(config), "--database-url", database_url, "run", "--once"]
    assert loaded(args, ("feedparser", "fastfeedparser", "trafilatura", "scrapy")) == []


def test_check_compiles_korean_aliases_without_kiwipiepy(migrated: tuple[Path, str]) -> None:
    config, _ = migrated
    # check parses subscriber URLs with Apprise (that is its point) and compiles every rule;
    # an alias is taken as written, so its Hangul words need no morpheme analysis.
    assert loaded(["--config", str(config), "check"], ("numpy", "scrapy", "trafilatura", "kiwipiepy")) == []


def test_a_poll_that_matches_nothing_compiles_no_rule_and_starts_no_worker(tmp_path: Path) -> None:
    """A warm poll (every feed 304) matches nothing: the rules' analysers (pymorphy3 for a
    Russian alias, ~60 ms), the CPU workers' multiprocessing queues and the daemon's
    Prometheus metrics are never loaded."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "a"\nurl = "http://127.0.0.1:9/a.xml"\n'
        '[terms]\nputin = ["Путин", "Putin"]\n'
        '[[rules]]\nname = "putin"\nquery = "putin"\nnotify = ["ops"]\n'
        '[[subscribers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/hook"]\n',
        encoding="utf-8",
    )
    database_url = f"sqlite:///{tmp_path / 'w.db'}"
    args = ["--config", str(config), "--database-url", database_url, "run", "--once"]
    heavy = ("pymorphy3", "multiprocessing.queues", "prometheus_client")
    assert loaded(args, heavy) == []
