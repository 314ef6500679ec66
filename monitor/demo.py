"""``wirewatch demo``: the whole pipeline, offline, on bundled sample news, as one story.

Serves ``monitor/demo_data`` (four feeds in English, Arabic, Russian and Korean; the
Arabic one carries the real seed article, the English one a namesake decoy) from a
loopback HTTP server, and runs one full cycle (fetch, ingest, match, dispatch) against a
fresh SQLite database with *the operator's* terms and rules: those of ``--config``, else
the bundled ``config.toml``.  Every alert is printed as it would be sent, to one demo
subscriber whose flood control is set low enough to be seen; then the demo says what it
held back and why.  The folder (config, database) is deleted on exit unless ``--keep``.
It must not send anything anywhere: the only channel is the terminal.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.core.render import Message
from monitor.notify.apprise import UrlResult

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
# The project's config.toml (a checkout or an editable install); a wheel falls back to
# the demo's own two rules in demo_data/config.toml.
BUNDLED_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
DEMO_SUBSCRIBER = "terminal"
# Low enough that the sample news shows flood control at work: beyond this many single
# alerts an hour, the rest fold into one summary message.
DEMO_MAX_PER_HOUR = 2


class PrintNotifier:
    """A real channel for the demo: the terminal.  Prints the plain-text part."""

    def __init__(self) -> None:
        self.count = 0
        self.printed: set[str] = set()

    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]:
        self.count += 1
        print(f"\n─── message {self.count}: {message.subject}")
        print(message.text.rstrip())
        return [UrlResult(index, True, "terminal") for index, _url in targets]

    def send_one(self, index: int, url: str, message: Message, timeout: float | None = None) -> UrlResult:
        # The dispatcher sends per URL; the terminal shows each message once.
        if message.ref is None or message.ref not in self.printed:
            self.printed.add(message.ref or "")
            self.send([(index, url)], message)
        return UrlResult(index, True, "print")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def rules_source(config: str | None) -> Path:
    if config:
        return Path(config)
    return BUNDLED_CONFIG if BUNDLED_CONFIG.exists() else DEMO_DATA / "config.toml"


def demo_config(base: str, workdir: Path, rules_from: Path) -> str:
    """The demo's config: the demo feeds and subscriber, the operator's terms, clauses and rules."""
    template = tomllib.loads((DEMO_DATA / "config.toml").read_text(encoding="utf-8").replace("{base}", base))
    theirs = tomllib.loads(rules_from.read_text(encoding="utf-8"))
    rules = []
    for rule in theirs.get("rules", []):
        if not isinstance(rule, dict):
            continue
        # Their subscribers and sources do not exist here: every rule tells the terminal.
        kept = {k: v for k, v in rule.items() if k not in ("notify", "sources", "backfill")}
        rules.append({**kept, "notify": [DEMO_SUBSCRIBER]})
    lines = [
        f"[storage]\nurl = {_q('sqlite:///' + str(workdir / 'demo.db'))}\n",
        _table("fetch", template["fetch"]),
        _table("alerts", template["alerts"]),
    ]
    for s in template["sources"]:
        lines.append(_table("sources", s, array=True))
    lines.append(_table("terms", theirs.get("terms", {})))
    if theirs.get("clauses"):
        lines.append(_table("clauses", theirs["clauses"]))
    for r in rules:
        lines.append(_table("rules", r, array=True))
    lines.append(
        _table(
            "subscribers",
            {
                "name": DEMO_SUBSCRIBER,
                "urls": ["json://127.0.0.1:9/demo-prints-instead"],
                "timezone": "Asia/Seoul",
                "max_per_hour": DEMO_MAX_PER_HOUR,
            },
            array=True,
        )
    )
    return "\n".join(lines)


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _table(name: str, values: dict[str, Any], *, array: bool = False) -> str:
    head = f"[[{name}]]" if array else f"[{name}]"
    body = "".join(f"{_q(k) if not k.isidentifier() else k} = {_q(v)}\n" for k, v in values.items())
    return f"{head}\n{body}"


def run_demo(keep: bool = False, config: str | None = None, verbose: bool = False) -> int:
    from monitor.app import make_app
    from monitor.daemon import run_on_reactor, run_once

    if not verbose:
        # The story is told on stdout; the pipeline's own INFO lines would tell it twice.
        logging.getLogger().setLevel(logging.WARNING)
    rules_from = rules_source(config)
    workdir = Path(tempfile.mkdtemp(prefix="wirewatch-demo-"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(DEMO_DATA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        config_file = workdir / "config.toml"
        config_file.write_text(demo_config(base, workdir, rules_from), encoding="utf-8")
        notifier = PrintNotifier()
        app = make_app(str(config_file), None, notifier=notifier)
        rules = [r.name for r in app.config.rules]
        print(
            f"wirewatch demo: {len(app.config.sources)} sample feeds (en, ar, ru, ko) served on {base},\n"
            f"matched against the {len(rules)} rule(s) of {rules_from}.\n"
            f"Every alert below is printed as subscriber '{DEMO_SUBSCRIBER}' would receive it; nothing is sent."
        )

        async def once() -> int:
            report = await run_once(app)
            _epilogue(app, report, notifier)
            return 0

        code = run_on_reactor(once)
    finally:
        server.shutdown()
        if keep:
            print(
                f"\nKept the demo's folder: {workdir}\n"
                f"  look around: wirewatch --config {config_file} items   (or stories, alerts, rules test)"
            )
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


def _epilogue(app: Any, report: Any, notifier: PrintNotifier) -> None:
    """What was stored, what was sent, and what was held back and why."""
    from monitor.core.items import make_document
    from monitor.core.rules import make_matcher

    failed = [s for s in report.polled if s.status == "error"]
    stored = app.store.recent_items(None, None, 1000)
    rows = app.store.alert_rows(limit=1000)
    alerted = {r.url for r in rows}
    folded = [r for r in rows if r.message_kind == "summary"]
    waiting = [r for r in rows if r.status == "pending"]
    print(
        f"\n═══ {len(stored)} items stored from {len(report.polled) - len(failed)} feeds; "
        f"{len({r.url for r in rows})} matched a rule; {notifier.count} message(s) printed above."
    )
    for s in failed:
        print(f"  feed {s.source} failed: {s.error}")
    print("\nHeld back, and why:")
    held = False
    if folded:
        held = True
        print(
            f"  • flood control: {len(folded)} alert(s) went out folded into one summary message, because "
            f"'{DEMO_SUBSCRIBER}' takes at most {DEMO_MAX_PER_HOUR} single alerts an hour (max_per_hour)."
        )
    if waiting:
        held = True
        print(f"  • {len(waiting)} alert(s) still waiting (flood control or quiet hours): see `wirewatch alerts`.")
    # Which of the rules' terms each unalerted item names: a namesake (the decoy) names
    # none in full, an unrelated story names none at all, a near miss names some.
    terms = app.config.terms
    finder = make_matcher(terms, [(t, t) for t in terms]) if terms else None
    # The sample news says which of its items are decoys (demo_data/decoys.json): the
    # demo cannot know a namesake from a story by itself, only show that none alerted.
    decoys: dict[str, str] = json.loads((DEMO_DATA / "decoys.json").read_text(encoding="utf-8"))
    for it in stored:
        if it["url"] in alerted:
            continue
        held = True
        named: list[str] = []
        if finder is not None:
            doc = make_document(it["title"], it["summary"], it["text"], it["language"])
            named = sorted({hit.rule for hit in finder.match(doc)})
        if it["url"] in decoys:
            why = f"{decoys[it['url']]}; no rule matched"
        elif named:
            why = f"names {', '.join(named)}, but no rule's whole query"
        else:
            why = "names none of the rules' terms"
        print(f"  • not alerted: {it['title'][:70]} ({it['source']}): {why}")
    if not held:
        print("  (none)")
