"""The console's read queries and its config, on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.app import open_store
from monitor.config import load_config
from monitor.console import auth, charts
from monitor.core.models import PollOutcome, RawItem
from monitor.errors import ConfigError
from monitor.logs import mask_secrets
from monitor.runtime import make_runtime
from monitor.services.ingest import Ingestor

CONFIG = """
[console]
token = "${{CONSOLE_TOKEN}}"

[alerts]
first_poll = "alert"

[[sources]]
name = "a"
url = "https://a.example/feed"

[[sources]]
name = "b"
url = "https://b.example/feed"

[terms]
kursk = ["Kursk", "كورسك"]

[[rules]]
name = "kursk"
query = "kursk"
notify = ["chat"]

[[subscribers]]
name = "chat"
urls = ["json://127.0.0.1:9/hook"]
"""

TOKEN = "a-long-enough-console-token"


def test_console_reads_on_both_databases(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(), encoding="utf-8")
    rt = make_runtime(load_config(path, env={"CONSOLE_TOKEN": TOKEN}))
    store = open_store(database_url, migrate_first=True)
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    store.sync_sources([(s.name, s.type, s.url) for s in rt.config.sources], now)
    ids = {s.name: s.id for s in store.source_states()}
    clock = [now - timedelta(days=1)]
    ingestor = Ingestor(store, lambda: rt, lambda: clock[0])
    story = ("Troops reach Kursk", "Soldiers reached Kursk on Monday, officials said in a statement.")
    ingestor.ingest_batch(
        [
            PollOutcome(
                ids["a"],
                "a",
                "ok",
                (
                    RawItem("1", "https://a.example/1", *story),
                    RawItem("2", "https://a.example/2", "Rain", "Rain in Seoul."),
                ),
            )
        ]
    )
    clock[0] = now
    ingestor.ingest_batch([PollOutcome(ids["b"], "b", "ok", (RawItem("1", "https://b.example/1", *story),))])

    stories = store.console_stories(10)
    kursk = next(s for s in stories if s["title"] == "Troops reach Kursk")
    assert kursk["outlets"] == ["a", "b"]
    assert kursk["rules"] == ["kursk"]
    assert kursk["spans"]["kursk"][0]["text"] == "Kursk"
    assert "Soldiers" in kursk["text"]["summary"]

    one = store.console_story(kursk["id"])
    assert one is not None
    assert [m["source"] for m in one["items"]] == ["a", "b"]
    assert one["alerts"] and one["alerts"][0].rules == ("kursk",)
    assert store.console_story(999_999) is None

    counts = store.daily_counts(now - timedelta(days=13))
    yesterday, today = (now - timedelta(days=1)).date().isoformat(), now.date().isoformat()
    assert (yesterday, "a", 2) in counts["source"] and (today, "b", 1) in counts["source"]
    assert sum(n for _d, rule, n in counts["rule"] if rule == "kursk") >= 1
    assert all(len(d) == 10 for d, _k, _n in counts["language"])

    assert store.poll_now("b", now + timedelta(hours=1))
    assert store.source_states(["b"])[0].next_due == now + timedelta(hours=1)
    assert not store.poll_now("nope", now)
    store.engine.dispose()


def test_console_token_is_checked_expanded_and_masked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(), encoding="utf-8")
    config = load_config(path, env={"CONSOLE_TOKEN": TOKEN})
    assert config.console.resolve_token({"CONSOLE_TOKEN": TOKEN}) == TOKEN
    assert TOKEN not in repr(config)
    unset = load_config(path, env={})
    assert any("CONSOLE_TOKEN not set" in str(w) for w in unset.warnings)
    assert unset.console.resolve_token({}) == ""
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={"CONSOLE_TOKEN": "zq9x!"})
    problem = str(exc.value.problems[0])
    assert "too short (5 characters)" in problem and "zq9x" not in problem
    path.write_text(CONFIG.format() + '\n[console]\ntokn = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path, env={})
    # Once a runtime is made, the token is masked in every log line.
    path.write_text(CONFIG.format(), encoding="utf-8")
    import os

    os.environ["CONSOLE_TOKEN"] = TOKEN
    try:
        make_runtime(load_config(path))
        assert mask_secrets(f"token is {TOKEN}") == "token is ***"
    finally:
        del os.environ["CONSOLE_TOKEN"]


def test_sessions_and_csrf_tokens() -> None:
    cookie = auth.new_session(TOKEN, now=1000)
    nonce = auth.session_nonce(TOKEN, cookie, now=1001)
    assert nonce is not None
    assert auth.session_nonce("another-token-entirely", cookie, now=1001) is None  # a new token logs out
    assert auth.session_nonce(TOKEN, cookie, now=1000 + auth.SESSION_SECONDS + 1) is None
    issued, n, mac = cookie.split(".")
    assert auth.session_nonce(TOKEN, f"{int(issued) + 1}.{n}.{mac}", now=1001) is None
    assert auth.csrf_ok(TOKEN, nonce, auth.csrf_token(TOKEN, nonce))
    assert not auth.csrf_ok(TOKEN, nonce, "")
    assert not auth.token_matches("", "")


def test_charts_escape_their_labels() -> None:
    days = charts.last_days(datetime(2026, 12, 6, tzinfo=UTC).date(), 3)
    data = charts.series([("2026-12-06", "<script>x</script>", 3), ("2026-12-05", "b", 1)], days)
    svg = str(charts.stacked_bars("t<", data, days))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t&lt;" in svg
    many = charts.series([(days[0], f"k{i}", i + 1) for i in range(12)], days)
    assert len(many) == charts.MAX_SERIES and "other" in many
    assert "<polyline" in str(charts.sparkline([0, 2, 1], "r<"))
