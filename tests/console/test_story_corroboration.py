"""The story page shows corroboration over time (no browser): a real console served by
uvicorn on loopback over real SQLite and PostgreSQL, a story carried by three outlets in
three languages, its alert sent by the real dispatcher to a webhook receiver, and a
corroboration update sent when the third outlet joined."""

from __future__ import annotations

import html
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.app import open_store
from monitor.config import load_config
from monitor.console.app import ConsoleDeps, make_web_app
from monitor.console.server import WebServer
from monitor.core.models import PollOutcome, RawItem
from monitor.notify.apprise import AppriseNotifier
from monitor.runtime import make_runtime
from monitor.services.dispatch import Dispatcher
from monitor.services.ingest import Ingestor
from tests.servers import WebhookReceiver

TOKEN = "a-long-enough-console-token"
CONFIG = """
[console]
token = "${{CONSOLE_TOKEN}}"

[alerts]
first_poll = "alert"
corroboration_updates = [3]

[[sources]]
name = "wire"
url = "https://wire.example/feed"
language = "en"

[[sources]]
name = "tass"
url = "https://tass.example/feed"
language = "ru"

[[sources]]
name = "yonhap"
url = "https://yna.example/feed"
language = "ko"

[terms]
kursk = ["Kursk"]

[[rules]]
name = "kursk"
query = "kursk"
notify = ["chat"]

[[subscribers]]
name = "chat"
urls = ["{hook}"]
"""
STORY = (
    "Troops reach Kursk: 3 < 5 & dig in",
    "Soldiers reached Kursk on Monday, officials said in a statement; more units followed overnight.",
)


def test_story_page_shows_when_each_outlet_and_language_joined(
    tmp_path: Path, database_url: str, webhook: WebhookReceiver
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(hook=webhook.url()), encoding="utf-8")
    env = {"CONSOLE_TOKEN": TOKEN}
    rt = make_runtime(load_config(path, env=env))
    store = open_store(database_url, migrate_first=True)
    t0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    clock = [t0]
    store.sync_sources([(s.name, s.type, s.url) for s in rt.config.sources], t0)
    ids = {s.name: s.id for s in store.source_states()}
    ingestor = Ingestor(store, lambda: rt, lambda: clock[0])
    dispatcher = Dispatcher(store, AppriseNotifier(), lambda: rt, lambda: clock[0], env=env)

    def copy(source: str, minutes: int) -> None:
        clock[0] = t0 + timedelta(minutes=minutes)
        raw = RawItem("1", f"https://{source}.example/1", *STORY)
        ingestor.ingest_batch([PollOutcome(ids[source], source, "ok", (raw,))])
        dispatcher.dispatch_due()

    copy("wire", 0)  # the alert goes at once: 1 outlet
    copy("tass", 7)
    copy("yonhap", 19)  # the third outlet: one update
    assert [p["title"].split("]")[0] for p in webhook.posts] == ["[kursk", "[update"]

    story_id = store.alert_rows()[0].story_id
    deps = ConsoleDeps(store, lambda: rt, str(path), now=lambda: clock[0], env=env)
    server = WebServer("127.0.0.1:0", make_web_app(None, None, deps))
    server.start()
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/stories/{story_id}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=15) as r:
            assert r.status == 200
            page = r.read().decode()
    finally:
        server.stop()
        store.engine.dispose()

    assert "3 < 5 & dig" not in page and html.escape("3 < 5 & dig") in page  # the feed's title, escaped
    assert "reported by 3 outlets in 3 languages (en, ru, ko)" in page
    timeline = page.split('<table class="timeline">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", timeline, re.S)
    ]
    assert rows == [
        ["2026-12-06 10:00 UTC", "wire", "en", "a new outlet and a new language", "1", "1"],
        ["2026-12-06 10:07 UTC", "tass", "ru", "a new outlet and a new language", "2", "2"],
        ["2026-12-06 10:19 UTC", "yonhap", "ko", "a new outlet and a new language", "3", "3"],
    ]
    # The alert went with one outlet; the update when the third joined.
    alerts = page.split('<table class="alerts">', 1)[1].split("</table>", 1)[0]
    assert '<td class="reach">1 outlet in en</td>' in alerts
    updates = page.split('<table class="updates">', 1)[1].split("</table>", 1)[0]
    assert "<td>chat</td><td>3 outlets</td>" in updates and "badge sent" in updates
