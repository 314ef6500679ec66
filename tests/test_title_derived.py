"""A title is a title: an item whose feed gave none is stored with a derived, marked title.

Through the real ingest path into real SQLite and PostgreSQL: the derived title is kept
for display (``title_derived`` true), ``title:`` rules do not see it, body rules still
fire, and ``rules test`` agrees with ingest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from monitor.config import load_config
from monitor.core.models import PollOutcome, RawItem
from monitor.runtime import make_runtime
from monitor.services.ingest import Ingestor
from monitor.store import migrate
from monitor.store.schema import matches
from monitor.store.sql import SqlStore, make_engine
from tests.conftest import run_cli

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CONFIG = """
[storage]
url = "sqlite:///unused.db"

[alerts]
first_poll = "alert"

[[sources]]
name = "wire"
url = "https://example.org/feed.xml"
language = "en"

[terms]
putin = ["Putin"]

[[rules]]
name = "headline"
query = "title:putin"
notify = ["ops"]

[[rules]]
name = "anywhere"
query = "putin"
notify = ["ops"]

[[subscribers]]
name = "ops"
urls = ["json://127.0.0.1:9/hook"]
"""


def test_derived_title_is_stored_marked_and_not_matched_as_a_title(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path, env={})
    runtime = make_runtime(config)
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    store = SqlStore(engine)
    store.sync_sources([("wire", "feed", "https://example.org/feed.xml")], NOW)
    (src,) = store.source_states()
    raw = (
        RawItem(
            guid="no-title", url="https://example.org/1", title="", summary="Putin met Kim Jong Un.", published=NOW
        ),
        RawItem(
            guid="titled", url="https://example.org/2", title="Putin in Pyongyang", summary="A visit.", published=NOW
        ),
    )
    summary = Ingestor(store, lambda: runtime, lambda: NOW).ingest(
        PollOutcome(source_id=src.id, source="wire", status="ok", items=raw)
    )
    assert summary.status == "ok"
    rows = {r["url"]: r for r in store.recent_items(None, None, 10)}
    untitled, titled = rows["https://example.org/1"], rows["https://example.org/2"]
    assert untitled["title_derived"] is True and untitled["title"] == "Putin met Kim Jong Un."
    assert titled["title_derived"] is False
    with store.begin() as conn:
        fired = {(r.item_id, r.rule) for r in conn.execute(select(matches.c.item_id, matches.c.rule))}
    assert fired == {(untitled["id"], "anywhere"), (titled["id"], "headline"), (titled["id"], "anywhere")}
    engine.dispose()

    result = run_cli("rules", "test", "--json", config=path, database_url=database_url)
    assert result.returncode == 0, result.stderr
    got = {(m["url"], m["rule"]) for m in json.loads(result.stdout)["matches"]}
    assert got == {
        ("https://example.org/1", "anywhere"),
        ("https://example.org/2", "headline"),
        ("https://example.org/2", "anywhere"),
    }
