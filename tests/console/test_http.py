"""The console over plain HTTP against a running daemon: login, CSRF, headers, pages, actions."""

from __future__ import annotations

import json
import re
import time

from tests.console.conftest import TOKEN, Site


def test_probes_stay_as_they_were(site: Site) -> None:
    status, headers, body = site.get("/healthz", token=None)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["database"] == "ok"
    status, headers, body = site.get("/metrics", token=None)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "wirewatch_outbox_depth" in body


def test_every_page_needs_the_token(site: Site) -> None:
    for path in ("/stories", "/sources", "/alerts", "/rules", "/config", "/stories/1"):
        status, headers, _ = site.get(path, token=None)
        assert status == 303 and headers["location"].startswith("/login"), path
        status, _, _ = site.get(path, token="wrong-token-wrong-token")
        assert status == 401, path
        status, headers, body = site.get(path)
        assert status == 200, (path, body[:500])
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
    status, _ = site.post("/sources/en-wire/poll", token=None)
    assert status == 401


def test_the_token_is_never_printed(site: Site) -> None:
    for path in ("/stories", "/config", "/login"):
        _, _, body = site.get(path)
        assert TOKEN not in body
    assert TOKEN not in site.daemon.output()


def test_a_cookie_action_needs_its_csrf_token(site: Site) -> None:
    status, headers, _ = _login(site)
    cookie = headers["set-cookie"].split(";")[0]
    status, _, page = site.get("/sources", token=None, Cookie=cookie)
    assert status == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    status, body = site.post("/sources/en-wire/reset", "csrf=forged", token=None, Cookie=cookie)
    assert status == 403, body
    status, body = site.post(
        "/sources/en-wire/reset", f"csrf={csrf.group(1)}", token=None, Cookie=cookie, Origin="http://evil.example"
    )
    assert status == 403, body
    status, body = site.post("/sources/en-wire/reset", f"csrf={csrf.group(1)}", token=None, Cookie=cookie)
    assert status == 303, body
    assert "refused /sources/en-wire/reset" in site.daemon.output()
    assert re.search(r"console: sources reset en-wire by session [0-9a-f]{8} from 127\.0\.0\.1", site.daemon.output())


def test_login_rejects_a_wrong_token_and_another_origin(site: Site) -> None:
    status, body = site.post("/login", "token=nope&next=/stories", token=None)
    assert status == 401 and "not the console" in body
    status, body = site.post("/login?x=1", f"token={TOKEN}", token=None, Origin="http://evil.example")
    assert status == 400
    status, headers, _ = _login(site, next_="//evil.example/")
    assert status == 303 and headers["location"] == "/stories"
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]


def test_enable_disable_is_a_database_override_shown_as_such(site: Site) -> None:
    status, body = site.post("/sources/ko-wire/disable", X_Partial="1")
    assert status == 200 and "database override" in body
    _, _, page = site.get("/sources")
    row = page.split('id="source-ko-wire"', 1)[1].split("</tr>", 1)[0]
    assert "disabled by a database override" in row
    status, body = site.post("/sources/ko-wire/enable", X_Partial="1")
    assert "override cleared" in body
    assert "console: sources disable ko-wire by bearer token from 127.0.0.1" in site.daemon.output()


def test_rule_tester_reports_the_column_of_an_error(site: Site) -> None:
    _, _, body = site.get("/rules/test?q=kursk%20AND%20(putin", X_Partial="1")
    assert "at column" in body
    _, _, body = site.get("/rules/test?q=kursk%20AND%20nosuchterm", X_Partial="1")
    assert "unknown term" in body and "at column 11" in body, body
    assert "\n          ^</pre>" in body
    # A clause is used by name; a typo inside one is reported from where the query names it.
    _, _, body = site.get("/rules/test?q=leaders%20AND%20kursk", X_Partial="1")
    assert "query-error" not in body and "match" in body, body
    _, _, body = site.get("/rules/test?q=kursk%20AND%20leader", X_Partial="1")
    assert "unknown term or clause" in body and "did you mean" in body and "leaders" in body, body


def test_alerts_page_and_retry_of_a_sent_alert_is_refused(site: Site) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not site.webhook.posts:
        time.sleep(0.2)
    _, _, page = site.get("/alerts?status=sent")
    ids = re.findall(r"<td>(\d+)</td>\s*<td><span class=\"badge sent\">", page)
    assert ids, page[:2000]
    status, body = site.post(f"/alerts/{ids[0]}/retry", X_Partial="1")
    assert status == 200 and "nothing to retry" in body


def _login(site: Site, next_: str = "/stories") -> tuple[int, dict[str, str], str]:
    import urllib.request

    from tests.console.conftest import _opener

    request = urllib.request.Request(
        site.url + "/login",
        data=f"token={TOKEN}&next={next_}".encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": site.url},
    )
    try:
        with _opener().open(request, timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
