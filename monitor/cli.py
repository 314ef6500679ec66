"""The ``wirewatch`` command line: the composition root for one-shot commands.

Responsible for parsing arguments, wiring adapters (via :mod:`monitor.app`), printing
results as text or as one JSON document, and mapping errors to exit codes: 0 success,
2 invalid config or usage, 3 database problem.  Tracebacks are for bugs only: every
error wirewatch expects is printed as one clear line (or one line per config problem).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor import __version__
from monitor.config import load_config, redact
from monitor.core.units import format_duration, parse_duration
from monitor.errors import ConfigError, StorageError, WirewatchError
from monitor.logs import setup_logging

EXIT_CONFIG = 2
EXIT_STORAGE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_format, args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_STORAGE
    except WirewatchError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wirewatch", description="Multilingual media monitor: feeds in, keyword alerts out."
    )
    p.add_argument("--version", action="version", version=f"wirewatch {__version__}")
    p.add_argument("--config", help="config file (default ./config.toml, env WIREWATCH_CONFIG)")
    p.add_argument("--database-url", help="overrides [storage] url (env WIREWATCH_DATABASE_URL)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format (stderr)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(metavar="COMMAND")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the database to the newest revision")
    up.set_defaults(func=cmd_db_upgrade)

    run = sub.add_parser("run", help="the daemon (or one cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every enabled source once, dispatch, exit")
    run.add_argument(
        "--role", choices=("all", "worker"), default="all", help="worker: one of several daemons sharing PostgreSQL"
    )
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate the config file")
    check.set_defaults(func=cmd_check)

    rules = sub.add_parser("rules", help="rule tools")
    rules_sub = rules.add_subparsers(metavar="ACTION")
    rtest = rules_sub.add_parser("test", help="backtest rules over stored items (sends nothing)")
    rtest.add_argument("--rule", help="only this rule")
    rtest.add_argument("--since", help="only items first seen within this duration, e.g. 7d")
    rtest.add_argument("--json", action="store_true")
    rtest.set_defaults(func=cmd_rules_test)

    sources = sub.add_parser("sources", help="source health")
    sources.add_argument("--json", action="store_true")
    sources.set_defaults(func=cmd_sources)

    items = sub.add_parser("items", help="what was collected, newest first")
    items.add_argument("--source")
    items.add_argument("--since", help="e.g. 24h")
    items.add_argument("--limit", type=int, default=50)
    items.add_argument("--json", action="store_true")
    items.set_defaults(func=cmd_items)

    stories = sub.add_parser("stories", help="recent story clusters: first item, outlets, languages, size")
    stories.add_argument("--since", help="only stories seen within this duration, e.g. 24h")
    stories.add_argument("--limit", type=int, default=50)
    stories.add_argument("--json", action="store_true")
    stories.set_defaults(func=cmd_stories)

    alerts = sub.add_parser("alerts", help="the alert outbox")
    alerts.add_argument("--status", choices=("pending", "sending", "sent", "failed", "unknown"))
    alerts.add_argument("--limit", type=int, default=50)
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(func=cmd_alerts)
    alerts_sub = alerts.add_subparsers(metavar="ACTION")
    retry = alerts_sub.add_parser("retry", help="queue failed (or unknown) alerts again")
    retry.add_argument("ids", nargs="*", type=int)
    retry.add_argument("--failed", action="store_true", help="every failed or unknown alert")
    retry.set_defaults(func=cmd_alerts_retry)

    nt = sub.add_parser("notify-test", help="send a test message to a subscriber")
    nt.add_argument("subscriber")
    nt.set_defaults(func=cmd_notify_test)

    demo = sub.add_parser("demo", help="offline demo on bundled sample news")
    demo.add_argument("--keep", action="store_true", help="keep the demo's temporary folder")
    demo.set_defaults(func=cmd_demo)
    return p


# --------------------------------------------------------------------------- commands


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.app import upgrade_database
    from monitor.store.migrate import current_revision
    from monitor.store.sql import display_url, make_engine

    url = _database_url_for_migration(args)
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        rev = current_revision(engine)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate {display_url(url)}: {getattr(exc, 'orig', exc)}") from None
    print(f"database {display_url(url)} is at revision {rev}")
    return 0


def _database_url_for_migration(args: argparse.Namespace) -> str:
    """`--database-url`, else the environment, else the config's ``[storage] url``."""
    import os

    from monitor.app import config_path, database_url

    if args.database_url:
        return str(args.database_url)
    if os.environ.get("WIREWATCH_DATABASE_URL"):
        return os.environ["WIREWATCH_DATABASE_URL"]
    return database_url(load_config(config_path(args.config)), None)


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.app import make_app
    from monitor.daemon import Daemon, run_on_reactor, run_once

    worker = args.role == "worker"
    app = make_app(args.config, args.database_url, migrate_first=not worker)
    if worker and app.store.dialect != "postgresql":
        print("error: --role worker needs PostgreSQL: workers share one database", file=sys.stderr)
        return EXIT_CONFIG
    for warning in app.config.warnings:
        logging.getLogger("wirewatch").warning("%s", warning)
    if args.once:
        total = len([s for s in app.config.sources if s.enabled])
        done = 0

        def progress(summary: Any) -> None:
            nonlocal done
            done += 1
            if sys.stderr.isatty():
                detail = summary.error if summary.status == "error" else f"{summary.new} new, {summary.matched} matched"
                print(f"\r[{done}/{total}] {summary.source}: {detail}"[:160].ljust(100), end="", file=sys.stderr)

        async def once() -> int:
            report = await run_once(app, progress)
            if sys.stderr.isatty():
                print(file=sys.stderr)
            _print_cycle(report)
            return once_exit_code(report.dispatch)

        return run_on_reactor(once)

    async def serve() -> int:
        return await Daemon(app, role=args.role).serve()

    return run_on_reactor(serve)


# `run --once` exits with this when alerts were dead-lettered, left with an unknown
# outcome (a send timed out) or could not be recorded: cron can tell.
EXIT_UNDELIVERED = 4


def once_exit_code(dispatch: Any) -> int:
    if dispatch.failed or dispatch.unknown or dispatch.unmarked:
        print(
            f"alerts not delivered: {dispatch.failed} dead-lettered, {dispatch.unknown} unknown, "
            f"{dispatch.unmarked} outcomes not recorded (exit {EXIT_UNDELIVERED})",
            file=sys.stderr,
        )
        return EXIT_UNDELIVERED
    return 0


def _print_cycle(report: Any) -> None:
    ok = [s for s in report.polled if s.status != "error"]
    failed = [s for s in report.polled if s.status == "error"]
    new = sum(s.new for s in report.polled)
    matched = sum(s.matched for s in report.polled)
    queued = sum(s.alerts for s in report.polled)
    for s in failed:
        print(f"source {s.source}: FAILED: {s.error}")
    d = report.dispatch
    print(
        f"polled {len(report.polled)} sources ({len(ok)} ok, {len(failed)} failed): {new} new items, "
        f"{matched} matched, {queued} alerts queued; sent {d.sent}, retrying {d.retrying}, failed {d.failed}, "
        f"unknown {d.unknown}"
    )


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.app import config_path

    path = config_path(args.config)
    config = load_config(path)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{path}: OK ({len(config.sources)} sources, {len(config.terms)} terms, "
        f"{len(config.rules)} rules, {len(config.subscribers)} subscribers)"
    )
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from monitor.app import make_app, utcnow
    from monitor.core.items import make_document
    from monitor.core.policy import rule_applies

    app = make_app(args.config, args.database_url)
    rt = app.holder.get()
    if args.rule and args.rule not in rt.rules:
        raise ConfigError([_problem(app.config.path, "--rule", f"no rule named {args.rule!r}")])
    since = utcnow() - parse_duration(args.since) if args.since else None
    rows = app.store.recent_items(since, None, limit=100_000)
    out: list[dict[str, Any]] = []
    for row in rows:
        doc = make_document(row["title"], row["summary"], row["text"], row["language"])
        for hit in rt.matcher.match(doc):
            if args.rule and hit.rule != args.rule:
                continue
            if not rule_applies(rt.rules[hit.rule], row["source"], row["language"]):
                continue
            out.append(
                {
                    "rule": hit.rule,
                    "title": row["title"],
                    "url": row["url"],
                    "source": row["source"],
                    "language": row["language"],
                    "first_seen": _iso(row["first_seen"]),
                    "spans": [{"field": s.field, "start": s.start, "end": s.end, "text": s.text} for s in hit.spans],
                    "_doc": doc,
                }
            )
    if args.json:
        for m in out:
            m.pop("_doc")
        _dump({"matches": out})
        return 0
    for m in out:
        doc = m["_doc"]
        title = _highlight(doc.title, [s for s in m["spans"] if s["field"] == "title"])
        print(f"[{m['rule']}] {title}  ({m['source']}, {m['language'] or '?'})")
        body_spans = [s for s in m["spans"] if s["field"] == "body"]
        if body_spans:
            first = body_spans[0]
            start = max(0, first["start"] - 80)
            window = doc.body[start : first["end"] + 80]
            shifted = [
                {**s, "start": s["start"] - start, "end": s["end"] - start}
                for s in body_spans
                if s["start"] >= start and s["end"] <= start + len(window)
            ]
            print("    …" + _highlight(window, shifted).replace("\n", " ") + "…")
        print(f"    {m['url']}")
    print(f"{len(out)} matches in {len(rows)} items")
    return 0


def _highlight(text: str, spans: list[dict[str, Any]]) -> str:
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        if s["start"] < pos:
            continue
        out.append(text[pos : s["start"]])
        out.append("[[" + text[s["start"] : s["end"]] + "]]")
        pos = s["end"]
    out.append(text[pos:])
    return "".join(out)


def cmd_sources(args: argparse.Namespace) -> int:
    from monitor.app import make_app, utcnow

    app = make_app(args.config, args.database_url)
    app.store.sync_sources([(s.name, s.type, s.url) for s in app.config.sources], utcnow())
    counts = app.store.source_item_counts()
    configured = {s.name: s for s in app.config.sources}
    rows = []
    for st in app.store.source_states():
        cfg = configured.get(st.name)
        if cfg is None:
            status = "removed"
        elif not cfg.enabled:
            status = "disabled"
        elif st.last_polled is None:
            status = "new"
        elif st.consecutive_failures:
            status = "failing"
        else:
            status = "ok"
        rows.append(
            {
                "name": st.name,
                "type": st.type,
                "url": st.url,
                "status": status,
                "items": counts.get(st.name, 0),
                "last_success": _iso(st.last_success),
                "last_error": st.last_error,
                "error_class": st.error_class,
                "consecutive_failures": st.consecutive_failures,
                "next_due": _iso(st.next_due),
                "poll_interval": format_duration(timedelta(seconds=st.poll_interval)) if st.poll_interval else None,
                "last_new_item": _iso(st.last_new_item),
                "last_warning": st.last_warning,
            }
        )
    if args.json:
        _dump({"sources": rows})
        return 0
    for r in rows:
        line = (
            f"{r['name']:<28} {r['status']:<9} {r['items']:>6} items  "
            f"last ok {r['last_success'] or '-':<25} next {r['next_due'] or '-'}"
        )
        print(line)
        if r["last_error"]:
            print(f"    {r['consecutive_failures']} failures ({r['error_class']}): {r['last_error']}")
        if r["poll_interval"] or r["last_new_item"]:
            print(f"    polled every {r['poll_interval'] or '-'}; last new item {r['last_new_item'] or 'never'}")
        if r["last_warning"]:
            print(f"    warning: {r['last_warning']}")
    return 0


def cmd_items(args: argparse.Namespace) -> int:
    from monitor.app import make_app, utcnow

    app = make_app(args.config, args.database_url)
    since = utcnow() - parse_duration(args.since) if args.since else None
    rows = app.store.recent_items(since, args.source, args.limit)
    out = [
        {
            "title": r["title"],
            "url": r["url"],
            "source": r["source"],
            "language": r["language"],
            "published": _iso(r["published"]),
            "first_seen": _iso(r["first_seen"]),
        }
        for r in rows
    ]
    if args.json:
        _dump({"items": out})
        return 0
    for r in out:
        print(f"{r['first_seen']}  {r['source']:<20} {r['language'] or '--':<3} {r['title'][:100]}")
        print(f"    {r['url']}")
    return 0


def cmd_stories(args: argparse.Namespace) -> int:
    from monitor.app import make_app, utcnow

    app = make_app(args.config, args.database_url)
    since = utcnow() - parse_duration(args.since) if args.since else None
    out = []
    for st in app.store.recent_stories(since, args.limit):
        first = st["first_item"]
        out.append(
            {
                "id": st["id"],
                "title": st["title"],
                "first_seen": _iso(st["first_seen"]),
                "last_seen": _iso(st["last_seen"]),
                "size": st["size"],
                "outlets": st["outlets"],
                "languages": st["languages"],
                "first_item": None
                if first is None
                else {
                    "title": first["title"],
                    "url": first["url"],
                    "source": first["source"],
                    "language": first["language"],
                    "published": _iso(first["published"]),
                    "first_seen": _iso(first["first_seen"]),
                },
                "items": [
                    {"title": m["title"], "url": m["url"], "source": m["source"], "language": m["language"]}
                    for m in st["items"]
                ],
            }
        )
    if args.json:
        _dump({"stories": out})
        return 0
    for s in out:
        langs = ",".join(s["languages"]) or "--"
        print(f"#{s['id']:<6} {s['first_seen']}  x{s['size']:<3} {langs:<8} {s['title'][:90]}")
        if s["first_item"] is not None:
            print(f"    first: {s['first_item']['source']}  {s['first_item']['url']}")
        others = [o for o in s["outlets"] if s["first_item"] is None or o != s["first_item"]["source"]]
        if others:
            print(f"    also reported by: {', '.join(others)}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from monitor.app import make_app

    app = make_app(args.config, args.database_url)
    rows = app.store.alert_rows(status=args.status, limit=args.limit)
    out: list[dict[str, Any]] = [
        {
            "id": r.id,
            "rule": r.rule,
            "rules": list(r.rules),
            "subscriber": r.subscriber,
            "status": r.status,
            "title": r.title,
            "url": r.url,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "next_attempt": _iso(r.next_attempt) if r.status == "pending" else None,
            "created_at": _iso(r.created_at),
            "sent_at": _iso(r.sent_at),
            "severity": r.severity,
            "held": r.hold_reason if r.status == "pending" else None,  # "quiet" | "rate": waiting, not failing
            "message": r.message_id,  # alerts sent together (summary, digest) share one
            "message_kind": r.message_kind,
        }
        for r in rows
    ]
    if args.json:
        _dump({"alerts": out})
        return 0
    for r in out:
        print(
            f"#{r['id']:<6} {r['status']:<8} {', '.join(r['rules'])} → {r['subscriber']}  "
            f"attempts {r['attempts']}  {r['title'][:80]}"
        )
        if r["held"]:
            print(f"        held ({r['held']}) until {r['next_attempt']}")
        elif r["message_kind"] and r["message_kind"] != "alert":
            print(f"        in {r['message_kind']} message #{r['message']}")
        if r["last_error"]:
            print(f"        last error: {r['last_error']}")
    return 0


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    from monitor.app import make_app, utcnow

    if not args.ids and not args.failed:
        print("error: give alert ids, or --failed for every failed alert", file=sys.stderr)
        return EXIT_CONFIG
    app = make_app(args.config, args.database_url)
    n = app.store.retry_alerts(None if args.failed else args.ids, utcnow())
    print(f"{n} alert(s) queued again")
    return 0


def cmd_notify_test(args: argparse.Namespace) -> int:
    import os

    from monitor.app import config_path
    from monitor.core.render import render_notice
    from monitor.notify.apprise import AppriseNotifier

    config = load_config(config_path(args.config))
    sub = config.subscriber(args.subscriber)
    if sub is None:
        raise ConfigError([_problem(config.path, "subscriber", f"no subscriber named {args.subscriber!r}")])
    urls, missing = sub.resolve_urls(os.environ)
    message = render_notice("test message", f"This is a test message from wirewatch for subscriber {sub.name}.")
    results = AppriseNotifier(timeout=config.alerts.send_timeout.total_seconds()).send(urls, message)
    failures = 0
    for r in results:
        print(f"url {r.index} ({r.service}://…): {'ok' if r.ok else 'FAILED: ' + (r.error or '')}")
        failures += not r.ok
    for name in sorted(set(missing)):
        print(f"skipped: environment variable {name} is not set")
        failures += 1
    return 0 if failures == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(keep=args.keep)


# --------------------------------------------------------------------------- helpers


def _problem(file: str, where: str, message: str) -> Any:
    from monitor.errors import ConfigProblem

    return ConfigProblem(file, where, message)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dump(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
