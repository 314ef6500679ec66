"""The message itself: what an analyst reads, in a real browser (headless Chromium), and
operator notices that quote hostile text.  Real ingest and dispatch to aiosmtpd and
webhook receivers on loopback."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.services.operators import notify_operators
from tests.alerts.conftest import World, subscriber, utc, write_config
from tests.conftest import CORPUS
from tests.servers import SmtpServer, WebhookReceiver

MakeWorld = Callable[..., World]
SEED = CORPUS / "seed" / "kim-putin-greeting.ar.txt"  # provenance: tests/data/corpus/SOURCES.md
ARABIC_RULES = """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]

[[rules]]
name = "nk-troops-for-russia"
query = 'kim_jong_un AND troops'
notify = ["analysts"]
"""

# Reads back what the browser decided: the direction it lays each block out in, and the
# text of every mark.  A test harness around the message, not part of it.
PROBE = """
<script>
const out = {};
const h3 = document.querySelector("h3");
const snippet = [...document.querySelectorAll("p[dir=auto]")].find(p => p.querySelector("mark"));
out.title_direction = getComputedStyle(h3).direction;
out.snippet_direction = snippet ? getComputedStyle(snippet).direction : null;
out.title_marks = [...h3.querySelectorAll("mark")].map(m => m.textContent);
out.snippet_marks = snippet ? [...snippet.querySelectorAll("mark")].map(m => m.textContent) : [];
out.snippet = snippet ? snippet.textContent : "";
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it")
    return found


def browser(page: Path, tmp_path: Path, *args: str) -> str:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=900,1400",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return " ".join(" ".join(parser.parts).split())


def test_arabic_seed_story_reads_right_to_left_with_its_marks_in_chromium(
    make_world: MakeWorld, smtp_server: SmtpServer, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    title, _, body = SEED.read_text(encoding="utf-8").partition("\n")
    world = make_world(
        subscriber("analysts", smtp_server.url(), webhook.url()), rules=ARABIC_RULES, now=utc(2026, 12, 28)
    )
    assert world.publish(title.strip(), body=body.strip()) == 1  # one story, two rules: one alert
    world.dispatch()
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 1
    mail = smtp_server.messages[0]
    html_part = mail.get_body(preferencelist=("html",))
    text_part = mail.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    markup, text = str(html_part.get_content()), str(text_part.get_content())

    page = tmp_path / "message.html"
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{markup}{PROBE}</body></html>')
    dom = browser(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["title_direction"] == "rtl" and probe["snippet_direction"] == "rtl"
    assert "لبوتين" in probe["title_marks"] and "كيم جونغ أون" in probe["title_marks"]
    assert len(probe["snippet_marks"]) >= 2
    # The snippet ends at a word boundary with an ellipsis: its last word is a whole word of the body.
    snippet = probe["snippet"].strip()
    assert snippet.endswith("…")
    last_word = snippet.rstrip("…").split()[-1]
    assert last_word in body.split()
    shot = tmp_path / "arabic.png"
    browser(page, tmp_path, f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000

    # Plain text says what the HTML says: rules with their words, language, reach, link.
    shown = visible_text(markup)
    for fact in (
        "kim-putin (كيم جونغ أون, لبوتين",
        "nk-troops-for-russia (كيم جونغ أون",
        "Language: Arabic (ar)",
        "reported by 1 outlet in 1 language",
        "https://news.example.org/1",
    ):
        assert fact in shown, fact
        assert fact in " ".join(text.split()), fact
        assert fact in " ".join(webhook.posts[0]["message"].split()), fact
    assert str(mail["Subject"]).startswith("[kim-putin, nk-troops-for-russia] كيم جونغ أون")


def test_a_hostile_redirect_target_in_a_notice_stays_text_everywhere(
    tmp_path: Path, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    mattermost = f"mmost://127.0.0.1:{webhook.port}/abcdefghij"
    path = write_config(
        tmp_path / "config.toml",
        subscriber("analysts", webhook.url()) + subscriber("oncall", smtp_server.url(), mattermost, webhook.url()),
        alerts='operators = ["oncall"]',
    )
    config = load_config(path, env={})
    target = "[Click_here_to_fix_wirewatch](https:/phish.example/fix)\u202e<b>moc.elgoog</b>"
    results = notify_operators(
        config, "source wire keeps failing", f"5 failures in a row: redirected to {target}\n\nHTTP 301"
    )
    assert [r.ok for r in results] == [True, True, True]
    assert len(smtp_server.messages) == 1 and len(webhook.posts) == 2
    [chat] = [p for p in webhook.posts if "text" in p]  # Mattermost's payload
    [hook] = [p for p in webhook.posts if "message" in p]  # the JSON webhook's
    mail = smtp_server.messages[0]
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None
    markup = str(html_part.get_content())
    for content in (markup, chat["text"], hook["message"], hook["title"], str(mail["Subject"])):
        assert "\u202e" not in content
    assert "<b>" not in markup and "href" not in markup and "&lt;b&gt;moc.elgoog&lt;/b&gt;" in markup
    # In the Markdown chat the quoted text sits in a code block: shown, never a live link.
    fenced = re.findall(r"```\n(.*?)\n```", chat["text"], re.S)
    assert any("[Click_here_to_fix_wirewatch](https:/phish.example/fix)" in block for block in fenced)
    outside = re.sub(r"```\n.*?\n```", "", chat["text"], flags=re.S)
    assert "](https:/phish" not in outside
    # A generic webhook gets plain text, which no program renders as a link.
    assert "redirected to [Click_here_to_fix_wirewatch](https:/phish.example/fix)<b>moc.elgoog</b>" in hook["message"]
