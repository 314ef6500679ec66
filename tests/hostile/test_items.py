"""What one hostile item may break: only itself.

Through the real ``wirewatch run --once`` with ``full_text = true``: an entry whose link
is over 2,083 characters (Scrapy drops such a request without an errback, and the poll
used to wait for it until the crawl timed out), article pages whose JSON-LD nests 100,000
deep or whose ``articleBody`` is 100,000 unclosed ``<script>`` tags, and a 2 MB link.
Each is recorded (an oversized field on the source, a page not read on its item), every
item is stored (with what the feed gave), and the source's other items are stored and
matched as usual.  A feed of 150,000 entries under
``max_body`` is read up to ``MAX_ENTRIES`` with a warning, in bounded memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from monitor.core.feeds import MAX_ENTRIES, cap_entries
from monitor.core.items import MAX_URL, html_to_text, make_item
from monitor.core.models import PollOutcome, RawItem
from tests.conftest import ROOT, run_cli
from tests.servers import FeedServer, WebhookReceiver
from tests.sources.helpers import sources_json, stored

GOOD = "<html><body><article>" + "<p>Troops crossed into Kursk overnight, officials said.</p>" * 12


def _page_with_json_ld(blob: str) -> str:
    return f'<html><head><script type="application/ld+json">{blob}</script></head><body><p>x</p></body></html>'


def _feed(entries: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><guid>{guid}</guid><title>Kursk item {guid}</title><link>{link}</link></item>" for guid, link in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{body}</channel></rss>'


def _config(tmp_path: Path, url: str, hook: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[fetch]\nhost_delay = "0s"\nfull_text = true\nobey_robots = false\ntimeout = "10s"\n'
        '[alerts]\nfirst_poll = "alert"\n'
        f'[[sources]]\nname = "wire"\nurl = "{url}"\n'
        '[terms]\nkursk = ["Kursk"]\n[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n'
        f'[[subscribers]]\nname = "chat"\nurls = ["{hook}"]\nmax_per_hour = 1000\n',
        encoding="utf-8",
    )
    return path


def test_one_hostile_item_fails_only_itself(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    s = feed_server
    s.serve("/good", GOOD, content_type="text/html")
    s.serve("/deep-json-ld", _page_with_json_ld("[" * 100_000 + "]" * 100_000), content_type="text/html")
    bomb = json.dumps({"@type": "NewsArticle", "articleBody": "<script>" * 100_000})
    s.serve("/script-bomb", _page_with_json_ld(bomb), content_type="text/html")
    long_link = s.base + "/long?" + "a" * 2_100
    huge_link = "https://news.example.org/" + "b" * 2_000_000
    entries = [
        ("g1", s.base + "/good"),
        ("g2", long_link),
        ("g3", s.base + "/deep-json-ld"),
        ("g4", s.base + "/script-bomb"),
        ("g5", huge_link),
    ]
    s.serve("/feed.xml", _feed(entries))
    config = _config(tmp_path, s.base + "/feed.xml", webhook.url())
    started = time.monotonic()
    result = run_cli("run", "--once", config=config, database_url=database_url, timeout=180)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 60, elapsed  # no request waited for the crawl timeout (300 s)

    items = {i["title"]: i for i in stored(database_url, "wire")}
    assert len(items) == len(entries)  # items lost: none
    assert "Troops crossed into Kursk" in items["Kursk item g1"]["text"]
    assert all(len(i["url"]) <= MAX_URL for i in items.values())
    health = sources_json(config, database_url)["wire"]
    assert health["status"] == "ok"
    warning = health["last_warning"] or ""
    # The long link, said so: on its item, which the enrichment stage will not fetch.
    long_item = items["Kursk item g2"]
    assert long_item["text_state"] == "skipped", long_item
    assert "2,1" in (long_item["text_error"] or "") and "not fetched" in (long_item["text_error"] or "")
    assert "oversized field" in warning and "link of 2,000,0" in warning, warning
    assert s.hits("/good") and not [p for p, _ in s.requests if p.startswith("/long")]
    # Matched as usual: every entry's title names Kursk, so every one alerted.
    time.sleep(0.5)
    assert len(webhook.posts) >= 1
    # The 2 MB link is bounded in what the CLI prints too.
    out = run_cli("items", "--json", config=config, database_url=database_url)
    assert out.returncode == 0 and len(out.stdout) < 100_000


def test_a_feed_of_150000_entries_is_capped_in_bounded_memory(tmp_path: Path, feed_server: FeedServer) -> None:
    entries = "".join(f"<item><guid>f{i}</guid><title>Item {i}</title></item>" for i in range(150_000))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{entries}</channel></rss>'
    assert len(body) < 10_000_000  # under the default max_body
    url = feed_server.serve("/flood.xml", body)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[fetch]\nhost_delay = "0s"\nfull_text = false\nobey_robots = false\n'
        f'[[sources]]\nname = "flood"\nurl = "{url}"\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'flood.db'}"
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    argv = [sys.executable, "-m", "monitor", "--config", str(config), "--database-url", db, "run", "--once"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            time.sleep(0.02)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    elapsed = time.monotonic() - started
    peak_mb = peak_kb / 1024
    assert proc.returncode == 0, stderr
    health = sources_json(config, db)["flood"]
    assert health["status"] == "ok"
    assert health["items"] == MAX_ENTRIES
    assert "150,000 entries" in (health["last_warning"] or "")
    print(f"\n150,000-entry poll: {health['items']} stored, {elapsed:.1f}s, peak RSS {peak_mb:.0f} MB")
    # 518 MB before the cap; 213 MB with it through Scrapy.
    assert 0 < peak_mb < 400, peak_mb


def _high_water_kb(pid: int) -> int:
    """The process's own peak RSS so far (``VmHWM``, kB), 0 once it is gone.

    Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's high-water mark across
    ``fork``/``vfork`` and ``exec`` into the child's figure, so under xdist a test worker
    that had grown to 700 MB "measured" 700 MB for a child that never used half of it.
    ``VmHWM`` belongs to the child's own address space, made at ``exec``.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def test_cap_entries_cuts_after_the_limit_and_counts_the_rest() -> None:
    doc = b"<rss><channel>" + b"<item>x</item>" * 12 + b"</channel></rss>"
    cut, total = cap_entries(doc, 10)
    assert total == 12 and cut.count(b"</item>") == 10
    same, none = cap_entries(doc, 12)
    assert none is None and same == doc
    atom = b"<feed>" + b"<entry>x</ENTRY >" * 3 + b"</feed>"
    assert cap_entries(atom, 2)[1] == 3


def test_fields_are_bounded_but_keys_are_not_changed() -> None:
    now = datetime.now(UTC)
    link = "https://news.example.org/" + "x" * 100_000
    item = make_item(RawItem(guid=None, url=link, title="t"), now)
    assert item is not None and len(item.url) == MAX_URL and len(item.canonical_url) <= MAX_URL
    other = make_item(RawItem(guid=None, url=link + "y", title="t"), now)
    assert other is not None and other.key != item.key  # shortening never merges two links
    # Unclosed <script> tags are dropped in linear time (a regex took minutes).
    started = time.monotonic()
    assert html_to_text("<p>Kursk</p>" + "<script>" * 200_000) == "Kursk"
    assert time.monotonic() - started < 2
    assert html_to_text("a<script>x</script>b<STYLE>y</style >c") == "a b c"


def test_a_poll_outcome_prints_as_one_short_line() -> None:
    raw = RawItem(guid="g", url="https://e.org/a", title="t", summary="s" * 1_000_000)
    text = repr(PollOutcome(source_id=1, source="wire", status="error", items=(raw,) * 1000, error="e" * 10_000))
    assert len(text) < 600 and "\n" not in text and "items=1000" in text


def test_lone_surrogates_and_out_of_range_characters_cost_nothing_but_themselves(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    """Character references no encoder can write (a UTF-16 half, past U+10FFFF) in an XML
    feed, and ``\\ud800`` escapes in a JSON feed, become U+FFFD: the feed is read, every
    entry is stored, and the source stays healthy (feedparser itself raised on them, so
    the whole feed was an "internal error" on every poll)."""
    s = feed_server
    xml_entries = "".join(
        f"<item><guid>x{i}</guid><title>Kursk {ref} item {i}</title><link>{s.base}/x/{i}</link>"
        f"<description>Troops &#x10FFFF; fine &#8217; and {ref}</description></item>"
        for i, ref in enumerate(["&#xD800;", "&#55296;", "&#x110000;", "&#xDFFF;&#xD83D;", "plain"])
    )
    s.serve(
        "/refs.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{xml_entries}</channel></rss>'
    )
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "j",
        "items": [
            {"id": f"j{i}", "url": f"{s.base}/j/{i}{half}", "title": f"Kursk {half} json {i}", "content_text": half}
            for i, half in enumerate(["\ud800", "\udc00x", ""])
        ],
    }
    s.serve("/halves.json", json.dumps(doc), content_type="application/feed+json")
    config = tmp_path / "config.toml"
    config.write_text(
        '[fetch]\nhost_delay = "0s"\nfull_text = false\nobey_robots = false\n'
        f'[[sources]]\nname = "refs"\nurl = "{s.base}/refs.xml"\n'
        f'[[sources]]\nname = "halves"\nurl = "{s.base}/halves.json"\n',
        encoding="utf-8",
    )
    result = run_cli("run", "--once", config=config, database_url=database_url, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    health = sources_json(config, database_url)
    assert health["refs"]["status"] == "ok", health["refs"]
    assert health["halves"]["status"] == "ok", health["halves"]
    refs = {i["url"].rsplit("/", 1)[1]: i for i in stored(database_url, "refs")}
    assert sorted(refs) == [str(i) for i in range(5)]  # items lost: none
    assert refs["0"]["title"] == "Kursk \ufffd item 0"
    assert refs["2"]["title"] == "Kursk \ufffd item 2"
    assert refs["3"]["title"] == "Kursk \ufffd\ufffd item 3"
    assert refs["4"]["title"] == "Kursk plain item 4"
    assert "fine \u2019 and" in refs["4"]["summary"]  # valid references are read as before
    halves = {i["title"]: i for i in stored(database_url, "halves")}
    assert sorted(halves) == ["Kursk json 2", "Kursk \ufffd json 0", "Kursk \ufffdx json 1"]
    assert halves["Kursk \ufffd json 0"]["url"].endswith("/j/0\ufffd")
    assert halves["Kursk \ufffdx json 1"]["summary"] + halves["Kursk \ufffdx json 1"]["text"] == "\ufffdx"
    for item in [*refs.values(), *halves.values()]:
        for field in ("title", "summary", "text", "url"):
            (item[field] or "").encode("utf-8")  # every stored string is writable UTF-8
