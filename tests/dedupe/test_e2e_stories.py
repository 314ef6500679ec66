"""One story, one alert — end to end through the real ``wirewatch`` process.

Loopback feed servers play ten outlets carrying copies of one wire story (trimmed,
retitled, tracking links, datelines) and a second, different story on the same topic;
aiosmtpd and a webhook receiver count what subscribers get.  A second corpus test serves
syndicated copies of every gold article in the shared corpus, and the miniflux Atom/RSS
pair and the duplicate-GUID feed, and measures clustering precision and recall from
``wirewatch stories --json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import CORPUS, run_cli
from tests.dedupe.corpus import OUTLETS, Copy, load_articles, pair_scores, rss_of, syndicate
from tests.servers import FeedServer, SmtpServer, WebhookReceiver

# Floors for the corpus run (see ARCHITECTURE/report): a false merge silently swallows an
# alert, so precision must be near perfect; a missed merge costs one duplicate alert.
PRECISION_FLOOR = 0.99
RECALL_FLOOR = 0.95

TERMS = """
[terms]
kim_jong_un = ["Kim Jong Un", "Kim Jong-un"]
putin = ["Putin"]
"""

SUMMIT = [
    (
        "North Korean leader Kim Jong Un arrived in Vladivostok on Tuesday aboard his armoured train for a summit "
        "with Russian President Vladimir Putin, the Kremlin said, in a visit watched closely in Seoul and Washington."
    ),
    (
        "The two leaders were expected to discuss military cooperation, including possible deliveries of artillery "
        "shells to Moscow, and Russian help with satellite technology, according to officials briefed on the plans."
    ),
    (
        "Kim was greeted at the station by a guard of honour and the governor of the Primorsky region. Russian state "
        "television showed him shaking hands with officials before being driven to the Vostochny cosmodrome."
    ),
    (
        "South Korea's foreign ministry said it was monitoring the visit and warned that any arms transfer would "
        "violate United Nations Security Council resolutions that Russia itself had voted for."
    ),
    (
        "Analysts said the summit underlined how the war in Ukraine had pushed Moscow closer to Pyongyang, "
        "which has been isolated by sanctions over its nuclear weapons and ballistic missile programmes."
    ),
]
TROOPS = [
    (
        "Ukraine's military intelligence said on Friday that thousands of North Korean soldiers had been moved to "
        "the Kursk region, where Kim Jong Un's troops were preparing to join Russian forces, a month after Putin "
        "signed a pact."
    ),
    (
        "The agency released satellite images and intercepted radio traffic that it said showed units training at "
        "ranges near the border and receiving Russian uniforms, rifles and drones."
    ),
    (
        "The Kremlin declined to comment on the report. Pyongyang has denied sending troops but said any deployment "
        "would be legitimate under the mutual defence treaty signed in June."
    ),
    (
        "Western officials said the deployment marked a significant escalation that could draw more countries into "
        "the war, and NATO's secretary general called it a dangerous expansion of the conflict."
    ),
]


def summit_copies() -> list[Copy]:
    body = "\n\n".join(SUMMIT)
    dl = "VLADIVOSTOK, Russia (AP) — "
    variants = [
        ("Kim Jong Un arrives in Russia for Putin summit", body),
        ("Kim Jong Un arrives in Russia for Putin summit", "\n\n".join(SUMMIT[:2])),
        ("Kim travels to Vladivostok to meet Putin", body),
        ("Kim Jong Un arrives in Russia for Putin summit", dl + body),
        ("North Korea's Kim in Russia for talks with Putin", dl + "\n\n".join(SUMMIT[:3])),
        ("Kim Jong Un arrives in Russia for Putin summit", SUMMIT[0]),
        ("UPDATE 1-Kim Jong Un arrives in Russia for Putin summit", body + "\n\nReporting by the wire desk."),
        ("Kim arrives for summit with Putin", "\n\n".join(SUMMIT[:4])),
        ("Kim Jong Un arrives in Russia for Putin summit", dl + SUMMIT[0] + "\n\n" + SUMMIT[1]),
        ("Kim Jong Un, Putin to meet in Russia's Far East", body),
    ]
    urls = [
        "https://wire.example/world/kim-putin-summit",
        "https://www.outlet1.example/news/kim-putin-summit?utm_source=rss&utm_medium=feed",
        "https://outlet2.example/asia/2026/11/27/kim-russia",
        "https://m.outlet3.example/world/kim-putin-summit/amp",
        "https://outlet4.example/a/8817",
        "http://wire.example/world/kim-putin-summit?fbclid=XYZ",  # the wire's own link, tracked
        "https://outlet6.example/world/kim-putin-summit-update",
        "https://outlet7.example/story/kim",
        "https://outlet8.example/n/kim-putin?ref=home",
        "https://outlet9.example/kim-putin-far-east",
    ]
    return [
        Copy("summit", f"outlet{i}", f"summit-{i}", url, title, text, "en")
        for i, (url, (title, text)) in enumerate(zip(urls, variants, strict=True))
    ]


def troops_copies() -> list[Copy]:
    body = "\n\n".join(TROOPS)
    return [
        Copy(
            "troops",
            "outlet0",
            "troops-0",
            "https://wire.example/world/nk-troops-kursk",
            "North Korean troops moved to Kursk, Kyiv says",
            body,
            "en",
        ),
        Copy(
            "troops",
            "outlet2",
            "troops-2",
            "https://outlet2.example/asia/nk-kursk",
            "Kyiv: Kim's soldiers in Kursk",
            "\n\n".join(TROOPS[:2]),
            "en",
        ),
    ]


def write_config(
    tmp_path: Path, sources: dict[str, str], smtp: SmtpServer | None, hook: WebhookReceiver, first_poll: str
) -> Path:
    srcs = "".join(f'\n[[sources]]\nname = "{n}"\nurl = "{u}"\ninterval = "5m"\n' for n, u in sources.items())
    notify = '["analysts", "chat"]' if smtp else '["chat"]'
    analysts = (
        f'\n[[subscribers]]\nname = "analysts"\nurls = ["{smtp.url()}"]\ntimezone = "Asia/Seoul"\n' if smtp else ""
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///ignored.db"

[fetch]
timeout = "10s"
host_delay = "0s"
full_text = false

[alerts]
first_poll = "{first_poll}"
max_age = "3d"
{srcs}
{TERMS}
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = {notify}
{analysts}
[[subscribers]]
name = "chat"
urls = ["{hook.url()}"]
""",
        encoding="utf-8",
    )
    return path


def serve_outlets(server: FeedServer, copies: list[Copy], published: datetime | None = None) -> dict[str, str]:
    by_outlet: dict[str, list[Copy]] = {}
    for c in copies:
        by_outlet.setdefault(c.outlet, []).append(c)
    return {
        name: server.serve(f"/{name}.xml", rss_of(cs, title=name, published=published))
        for name, cs in sorted(by_outlet.items())
    }


def stories(config: Path, db: str) -> list[dict[str, Any]]:
    result = run_cli("stories", "--json", "--limit", "1000", config=config, database_url=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["stories"]  # type: ignore[no-any-return]


def test_one_story_from_ten_outlets_alerts_once(
    tmp_path: Path, database_url: str, feed_server: FeedServer, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    copies = summit_copies() + troops_copies()
    sources = serve_outlets(feed_server, copies)
    assert len(sources) == 10
    config = write_config(tmp_path, sources, smtp_server, webhook, first_poll="alert")

    first = run_cli("run", "--once", config=config, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "12 new items" in first.stdout, first.stdout
    # Two stories on the same topic: two alerts per subscriber, not twelve.
    assert len(smtp_server.messages) == 2, [m["Subject"] for m in smtp_server.messages]
    assert len(webhook.posts) == 2
    summit_mail = next(
        m
        for m in smtp_server.messages
        if "Russia" in m["Subject"] or ("Kim" in m["Subject"] and "Kursk" not in m["Subject"])
    )
    text_part = summit_mail.get_body(preferencelist=("plain",))
    assert text_part is not None and "Also reported by:" in text_part.get_content()

    found = {s["title"]: s for s in stories(config, database_url)}
    assert len(found) == 2
    summit = next(s for s in found.values() if s["size"] == 10)
    assert sorted(summit["outlets"]) == sorted(f"outlet{i}" for i in range(10))
    assert summit["languages"] == ["en"] and summit["first_item"]["url"]
    troops = next(s for s in found.values() if s["size"] == 2)
    assert sorted(troops["outlets"]) == ["outlet0", "outlet2"]

    # Edits, a new GUID on an unchanged entry, a bumped date and another late copy: no new alert.
    later = [
        *[
            Copy(c.story, c.outlet, c.guid, c.url, c.title, c.body.replace("Tuesday", "Tuesday evening"), c.language)
            for c in copies[:3]
        ],
        Copy("summit", "outlet3", "summit-3-new-guid", copies[3].url, copies[3].title, copies[3].body, "en"),
        *copies[4:],
        Copy(
            "summit",
            "outlet5",
            "summit-late",
            "https://outlet5.example/late-copy",
            "Kim, Putin meet in Russia",
            "\n\n".join(SUMMIT[0::2]),
            "en",
        ),
    ]
    serve_outlets(feed_server, later, published=datetime.now(UTC) + timedelta(minutes=30))
    second = run_cli("run", "--once", config=config, database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert len(smtp_server.messages) == 2 and len(webhook.posts) == 2, second.stdout
    after = stories(config, database_url)
    assert len(after) == 2, [(s["title"], s["size"]) for s in after]
    # The new GUID on an unchanged entry is no new item; the late copy joins the story.
    assert sorted(s["size"] for s in after) == [2, 11]
    alerts = json.loads(run_cli("alerts", "--json", config=config, database_url=database_url).stdout)["alerts"]
    assert len(alerts) == 4 and {a["status"] for a in alerts} == {"sent"}


def test_corpus_clustering_precision_and_recall(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    articles = load_articles()
    copies = [c for a in articles for c in syndicate(a)]
    sources = serve_outlets(feed_server, copies)
    assert sorted(sources) == sorted(OUTLETS)
    feeds = CORPUS / "feeds"
    sources["miniflux-atom"] = feed_server.serve(
        "/mf-atom.xml", (feeds / "miniflux__large_atom.xml").read_bytes(), "application/atom+xml"
    )
    sources["miniflux-rss"] = feed_server.serve("/mf-rss.xml", (feeds / "miniflux__large_rss.xml").read_bytes())
    sources["guid-dupes"] = feed_server.serve("/dupes.xml", (feeds / "nodefp__guid-dupes.xml").read_bytes())
    config = write_config(tmp_path, sources, None, webhook, first_poll="silent")

    result = run_cli("run", "--once", config=config, database_url=database_url, timeout=300)
    assert result.returncode == 0, result.stderr
    found = stories(config, database_url)

    truth: dict[str, str] = {}
    by_url = {c.url: c.story for c in copies}
    clusters: list[list[str]] = []
    miniflux: list[dict[str, Any]] = []
    for s in found:
        members = []
        for m in s["items"]:
            if m["source"] in OUTLETS:
                member = f"{m['source']}|{m['url']}"
                truth[member] = by_url[m["url"]]
                members.append(member)
        if members:
            clusters.append(members)
        if any(m["source"].startswith("miniflux") for m in s["items"]):
            miniflux.append(s)
        if any(m["source"] == "guid-dupes" for m in s["items"]):
            assert s["size"] == 1

    if len(truth) != len(copies):
        short = {o: sum(c.outlet == o for c in copies) - sum(m.startswith(o + "|") for m in truth) for o in OUTLETS}
        raise AssertionError(
            f"{len(copies) - len(truth)} copies in no story, by outlet {short}\n"
            f"run --once said:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    precision, recall, predicted, actual = pair_scores(clusters, truth)
    for story in sorted(set(truth.values())):
        split = [
            sorted(m.split("|")[0] for m in c if truth[m] == story)
            for c in clusters
            if any(truth[m] == story for m in c)
        ]
        if len(split) > 1:
            print(f"split {story}: {split}")
    print(
        f"corpus clustering: {len(articles)} articles, {len(copies)} copies; "
        f"precision {precision:.3f} recall {recall:.3f} ({predicted} predicted / {actual} true pairs)"
    )
    assert precision >= PRECISION_FLOOR
    assert recall >= RECALL_FLOOR
    # The same 25 posts in Atom and in RSS: 25 stories of two.
    assert len(miniflux) == 25
    assert all(sorted(m["source"] for m in s["items"]) == ["miniflux-atom", "miniflux-rss"] for s in miniflux)
