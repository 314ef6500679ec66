"""Corroboration and surges end to end, on SQLite and PostgreSQL, with the frozen clock: the
real ingest stores syndicated copies from several outlets (one story), the real dispatcher
releases held alerts, queues and sends story updates and surge messages through Apprise to
aiosmtpd on loopback."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from PIL import Image

from monitor.core.models import PollOutcome, RawItem
from monitor.services.ingest import Ingestor
from tests.alerts.conftest import VOCABULARY, World, subscriber, utc
from tests.alerts.test_delivery import parts
from tests.servers import SmtpServer, WebhookReceiver

MakeWorld = Callable[..., World]

# Outlets beside the world's "wire" (English): each is an operator-configured source with
# its language; a copy of the story is the same text under another link.
OUTLETS = """
[[sources]]
name = "tass"
url = "https://tass.example.org/feed.xml"
language = "ru"
enabled = false

[[sources]]
name = "yonhap"
url = "https://yna.example.org/feed.xml"
language = "ko"
enabled = false

[[sources]]
name = "ria"
url = "https://ria.example.org/feed.xml"
language = "ru"
enabled = false

[[sources]]
name = "kcna"
url = "https://kcna.example.org/feed.xml"
language = "ko"
enabled = false
"""
# The outlets and one rule that holds nothing: every copy alerts or updates at once.
KIM_PUTIN = (
    OUTLETS
    + """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]
"""
)

TITLE = "Kim Jong Un meets Putin at the Vostochny cosmodrome"
BODY = (
    "Kim Jong Un and Putin met at the Vostochny cosmodrome on Wednesday. "
    + " ".join(random.Random(7).choices(VOCABULARY, k=60))
    + "."
)


def copy(world: World, source: str, n: int, *, title: str = TITLE, body: str = BODY, new: int = 1) -> None:
    """One poll of ``source`` bringing one copy of the story (its own link, the same text)."""
    world.store.sync_sources([(s.name, s.type, s.url) for s in world.config.sources], world.clock())
    source_id = next(s.id for s in world.store.source_states([source]))
    raw = RawItem(
        guid=f"{source}-{n}",
        url=f"https://{source}.example.org/news/{n}",
        title=title,
        summary=body,
        language="en",  # the feed's claim; a source's configured language beats it
        published=world.clock() - timedelta(minutes=1),
    )
    outcome = PollOutcome(source_id=source_id, source=source, status="ok", items=(raw,))
    summary = Ingestor(world.store, lambda: world.runtime, world.clock).ingest(outcome)
    assert summary.status == "ok" and summary.new == new, summary


def held_rules(extra: str = "") -> str:
    return (
        OUTLETS
        + """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]
min_outlets = 3
max_wait = "6h"
"""
        + extra
    )


def test_a_held_alert_goes_once_when_the_story_reaches_three_outlets(
    make_world: MakeWorld, smtp_server: SmtpServer
) -> None:
    t0 = utc(2026, 6, 1, 3, 0)
    world = make_world(subscriber("analysts", smtp_server.url(), timezone="Asia/Seoul"), rules=held_rules(), now=t0)
    copy(world, "wire", 1)
    assert [a.status for a in world.alerts()] == ["waiting"]
    assert world.dispatch().claimed == 0 and smtp_server.messages == []

    world.clock.advance(timedelta(minutes=10))
    copy(world, "tass", 2)
    assert world.dispatch().released == 0 and smtp_server.messages == []
    assert [a.status for a in world.alerts()] == ["waiting"]

    world.clock.advance(timedelta(minutes=10))
    copy(world, "yonhap", 3)
    summary = world.dispatch()
    assert summary.released == 1 and summary.sent == 1
    assert len(smtp_server.messages) == 1
    [alert] = world.alerts()
    assert alert.status == "sent" and alert.released == "confirmed"

    mail = smtp_server.messages[0]
    assert mail["Subject"] == f"[kim-putin] {TITLE}"
    html, text = parts(mail)
    for body in (html, text):
        assert "reported by 3 outlets in 3 languages (en, ru, ko)" in body
        assert "Also reported by: tass, yonhap" in body or "Also reported by:</b> <span" in body
        # The timeline: when each outlet and language joined, in the subscriber's zone.
        assert "2026-06-01 12:00 KST: wire (en), new outlet and language: 1 outlet, 1 language" in body
        assert "2026-06-01 12:10 KST: tass (ru), new outlet and language: 2 outlets, 2 languages" in body
        assert "2026-06-01 12:20 KST: yonhap (ko), new outlet and language: 3 outlets, 3 languages" in body
        assert "UNCONFIRMED" not in body
    assert '<li dir="auto">2026-06-01 12:10 KST: tass (ru)' in html

    # More copies, more runs, a restarted dispatcher: the story has had its one message.
    world.clock.advance(timedelta(minutes=10))
    copy(world, "ria", 4)
    world.dispatch()
    world.new_dispatcher().dispatch_due()
    world.clock.advance(timedelta(hours=7))  # past max_wait too
    world.dispatch()
    assert len(smtp_server.messages) == 1
    assert len(world.alerts()) == 1


def test_max_wait_sends_what_there_is_marked_unconfirmed(make_world: MakeWorld, smtp_server: SmtpServer) -> None:
    t0 = utc(2026, 6, 1, 3, 0)
    rules = held_rules().replace('max_wait = "6h"', 'max_wait = "2h"')
    world = make_world(subscriber("analysts", smtp_server.url()), rules=rules, now=t0)
    copy(world, "wire", 1)
    world.clock.set(t0 + timedelta(hours=1, minutes=30))
    copy(world, "tass", 2)  # two outlets: not yet three
    world.clock.set(t0 + timedelta(hours=1, minutes=59))
    world.dispatch()
    assert smtp_server.messages == []
    world.clock.set(t0 + timedelta(hours=2))
    assert world.dispatch().released == 1
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["Subject"] == f"[unconfirmed] [kim-putin] {TITLE}"
    html, text = parts(mail)
    for body in (html, text):
        assert "UNCONFIRMED: the rule waited for 3 outlets; its wait ran out first." in body
        assert "reported by 2 outlets in 2 languages (en, ru)" in body
    assert world.alerts()[0].released == "unconfirmed"
    world.clock.advance(timedelta(hours=1))
    copy(world, "yonhap", 3)  # the third outlet arrives after the unconfirmed alert
    world.dispatch()
    world.new_dispatcher().dispatch_due()
    assert len(smtp_server.messages) == 1


def test_several_held_rules_on_one_story_send_one_message_naming_them_all(
    make_world: MakeWorld, smtp_server: SmtpServer
) -> None:
    extra = """
[[rules]]
name = "putin-languages"
query = 'putin'
notify = ["analysts"]
min_languages = 2
"""
    world = make_world(subscriber("analysts", smtp_server.url()), rules=held_rules(extra), now=utc(2026, 6, 1, 3))
    copy(world, "wire", 1)
    assert [(a.status, a.rules) for a in world.alerts()] == [("waiting", ("kim-putin", "putin-languages"))]
    world.clock.advance(timedelta(minutes=5))
    copy(world, "tass", 2)  # a second language satisfies putin-languages (kim-putin still wants 3 outlets)
    world.dispatch()
    world.dispatch()
    assert [m["Subject"] for m in smtp_server.messages] == [f"[kim-putin, putin-languages] {TITLE}"]


def test_a_rule_firing_on_a_later_copy_joins_the_held_alert_and_lets_it_go(
    make_world: MakeWorld, smtp_server: SmtpServer
) -> None:
    extra = """
[[rules]]
name = "from-tass"
query = 'putin'
notify = ["analysts"]
sources = ["tass"]
"""
    world = make_world(subscriber("analysts", smtp_server.url()), rules=held_rules(extra), now=utc(2026, 6, 1, 3))
    copy(world, "wire", 1)
    world.dispatch()
    assert smtp_server.messages == []
    world.clock.advance(timedelta(minutes=5))
    copy(world, "tass", 2)  # from-tass asks for no corroboration: the held alert goes, naming both
    assert [(a.status, a.rules) for a in world.alerts()] == [("waiting", ("kim-putin", "from-tass"))]
    world.dispatch()
    world.dispatch()
    assert [m["Subject"] for m in smtp_server.messages] == [f"[kim-putin, from-tass] {TITLE}"]
    assert len(world.alerts()) == 1 and world.alerts()[0].released == "confirmed"


def test_an_update_goes_once_per_threshold_even_across_restarts(make_world: MakeWorld, smtp_server: SmtpServer) -> None:
    rules = KIM_PUTIN
    t0 = utc(2026, 6, 1, 3, 0)
    world = make_world(
        subscriber("analysts", smtp_server.url()), rules=rules, alerts="corroboration_updates = [3, 5]", now=t0
    )
    copy(world, "wire", 1)
    world.dispatch()
    assert len(smtp_server.messages) == 1  # the alert itself, at once: this rule holds nothing
    _, text = parts(smtp_server.messages[0])
    assert "reported by 1 outlet in 1 language (en)" in text

    def step(source: str, n: int, new: int = 1) -> int:
        world.clock.advance(timedelta(minutes=5))
        copy(world, source, n, new=new)
        before = len(smtp_server.messages)
        world.dispatch()
        world.dispatch()  # a second pass
        world.new_dispatcher().dispatch_due()  # a restarted process
        return len(smtp_server.messages) - before

    assert step("tass", 2) == 0
    assert step("yonhap", 3) == 1
    update = smtp_server.messages[-1]
    assert update["Subject"].startswith("[update] [kim-putin] now 3 outlets in 3 languages (en, ru, ko)")
    html, text = parts(update)
    for body in (html, text):
        assert "is now reported by 3 outlets in 3 languages (en, ru, ko) (it reached 3 outlets)" in body
        assert "yonhap (ko), new outlet and language: 3 outlets, 3 languages" in body
    assert step("ria", 4) == 0
    assert step("kcna", 5) == 1
    assert "now 5 outlets in 3 languages" in smtp_server.messages[-1]["Subject"]
    assert step("wire", 6, new=0) == 0  # the outlet repeating itself is not news (a within-source repeat)
    rows = world.store.bulletin_rows("update")
    assert sorted((r["key"], r["status"]) for r in rows) == [
        (f"update:{rows[0]['story_id']}:3", "sent"),
        (f"update:{rows[0]['story_id']}:5", "sent"),
    ]


def test_a_surge_sends_one_message_with_its_chart_then_stays_quiet_for_the_cool_down(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    rules = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts", "hook"]
"""
    t0 = utc(2026, 6, 10, 12, 0)
    # Digest subscribers: the ordinary alerts wait for tomorrow's digest, so what arrives
    # now is the surge alone.
    world = make_world(
        subscriber("analysts", smtp_server.url(), mode="digest", digest_at=["08:00"])
        + subscriber("hook", webhook.url(), mode="digest", digest_at=["08:00"]),
        rules=rules,
        alerts='surge = 3.0\nsurge_min = 10\nsurge_cooldown = "6h"',
        now=t0,
    )
    # A quiet week: one match a day.
    for day in range(7, 0, -1):
        world.clock.set(t0 - timedelta(days=day, minutes=-30))
        world.publish(f"Kim Jong Un and Putin, day {day}")
    world.clock.set(t0 - timedelta(hours=3))
    world.publish(*(f"Kim Jong Un and Putin, earlier {i}" for i in range(3)))
    world.clock.set(t0)
    assert world.dispatch().bulletins == 0  # 3 in the last hour: under the floor

    def surges() -> tuple[list[EmailMessage], list[dict[str, Any]]]:
        # The week's alerts go out in digests meanwhile; the surges are the rest.
        mails = [m for m in smtp_server.messages if m["Subject"].startswith("[surge]")]
        return mails, [p for p in webhook.posts if p["title"].startswith("[surge]")]

    assert surges() == ([], [])

    world.clock.set(t0 + timedelta(minutes=20))
    world.publish(*(f"Kim Jong Un and Putin, surge {i}" for i in range(12)))
    world.clock.set(t0 + timedelta(minutes=30))
    summary = world.dispatch()
    mails, posts = surges()
    assert summary.bulletins == 2 and len(mails) == 1 and len(posts) == 1
    mail = mails[0]
    assert mail["Subject"] == "[surge] kim-putin: 12 matches in the last hour"
    html, text = parts(mail)
    for body in (html, text):
        assert (
            "kim-putin: 12 matches in the hour to 2026-06-10 12:30 UTC, against a 7-day mean of 0.1 an hour" in body
        )  # 10 in the week before
        assert "Kim Jong Un and Putin, surge 0" in body and "https://news.example.org/" in body
    assert text.count("https://news.example.org/") == 5  # the top five stories of the hour
    [chart] = [p for p in mail.iter_attachments() if p.get_content_type() == "image/png"]
    png = chart.get_content()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 1_000 < len(png) < 100_000
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.format == "PNG" and image.size == (640, 240)
    [bulletin] = world.store.bulletin_rows("surge")[:1]
    # The 48 hours: the surge, the three earlier today and yesterday's one.
    assert bulletin["payload"]["counts"][-1] == 12 and sum(bulletin["payload"]["counts"]) == 16
    post = posts[0]
    assert post["title"] == "[surge] kim-putin: 12 matches in the last hour"
    assert [a["filename"] for a in post.get("attachments", [])] == ["surge.png"]

    # The cool-down: more surging hours, more passes, a restart; nothing until it ends.
    for hours in (1, 3, 5):
        world.clock.set(t0 + timedelta(hours=hours))
        world.publish(*(f"Kim Jong Un and Putin, hour {hours} no. {i}" for i in range(15)))
        world.clock.advance(timedelta(minutes=5))
        world.dispatch()
        world.new_dispatcher().dispatch_due()
    assert [len(x) for x in surges()] == [1, 1]
    world.clock.set(t0 + timedelta(hours=6, minutes=31))
    world.publish(*(f"Kim Jong Un and Putin, later {i}" for i in range(40)))
    world.clock.advance(timedelta(minutes=1))
    world.dispatch()
    mails, posts = surges()
    assert len(mails) == 2 and len(posts) == 2 and mails[1]["Subject"].startswith("[surge] kim-putin: 40")


def test_an_update_in_quiet_hours_waits_for_them_to_end_without_spending_an_attempt(
    make_world: MakeWorld, smtp_server: SmtpServer
) -> None:
    rules = KIM_PUTIN
    t0 = utc(2026, 6, 1, 20, 0)
    world = make_world(
        subscriber("analysts", smtp_server.url(), quiet_hours="22:00-07:00"),
        rules=rules,
        alerts="corroboration_updates = [2]",
        now=t0,
    )
    copy(world, "wire", 1)
    world.dispatch()
    assert len(smtp_server.messages) == 1
    world.clock.set(utc(2026, 6, 1, 22, 30))
    copy(world, "tass", 2)
    world.dispatch()
    assert len(smtp_server.messages) == 1
    [row] = world.store.bulletin_rows("update")
    assert (row["status"], row["attempts"], row["next_attempt"]) == ("pending", 0, utc(2026, 6, 2, 7, 0))
    world.clock.set(utc(2026, 6, 2, 6, 59))
    world.dispatch()
    assert len(smtp_server.messages) == 1
    world.clock.set(utc(2026, 6, 2, 7, 0))
    world.dispatch()
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[1]["Subject"].startswith("[update] [kim-putin] now 2 outlets in 2 languages (en, ru)")
    assert world.store.bulletin_rows("update")[0]["status"] == "sent"
