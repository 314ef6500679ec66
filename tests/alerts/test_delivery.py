"""Delivery end to end, in process, with a frozen clock: the real ingest enqueues, the real
dispatcher plans and sends through Apprise to aiosmtpd and a webhook receiver on loopback,
on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from monitor.config import AlertsConfig
from monitor.core.delivery import HELD_QUIET, HELD_RATE
from monitor.services.operators import notify_operators
from tests.alerts.conftest import World, subscriber, utc
from tests.servers import SmtpServer, WebhookReceiver

MakeWorld = Callable[..., World]

CRITICAL_RULE = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]

[[rules]]
name = "kursk"
query = 'kursk'
notify = ["analysts"]
severity = "critical"
"""


def parts(mail: EmailMessage, *, marks: bool = False) -> tuple[str, str]:
    """The HTML and text parts; the HTML without its ``<mark>`` tags unless ``marks``."""
    html_part = mail.get_body(preferencelist=("html",))
    text_part = mail.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    assert text_part.get_content_type() == "text/plain" and text_part.get_content_charset() == "utf-8"
    html = str(html_part.get_content())
    return (html if marks else re.sub("</?mark>", "", html)), str(text_part.get_content())


def unmarked(text: str) -> str:
    """Plain text or Markdown without the marks around matched words."""
    return re.sub(r"\[(?=[^\]]*\])|(?<=[^\[])\]|\*\*", "", text)


def test_digest_at_0800_seoul_while_new_york_leaves_daylight_saving(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    rules = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["seoul", "newyork"]
"""
    world = make_world(
        subscriber("seoul", smtp_server.url(), mode="digest", digest_at=["08:00"], timezone="Asia/Seoul")
        + subscriber("newyork", webhook.url(), mode="digest", digest_at=["08:00"], timezone="America/New_York"),
        rules=rules,
        now=utc(2026, 10, 31, 12, 30),  # 21:30 KST; 08:30 EDT, just after New York's digest
    )
    assert world.publish("Kim Jong Un meets Putin in Moscow", "Putin hosts Kim Jong-un again") == 4

    def sent() -> tuple[int, int]:
        world.dispatch()
        return len(smtp_server.messages), len(webhook.posts)

    assert sent() == (0, 0)
    world.clock.set(utc(2026, 10, 31, 22, 59))
    assert sent() == (0, 0)
    world.clock.set(utc(2026, 10, 31, 23, 0))  # 08:00 KST on 1 November
    assert sent() == (1, 0)
    world.clock.set(utc(2026, 11, 1, 12, 0))  # 07:00 EST: 08:00 only if the offset were still EDT
    assert sent() == (1, 0)
    world.clock.set(utc(2026, 11, 1, 12, 59))
    assert sent() == (1, 0)
    world.clock.set(utc(2026, 11, 1, 13, 0))  # 08:00 EST
    assert sent() == (1, 1)
    world.clock.advance(timedelta(days=2))
    assert sent() == (1, 1)

    mail = smtp_server.messages[0]
    html, text = parts(mail)
    assert "seoul: digest, 2 items" in mail["Subject"]
    assert "Kim Jong Un meets Putin in Moscow" in html and "Putin hosts Kim Jong-un again" in html
    assert "2026-10-31 21:29 KST" in text and "https://news.example.org/1" in text
    post = webhook.posts[0]
    assert "newyork: digest, 2 items" in post["title"]
    assert "2026-10-31 08:29 EDT" in post["message"] and "Putin hosts Kim Jong-un again" in unmarked(post["message"])
    assert {a.status for a in world.alerts()} == {"sent"}
    assert {a.message_kind for a in world.alerts()} == {"digest"}


def test_burst_of_100_at_max_per_hour_5_gives_5_alerts_and_one_summary(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    t0 = utc(2026, 6, 1, 3, 0)
    world = make_world(
        subscriber("analysts", smtp_server.url(), webhook.url(), max_per_hour=5, timezone="Asia/Seoul"),
        rules=CRITICAL_RULE,
        now=t0,
    )
    assert world.publish(*(f"Kim Jong Un and Putin, report {i:03d}" for i in range(100))) == 100
    summary = world.dispatch()
    assert summary.sent == 100 and summary.messages == 6
    assert len(smtp_server.messages) == 6 and len(webhook.posts) == 6

    singles, folded = smtp_server.messages[:5], smtp_server.messages[5]
    assert [m["Subject"] for m in singles] == [f"[kim-putin] Kim Jong Un and Putin, report {i:03d}" for i in range(5)]
    assert "95 more alerts (flood control)" in folded["Subject"]
    html, text = parts(folded)
    assert html.count("<li") == 95
    for i in range(5, 100):
        assert f"report {i:03d}" in html and f"report {i:03d}" in text
        assert f"https://news.example.org/{i + 1}" in text  # links survive into the text part
    assert "95 more alerts" in webhook.posts[5]["title"]
    assert webhook.posts[5]["message"].count("https://news.example.org/") == 95

    # Ten minutes later: capped, and this hour's summary is spent, so new matches wait...
    world.clock.advance(timedelta(minutes=10))
    world.publish("Kim Jong Un writes to Putin", "Putin answers Kim Jong Un")
    assert world.dispatch().held == 2
    held = world.alerts("pending")
    assert {a.hold_reason for a in held} == {HELD_RATE} and {a.next_attempt for a in held} == {t0 + timedelta(hours=1)}
    assert {a.attempts for a in held} == {0}  # a hold is not a delivery attempt
    # ...but a critical rule breaks through the rate limit.
    world.publish("Troops seen near Kursk")
    assert world.dispatch().sent == 1
    assert smtp_server.messages[-1]["Subject"] == "[CRITICAL] [kursk] Troops seen near Kursk"
    assert len(smtp_server.messages) == 7

    world.clock.set(t0 + timedelta(minutes=59))
    assert world.dispatch().claimed == 0
    world.clock.set(t0 + timedelta(hours=1))
    world.dispatch()  # the window freed: the two go out as ordinary alerts
    assert [m["Subject"] for m in smtp_server.messages[7:]] == [
        "[kim-putin] Kim Jong Un writes to Putin",
        "[kim-putin] Putin answers Kim Jong Un",
    ]
    assert len(webhook.posts) == 9
    assert {a.status for a in world.alerts()} == {"sent"}


def test_quiet_hours_hold_then_release_as_one_message(make_world: MakeWorld, webhook: WebhookReceiver) -> None:
    night = utc(2026, 6, 1, 21, 0)  # 23:00 in Berlin (CEST)
    world = make_world(
        subscriber("analysts", webhook.url(), quiet_hours="22:00-07:00", timezone="Europe/Berlin"),
        rules=CRITICAL_RULE,
        now=night,
    )
    world.publish("Kim Jong Un meets Putin", "Putin and Kim Jong Un sign", "Kim Jong Un leaves, Putin waves")
    assert world.dispatch().held == 3
    assert webhook.posts == []
    morning = utc(2026, 6, 2, 5, 0)  # 07:00 CEST
    pending = world.alerts("pending")
    assert {(a.hold_reason, a.next_attempt, a.attempts) for a in pending} == {(HELD_QUIET, morning, 0)}

    world.clock.advance(timedelta(hours=2))
    world.publish("Kursk: troops on the move")  # critical: not held
    world.dispatch()
    assert [p["title"] for p in webhook.posts] == ["[CRITICAL] [kursk] Kursk: troops on the move"]

    world.clock.set(morning - timedelta(minutes=1))
    assert world.dispatch().claimed == 0
    world.clock.set(morning)
    world.dispatch()
    assert len(webhook.posts) == 2
    released = webhook.posts[1]
    assert released["title"] == "[wirewatch] analysts: 3 alerts from quiet hours"
    for title in ("Kim Jong Un meets Putin", "Putin and Kim Jong Un sign", "Kim Jong Un leaves, Putin waves"):
        assert title in unmarked(released["message"])
    world.clock.advance(timedelta(hours=3))
    world.dispatch()
    assert len(webhook.posts) == 2
    assert {a.status for a in world.alerts()} == {"sent"}


def test_hostile_title_arrives_escaped_and_shortened(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    world = make_world(subscriber("analysts", smtp_server.url(), webhook.url()), now=utc(2026, 6, 1, 3, 0))
    # As a feed carries it: markup escaped once, an entity, a right-to-left override, 10 kB.
    title = (
        "&lt;script&gt;alert(document.cookie)&lt;/script&gt; Kim Jong Un &amp;amp; Putin "
        "\u202egpj.exe\u202c \u2066isolate\u2069 كيم جونغ أون " + "x" * 10_000
    )
    world.publish(title, body="كيم جونغ أون يلتقي بوتين <img src=x onerror=alert(1)>")
    world.dispatch()
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1
    mail = smtp_server.messages[0]
    html, text = parts(mail)
    subject = str(mail["Subject"])
    assert subject.startswith("[kim-putin] <script>alert(document.cookie)</script> Kim Jong Un")
    assert len(subject) <= 120 and subject.endswith("…")
    for content in (subject, html, text, webhook.posts[0]["title"], webhook.posts[0]["message"]):
        assert not set(content) & {"\u202e", "\u202c", "\u2066", "\u2069"}
        assert "x" * 400 not in content
    assert "<script" not in html and "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    assert "<img" not in html  # the feed's markup was data: removed at ingest, never rendered
    assert "&amp;amp;" in html
    assert '<h3 dir="auto">' in html and "كيم جونغ أون" in html
    # The text part Apprise derives from our HTML is readable text, not markup.
    assert "<p>" not in text and "<mark>" not in text
    assert "Kim Jong Un &amp; Putin" in text  # the feed's literal entity text, decoded once by our escaping
    assert "Source: wire" in text and "https://news.example.org/1" in text


def test_smtp_down_for_a_while_then_delivered_exactly_once(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    smtp_server.stop()
    world = make_world(subscriber("analysts", smtp_server.url(), webhook.url()), now=utc(2026, 6, 1, 3, 0))
    world.publish("Kim Jong Un meets Putin")
    assert world.dispatch().retrying == 1
    assert len(webhook.posts) == 1
    [row] = world.alerts()
    assert (row.status, row.attempts, row.delivered) == ("pending", 1, (1,))
    assert row.last_error and row.last_error.startswith("mailto: ") and "Connection error" in row.last_error

    world.clock.advance(timedelta(seconds=30))  # inside the 1 min (±20 %) backoff
    assert world.dispatch().claimed == 0
    world.clock.advance(timedelta(minutes=2))
    assert world.dispatch().retrying == 1  # still down: attempt 2, webhook not sent again
    assert len(webhook.posts) == 1

    smtp_server.start()
    world.clock.advance(timedelta(minutes=5))
    assert world.dispatch().sent == 1
    for _ in range(3):
        world.clock.advance(timedelta(hours=1))
        world.dispatch()
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1
    [row] = world.alerts()
    assert (row.status, row.attempts, row.delivered, row.last_error) == ("sent", 3, (0, 1), None)


def test_a_failed_summary_is_retried_as_the_same_summary(make_world: MakeWorld, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    world = make_world(subscriber("analysts", smtp_server.url(), max_per_hour=2), now=utc(2026, 6, 1, 3, 0))
    world.publish(*(f"Kim Jong Un and Putin, report {i}" for i in range(6)))
    assert world.dispatch().retrying == 6
    smtp_server.start()
    world.clock.advance(timedelta(minutes=10))
    assert world.dispatch().sent == 6
    # Retries come due in jitter order; what matters is that the summary was not re-planned.
    subjects = sorted(m["Subject"] for m in smtp_server.messages)
    assert subjects == [
        "[kim-putin] Kim Jong Un and Putin, report 0",
        "[kim-putin] Kim Jong Un and Putin, report 1",
        "[wirewatch] analysts: 4 more alerts (flood control)",
    ]
    assert all(a.last_error is None for a in world.alerts())


def test_killed_between_claim_and_send_is_sent_once_after_restart(make_world: MakeWorld) -> None:
    """A real ``wirewatch run --once`` is killed while it holds the claim and waits on SMTP."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.servers import free_port

    port = free_port()
    hung = socket.socket()
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", port))
    hung.listen(8)  # accepts connections, never says hello: the sender blocks before any data
    hung.settimeout(90)
    smtp = SmtpServer(port=port)
    start = datetime.now(UTC)
    world = make_world(subscriber("analysts", smtp.url()), now=start)
    world.publish("Kim Jong Un meets Putin")

    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    cmd = [sys.executable, "-m", "monitor", "--config", str(world.path), "--database-url", world.database_url]
    proc = subprocess.Popen([*cmd, "run", "--once"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        conn, _ = hung.accept()  # the daemon has claimed the alert and is connecting to send it
        [row] = world.alerts()
        assert (row.status, row.attempts) == ("sending", 1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        hung.close()

    smtp.start()
    try:
        world.clock.set(start + timedelta(seconds=10))
        assert world.dispatch().claimed == 0  # still leased to the dead process
        # The dead process renews nothing: its short lease lapses within a minute.
        assert AlertsConfig().send_lease <= timedelta(seconds=30)
        world.clock.set(datetime.now(UTC) + AlertsConfig().send_lease + timedelta(seconds=1))
        assert world.dispatch().sent == 1
        world.clock.advance(timedelta(hours=1))
        world.dispatch()
        assert len(smtp.messages) == 1
        assert smtp.messages[0]["Subject"] == "[kim-putin] Kim Jong Un meets Putin"
        [row] = world.alerts()
        assert (row.status, row.attempts) == ("sent", 2)
    finally:
        smtp.stop()


def test_operator_notice_reaches_every_operator_url(smtp_server: SmtpServer, webhook: WebhookReceiver) -> None:
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from monitor.config import load_config
    from tests.alerts.conftest import write_config

    with TemporaryDirectory() as tmp:
        path = write_config(
            Path(tmp) / "config.toml",
            subscriber("analysts", webhook.url()) + subscriber("oncall", smtp_server.url(), webhook.url()),
            alerts='operators = ["oncall"]',
        )
        config = load_config(path, env={})
    results = notify_operators(config, "source wire keeps failing", "5 failures in a row: HTTP 500 <script>x</script>")
    assert [r.ok for r in results] == [True, True]
    [mail] = smtp_server.messages
    assert "source wire keeps failing" in mail["Subject"]
    html, text = parts(mail)
    assert "&lt;script&gt;" in html and "<script" not in html and "HTTP 500" in text
    assert len(webhook.posts) == 1 and "source wire keeps failing" in webhook.posts[0]["title"]


def test_dead_letter_is_listed_and_retried_by_the_cli(make_world: MakeWorld, smtp_server: SmtpServer) -> None:
    import json

    from tests.conftest import run_cli

    smtp_server.stop()
    # ``alerts retry`` queues for the real now, so the frozen clock starts there.
    world = make_world(subscriber("analysts", smtp_server.url()), now=datetime.now(UTC))
    world.publish("Kim Jong Un meets Putin", "Putin hosts Kim Jong-un")
    for _ in range(4):  # alerts.max_attempts = 4 in the test config
        world.dispatch()
        world.clock.advance(timedelta(hours=2))
    assert world.dispatch().claimed == 0
    cli = {"config": world.path, "database_url": world.database_url}

    listed = run_cli("alerts", "--status", "failed", "--json", **cli)  # type: ignore[arg-type]
    assert listed.returncode == 0, listed.stderr
    failed = json.loads(listed.stdout)["alerts"]
    assert len(failed) == 2 and {a["attempts"] for a in failed} == {4}
    assert all("Connection error" in a["last_error"] for a in failed)

    one = run_cli("alerts", "retry", str(failed[0]["id"]), **cli)  # type: ignore[arg-type]
    assert one.returncode == 0 and "1 alert(s) queued again" in one.stdout
    smtp_server.start()
    assert world.dispatch().sent == 1
    rest = run_cli("alerts", "retry", "--failed", **cli)  # type: ignore[arg-type]
    assert "1 alert(s) queued again" in rest.stdout
    assert world.dispatch().sent == 1
    world.clock.advance(timedelta(hours=1))
    world.dispatch()
    assert sorted(m["Subject"] for m in smtp_server.messages) == [
        "[kim-putin] Kim Jong Un meets Putin",
        "[kim-putin] Putin hosts Kim Jong-un",
    ]
    assert {a.status for a in world.alerts()} == {"sent"}


def test_markdown_chat_gets_escaped_markdown(make_world: MakeWorld, webhook: WebhookReceiver) -> None:
    mattermost = f"mmost://127.0.0.1:{webhook.port}/abcdefghij"  # renders Markdown
    world = make_world(subscriber("analysts", mattermost, webhook.url()), now=utc(2026, 6, 1, 3, 0))
    world.publish("Kim Jong Un *meets* Putin [click](https://evil.example/x)")
    world.dispatch()
    # The two URLs are two lanes, sent side by side: tell the posts apart by their shape.
    [chat] = [p for p in webhook.posts if "text" in p]
    [hook] = [p for p in webhook.posts if "message" in p]
    assert chat["text"].startswith(r"\[kim-putin\] Kim Jong Un \*meets\* Putin \[click\]")
    assert r"\*meets\*" in chat["text"] and r"\[click\]" in chat["text"]
    assert "**Kim Jong Un**" in chat["text"] and "**Putin**" in chat["text"]  # matched words marked
    assert "<https://news.example.org/1>" in chat["text"]
    # A generic JSON webhook gets our plain text: no Markdown syntax to misread.
    assert hook["title"] == "[kim-putin] Kim Jong Un *meets* Putin [click](https://evil.example/x)"
    assert "Link: https://news.example.org/1" in hook["message"]


def test_alerts_link_to_the_story_in_the_console_when_it_has_an_address(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    console = '\n[console]\nurl = "https://ww.example.org/"\n'
    world = make_world(subscriber("analysts", smtp_server.url(), webhook.url()) + console, now=utc(2026, 6, 1, 3, 0))
    world.publish("Kim Jong Un meets Putin")
    assert world.dispatch().sent == 1
    [row] = world.alerts()
    link = f"https://ww.example.org/stories/{row.story_id}"
    [post] = webhook.posts
    assert f"Story: {link}" in post["message"]
    [mail] = smtp_server.messages
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and f'<a href="{link}">' in html.get_content()


def test_alerts_carry_no_console_link_without_its_address(make_world: MakeWorld, webhook: WebhookReceiver) -> None:
    world = make_world(subscriber("analysts", webhook.url()), now=utc(2026, 6, 1, 3, 0))
    world.publish("Kim Jong Un meets Putin")
    world.dispatch()
    [post] = webhook.posts
    assert "Story:" not in post["message"] and "/stories/" not in post["message"]
