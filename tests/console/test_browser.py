"""The console in a real browser: Debian's headless Chromium driven by Playwright.

Logging in, the story list, poll now on a loopback feed, the rule tester marking words
in Arabic and Korean, a hostile title shown as text (never run), and a screenshot of
every page in the test artefacts (``artefacts/console``; docs/console keeps a copy).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.conftest import HOSTILE, TOKEN, Site, screenshot
from tests.feeds import rss


@pytest.fixture(scope="module")
def page(site: Site, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    p = context.new_page()
    p.set_default_timeout(15_000)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    # Our own pages never trip the Content-Security-Policy (no inline script or style).
    p.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    p.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    p.goto(site.url + "/stories")
    assert p.url.startswith(site.url + "/login")
    screenshot(p, "login")
    p.fill("#token", TOKEN)
    p.click("form.login button")
    p.wait_for_url(site.url + "/stories")
    p.errors = errors
    yield p
    context.close()
    assert not errors, errors


def test_logging_in_shows_the_story_list(site: Site, page: Any) -> None:
    page.goto(site.url + "/stories")
    stories = page.locator("li.story")
    assert stories.count() >= 4
    text = page.locator("ol.stories").inner_text()
    assert "Kim Jong Un and Putin discuss troops for Kursk" in text
    assert "بوتين" in text and "김정은" in text
    # The rules each story matched, its outlets and languages.
    first = page.locator("li.story", has_text="Kim Jong Un and Putin")
    assert "nk-russia-troops" in first.inner_text() and "en-wire" in first.inner_text()
    # The matched words marked in the title and snippet.
    assert "Kursk" in first.locator("mark").all_inner_texts()
    # Right-to-left text laid out right to left.
    arabic = page.locator("li.story h2", has_text="بوتين")
    assert arabic.get_attribute("dir") == "rtl"
    assert arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert page.locator("svg.chart").count() == 2
    screenshot(page, "stories")


def test_a_hostile_title_is_shown_as_text_and_never_runs(site: Site, page: Any) -> None:
    for path in ("/stories", "/alerts"):
        page.goto(site.url + path)
        assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1, path
        assert page.locator("main script").count() == 0
        assert page.locator("main img").count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"
    page.goto(site.url + "/stories")
    page.locator("li.story h2 a", has_text="window.__pwned").first.click()
    page.wait_for_url(f"{site.url}/stories/*")
    assert HOSTILE[:30] in page.locator("main").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img").count() == 0


def test_story_page_shows_every_copy_and_its_alerts(site: Site, page: Any) -> None:
    page.goto(site.url + "/stories")
    page.locator("li.story h2 a", has_text="Kim Jong Un and Putin").click()
    page.wait_for_url(f"{site.url}/stories/*")
    copies = page.locator("table.copies tbody tr")
    assert copies.count() >= 1
    row = copies.first.inner_text()
    assert "en-wire" in row and "news.example.org/en-1" in row and "nk-russia-troops" in row
    deadline = time.monotonic() + 20
    while "This story caused no alert" in page.locator("main").inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    assert page.locator("table.alerts tbody tr").count() >= 1
    screenshot(page, "story")


def test_the_rule_tester_marks_words_in_arabic_and_korean(site: Site, page: Any) -> None:
    page.goto(site.url + "/rules")
    assert page.locator("table.rules tbody tr").count() == 2
    page.fill("#query", "kursk AND troops")
    page.wait_for_selector("#tester-summary")
    results = page.locator("#tester-results ol.found li")
    arabic = results.filter(has_text="بوتين")
    korean = results.filter(has_text="김정은")
    assert "كورسك" in arabic.locator("mark").all_inner_texts()
    assert "쿠르스크" in korean.locator("mark").all_inner_texts()
    assert arabic.locator(".title").get_attribute("dir") == "rtl"
    # A quoted word in either script, typed as it is.
    page.fill("#query", '"파병"')
    expect(page.locator("#tester-results mark").first).to_have_text("파병")
    expect(page.locator("#tester-summary")).to_have_text(re.compile(r"^1 match\b"))
    page.fill("#query", '"قوات"')
    expect(page.locator("#tester-results mark").first).to_have_text("قوات")
    expect(page.locator("#tester-summary")).to_have_text(re.compile(r"^1 match\b"))
    # A query error, with its column.
    page.fill("#query", "kursk AND (putin")
    page.wait_for_selector(".query-error")
    assert "column" in page.locator(".query-error").inner_text()
    # Every stored item fits in the budget here, so there is nothing further back to look at.
    page.fill("#query", "kim_jong_un AND putin AND (kursk OR troops)")
    expect(page.locator("#tester-summary")).to_have_text(re.compile(r"^3 matches\b"))
    assert "every stored item" in page.locator("#tester-summary").inner_text()
    # A clause from the config, typed by name, matches as if written out.
    page.fill("#query", "(kursk OR troops) AND leaders")
    expect(page.locator("#tester-summary")).to_have_text(re.compile(r"^3 matches\b"))
    # A clause written over several lines is shown as laid out in the config.
    assert "kim_jong_un\nAND putin" in page.locator("#clauses + p + table").inner_text()
    screenshot(page, "rules")


def test_poll_now_fetches_a_loopback_feed_again(site: Site, page: Any) -> None:
    before = len([r for r in site.feeds.requests if r[0] == "/en.xml"])
    site.feeds.serve(
        "/en.xml",
        rss([("en-4", "Putin praises Kim Jong Un as troops reach Kursk", "A new report."), *_en_items()]),
    )
    page.goto(site.url + "/sources")
    row = page.locator("#source-en-wire")
    assert "ok" in row.locator(".badge").inner_text()
    row.get_by_role("button", name="Poll now").click()
    page.wait_for_selector("#flash .flash")
    assert "due now" in page.locator("#flash").inner_text()
    deadline = time.monotonic() + 30
    while len([r for r in site.feeds.requests if r[0] == "/en.xml"]) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len([r for r in site.feeds.requests if r[0] == "/en.xml"]) > before
    found = False
    while not found and time.monotonic() < deadline:
        page.goto(site.url + "/stories")
        found = page.get_by_text("Putin praises Kim Jong Un").count() > 0
        time.sleep(0.3)
    assert found
    assert "console: sources poll en-wire by session" in site.daemon.output()
    page.goto(site.url + "/sources")
    screenshot(page, "sources")


def test_a_sick_source_shows_its_error_and_can_be_reset(site: Site, page: Any) -> None:
    page.goto(site.url + "/sources")
    row = page.locator("#source-down-wire")
    expect(row.locator(".badge")).to_have_text("failing")
    assert "1 failure: connection refused" in row.locator(".note").inner_text().lower()
    row.get_by_role("button", name="Reset errors").click()
    expect(page.locator("#flash")).to_contain_text("forgotten; due now")
    assert "console: sources reset down-wire by session" in site.daemon.output()
    # Disable is a database override, shown as such; enable clears it.
    page.locator("#source-down-wire").get_by_role("button", name="Disable").click()
    expect(page.locator("#source-down-wire .badge")).to_have_text("disabled")
    assert "database override" in page.locator("#source-down-wire .note").inner_text()
    page.locator("#source-down-wire").get_by_role("button", name="Enable").click()
    expect(page.locator("#flash")).to_contain_text("override cleared")


def test_a_dead_letter_is_retried_from_the_outbox(site: Site, page: Any) -> None:
    deadline = time.monotonic() + 30
    page.goto(site.url + "/alerts")
    while "failed (0)" in page.locator("nav.tabs").inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    failed = page.locator("tr.status-failed")
    assert failed.count() >= 1
    assert "pager" in failed.first.inner_text()
    screenshot(page, "alerts")
    alert_id = failed.first.locator("td").first.inner_text()
    failed.first.get_by_role("button", name="Retry").click()
    expect(page.locator("#flash")).to_contain_text("1 alert(s) queued again")
    assert f"console: alerts retry alert #{alert_id} by session" in site.daemon.output()


def test_config_page(site: Site, page: Any) -> None:
    page.goto(site.url + "/config")
    assert "OK (4 sources, 4 terms, 2 rules, 2 subscribers)" in page.locator("#check-ok").inner_text()
    assert "wirewatch 0.1.0" in page.locator("main").inner_text()
    screenshot(page, "config")


def _en_items() -> list[tuple[str, str, str]]:
    from tests.console.conftest import EN_ITEMS

    return EN_ITEMS
