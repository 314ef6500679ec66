"""Delivery under faults, with exact message counts: slow, silent and dropping mail servers,
a held SQLite lock, a database gone read-only, dispatchers racing, and a one-story,
three-rule article.  Real ingest, the real dispatcher, Apprise to loopback servers; the
only fake is the clock (and the lease test runs on the real one)."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.app import open_store
from monitor.config import load_config
from monitor.notify.apprise import AppriseNotifier
from monitor.runtime import make_runtime
from monitor.services.dispatch import Dispatcher, DispatchSummary
from tests.alerts.conftest import FrozenClock, World, subscriber, utc, write_config
from tests.alerts.smtp_faults import DroppingSmtp, SilentSmtp, SlowSmtp
from tests.servers import SmtpServer, WebhookReceiver

MakeWorld = Callable[..., World]
FAST = 'send_timeout = "2s"'
T0 = utc(2026, 6, 1, 3, 0)

TWO_SUBSCRIBERS_RULE = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts", "chat"]
"""


def titles(n: int) -> list[str]:
    return [f"Kim Jong Un and Putin, report {i:03d}" for i in range(n)]


def test_smtp_answering_after_30s_is_unknown_resent_once_and_never_stalls_the_chat(
    make_world: MakeWorld, webhook: WebhookReceiver
) -> None:
    slow = SlowSmtp(delay=30)
    slow.start()
    try:
        world = make_world(
            subscriber("analysts", slow.url(), webhook.url()) + subscriber("chat", webhook.url()),
            rules=TWO_SUBSCRIBERS_RULE,
            alerts='send_timeout = "5s"',
            now=T0,
        )
        assert world.publish(*titles(3)) == 6
        started = time.monotonic()
        chat_done: list[float] = []

        def watch() -> None:
            while len(webhook.posts) < 6 and time.monotonic() - started < 20:
                time.sleep(0.05)
            chat_done.append(time.monotonic() - started)

        watcher = threading.Thread(target=watch)
        watcher.start()
        first = world.dispatch()
        watcher.join()
        # Both subscribers' chat posts arrived while the mail server was still sitting on
        # its first message (the mail lane needs 3 x 5 s): no queue behind the slow server.
        assert len(webhook.posts) == 6 and chat_done[0] < 5.0
        assert (first.messages, first.unknown, first.sent, first.retrying) == (6, 3, 3, 3)
        assert len(slow.messages) == 3  # the server has them; nobody told us
        rows = [a for a in world.alerts() if a.subscriber == "analysts"]
        assert {(a.status, a.unknown_sends, a.delivered) for a in rows} == {("pending", 1, (1,))}
        assert all("no answer within 5s (delivery unknown)" in (a.last_error or "") for a in rows), [
            a.last_error for a in rows
        ]

        world.clock.advance(timedelta(minutes=5))
        second = world.dispatch()
        assert (second.messages, second.unknown, second.sent) == (3, 3, 0)
        assert {(a.status, a.unknown_sends) for a in world.alerts() if a.subscriber == "analysts"} == {("unknown", 2)}
        for _ in range(3):
            world.clock.advance(timedelta(hours=1))
            assert world.dispatch().claimed == 0
        # Exactly one resend per alert, recognisable as the same mail; the chat got each once.
        assert len(slow.messages) == 6
        ids = slow.message_ids()
        assert len(set(ids)) == 3 and all(ids.count(i) == 2 for i in ids)
        assert len(webhook.posts) == 6
    finally:
        slow.stop()


def test_mail_host_that_never_answers_costs_one_resend_and_the_chat_once(
    make_world: MakeWorld, webhook: WebhookReceiver
) -> None:
    silent = SilentSmtp()
    try:
        world = make_world(
            subscriber("analysts", silent.url(), webhook.url()), alerts=FAST + '\nsend_lease = "30s"', now=T0
        )
        assert world.publish(*titles(4)) == 4
        assert world.dispatch().unknown == 4
        world.clock.advance(timedelta(minutes=5))
        assert world.dispatch().unknown == 4
        world.clock.advance(timedelta(hours=3))
        assert world.dispatch().claimed == 0
        assert len(webhook.posts) == 4
        assert len({p["title"] for p in webhook.posts}) == 4
        assert len(silent.connections) == 8  # two attempts per alert, then left alone
        assert {a.status for a in world.alerts()} == {"unknown"}
    finally:
        silent.stop()


def test_a_send_lease_follows_the_send_so_a_second_dispatcher_claims_nothing(
    make_world: MakeWorld, webhook: WebhookReceiver
) -> None:
    """Real clock: the lease (3 s) is far shorter than the send (8 s), and renewed meanwhile."""
    silent = SilentSmtp()
    try:
        world = make_world(
            subscriber("analysts", silent.url(), webhook.url()),
            alerts='send_timeout = "8s"\nsend_lease = "3s"',
            now=datetime.now(UTC),
        )
        world.publish("Kim Jong Un meets Putin")

        def real_clock() -> datetime:
            return datetime.now(UTC)

        first = Dispatcher(world.store, AppriseNotifier(), lambda: world.runtime, real_clock)
        other = Dispatcher(world.store, AppriseNotifier(), lambda: world.runtime, real_clock)
        result: list[DispatchSummary] = []
        runner = threading.Thread(target=lambda: result.append(first.dispatch_due()))
        runner.start()
        assert silent.accepted.wait(10)
        time.sleep(5)  # beyond the 3 s lease: only its renewal keeps it
        assert other.dispatch_due().claimed == 0
        runner.join()
        assert result[0].unknown == 1
        assert len(webhook.posts) == 1 and len(silent.connections) == 1
    finally:
        silent.stop()


def test_smtp_dropping_after_data_is_unknown_and_resent_once_with_the_same_message_id(
    make_world: MakeWorld,
) -> None:
    dropping = DroppingSmtp(drops=1)
    dropping.start()
    try:
        world = make_world(subscriber("analysts", dropping.url()), alerts=FAST, now=T0)
        world.publish("Kim Jong Un meets Putin")
        assert world.dispatch().unknown == 1
        [row] = world.alerts()
        assert (row.status, row.unknown_sends) == ("pending", 1)
        assert row.last_error and "(delivery unknown)" in row.last_error
        world.clock.advance(timedelta(minutes=5))
        assert world.dispatch().sent == 1
        world.clock.advance(timedelta(hours=1))
        assert world.dispatch().claimed == 0
        assert len(dropping.messages) == 2
        first, again = dropping.message_ids()
        assert first == again and first.startswith("<wirewatch.")
    finally:
        dropping.stop()


# ----------------------------------------------------------------------------- volume


def test_600_matches_for_a_capped_subscriber_give_5_alerts_and_one_summary_of_595(
    make_world: MakeWorld, webhook: WebhookReceiver
) -> None:
    world = make_world(subscriber("analysts", webhook.url(), max_per_hour=5), now=T0)
    assert world.publish(*titles(600)) == 600
    summary = world.dispatch()
    assert (summary.claimed, summary.sent, summary.messages, summary.held) == (600, 600, 6, 0)
    assert len(webhook.posts) == 6
    folded = webhook.posts[5]
    assert "595 more alerts (flood control)" in folded["title"]
    for i in range(6, 601):  # every folded story is listed with its link
        assert f"https://news.example.org/{i}\n" in folded["message"] + "\n"
    world.clock.advance(timedelta(hours=2))
    assert world.dispatch().claimed == 0
    assert len(webhook.posts) == 6
    assert {a.status for a in world.alerts()} == {"sent"}


def test_a_digest_of_600_is_one_message(make_world: MakeWorld, smtp_server: SmtpServer) -> None:
    world = make_world(
        subscriber("analysts", smtp_server.url(), mode="digest", digest_at=["08:00"], timezone="UTC"), now=T0
    )
    assert world.publish(*titles(600)) == 600
    assert world.dispatch().claimed == 0
    world.clock.set(utc(2026, 6, 1, 8, 0))
    summary = world.dispatch()
    assert (summary.claimed, summary.sent, summary.messages) == (600, 600, 1)
    world.clock.advance(timedelta(days=1))
    world.dispatch()
    [mail] = smtp_server.messages
    assert "digest, 600 items" in str(mail["Subject"])
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = str(body.get_content())
    assert all(f"https://news.example.org/{i}" in text for i in range(1, 601))
    assert "500 more stories, one line each" in text


def test_quiet_hours_ending_over_600_release_one_message(make_world: MakeWorld, webhook: WebhookReceiver) -> None:
    night = utc(2026, 6, 1, 21, 0)  # 23:00 in Berlin
    world = make_world(
        subscriber("analysts", webhook.url(), quiet_hours="22:00-07:00", timezone="Europe/Berlin", max_per_hour=5),
        now=night,
    )
    assert world.publish(*titles(600)) == 600
    assert world.dispatch().held == 600
    world.clock.set(utc(2026, 6, 2, 5, 0))  # 07:00 CEST
    summary = world.dispatch()
    assert (summary.sent, summary.messages) == (600, 1)
    world.clock.advance(timedelta(hours=2))
    assert world.dispatch().claimed == 0
    [released] = webhook.posts
    assert released["title"] == "[wirewatch] analysts: 600 alerts from quiet hours"
    assert released["message"].count("https://news.example.org/") == 600


# ----------------------------------------------------------------------------- races


def test_three_dispatchers_racing_on_one_subscriber_respect_max_per_hour(
    make_world: MakeWorld, webhook: WebhookReceiver, database_url: str
) -> None:
    world = make_world(subscriber("analysts", webhook.url(), max_per_hour=5), now=T0)
    assert world.publish(*titles(20)) == 20
    stores = [open_store(database_url, migrate_first=False) for _ in range(3)]
    dispatchers = [world.new_dispatcher(store) for store in stores]
    try:
        for round_ in range(3):
            barrier = threading.Barrier(3)
            results: list[DispatchSummary] = []

            def run(
                d: Dispatcher, barrier: threading.Barrier = barrier, results: list[DispatchSummary] = results
            ) -> None:
                barrier.wait()
                results.append(d.dispatch_due())

            threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(r.messages for r in results) == (6 if round_ == 0 else 0)
            world.clock.advance(timedelta(minutes=10))
            if round_ == 0:
                world.publish("Kim Jong Un writes to Putin")  # capped, summary spent: held
        assert len(webhook.posts) == 6
        assert sum(1 for p in webhook.posts if "(flood control)" in p["title"]) == 1
        assert "15 more alerts" in webhook.posts[-1]["title"] or any(
            "15 more alerts" in p["title"] for p in webhook.posts
        )
        held = world.alerts("pending")
        assert len(held) == 1 and held[0].hold_reason == "rate"
    finally:
        for store in stores:
            store.engine.dispose()


# ----------------------------------------------------------------------------- marks


def test_sqlite_lock_held_40s_while_sends_are_marked_resends_nothing(
    make_world: MakeWorld, webhook: WebhookReceiver, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a file lock is SQLite's; PostgreSQL's row locks are covered by the racing test")
    world = make_world(subscriber("analysts", webhook.url()), now=T0)
    assert world.publish(*titles(3)) == 3
    webhook.delay = 0.5
    path = database_url.removeprefix("sqlite:///")
    refused: list[str] = []
    locked = threading.Event()

    def hold_lock() -> None:
        while not any(a.status == "sending" for a in world.alerts()):
            time.sleep(0.05)
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("BEGIN IMMEDIATE")  # the one write lock, held for 40 s
        locked.set()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if world.dispatcher.write_error:
                refused.append(world.dispatcher.write_error)
            time.sleep(0.5)
        conn.rollback()
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    first = world.dispatch()
    holder.join()
    assert locked.is_set()
    assert refused and "locked" in refused[0]
    # The first post's mark waited in memory until the lock was gone; the second alert was
    # not sent while marks were refused (it is due again at once); once the marks landed,
    # the third went out.
    assert [p["title"] for p in webhook.posts] == [f"[kim-putin] {t}" for t in titles(3)[0::2]]
    assert first.unmarked == 0 and world.dispatcher.write_error is None
    second = world.dispatch()
    assert second.sent == 1
    world.clock.advance(timedelta(hours=1))
    assert world.dispatch().claimed == 0
    assert sorted(p["title"] for p in webhook.posts) == [f"[kim-putin] {t}" for t in titles(3)]
    assert {a.status for a in world.alerts()} == {"sent"}


def _mount_or_skip(image: Path, mountpoint: Path) -> None:
    mountpoint.mkdir()
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={image}", "bs=1M", "count=16"], check=True, capture_output=True)
        subprocess.run(["mkfs.ext4", "-q", str(image)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot loop-mount a file system here (needs root and loop devices): {exc} {detail!r}")


def test_database_read_only_mid_dispatch_resends_nothing_and_healthz_says_so(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    from monitor.app import App
    from monitor.daemon import Daemon
    from monitor.runtime import RuntimeHolder
    from monitor.services.ingest import Ingestor

    image, mnt = tmp_path / "fs.img", tmp_path / "mnt"
    _mount_or_skip(image, mnt)
    try:
        url = f"sqlite:///{mnt / 'wirewatch.db'}"
        path = write_config(tmp_path / "config.toml", subscriber("analysts", webhook.url()))
        config = load_config(path, env={})
        store = open_store(url, migrate_first=True)
        world = World(path, url, FrozenClock(T0), store, config, make_runtime(config))
        assert world.publish(*titles(20)) == 20
        webhook.delay = 2.0  # each post takes 2 s: a quiet spell with no database work
        app = App(
            holder=RuntimeHolder(world.runtime, path=path),
            store=store,
            ingestor=Ingestor(store, lambda: world.runtime, world.clock),
            dispatcher=world.dispatcher,
        )
        daemon = Daemon(app)
        daemon.last_tick = time.monotonic()
        assert daemon.health()["database_writes"] == "ok"

        runner = threading.Thread(target=world.dispatch)
        runner.start()
        while not webhook.posts:
            time.sleep(0.02)
        time.sleep(0.5)  # the first post is marked; the second is on the wire
        # The file system goes read-only under the running dispatcher (idle pooled
        # connections are closed so the kernel lets the remount through).
        deadline = time.monotonic() + 10
        while True:
            store.engine.dispose()
            gc.collect()  # connections of the disposed pool close when it is collected
            done = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, check=False)
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.01)
        webhook.delay = 0
        runner.join()
        # The post on the wire when the remount came through went out; its mark was refused
        # and kept, and the lane stopped there (under load the kernel may take one more
        # post's time to let the remount through: 2, or 3).
        posted = len(webhook.posts)
        assert 2 <= posted <= 3
        assert world.dispatcher.pending_marks >= 1
        health = daemon.health()
        assert health["ok"] is False and health["database_writes"] != "ok"
        # While marks are refused, nothing is claimed or sent, however often it runs.
        world.clock.advance(timedelta(minutes=5))
        assert world.dispatch().messages == 0
        assert len(webhook.posts) == posted

        store.engine.dispose()
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        world.dispatch()
        world.clock.advance(timedelta(hours=1))
        world.dispatch()
        assert len(webhook.posts) == 20
        assert sorted(p["title"] for p in webhook.posts) == [f"[kim-putin] {t}" for t in titles(20)]
        assert {a.status for a in world.alerts()} == {"sent"}
        assert daemon.health()["database_writes"] == "ok"
        store.engine.dispose()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


# ----------------------------------------------------------------------------- one story


THREE_RULES = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]

[[rules]]
name = "nk-troops-for-russia"
query = 'kim_jong_un AND troops'
notify = ["analysts"]

[[rules]]
name = "kursk-nk"
query = 'kursk AND kim_jong_un'
notify = ["analysts"]
severity = "critical"
"""


def test_one_article_matching_3_rules_is_one_message_naming_them_all(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    world = make_world(
        subscriber("analysts", smtp_server.url(), webhook.url(), mode="digest", digest_at=["08:00"]),
        rules=THREE_RULES,
        now=T0,
    )
    queued = world.publish(
        "Kim Jong Un sends troops to Kursk for Putin",
        body="Kim Jong Un has sent soldiers to Kursk, where Putin thanked them.",
    )
    assert queued == 1
    [row] = world.alerts()
    assert row.rules == ("kursk-nk", "kim-putin", "nk-troops-for-russia")
    assert row.severity == "critical"  # critical wins the routing: due now, not at the digest
    world.dispatch()
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1
    mail = smtp_server.messages[0]
    assert str(mail["Subject"]).startswith("[CRITICAL] [kursk-nk, kim-putin, nk-troops-for-russia] Kim Jong Un")
    text_part = mail.get_body(preferencelist=("plain",))
    assert text_part is not None
    text = str(text_part.get_content())
    assert "kursk-nk (Kim Jong Un, Kursk)" in text
    assert "kim-putin (Kim Jong Un, Putin)" in text
    assert "nk-troops-for-russia (Kim Jong Un, troops, soldiers)" in text
    assert "Matched: kursk-nk" in webhook.posts[0]["message"]
    world.clock.advance(timedelta(days=1))
    world.dispatch()
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1
