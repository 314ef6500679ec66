"""The web console and the daemon's probes as one small ASGI app (Starlette + Jinja2).

Responsible for the pages an operator runs the day from (stories, one story, sources,
the outbox, rules with a live tester, the config check, charts), the actions behind
their buttons, and ``/healthz`` and ``/metrics`` beside them on ``[server] listen``.
Pages are read-only queries, each in a worker thread with short read transactions
(never a write lock while rendering); an action is one short write through the same
store and service functions as the CLI, and is logged with who did it.  Security:
every request but the probes and the login form needs the token (bearer header) or a
session cookie; a cookie's actions need its CSRF token and a same-origin ``Origin``;
templates escape everything (autoescape), a strict Content-Security-Policy allows
only our own script and style files, and links from feeds are kept to http(s).
Partial updates are htmx-style: a request with ``X-Partial: 1`` gets the page's main
part (or an action's one-line result) to swap in; without script every form still
works as a plain page.  This module must not poll, send or match in the request path
except the rule tester, which matches stored items with the same parser and matcher
as ingest, within a time budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import __version__
from monitor.config import Config, load_config
from monitor.console import auth, charts
from monitor.core.corroboration import make_reach
from monitor.core.items import make_document
from monitor.core.render import language_name, marked, snippet
from monitor.core.rules import Matcher, make_matcher, parse_query
from monitor.core.text import has_hangul, korean_loaded, load_korean
from monitor.errors import ConfigError, QueryError, WirewatchError
from monitor.logs import cause_in_words
from monitor.runtime import Runtime
from monitor.services.sources import set_source_enabled, source_rows
from monitor.store.sql import SqlStore

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STORIES_PER_PAGE = 50
ALERTS_PER_PAGE = 100
CHART_DAYS = 14
# The rule tester matches the newest stored items until this many are done or the time
# budget is spent, so a keystroke never costs more than a fraction of a second; "look
# further back" asks for the deep budget.  Items are read in pages of TESTER_PAGE.  The
# first Korean item loads kiwipiepy's model in this process (~1.1 s, once: the daemon's
# ingest leaves it to the CPU workers); that second is not counted against the budget.
TESTER_ITEMS = 2000
TESTER_SECONDS = 0.12
TESTER_DEEP_ITEMS = 50_000
TESTER_DEEP_SECONDS = 3.0
TESTER_PAGE = 250
TESTER_SHOWN = 100
MAX_FORM = 64 * 1024
FAILED_LOGIN_DELAY = 0.5  # seconds
ALERT_STATUSES = ("waiting", "pending", "sending", "sent", "failed", "unknown")

HealthCheck = Callable[[], dict[str, Any]]


@dataclass
class ConsoleDeps:
    """What the console reads and acts on; the composition root (the daemon) fills it."""

    store: SqlStore
    runtime: Callable[[], Runtime]
    config_path: str | None
    changed_on_disk: Callable[[], bool] = lambda: False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def token(self) -> str:
        return self.runtime().config.console.resolve_token(self.env)


# --------------------------------------------------------------------------- templates


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400 * 2:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def _segments(segs: list[tuple[str, bool]]) -> Markup:
    """Marked text as HTML: every piece escaped, matches in ``<mark>``."""
    out = Markup()
    for text, is_marked in segs:
        out += Markup("<mark>{}</mark>").format(text) if is_marked else Markup("{}").format(text)
    return out


def _href(url: str | None) -> str | None:
    """Only http(s) links from feeds: never ``javascript:`` or ``data:``."""
    if not url:
        return None
    return url if re.match(r"^https?://", url, re.IGNORECASE) else None


# Languages written right to left: their text is laid out and aligned from the right
# even when it starts with a Latin name or a digit ("dir=auto" would guess left).
RTL = frozenset({"ar", "fa", "ur", "he", "yi", "ps", "ckb", "sd", "ug"})


def _lang_dir(code: str | None) -> str:
    return "rtl" if code and code.split("-")[0].lower() in RTL else "auto"


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=_ago, utc=_utc, marks=_segments, href=_href, dir=_lang_dir, language=language_name)
    return env


# --------------------------------------------------------------------------- views


def _marked_title(title: str, spans: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return marked(title, [(s["start"], s["end"]) for s in spans if s.get("field") == "title"]) or [
        ("(untitled)", False)
    ]


def _marked_snippet(body: str, spans: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return snippet(body, [(s["field"], s["start"], s["end"]) for s in spans])


def _document_of(row: Mapping[str, Any]) -> tuple[str, str]:
    doc = make_document(
        row.get("title") or "",
        row.get("summary") or "",
        row.get("text") or "",
        row.get("language"),
        bool(row.get("title_derived")),
    )
    return doc.title, doc.body


def _as_written(query: str) -> str:
    """A query as the config lays it out, without the indent of a multi-line TOML string."""
    return textwrap.dedent(query).strip()


class Pages:
    """The page and action handlers; each page's data is read in a worker thread."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self.templates = make_templates()
        self._history: tuple[date, dict[str, list[tuple[str, str, int]]]] | None = None
        self._history_lock = threading.Lock()

    # ------------------------------------------------------------------ data (threads)

    def _charts(self) -> dict[str, Any]:
        """Counts per day for the charts: today's read on every request, the days before
        from a cache kept until the next UTC day (past days change only by retention)."""
        now = self.deps.now()
        today = now.astimezone(UTC).date()
        days = charts.last_days(today, CHART_DAYS)
        midnight = datetime.combine(today, datetime.min.time(), UTC)
        with self._history_lock:
            if self._history is None or self._history[0] != today:
                since = midnight - timedelta(days=CHART_DAYS - 1)
                self._history = (today, self.deps.store.daily_counts(since, midnight))
            history = self._history[1]
        latest = self.deps.store.daily_counts(midnight)
        counts = {key: history[key] + latest[key] for key in history}
        return {"days": days, "counts": counts}

    def warm(self) -> None:
        try:
            self._charts()
        except WirewatchError as exc:  # a database that is down: the first page will say so
            log.info("console: charts not read ahead (%s)", exc)

    def stories_data(self, page: int) -> dict[str, Any]:
        rows = self.deps.store.console_stories(STORIES_PER_PAGE, (page - 1) * STORIES_PER_PAGE)
        for st in rows:
            first = st["first_item"] or {}
            text = st["text"] or {}
            title, body = _document_of({**first, **text})
            spans = [sp for rule_spans in st["spans"].values() for sp in rule_spans]
            st["marked_title"] = _marked_title(st["title"] if not first else title, spans)
            st["marked_snippet"] = _marked_snippet(body, spans)
            st["language"] = first.get("language")
        c = self._charts()
        return {
            "stories": rows,
            "page": page,
            "more": len(rows) == STORIES_PER_PAGE,
            "chart_language": charts.stacked_bars(
                "Matches per day by language", charts.series(c["counts"]["language"], c["days"]), c["days"]
            ),
            "chart_rule": charts.stacked_bars(
                "Matches per day by rule", charts.series(c["counts"]["rule"], c["days"]), c["days"]
            ),
        }

    def story_data(self, story_id: int) -> dict[str, Any] | None:
        story = self.deps.store.console_story(story_id)
        if story is None:
            return None
        for m in story["items"]:
            title, body = _document_of(m)
            spans = [sp for rule_spans in m["spans"].values() for sp in rule_spans]
            m["marked_title"] = _marked_title(title, spans)
            m["marked_snippet"] = _marked_snippet(body, spans)
            m["rules"] = sorted(m["spans"])
        # Corroboration over time: when each outlet and language joined, and what each
        # alert could say when it was sent (the story as it stood at its sent_at).
        reach = make_reach((m["source"], m["language"], m["first_seen"]) for m in story["items"])
        story["timeline"] = reach.firsts()
        story["languages_in_order"] = reach.languages
        for a in story["alerts"]:
            then = reach.as_of(a.sent_at) if a.sent_at is not None else None
            a_reach = (len(then.outlets), then.languages) if then is not None else None
            story.setdefault("alert_reach", {})[a.id] = a_reach
        story["updates"] = self.deps.store.story_bulletins(story_id)
        return {"story": story}

    def sources_data(self) -> dict[str, Any]:
        rt = self.deps.runtime()
        rows = source_rows(self.deps.store, rt.config)
        c = self._charts()
        week = set(c["days"][-7:])
        per_day: dict[str, int] = {}
        for day, name, n in c["counts"]["source"]:
            if day in week:
                per_day[name] = per_day.get(name, 0) + n
        for r in rows:
            st = r["_state"]
            r["per_day"] = per_day.get(r["name"], 0) / 7
            r["cause"] = cause_in_words(r["last_error"]) if r["last_error"] else None
            r["last_success_at"] = st.last_success
            r["next_due_at"] = st.next_due if r["next_due"] else None
            r["configured"] = rt.config.source(r["name"]) is not None
        return {
            "sources": rows,
            "chart_source": charts.stacked_bars(
                "Items per day by source", charts.series(c["counts"]["source"], c["days"]), c["days"], width=1280
            ),
        }

    def alerts_data(self, status: str | None, page: int) -> dict[str, Any]:
        store = self.deps.store
        rows = store.alert_rows(status=status, limit=ALERTS_PER_PAGE, offset=(page - 1) * ALERTS_PER_PAGE)
        views = []
        for r in rows:
            title, _body = _document_of({"title": r.title})
            views.append({"row": r, "marked_title": _marked_title(title, r.spans)})
        return {
            "alerts": views,
            "counts": store.alert_counts(),
            "status": status,
            "statuses": ALERT_STATUSES,
            "page": page,
            "more": len(rows) == ALERTS_PER_PAGE,
        }

    def rules_data(self, query: str, rule: str, source: str, deep: bool = False) -> dict[str, Any]:
        rt = self.deps.runtime()
        c = self._charts()
        by_rule = charts.series(c["counts"]["rule"], c["days"])
        per_rule: dict[str, list[int]] = {r.name: [0] * len(c["days"]) for r in rt.config.rules}
        index = {d: i for i, d in enumerate(c["days"])}
        for day, name, n in c["counts"]["rule"]:
            if name in per_rule and day in index:
                per_rule[name][index[day]] += n
        rules = [
            {
                "rule": r,
                "query": _as_written(r.query),
                "spark": charts.sparkline(per_rule[r.name], f"{r.name}: matches per day"),
                "total": sum(per_rule[r.name]),
                "today": per_rule[r.name][-1],
            }
            for r in rt.config.rules
        ]
        if rule and not query and rule in rt.rules:
            query = _as_written(rt.rules[rule].query)
        data: dict[str, Any] = {
            "rules": rules,
            "chart_rule": charts.stacked_bars("Matches per day by rule", by_rule, c["days"], width=1280),
            "query": query,
            "rule": rule,
            "source": source,
            "sources": [s.name for s in rt.config.sources],
            "clauses": [(name, _as_written(text)) for name, text in sorted(rt.config.clauses.items())],
        }
        data.update(self.tester_data(query, source, deep))
        return data

    def tester_data(self, query: str, source: str, deep: bool = False) -> dict[str, Any]:
        """Match ``query`` over the newest stored items with the ingest parser and matcher."""
        rt = self.deps.runtime()
        if not query.strip():
            return {"tested": False}
        terms, clauses = rt.config.terms, rt.config.clauses
        try:
            parse_query(query, terms, clauses)
            matcher = make_matcher(terms, [("tester", query)], clauses)
        except QueryError as exc:
            return {"tested": True, "error": exc, "caret": " " * max(exc.column - 1, 0) + "^"}
        started = time.monotonic()
        budget, most = (TESTER_DEEP_SECONDS, TESTER_DEEP_ITEMS) if deep else (TESTER_SECONDS, TESTER_ITEMS)
        found: list[dict[str, Any]] = []
        scanned = 0
        total_matches = 0
        exhausted = False
        out_of_time = False
        while scanned < most and not out_of_time:
            rows = self.deps.store.recent_items(None, source or None, min(TESTER_PAGE, most - scanned), scanned)
            if not rows:
                exhausted = True
                break
            for row in rows:
                if time.monotonic() - started > budget:
                    out_of_time = True
                    break
                if not korean_loaded() and any(has_hangul(row[k] or "") for k in ("title", "summary", "text")):
                    loading = time.monotonic()
                    load_korean()
                    started += time.monotonic() - loading
                scanned += 1
                total_matches += self._test_one(matcher, row, found)
            if len(rows) < TESTER_PAGE and not out_of_time:
                exhausted = True
                break
        return {
            "tested": True,
            "error": None,
            "found": found,
            "total": total_matches,
            "scanned": scanned,
            "everything": exhausted,
            "deep": deep,
            "ms": round((time.monotonic() - started) * 1000),
        }

    @staticmethod
    def _test_one(matcher: Matcher, row: dict[str, Any], found: list[dict[str, Any]]) -> int:
        """Match one stored item; add it to ``found`` (up to TESTER_SHOWN); 1 if it matched."""
        hits = 0
        doc = make_document(row["title"], row["summary"], row["text"], row["language"], row["title_derived"])
        for hit in matcher.match(doc):
            hits += 1
            if len(found) >= TESTER_SHOWN:
                continue
            spans = [{"field": s.field, "start": s.start, "end": s.end} for s in hit.spans]
            found.append(
                {
                    "row": row,
                    "marked_title": _marked_title(doc.title, spans),
                    "marked_snippet": _marked_snippet(doc.body, spans),
                    "words": sorted({s.text for s in hit.spans}),
                }
            )
        return hits

    def config_data(self) -> dict[str, Any]:
        from monitor.notify.apprise import check_subscriber_urls

        rt = self.deps.runtime()
        path = self.deps.config_path or rt.config.path
        problems: list[str] = []
        warnings: list[str] = []
        disk: Config | None = None
        try:
            disk = load_config(path)
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
        if disk is not None:
            url_problems, url_warnings = check_subscriber_urls(disk)
            problems += [f"{disk.path}: {where}: {message}" for where, message in url_problems]
            warnings = [str(w) for w in disk.warnings] + url_warnings
        running = rt.config
        return {
            "path": path,
            "problems": problems,
            "warnings": warnings,
            "disk": disk,
            "running": running,
            "version": __version__,
            "started": self.deps.started,
            "changed": self.deps.changed_on_disk(),
        }

    # ------------------------------------------------------------------ rendering

    def render(self, request: Request, name: str, data: dict[str, Any], status: int = 200) -> Response:
        operator: auth.Operator | None = request.scope.get("operator")
        token = request.scope.get("console_token", "")
        context = {
            **data,
            "path": request.url.path,
            "version": __version__,
            "who": operator,
            "csrf": auth.csrf_token(token, operator.session) if operator and operator.how == "session" else "",
            "now": self.deps.now(),
            "partial": request.headers.get("x-partial") == "1",
        }
        html = self.templates.get_template(name).render(context)
        return HTMLResponse(html, status_code=status)


# --------------------------------------------------------------------------- the ASGI app


class SecurityHeaders:
    """Every response: CSP without inline script, no framing, no sniffing, no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_web_app(
    health: HealthCheck | None,
    metrics: Callable[[], bytes] | None,
    deps: ConsoleDeps | None,
) -> ASGIApp:
    """``/healthz`` and ``/metrics`` (when given), and the console (when ``deps`` is given
    and a token is set: without one nobody could log in, so its pages say how to turn it on)."""
    routes: list[Route | Mount] = []

    async def healthz(request: Request) -> Response:
        assert health is not None
        report = await run_in_threadpool(health)
        body = json.dumps(report, default=str).encode()
        return Response(body, 200 if report.get("ok") else 503, media_type="application/json")

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        body = await run_in_threadpool(metrics)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    if health is not None:
        routes.append(Route("/healthz", healthz))
    if metrics is not None:
        routes.append(Route("/metrics", metrics_page))
    if deps is not None:
        routes += console_routes(deps)
    app = Starlette(routes=routes)
    return SecurityHeaders(app)


Handler = Callable[[Request], Awaitable[Response]]


def console_routes(deps: ConsoleDeps) -> list[Route | Mount]:
    pages = Pages(deps)
    # The charts' past days are read once in the background, so the first page an
    # operator opens after a start is as quick as the rest.
    threading.Thread(target=pages.warm, name="console-warm", daemon=True).start()

    def who(request: Request, token: str) -> auth.Operator | None:
        client = request.client.host if request.client else "?"
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return auth.Operator("bearer", "", client) if auth.token_matches(token, header[7:].strip()) else None
        nonce = auth.session_nonce(token, request.cookies.get(auth.COOKIE, ""))
        return auth.Operator("session", nonce, client) if nonce else None

    def off() -> Response:
        return HTMLResponse(
            pages.templates.get_template("off.html").render(version=__version__, who=None, path=""), status_code=404
        )

    def page(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        """A page for a logged-in operator; others are sent to the login form (or 401)."""

        async def wrapped(request: Request) -> Response:
            token = deps.token()
            if not token:
                return off()
            operator = who(request, token)
            if operator is None:
                if request.headers.get("authorization") or request.headers.get("x-partial"):
                    return Response("login required\n", 401, media_type="text/plain")
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            request.scope["operator"] = operator
            request.scope["console_token"] = token
            return await handler(request)

        return wrapped

    def action(handler: Callable[[Request, dict[str, str], auth.Operator], Awaitable[Response]]) -> Handler:
        """A POST that changes something: logged in, and for a cookie, CSRF-checked."""

        async def wrapped(request: Request) -> Response:
            token = deps.token()
            if not token:
                return off()
            operator = who(request, token)
            if operator is None:
                return Response("login required\n", 401, media_type="text/plain")
            form = await _form(request)
            if form is None:
                return Response("form too large or not URL-encoded\n", 400, media_type="text/plain")
            if operator.how == "session" and not (
                _same_origin(request) and auth.csrf_ok(token, operator.session, form.get("csrf", ""))
            ):
                log.warning("console: refused %s by %s: CSRF check failed", request.url.path, operator.name)
                return Response("CSRF check failed; reload the page\n", 403, media_type="text/plain")
            request.scope["operator"] = operator
            request.scope["console_token"] = token
            return await handler(request, form, operator)

        return wrapped

    def done(request: Request, message: str, back: str, status: int = 200) -> Response:
        if request.headers.get("x-partial") == "1" or request.headers.get("authorization"):
            return HTMLResponse(Markup('<p class="flash" role="status">{}</p>').format(message), status_code=status)
        return RedirectResponse(back, 303)

    # ------------------------------------------------------------------ login

    async def login_form(request: Request) -> Response:
        if not deps.token():
            return off()
        return pages.render(request, "login.html", {"next": _next(request.query_params.get("next")), "failed": False})

    async def login(request: Request) -> Response:
        token = deps.token()
        if not token:
            return off()
        form = await _form(request)
        client = request.client.host if request.client else "?"
        if form is None or not _same_origin(request):
            return Response("bad login request\n", 400, media_type="text/plain")
        target = _next(form.get("next"))
        if not auth.token_matches(token, form.get("token", "")):
            log.warning("console: failed login from %s", client)
            await asyncio.sleep(FAILED_LOGIN_DELAY)  # guessing costs time
            return pages.render(request, "login.html", {"next": target, "failed": True}, status=401)
        cookie = auth.new_session(token)
        log.info("console: login, session %s from %s", cookie.split(".")[1][:8], client)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            auth.COOKIE,
            cookie,
            max_age=auth.SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(request: Request, form: dict[str, str], operator: auth.Operator) -> Response:
        log.info("console: logout by %s", operator.name)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ pages

    async def home(request: Request) -> Response:
        return RedirectResponse("/stories", 303)

    async def stories_page(request: Request) -> Response:
        page_no = _int(request.query_params.get("page"), 1)
        data = await run_in_threadpool(pages.stories_data, page_no)
        return pages.render(request, "stories.html", data)

    async def story_page(request: Request) -> Response:
        story_id = _int(request.path_params.get("id"), 0)
        data = await run_in_threadpool(pages.story_data, story_id)
        if data is None:
            return pages.render(request, "missing.html", {"what": f"story {story_id}"}, status=404)
        return pages.render(request, "story.html", data)

    async def sources_page(request: Request) -> Response:
        data = await run_in_threadpool(pages.sources_data)
        return pages.render(request, "sources.html", data)

    async def alerts_page(request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status not in (None, *ALERT_STATUSES):
            status = None
        data = await run_in_threadpool(pages.alerts_data, status, _int(request.query_params.get("page"), 1))
        return pages.render(request, "alerts.html", data)

    async def rules_page(request: Request) -> Response:
        q = request.query_params
        data = await run_in_threadpool(
            pages.rules_data, q.get("q", "")[:4000], q.get("rule", ""), q.get("source", ""), q.get("deep") == "1"
        )
        return pages.render(request, "rules.html", data)

    async def rules_test(request: Request) -> Response:
        q = request.query_params
        data = await run_in_threadpool(
            pages.tester_data, q.get("q", "")[:4000], q.get("source", ""), q.get("deep") == "1"
        )
        data.update(query=q.get("q", "")[:4000], source=q.get("source", ""))
        return pages.render(request, "tester.html", data)

    async def config_page(request: Request) -> Response:
        data = await run_in_threadpool(pages.config_data)
        return pages.render(request, "config.html", data)

    # ------------------------------------------------------------------ actions

    async def source_action(request: Request, form: dict[str, str], operator: auth.Operator) -> Response:
        name = str(request.path_params["name"])
        verb = str(request.path_params["verb"])
        rt = deps.runtime()
        cfg = rt.config.source(name)
        if cfg is None:
            return done(request, f"no configured source named {name}", "/sources", 404)
        now = deps.now()
        if verb == "poll":
            await run_in_threadpool(deps.store.poll_now, name, now)
            message = f"{name}: due now; the daemon polls it within a second"
        elif verb == "reset":
            before = (await run_in_threadpool(deps.store.source_states, [name]))[0]
            await run_in_threadpool(deps.store.reset_source, name, now)
            n = before.consecutive_failures
            message = f"{name}: {n} failure{'s' if n != 1 else ''} forgotten; due now"
        elif verb in ("enable", "disable"):
            result = await run_in_threadpool(set_source_enabled, deps.store, cfg, verb == "enable")
            message = f"{name}: {verb}d ({result.note})"
        else:
            return done(request, f"unknown action {verb}", "/sources", 404)
        log.info("console: sources %s %s by %s", verb, name, operator.name)
        return done(request, message, "/sources")

    async def alert_retry(request: Request, form: dict[str, str], operator: auth.Operator) -> Response:
        raw = request.path_params.get("id")
        ids = None if raw == "failed" else [_int(raw, 0)]
        n = await run_in_threadpool(deps.store.retry_alerts, ids, deps.now())
        what = "every failed alert" if ids is None else f"alert #{ids[0]}"
        log.info("console: alerts retry %s by %s (%d queued again)", what, operator.name, n)
        message = f"{n} alert(s) queued again" if n else f"nothing to retry ({what} is not failed or unknown)"
        return done(request, message, "/alerts")

    return [
        Route("/", page(home)),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", action(logout), methods=["POST"]),
        Route("/stories", page(stories_page)),
        Route("/stories/{id:int}", page(story_page)),
        Route("/sources", page(sources_page)),
        Route("/sources/{name}/{verb}", action(source_action), methods=["POST"]),
        Route("/alerts", page(alerts_page)),
        Route("/alerts/{id}/retry", action(alert_retry), methods=["POST"]),
        Route("/rules", page(rules_page)),
        Route("/rules/test", page(rules_test)),
        Route("/config", page(config_page)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


async def _form(request: Request) -> dict[str, str] | None:
    """A URL-encoded form body (the only kind the console sends), first value per key."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    if body and kind != "application/x-www-form-urlencoded":
        return None
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (old browsers, scripts) passes; one from another host does not."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _next(value: str | None) -> str:
    """Where to go after login: a path on this site only (no ``//evil`` or ``https:``)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/stories"


def _int(value: Any, default: int) -> int:
    try:
        return max(int(value), 1) if value is not None else default
    except (TypeError, ValueError):
        return default
