"""End to end through the real command: loopback feeds in, email and webhook alerts out.

Every part is real: the ``wirewatch`` process (Scrapy, feedparser, SQLAlchemy, Apprise),
a loopback HTTP server, aiosmtpd, a webhook receiver, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer, SmtpServer, WebhookReceiver

TERMS = """
[terms]
kim_jong_un = ["Kim Jong Un", "Kim Jong-un", "كيم جونغ أون", "Ким Чен Ын", "김정은"]
putin = ["Putin", "بوتين", "Путин", "푸틴"]
kursk = ["Kursk", "كورسك", "Курск", "쿠르스크"]
"""


def write_config(
    tmp_path: Path, feed_url: str, smtp: SmtpServer, hook: WebhookReceiver, query: str = "kim_jong_un AND putin"
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///ignored.db"

[fetch]
timeout = "10s"
host_delay = "0s"

[alerts]
first_poll = "silent"
max_age = "3d"
retry_backoff = "1s"
max_attempts = 5

[[sources]]
name = "wire"
url = "{feed_url}"
interval = "5m"
{TERMS}
[[rules]]
name = "kim-putin"
query = '{query}'
notify = ["analysts", "chat"]

[[subscribers]]
name = "analysts"
urls = ["{smtp.url()}"]
timezone = "Asia/Seoul"

[[subscribers]]
name = "chat"
urls = ["{hook.url()}"]
""",
        encoding="utf-8",
    )
    return path


def alerts(config: Path, db: str) -> list[dict[str, object]]:
    result = run_cli("alerts", "--json", config=config, database_url=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["alerts"]  # type: ignore[no-any-return]


def test_feed_to_email_and_webhook(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    backlog = [
        ("old-1", "Kim Jong Un and Putin sign a pact", "Backlog item that matches."),
        ("old-2", "Markets rise in Seoul", "Nothing to see."),
    ]
    url = feed_server.serve("/feed.xml", rss(backlog), etag='"v1"')
    config = write_config(tmp_path, url, smtp_server, webhook)

    # First poll of a new source: the backlog is stored, nobody is alerted.
    first = run_cli("run", "--once", config=config, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "polled 1 sources (1 ok, 0 failed): 2 new items" in first.stdout
    assert smtp_server.messages == [] and webhook.posts == []

    # Two new items: one matches (in Korean), one does not.
    fresh = [
        ("new-1", "김정은, 푸틴과 정상회담", "북한 김정은 국무위원장이 블라디미르 푸틴 대통령과 만났다."),
        ("new-2", "Weather: cold snap in Seoul", "Minus ten in the morning."),
    ]
    feed_server.serve("/feed.xml", rss(backlog + fresh), etag='"v2"')
    second = run_cli("run", "--once", config=config, database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert len(smtp_server.messages) == 1
    assert len(webhook.posts) == 1
    mail = smtp_server.messages[0]
    assert "[kim-putin]" in mail["Subject"] and "김정은" in mail["Subject"]
    html_part = mail.get_body(preferencelist=("html",))
    text_part = mail.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    assert "<mark>김정은</mark>" in html_part.get_content()
    assert "https://news.example.org/new-1" in text_part.get_content()
    assert "김정은" in webhook.posts[0]["message"] and "kim-putin" in webhook.posts[0]["message"]

    # Nothing new: the server answers 304 to our validator, nothing more is sent.
    third = run_cli("run", "--once", config=config, database_url=database_url)
    assert third.returncode == 0, third.stderr
    assert feed_server.hits("/feed.xml")[-1].get("if-none-match") == '"v2"'
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1

    # SMTP down: the webhook gets the next alert, the email waits with one attempt recorded.
    smtp_server.stop()
    feed_server.serve(
        "/feed.xml",
        rss(backlog + fresh + [("new-3", "Putin hosts Kim Jong-un in Moscow", "Talks on troops.")]),
        etag='"v3"',
    )
    fourth = run_cli("run", "--once", config=config, database_url=database_url)
    assert fourth.returncode == 0, fourth.stderr
    assert len(webhook.posts) == 2
    pending = [a for a in alerts(config, database_url) if a["status"] == "pending"]
    assert len(pending) == 1
    assert pending[0]["subscriber"] == "analysts" and pending[0]["attempts"] == 1
    assert pending[0]["last_error"]

    # SMTP back: delivered exactly once, and the webhook is not sent again.
    smtp_server.start()
    time.sleep(1.3)  # the retry backoff (1 s, ±20 % jitter) must pass
    fifth = run_cli("run", "--once", config=config, database_url=database_url)
    assert fifth.returncode == 0, fifth.stderr
    assert len(smtp_server.messages) == 2
    assert "Putin hosts Kim Jong-un" in smtp_server.messages[1]["Subject"]
    assert len(webhook.posts) == 2
    sixth = run_cli("run", "--once", config=config, database_url=database_url)
    assert sixth.returncode == 0
    assert len(smtp_server.messages) == 2 and len(webhook.posts) == 2
    statuses = sorted(str(a["status"]) for a in alerts(config, database_url))
    assert statuses == ["sent"] * 4


def test_bad_query_exits_2_naming_the_rule(tmp_path: Path, smtp_server: SmtpServer, webhook: WebhookReceiver) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/feed.xml", smtp_server, webhook, query="kimm AND (putin")
    for command in (["check"], ["run", "--once"]):
        result = run_cli(*command, config=config)
        assert result.returncode == 2, result.stderr
        assert "'kim-putin'.query" in result.stderr
        assert "Traceback" not in result.stderr


def test_rules_test_backtests_stored_items_with_spans(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    url = feed_server.serve(
        "/feed.xml",
        rss(
            [
                ("1", "كيم جونغ أون يرسل تهنئة لبوتين", "الزعيم الكوري الشمالي كيم جونغ أون والرئيس بوتين"),
                ("2", "Ким Чен Ын и Путина обсудили Курск", ""),
                ("3", "Kim Kardashian visits Seoul", "No politics."),
            ]
        ),
    )
    config = write_config(tmp_path, url, smtp_server, webhook)
    assert run_cli("run", "--once", config=config, database_url=database_url).returncode == 0
    result = run_cli(
        "rules", "test", "--rule", "kim-putin", "--since", "1h", "--json", config=config, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)["matches"]
    assert sorted(m["title"][:3] for m in matches) == ["Ким", "كيم"]
    arabic = next(m for m in matches if m["title"].startswith("كيم"))
    assert {s["text"] for s in arabic["spans"]} >= {"كيم جونغ أون", "لبوتين"}
    text = run_cli("rules", "test", config=config, database_url=database_url)
    assert "[[Путина]]" in text.stdout
    assert "2 matches in 3 items" in text.stdout
    assert smtp_server.messages == []  # a backtest sends nothing
    unknown = run_cli("rules", "test", "--rule", "nope", config=config, database_url=database_url)
    assert unknown.returncode == 2


def test_run_once_leaves_everything_in_the_sqlite_file(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    """An operator's copy of wirewatch.db alone (a backup) holds every commit of a finished run:
    the process closes its connections at exit, so SQLite folds the WAL into the file."""
    import shutil
    import sqlite3

    url = feed_server.serve(
        "/feed.xml",
        rss([(str(n), f"Kim Jong Un and Putin meet, part {n}", f"Report number {n} from Kursk.") for n in range(5)]),
    )
    config = write_config(tmp_path, url, smtp_server, webhook)
    db = tmp_path / "w.db"
    assert run_cli("run", "--once", config=config, database_url=f"sqlite:///{db}").returncode == 0
    assert not (tmp_path / "w.db-wal").exists()
    copy = tmp_path / "backup" / "w.db"
    copy.parent.mkdir()
    shutil.copyfile(db, copy)  # the file alone, as `cp wirewatch.db` copies it
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (5,)
