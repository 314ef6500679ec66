"""Telegram channels through the real CLI (`run --once`) on loopback, on SQLite and PostgreSQL.

The preview pages are tests/data/telegram (real t.me/s markup, see PROVENANCE.md), served
by the project's FeedServer at the addresses the preview uses (``/s/<name>`` and
``/s/<name>?before=<id>``); each source's ``url`` points at it.  The pages' message times
are moved as one block so that the newest message is an hour old whenever the test runs:
the paging and alert decisions depend on the real clock, which is not faked here.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.telegram import parse_telegram
from tests.conftest import ROOT
from tests.servers import FeedServer, WebhookReceiver
from tests.sources.helpers import Source, run_once, states, stored, write_config

pytestmark = pytest.mark.slow

DATA = ROOT / "tests" / "data" / "telegram"
# The newest message of the pages (kndr_vesti/148); the pages' times move with it.
ANCHOR = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"
_DATETIME = re.compile(r'datetime="([^"]+)"')


def shifted(name: str, delta: timedelta) -> bytes:
    text = (DATA / f"{name}.html").read_text(encoding="utf-8")
    return _DATETIME.sub(
        lambda m: f'datetime="{(datetime.fromisoformat(m.group(1)) + delta).isoformat()}"', text
    ).encode()


def serve_channels(server: FeedServer, delta: timedelta) -> dict[str, str]:
    pages = {
        "/s/kndr_vesti": "kndr_vesti-1",
        "/s/kndr_vesti?before=142": "kndr_vesti-2",
        "/s/kndr_vesti?before=125": "kndr_vesti-3",
        "/s/kndr_vesti?before=101": "kndr_vesti-4",
        "/s/bukhan_sosik": "bukhan_sosik-1",
    }
    for path, name in pages.items():
        server.serve(path, shifted(name, delta), content_type=HTML)
    return pages


def sources(server: FeedServer) -> list[Source]:
    return [
        Source("ru-tg", f"{server.base}/s/kndr_vesti", "telegram", 'channel = "kndr_vesti"'),
        Source("ko-tg", f"{server.base}/s/bukhan_sosik", "telegram", 'channel = "bukhan_sosik"'),
    ]


def expected_times(name: str, delta: timedelta) -> dict[str, datetime]:
    page = parse_telegram((DATA / f"{name}.html").read_bytes(), name)
    return {m.link: m.published + delta for m in page.messages if m.published is not None}


def test_items_paging_and_conditional_get(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    s = feed_server
    delta = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - ANCHOR
    serve_channels(s, delta)
    config = write_config(
        tmp_path, sources(s), fetch='user_agent = "wirewatch-test/1.0 (+tg)"', alerts='max_age = "3d"'
    )
    run_once(config, database_url)

    # The first poll paged back while the messages were within max_age: page 3 holds a
    # message older than 3 days, so the page before it (?before=101) is never asked for.
    assert len(s.hits("/s/kndr_vesti")) == 1
    assert len(s.hits("/s/kndr_vesti?before=142")) == 1
    assert len(s.hits("/s/kndr_vesti?before=125")) == 1
    assert s.hits("/s/kndr_vesti?before=101") == []
    # One politeness path: robots.txt was asked, and every request carries our User-Agent.
    assert s.hits("/robots.txt")
    assert {h["user-agent"] for _, h in s.requests} == {"wirewatch-test/1.0 (+tg)"}

    ru = {r["url"]: r for r in stored(database_url, "ru-tg")}
    ids = sorted(int(u.rsplit("/", 1)[1]) for u in ru)
    # 144 is a photo without a caption, 141 "Channel photo updated", 145 deleted: no items.
    assert ids == [101, 110, 118, 125, 130, 135, 142, 143, 146, 147, 148]
    times = {
        **expected_times("kndr_vesti-1", delta),
        **expected_times("kndr_vesti-2", delta),
        **expected_times("kndr_vesti-3", delta),
    }
    for url, row in ru.items():
        assert row["published"] == times[url], url
        assert row["title_derived"] is True and row["language"] == "ru"
    daily = ru["https://t.me/kndr_vesti/147"]
    assert daily["summary"] == "Итоги дня:\nобстановка без изменений\n3 < 5 & всё спокойно"
    assert daily["title"] == daily["summary"][:120]
    forwarded = ru["https://t.me/kndr_vesti/142"]
    assert forwarded["text"] == "Forwarded from: Военное обозрение (https://t.me/voen_obozrenie/5120)"
    assert ru["https://t.me/kndr_vesti/143"]["summary"] == "Видео: колонна техники на марше под Белгородом."

    ko = {r["url"]: r for r in stored(database_url, "ko-tg")}
    assert sorted(ko) == ["https://t.me/bukhan_sosik/2", "https://t.me/bukhan_sosik/3"]
    assert {r["language"] for r in ko.values()} == {"ko"}
    assert ko["https://t.me/bukhan_sosik/3"]["summary"] == (
        "김정은 국무위원장과 푸틴 대통령이 평양에서 정상회담을 열었다.\n양측은 협력 확대에 합의했다."
    )

    # Second poll: 146 edited and 148 edited, 145 still gone; nothing new is stored, the
    # stored text stays what was first seen, and a later poll pages back only to the
    # last success (here: not at all).
    s.serve("/s/kndr_vesti", shifted("kndr_vesti-1-edited", delta), content_type=HTML, etag='"v2"')
    run_once(config, database_url)
    again = {r["url"]: r for r in stored(database_url, "ru-tg")}
    assert len(stored(database_url, "ru-tg")) == len(ru)
    assert again["https://t.me/kndr_vesti/146"]["summary"] == ru["https://t.me/kndr_vesti/146"]["summary"]
    assert len(s.hits("/s/kndr_vesti?before=142")) == 1
    assert states(database_url)["ru-tg"].etag == '"v2"'
    # Third poll: a conditional GET, answered 304.
    run_once(config, database_url)
    last = s.hits("/s/kndr_vesti")[-1]
    assert last.get("if-none-match") == '"v2"'
    assert sorted(r["url"] for r in stored(database_url, "ru-tg")) == sorted(ru)
    assert states(database_url)["ru-tg"].consecutive_failures == 0


def test_an_older_page_answering_429_ends_the_paging_and_keeps_the_first_page(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    s = feed_server
    delta = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - ANCHOR
    serve_channels(s, delta)
    s.serve(
        "/s/kndr_vesti?before=142", b"slow down", content_type="text/plain", status=429, headers={"Retry-After": "120"}
    )
    config = write_config(tmp_path, sources(s)[:1], alerts='max_age = "3d"')
    run_once(config, database_url)
    assert len(s.hits("/s/kndr_vesti?before=142")) == 1
    assert s.hits("/s/kndr_vesti?before=125") == []
    ids = sorted(int(r["url"].rsplit("/", 1)[1]) for r in stored(database_url, "ru-tg"))
    assert ids == [142, 143, 146, 147, 148]
    state = states(database_url)["ru-tg"]
    assert state.consecutive_failures == 0 and state.last_error is None
    assert state.last_warning is not None
    assert "/s/kndr_vesti?before=142: HTTP 429; stopped paging back" in state.last_warning


def test_a_missing_channel_is_a_clear_permanent_error(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    s = feed_server
    s.serve(
        "/s/nosuchchannel",
        b"<!DOCTYPE html><html><head><title>Telegram: Contact @nosuchchannel</title></head>"
        b'<body class="no_transition"><div class="tgme_page"><div class="tgme_page_title">'
        b'<span dir="auto">Telegram</span></div></div></body></html>',
        content_type=HTML,
    )
    config = write_config(
        tmp_path, [Source("gone", f"{s.base}/s/nosuchchannel", "telegram", 'channel = "nosuchchannel"')]
    )
    run_once(config, database_url)
    state = states(database_url)["gone"]
    assert state.error_class == "permanent"
    assert state.last_error is not None and "not a Telegram channel preview" in state.last_error


def bundled_rules_config(tmp_path: Path, server: FeedServer, hook: str) -> Path:
    """The bundled config.toml's terms, clauses and rules, every rule notifying one webhook subscriber."""
    bundled = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    lines = [
        "[storage]",
        'url = "sqlite:///ignored.db"',
        "[fetch]",
        'host_delay = "0s"',
        'timeout = "5s"',
        "[alerts]",
        'first_poll = "alert"',
        'max_age = "3d"',
        "[terms]",
    ]
    lines += [f"{name} = {json.dumps(aliases, ensure_ascii=False)}" for name, aliases in bundled["terms"].items()]
    lines.append("[clauses]")
    lines += [f"{name} = {json.dumps(query, ensure_ascii=False)}" for name, query in bundled["clauses"].items()]
    for rule in bundled["rules"]:
        lines.append("[[rules]]")
        for key, value in rule.items():
            if key == "sources":
                continue  # the bundled sources are not configured here
            lines.append(f"{key} = {json.dumps(['hook'] if key == 'notify' else value, ensure_ascii=False)}")
    lines += ["[[subscribers]]", 'name = "hook"', f"urls = [{json.dumps(hook)}]"]
    for src in sources(server):
        lines += ["[[sources]]", f'name = "{src.name}"', 'type = "telegram"', f'url = "{src.url}"', src.extra]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def alerted(posts: list[dict[str, Any]]) -> list[str]:
    """The channel messages each alert links (one list entry per alert and message)."""
    return sorted(
        link for p in posts for link in set(re.findall(r"https://t\.me/(?:kndr_vesti|bukhan_sosik)/\d+", p["message"]))
    )


def test_bundled_rules_alert_once_edits_never_again(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    s = feed_server
    delta = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - ANCHOR
    serve_channels(s, delta)
    config = bundled_rules_config(tmp_path, s, webhook.url())
    run_once(config, database_url)
    # North Korean troops in Russia (ru 142, forwarded; ko 2) and Kim-Putin (ru 146, ko 3):
    # one message each; nothing else on the pages is about either, and 101 is too old.
    assert alerted(webhook.posts) == [
        "https://t.me/bukhan_sosik/2",
        "https://t.me/bukhan_sosik/3",
        "https://t.me/kndr_vesti/142",
        "https://t.me/kndr_vesti/146",
    ]
    first = len(webhook.posts)
    troops = next(p for p in webhook.posts if "https://t.me/kndr_vesti/142" in p["message"])
    assert "nk-troops-for-russia" in troops["message"]
    assert "Forwarded from: Военное обозрение (https://t.me/voen_obozrenie/5120)" in troops["message"]
    summit = next(p for p in webhook.posts if "https://t.me/bukhan_sosik/3" in p["message"])
    assert "kim-putin" in summit["message"]

    # 146 is edited (new text, "edited" mark): the same item, so no second alert.
    s.serve("/s/kndr_vesti", shifted("kndr_vesti-1-edited", delta), content_type=HTML)
    run_once(config, database_url)
    assert len(webhook.posts) == first
    assert len([r for r in stored(database_url, "ru-tg") if r["url"] == "https://t.me/kndr_vesti/146"]) == 1
