"""The ``wirewatch`` command line: the composition root for one-shot commands.

Responsible for parsing arguments (click: global options are accepted before or after
the subcommand, shell completion, ``--version``), wiring adapters (via :mod:`monitor.app`),
handing results to the one output layer (:mod:`monitor.output`) as tables or one JSON
document, and mapping errors to exit codes: 0 success, 1 other expected error, 2 invalid
config or usage (naming the flag and the accepted forms; an unknown source, alert or rule
is a usage error too), 3 database problem, 4 ``run --once`` where every source failed or
alerts were dead-lettered, 141 a closed output pipe (quietly).  Tracebacks are for bugs
only.  Heavy libraries (SQLAlchemy, Apprise, Scrapy) are imported inside the commands
that use them, so ``--help`` and the read-only commands start fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from monitor import __version__
from monitor.config import load_config, redact
from monitor.core.units import parse_duration
from monitor.errors import ConfigError, StorageError, WirewatchError
from monitor.logs import cause_in_words, setup_logging
from monitor.output import MISSING, Column, Output

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.sql import SqlStore

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_CYCLE_FAILED = 4  # run --once: every source failed, or alerts were dead-lettered, unknown or unrecorded
EXIT_UNDELIVERED = EXIT_CYCLE_FAILED  # the same code, named for the alerts' side
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away

Args = SimpleNamespace


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(k.startswith("_WIREWATCH_COMPLETE") for k in os.environ):
        return int(cli.main(args=args, prog_name="wirewatch") or 0)  # shell completion: click answers, exits
    try:
        # Not click's main(): it turns a closed pipe into exit 1; we exit quietly with 141.
        with cli.make_context("wirewatch", args) as ctx:
            code = cli.invoke(ctx)
        return int(code or 0)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return 130
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        return EXIT_CONFIG
    except StorageError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        return EXIT_STORAGE
    except WirewatchError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:
        database = _database_error(exc)
        if database is None:
            raise
        click.echo(f"error: {database}", err=True)
        return EXIT_STORAGE


def _closed_pipe() -> int:
    """The reader (``head``, ``less``) went away: stop quietly, as ``cat`` would.

    Python flushes stdout again at exit, which would raise a second time and print a
    warning: point the descriptor at /dev/null first (the recipe of the signal docs).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def _database_error(exc: Exception) -> str | None:
    """A driver error from a query (not one we wrapped): say so in one line, with the hint
    that an older schema is the usual cause.  None when it is not a database error."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
        return None
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return redact(f"database error: {detail} (if wirewatch was upgraded, run `wirewatch db upgrade`)")


# --------------------------------------------------------------------------- options


class Duration(click.ParamType[timedelta, Any]):
    """``30s``, ``10m``, ``24h``, ``7d``, ``2w``: the units of the config file."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            delta = parse_duration(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a duration; use a number and a unit: 30s, 10m, 24h, 7d or 2w", param, ctx)
        if delta <= timedelta(0):
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return delta


DURATION = Duration()
LIMIT = click.IntRange(min=1)

# Global options: given to the group and to every command, so that
# `wirewatch --config x check` and `wirewatch check --config x` both work (and the tests'
# run_cli, which puts them first).  Given twice, the later one wins.
_GLOBALS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--config",), {"metavar": "PATH", "help": "config file (default ./config.toml, env WIREWATCH_CONFIG)"}),
    (("--database-url",), {"metavar": "URL", "help": "overrides [storage] url (env WIREWATCH_DATABASE_URL)"}),
    (("--log-format",), {"type": click.Choice(["text", "json"]), "help": "log line format on stderr (default text)"}),
    (("-v", "--verbose"), {"is_flag": True, "default": None, "help": "debug logging"}),
    (("--utc",), {"is_flag": True, "default": None, "help": "show times in UTC instead of the local zone"}),
)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and param.name is not None:
        ctx.find_root().meta.setdefault("wirewatch.globals", {})[param.name] = value
    return value


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decls, extra in reversed(_GLOBALS):
        f = click.option(*decls, expose_value=False, callback=_remember, **extra)(f)
    return f


def _args(ctx: click.Context, **params: Any) -> Args:
    given = ctx.find_root().meta.get("wirewatch.globals", {})
    args = Args(
        config=given.get("config"),
        database_url=given.get("database_url"),
        log_format=given.get("log_format") or "text",
        verbose=bool(given.get("verbose")),
        utc=bool(given.get("utc")),
        **params,
    )
    setup_logging(args.log_format, args.verbose)
    return args


def _usage(param: str, message: str) -> click.BadParameter:
    """A usage error about ``param`` (exit 2), for checks that need the database."""
    return click.BadParameter(message, ctx=click.get_current_context(silent=True), param_hint=f"'{param}'")


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """Subcommands listed in the order they are declared, as in the README."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


# --------------------------------------------------------------------------- commands


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="wirewatch", message="%(prog)s %(version)s")
@global_options
def cli() -> None:
    """Multilingual media monitor: feeds in, keyword alerts out.

    Global options may come before or after the command.  Exit codes: 0 ok, 1 other
    error, 2 invalid config or usage, 3 database problem, 4 `run --once` where every
    source failed or alerts were dead-lettered.
    """


@cli.group(cls=Group, context_settings=CONTEXT)
@global_options
def db() -> None:
    """Database maintenance."""


@db.command("upgrade", context_settings=CONTEXT)
@global_options
@click.pass_context
def db_upgrade(ctx: click.Context) -> int:
    """Migrate the database to the newest revision."""
    return cmd_db_upgrade(_args(ctx))


@cli.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="poll every enabled source once, dispatch, exit (exit 4 if all failed)")
@click.option(
    "--role",
    type=click.Choice(["all", "worker"]),
    default="all",
    show_default=True,
    help="worker: one of several daemons sharing PostgreSQL",
)
@global_options
@click.pass_context
def run(ctx: click.Context, once: bool, role: str) -> int:
    """The daemon (or one cycle with --once)."""
    return cmd_run(_args(ctx, once=once, role=role))


@cli.command(context_settings=CONTEXT)
@global_options
@click.pass_context
def check(ctx: click.Context) -> int:
    """Validate the config file (and every subscriber URL, with Apprise's parser)."""
    return cmd_check(_args(ctx))


@cli.group(cls=Group, context_settings=CONTEXT)
@global_options
def rules() -> None:
    """Rule tools."""


@rules.command("test", context_settings=CONTEXT)
@click.option("--rule", metavar="NAME", help="only this rule")
@click.option("--since", type=DURATION, help="only items first seen within this duration, e.g. 7d")
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def rules_test(ctx: click.Context, rule: str | None, since: timedelta | None, as_json: bool) -> int:
    """Backtest rules over stored items (sends nothing)."""
    return cmd_rules_test(_args(ctx, rule=rule, since=since, json=as_json))


@rules.command("eval", context_settings=CONTEXT)
@click.argument("labels", metavar="LABELS...", nargs=-1, required=True)
@click.option(
    "--against",
    metavar="CONFIG",
    help="also score the texts with this config's rules and list the disagreements that are new and gone",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def rules_eval(ctx: click.Context, labels: tuple[str, ...], against: str | None, as_json: bool) -> int:
    """Precision and recall of the rules over labelled files of texts (JSONL, or TOML with [[text]] tables)."""
    return cmd_rules_eval(_args(ctx, labels=list(labels), against=against, json=as_json))


@cli.group(cls=Group, invoke_without_command=True, context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> int | None:
    """Source health; with an action, operate one source."""
    if ctx.invoked_subcommand is not None:
        return None
    return cmd_sources(_args(ctx, json=as_json))


@sources.command("poll", context_settings=CONTEXT)
@click.argument("name")
@global_options
@click.pass_context
def sources_poll(ctx: click.Context, name: str) -> int:
    """Poll one source now, enabled or not, and dispatch what it queued."""
    return cmd_sources_poll(_args(ctx, name=name))


@sources.command("reset", context_settings=CONTEXT)
@click.argument("name")
@global_options
@click.pass_context
def sources_reset(ctx: click.Context, name: str) -> int:
    """Forget a source's failures and make it due now."""
    return cmd_sources_reset(_args(ctx, name=name))


@sources.command("enable", context_settings=CONTEXT)
@click.argument("name")
@global_options
@click.pass_context
def sources_enable(ctx: click.Context, name: str) -> int:
    """Poll a source again (a database override of the config's `enabled`)."""
    return cmd_sources_enable(_args(ctx, name=name, enabled=True))


@sources.command("disable", context_settings=CONTEXT)
@click.argument("name")
@global_options
@click.pass_context
def sources_disable(ctx: click.Context, name: str) -> int:
    """Stop polling a source (a database override of the config's `enabled`)."""
    return cmd_sources_enable(_args(ctx, name=name, enabled=False))


@sources.command("import", context_settings=CONTEXT)
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="print the [[sources]] that would be added; change nothing")
@global_options
@click.pass_context
def sources_import(ctx: click.Context, opml: str, dry_run: bool) -> int:
    """Add the feeds of an OPML file to the config as [[sources]]."""
    return cmd_sources_import(_args(ctx, opml=opml, dry_run=dry_run))


@sources.command("export", context_settings=CONTEXT)
@global_options
@click.pass_context
def sources_export(ctx: click.Context) -> int:
    """Print the configured feeds as OPML 2.0 (what every feed reader imports)."""
    return cmd_sources_export(_args(ctx))


@cli.command(context_settings=CONTEXT)
@click.option("--source", metavar="NAME", help="only items of this source")
@click.option("--since", type=DURATION, help="only items first seen within this duration, e.g. 24h")
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="at most this many items (1 or more)")
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def items(ctx: click.Context, source: str | None, since: timedelta | None, limit: int, as_json: bool) -> int:
    """What was collected, newest first."""
    return cmd_items(_args(ctx, source=source, since=since, limit=limit, json=as_json))


@cli.command(context_settings=CONTEXT)
@click.option("--since", type=DURATION, help="only stories seen within this duration, e.g. 24h")
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="at most this many stories (1 or more)")
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def stories(ctx: click.Context, since: timedelta | None, limit: int, as_json: bool) -> int:
    """Recent story clusters: first item, outlets, languages, size."""
    return cmd_stories(_args(ctx, since=since, limit=limit, json=as_json))


@cli.group(cls=Group, invoke_without_command=True, context_settings=CONTEXT)
@click.option(
    "--status",
    type=click.Choice(["waiting", "pending", "sending", "sent", "failed", "unknown"]),
    help="only alerts in this state",
)
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="at most this many alerts (1 or more)")
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
@global_options
@click.pass_context
def alerts(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> int | None:
    """The alert outbox; `alerts retry` queues dead letters again."""
    if ctx.invoked_subcommand is not None:
        return None
    return cmd_alerts(_args(ctx, status=status, limit=limit, json=as_json))


@alerts.command("retry", context_settings=CONTEXT)
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--failed", is_flag=True, help="every failed alert")
@global_options
@click.pass_context
def alerts_retry(ctx: click.Context, ids: tuple[int, ...], failed: bool) -> int:
    """Queue failed (dead-lettered) alerts again."""
    return cmd_alerts_retry(_args(ctx, ids=list(ids), failed=failed))


@cli.command("notify-test", context_settings=CONTEXT)
@click.argument("subscriber")
@global_options
@click.pass_context
def notify_test(ctx: click.Context, subscriber: str) -> int:
    """Send a test message to a subscriber; report each URL."""
    return cmd_notify_test(_args(ctx, subscriber=subscriber))


@cli.command(context_settings=CONTEXT)
@click.option("--keep", is_flag=True, help="keep the demo's folder (config, database) and say where")
@global_options
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> int:
    """Offline demo: the config's rules against bundled sample news."""
    return cmd_demo(_args(ctx, keep=keep))


@cli.command(context_settings=CONTEXT)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script, e.g. `eval "$(wirewatch completion bash)"`."""
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None  # click ships all three
    click.echo(complete(cli, {}, "wirewatch", "_WIREWATCH_COMPLETE").source())
    return 0


# --------------------------------------------------------------------------- wiring


def _readable(args: Args) -> tuple[SqlStore, Config | None]:
    """The store for a read-only command, and the config when it is valid.

    An invalid config must not hide the database (an operator is probably editing it):
    say once that it has errors, and find the database from --database-url, the
    environment, or whatever ``[storage] url`` the file still yields.
    """
    import tomllib

    from monitor.app import config_path, database_url

    path = config_path(args.config)
    config: Config | None = None
    try:
        config = load_config(path)
    except ConfigError as exc:
        n = len(exc.problems)
        click.echo(
            f"warning: {path} has {n} error{'s' if n != 1 else ''} (`wirewatch check` lists them); "
            "showing the database only",
            err=True,
        )
    if config is not None:
        url = database_url(config, args.database_url)
    else:
        url = str(args.database_url or os.environ.get("WIREWATCH_DATABASE_URL") or "")
        if not url:
            salvaged: Any = None
            try:
                with open(path, "rb") as fh:
                    storage = tomllib.load(fh).get("storage", {})
                salvaged = storage.get("url") if isinstance(storage, dict) else None
            except (OSError, tomllib.TOMLDecodeError):
                salvaged = None
            url = salvaged if isinstance(salvaged, str) and salvaged else "sqlite:///wirewatch.db"
        url = _relative_to(url, path)
        sqlite_path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        if sqlite_path and sqlite_path != ":memory:" and not Path(sqlite_path).exists():
            raise StorageError(f"no database at {sqlite_path} (give --database-url)")
    return _open_for_reading(url), config


def _relative_to(url: str, config_file: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(Path(config_file).resolve().parent / url[len(prefix) :])
    return url


def _open_for_reading(url: str) -> SqlStore:
    """A store for reading without loading Alembic when the schema is already there.

    Alembic and the migration scripts cost a third of a second to import; a database
    with an ``alembic_version`` row is used as it is (a stale schema shows as a database
    error with the upgrade hint).  A new, empty database is migrated as before.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from monitor.app import open_store
    from monitor.store.sql import SqlStore, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        version = None
    if version is None:
        engine.dispose()
        return open_store(url, migrate_first=True)
    return SqlStore(engine)


def _out(args: Args) -> Output:
    return Output(utc=args.utc)


# --------------------------------------------------------------------------- db, run, check


def cmd_db_upgrade(args: Args) -> int:
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
    _out(args).line(f"database {display_url(url)} is at revision {rev}")
    return 0


def _database_url_for_migration(args: Args) -> str:
    """`--database-url`, else the environment, else the config's ``[storage] url``."""
    from monitor.app import config_path, database_url

    if args.database_url:
        return str(args.database_url)
    if os.environ.get("WIREWATCH_DATABASE_URL"):
        return os.environ["WIREWATCH_DATABASE_URL"]
    return database_url(load_config(config_path(args.config)), None)


def cmd_run(args: Args) -> int:
    import logging

    from monitor.app import make_app
    from monitor.daemon import Daemon, run_on_reactor

    worker = args.role == "worker"
    app = make_app(args.config, args.database_url, migrate_first=not worker)
    if worker and app.store.dialect != "postgresql":
        click.echo("error: --role worker needs PostgreSQL: workers share one database", err=True)
        return EXIT_CONFIG
    for warning in app.config.warnings:
        logging.getLogger("wirewatch").warning("%s", warning)
    if args.once:
        return _run_cycle(args, app, None)

    async def serve() -> int:
        return await Daemon(app, role=args.role).serve()

    return run_on_reactor(serve)


def _run_cycle(args: Args, app: Any, only: list[str] | None) -> int:
    """One cycle (``run --once``, or ``sources poll NAME`` with ``only``), reported on stdout."""
    from monitor.app import utcnow
    from monitor.core.models import POLLED_TYPES
    from monitor.daemon import pollable, run_cycle_loop, run_once

    names = only if only is not None else pollable(app)
    total = len(names)
    wanted = set(names)
    scrapy = any(s.type not in POLLED_TYPES for s in app.config.sources if s.name in wanted)
    done = 0
    progress_shown = sys.stderr.isatty() and total > 1

    def progress(summary: Any) -> None:
        nonlocal done
        done += 1
        if progress_shown:
            detail = (
                cause_in_words(summary.error)
                if summary.status == "error"
                else f"{summary.new} new, {summary.matched} matched"
            )
            line = f"[{done}/{total}] {summary.source}: {detail}"[:100]
            sys.stderr.write("\r" + line.ljust(100))
            sys.stderr.flush()

    async def once() -> int:
        report = await run_once(app, progress, only=only)
        if progress_shown:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()
        due = app.store.next_due_source(names)
        return _print_cycle(args, report, due, utcnow())

    return run_cycle_loop(once, scrapy=scrapy)


def _print_cycle(args: Args, report: Any, due: tuple[str, datetime] | None, now: datetime) -> int:
    """The cycle's summary on stdout (each failure was logged once, on stderr, by ingest)."""
    from monitor.logs import format_delay

    out = _out(args)
    ok = [s for s in report.polled if s.status != "error"]
    failed = [s for s in report.polled if s.status == "error"]
    new = sum(s.new for s in report.polled)
    matched = sum(s.matched for s in report.polled)
    queued = sum(s.alerts for s in report.polled)
    d = report.dispatch
    out.line(
        f"polled {len(report.polled)} sources ({len(ok)} ok, {len(failed)} failed): {new} new items, "
        f"{matched} matched, {queued} alerts queued; sent {d.sent}, retrying {d.retrying}, failed {d.failed}, "
        f"unknown {d.unknown}"
    )
    e = getattr(report, "enriched", None)
    if e is not None and e.claimed:
        out.line(
            f"article pages: {e.enriched} read, {e.matched} matched, {e.alerts} alerts queued; "
            f"{e.retrying} to retry, {e.failed} failed"
        )
    if due is not None:
        name, when = due
        out.line(f"next due: {name} at {out.time(when)} (in {format_delay(when - now)})")
    all_failed = bool(report.polled) and not ok
    if all_failed and len(report.polled) > 1:
        out.line("every source failed: this machine probably has no network or no DNS (see `wirewatch sources`)")
    if d.failed:
        out.line(f"{d.failed} alert(s) dead-lettered: see `wirewatch alerts --status failed`")
    if d.unknown or d.unmarked:
        out.line(
            f"{d.unknown} send(s) with an unknown outcome, {d.unmarked} outcome(s) not recorded: "
            "see `wirewatch alerts --status unknown`"
        )
    if d.failed or d.unknown or d.unmarked:
        # On stderr too, for cron's mail: what the non-zero exit is about.
        print(
            f"alerts not delivered: {d.failed} dead-lettered, {d.unknown} unknown, "
            f"{d.unmarked} outcomes not recorded (exit {EXIT_CYCLE_FAILED})",
            file=sys.stderr,
        )
    return EXIT_CYCLE_FAILED if all_failed or d.failed or d.unknown or d.unmarked else 0


def cmd_check(args: Args) -> int:
    from monitor.app import config_path
    from monitor.errors import ConfigProblem
    from monitor.notify.apprise import check_subscriber_urls

    path = config_path(args.config)
    config = load_config(path)
    problems, warnings = check_subscriber_urls(config)
    for warning in [*config.warnings, *warnings]:
        click.echo(f"warning: {warning}", err=True)
    if problems:
        raise ConfigError([ConfigProblem(config.path, where, message) for where, message in problems])
    _out(args).line(
        f"{path}: OK ({len(config.sources)} sources, {len(config.terms)} terms, "
        + (f"{len(config.clauses)} clauses, " if config.clauses else "")
        + f"{len(config.rules)} rules, {len(config.subscribers)} subscribers)"
    )
    return 0


# --------------------------------------------------------------------------- rules


def cmd_rules_test(args: Args) -> int:
    from monitor.app import make_app, utcnow
    from monitor.core.items import make_document
    from monitor.core.policy import rule_applies

    app = make_app(args.config, args.database_url)
    rt = app.holder.get()
    if args.rule and args.rule not in rt.rules:
        known = ", ".join(sorted(rt.rules)) or "none"
        raise _usage("--rule", f"no rule named {args.rule!r} (rules: {known})")
    since = utcnow() - args.since if args.since else None
    rows = app.store.recent_items(since, None, limit=100_000)
    out: list[dict[str, Any]] = []
    for row in rows:
        doc = make_document(row["title"], row["summary"], row["text"], row["language"], row["title_derived"])
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
    o = _out(args)
    if args.json:
        for m in out:
            m.pop("_doc")
        o.json({"matches": out})
        return 0
    for m in out:
        doc = m["_doc"]
        title = _highlight(doc.title, [s for s in m["spans"] if s["field"] == "title"])
        o.line(f"[{m['rule']}] {title}  ({m['source']}, {m['language'] or '?'})")
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
            o.line("    …" + _highlight(window, shifted).replace("\n", " ") + "…")
        o.line(f"    {m['url']}")
    o.line(f"{len(out)} matches in {len(rows)} items")
    return 0


def cmd_rules_eval(args: Args) -> int:
    from monitor.app import config_path
    from monitor.rules_eval import run_rules_eval

    return run_rules_eval(str(config_path(args.config)), args.labels, args.json, against=args.against)


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


# --------------------------------------------------------------------------- sources


def cmd_sources(args: Args) -> int:
    from monitor.app import utcnow
    from monitor.services.sources import source_rows

    store, config = _readable(args)
    if config is not None:
        store.sync_sources([(s.name, s.type, s.url) for s in config.sources], utcnow())
    rows = source_rows(store, config)
    out = _out(args)
    if args.json:
        for r in rows:
            r.pop("_state")
        out.json({"sources": rows})
        return 0
    table = []
    styles: list[str | None] = []
    now = utcnow()
    for r in rows:
        st = r.pop("_state")
        notes = []
        if r["override"]:
            notes.append(f"{r['override']} by `wirewatch sources {r['override'][:-1]}` (database override)")
        if r["last_error"]:
            n = r["consecutive_failures"]
            notes.append(f"{n} failure{'s' if n != 1 else ''}: {cause_in_words(r['last_error'])}")
        if r["last_warning"]:
            notes.append(f"warning: {r['last_warning']}")
        table.append(
            [
                r["name"],
                r["status"],
                str(r["items"]),
                out.time(st.last_success),
                _due(out, st.next_due, now) if r["next_due"] else MISSING,
                r["poll_interval"] or MISSING,
                "; ".join(notes),
            ]
        )
        styles.append({"failing": "red", "disabled": "dim", "removed": "dim", "new": "cyan"}.get(r["status"]))
    out.table(
        [
            Column("NAME", max_width=28),
            Column("STATUS"),
            Column("ITEMS", "right"),
            Column("LAST OK"),
            Column("NEXT"),
            Column("EVERY"),
            Column("NOTE", max_width=70),
        ],
        table,
        styles=styles,
    )
    return 0


def _due(out: Output, when: datetime | None, now: datetime) -> str:
    """A due time; "now" once it has passed (the source waits for the next poll tick)."""
    if when is None:
        return MISSING
    return "now" if when <= now else out.time(when)


def _no_source(param: str, name: str, names: set[str]) -> click.BadParameter:
    from monitor.config import _did_you_mean

    hint = _did_you_mean(name, names)
    if not hint and names and len(names) <= 12:
        hint = f" (sources: {', '.join(sorted(names))})"
    return _usage(param, f"no source named {name!r}{hint}")


def _configured_source(args: Args) -> tuple[Any, Any]:
    """The app and the config entry of ``args.name`` (a usage error when there is none)."""
    from monitor.app import make_app, utcnow

    app = make_app(args.config, args.database_url)
    cfg = app.config.source(args.name)
    if cfg is None:
        raise _no_source("NAME", args.name, {s.name for s in app.config.sources})
    app.store.sync_sources([(s.name, s.type, s.url) for s in app.config.sources], utcnow())
    return app, cfg


def cmd_sources_poll(args: Args) -> int:
    app, _cfg = _configured_source(args)
    code = _run_cycle(args, app, [args.name])
    state = app.store.source_states([args.name])[0]
    if state.consecutive_failures:
        click.echo(f"source {args.name}: {cause_in_words(state.last_error)} ({state.last_error})", err=True)
        return EXIT_ERROR
    return 0 if code != EXIT_CYCLE_FAILED else code


def cmd_sources_reset(args: Args) -> int:
    from monitor.app import utcnow

    app, _cfg = _configured_source(args)
    before = app.store.source_states([args.name])[0]
    app.store.reset_source(args.name, utcnow())
    n = before.consecutive_failures
    _out(args).line(
        f"source {args.name}: {n} failure{'s' if n != 1 else ''} forgotten; due now "
        "(the running daemon polls it within a second)"
    )
    return 0


def cmd_sources_enable(args: Args) -> int:
    from monitor.services.sources import set_source_enabled

    app, cfg = _configured_source(args)
    result = set_source_enabled(app.store, cfg, args.enabled)
    word = "enabled" if args.enabled else "disabled"
    _out(args).line(f"source {args.name}: {word} ({result.note})")
    return 0


def cmd_sources_import(args: Args) -> int:
    from monitor.app import config_path
    from monitor.opml import parse_opml, toml_sources

    path = Path(config_path(args.config))
    config = load_config(path)
    data = sys.stdin.buffer.read() if args.opml == "-" else Path(args.opml).read_bytes()
    feeds = parse_opml(data)
    taken_names = {s.name for s in config.sources}
    taken_urls = {s.url for s in config.sources}
    added, skipped = toml_sources(feeds, taken_names, taken_urls)
    out = _out(args)
    for feed, why in skipped:
        click.echo(f"skipped {feed.url}: {why}", err=True)
    if not added:
        out.line("no new feeds in the OPML file")
        return 0
    block = "".join(text for _name, text in added)
    if args.dry_run:
        out.line(block.strip("\n"))
        return 0
    original = path.read_text(encoding="utf-8")
    header = (
        f"\n# Imported from {Path(args.opml).name if args.opml != '-' else 'OPML'} by `wirewatch sources import`.\n"
    )
    path.write_text(original.rstrip("\n") + "\n" + header + block, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError:
        path.write_text(original, encoding="utf-8")  # never leave the operator a broken file
        raise
    out.table([Column("ADDED"), Column("URL")], [[name, _feed_url(text)] for name, text in added])
    out.line(f"{len(added)} source(s) added to {path}; a running daemon picks them up on its own")
    return 0


def _feed_url(block: str) -> str:
    for line in block.splitlines():
        if line.startswith("url = "):
            import json

            return str(json.loads(line[len("url = ") :]))
    return MISSING


def cmd_sources_export(args: Args) -> int:
    from monitor.app import config_path
    from monitor.opml import make_opml

    config = load_config(config_path(args.config))
    feeds = [s for s in config.sources if s.type == "feed"]
    for s in config.sources:
        if s.type != "feed":
            click.echo(f"not exported: {s.name} is a {s.type} source, not a feed", err=True)
    _out(args).lines(make_opml([(s.name, s.url, s.language) for s in feeds]).splitlines())
    return 0


# --------------------------------------------------------------------------- items, stories, alerts


def cmd_items(args: Args) -> int:
    from monitor.app import utcnow

    store, config = _readable(args)
    if args.source is not None:
        names = {st.name for st in store.source_states()} | (
            {s.name for s in config.sources} if config is not None else set()
        )
        if args.source not in names:
            raise _no_source("--source", args.source, names)
    since = utcnow() - args.since if args.since else None
    rows = store.recent_items(since, args.source, args.limit)
    out = _out(args)
    docs = [
        {
            "title": r["title"],
            "url": r["url"],
            "source": r["source"],
            "language": r["language"],
            "published": _iso(r["published"]),
            "first_seen": _iso(r["first_seen"]),
            # The article page (enrichment): wanted | done | failed | skipped, or null.
            "text_state": r["text_state"],
            "text_error": r["text_error"],
        }
        for r in rows
    ]
    if args.json:
        out.json({"items": docs})
        return 0
    out.table(
        [
            Column("FIRST SEEN"),
            Column("SOURCE", max_width=20),
            Column("LANG"),
            Column("TITLE", max_width=70),
            Column("URL"),
        ],
        [[out.time(r["first_seen"]), r["source"], r["language"] or MISSING, r["title"], r["url"]] for r in rows],
    )
    return 0


def cmd_stories(args: Args) -> int:
    from monitor.app import utcnow

    store, _config = _readable(args)
    since = utcnow() - args.since if args.since else None
    docs = []
    raw = store.recent_stories(since, args.limit)
    for st in raw:
        first = st["first_item"]
        docs.append(
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
    out = _out(args)
    if args.json:
        out.json({"stories": docs})
        return 0
    out.table(
        [
            Column("ID", "right"),
            Column("FIRST SEEN"),
            Column("SIZE", "right"),
            Column("LANGS"),
            Column("OUTLETS", max_width=40),
            Column("TITLE", max_width=70),
        ],
        [
            [
                str(st["id"]),
                out.time(st["first_seen"]),
                str(st["size"]),
                ",".join(st["languages"]) or MISSING,
                ", ".join(st["outlets"]),
                st["title"],
            ]
            for st in raw
        ],
    )
    return 0


def cmd_alerts(args: Args) -> int:
    store, _config = _readable(args)
    rows = store.alert_rows(status=args.status, limit=args.limit)
    docs: list[dict[str, Any]] = [
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
    out = _out(args)
    if args.json:
        out.json({"alerts": docs})
        return 0
    table = []
    for r, d in zip(rows, docs, strict=True):
        if d["held"]:
            note = f"held ({d['held']}) until {out.time(r.next_attempt)}"
        elif r.status == "pending" and r.attempts:
            note = f"retry at {out.time(r.next_attempt)}"
        elif d["message_kind"] and d["message_kind"] != "alert":
            note = f"in {d['message_kind']} message #{d['message']}"
        else:
            note = ""
        if r.last_error:
            note = (note + "; " if note else "") + f"last error: {r.last_error}"
        table.append(
            [
                str(r.id),
                r.status,
                ", ".join(r.rules),
                r.subscriber,
                str(r.attempts),
                out.time(r.sent_at if r.status == "sent" else r.created_at),
                r.title,
                note,
            ]
        )
    out.table(
        [
            Column("ID", "right"),
            Column("STATUS"),
            Column("RULE", max_width=24),
            Column("SUBSCRIBER", max_width=16),
            Column("TRIES", "right"),
            Column("TIME"),
            Column("TITLE", max_width=60),
            Column("NOTE", max_width=60),
        ],
        table,
        styles=[{"failed": "red", "pending": "yellow", "sent": None}.get(r.status) for r in rows],
    )
    return 0


def cmd_alerts_retry(args: Args) -> int:
    from monitor.app import open_store, utcnow

    if not args.ids and not args.failed:
        raise click.UsageError(
            "give alert ids (`wirewatch alerts retry 12 13`), or --failed for every failed alert",
            ctx=click.get_current_context(silent=True),
        )
    from monitor.app import config_path, database_url

    config = load_config(config_path(args.config))
    store = open_store(database_url(config, args.database_url), migrate_first=True)
    if args.ids:
        found = {r.id: r for r in store.alert_rows(ids=args.ids, limit=len(args.ids))}
        missing = [i for i in args.ids if i not in found]
        if missing:
            raise _usage("ID", f"no alert {', '.join(f'#{i}' for i in missing)} (see `wirewatch alerts`)")
        not_failed = [r for r in found.values() if r.status not in ("failed", "unknown")]
        if not_failed:
            listing = ", ".join(f"#{r.id} is {r.status}" for r in sorted(not_failed, key=lambda r: r.id))
            raise _usage("ID", f"only failed or unknown alerts can be retried: {listing}")
    n = store.retry_alerts(None if args.failed else args.ids, utcnow())
    _out(args).line(f"{n} alert(s) queued again" if n else "(none) — no failed alerts")
    return 0


# --------------------------------------------------------------------------- notify-test, demo


def cmd_notify_test(args: Args) -> int:
    from monitor.app import config_path
    from monitor.config import subscriber_secrets
    from monitor.core.render import render_notice
    from monitor.logs import register_secrets
    from monitor.notify.apprise import AppriseNotifier

    config = load_config(config_path(args.config))
    sub = config.subscriber(args.subscriber)
    if sub is None:
        from monitor.config import _did_you_mean

        names = {s.name for s in config.subscribers}
        raise _usage("SUBSCRIBER", f"no subscriber named {args.subscriber!r}{_did_you_mean(args.subscriber, names)}")
    register_secrets(subscriber_secrets(config, os.environ))  # Apprise logs what it cannot parse
    urls, missing = sub.resolve_urls(os.environ)
    message = render_notice("test message", f"This is a test message from wirewatch for subscriber {sub.name}.")
    results = AppriseNotifier(timeout=config.alerts.send_timeout.total_seconds()).send(urls, message)
    failures = 0
    out = _out(args)
    for r in results:
        out.line(f"url {r.index} ({r.service}://…): {'ok' if r.ok else 'FAILED: ' + (r.error or '')}")
        failures += not r.ok
    for name in sorted(set(missing)):
        out.line(f"skipped: environment variable {name} is not set")
        failures += 1
    return 0 if failures == 0 else 1


def cmd_demo(args: Args) -> int:
    from monitor.demo import run_demo

    return run_demo(keep=args.keep, config=args.config)


# --------------------------------------------------------------------------- helpers


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


if __name__ == "__main__":
    sys.exit(main())
