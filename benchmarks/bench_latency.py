"""Latency benchmark: from an item appearing in a feed to its alert arriving by email and webhook.

Responsible for the end-to-end latency figures.  The daemon (``wirewatch run``) polls a
small generated web on the loopback nginx at a fixed interval; this module rewrites one feed
at a time with a new matching item at a random moment and records when the file was in
place, when the daemon fetched it (nginx's access log, ms), and when the alert arrived at a
local aiosmtpd server and at a webhook receiver (both in this process).  Latency splits
into *wait for the poll* (appear → fetch: set by the interval and the scheduler's tick) and
*pipeline* (fetch → arrival: download, parse, store, match, enqueue, the dispatcher's tick,
render, send).  Each new item is a different story (different text) and lands in a
different feed, so near-duplicate clustering never folds two of them into one alert.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import gen_web
from benchmarks.harness import Subscriber, wirewatch_argv, wirewatch_env, write_config
from benchmarks.tools import Nginx, read_access_log
from tests.servers import SmtpServer, WebhookReceiver

TOKEN = re.compile(r"LATENCY(\d{4})")


class TimedCollector:
    """aiosmtpd handler that records when each message carrying a token arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.count += 1
        m = TOKEN.search(str(msg.get("Subject", "")))
        if m:
            self.arrivals.setdefault(int(m.group(1)), now)
        return "250 OK"


@dataclass
class Watcher:
    """Polls the webhook receiver's list every 2 ms and timestamps new posts by token."""

    hook: WebhookReceiver
    arrivals: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        seen = 0
        deadline = time.monotonic() + 3600
        while not self.stop.is_set() and time.monotonic() < deadline:
            posts = self.hook.posts
            while seen < len(posts):
                now = time.time()
                m = TOKEN.search(str(posts[seen]))
                if m:
                    self.arrivals.setdefault(int(m.group(1)), now)
                seen += 1
            time.sleep(0.002)


@dataclass(frozen=True, slots=True)
class Sample:
    token: int
    feed: int
    appeared: float
    fetched: float | None
    email: float | None
    webhook: float | None


def _story_item(params: gen_web.WebParams, feed: int, token: int, when: datetime) -> gen_web.FeedItem:
    """A new item of ``feed`` that fires the nk-russia-troops rule, with a unique token."""
    lang = gen_web.feed_language(feed)
    topic = gen_web.TOPIC[lang]
    rng = random.Random(f"latency/{token}")
    words = gen_web.WORDS[lang]
    title = f"{topic['kim'][0]} {topic['putin'][0]} {topic['troops'][0]} LATENCY{token:04d}"
    paragraphs = tuple(
        " ".join(rng.choice(words) for _ in range(40)) + f" {topic['kim'][0]} {topic['putin'][0]} {topic['kursk'][0]}."
        for _ in range(3)
    )
    return gen_web.FeedItem(
        feed=feed,
        number=10_000 + token,
        guid=f"wirewatch-latency:{token}",
        url=f"{params.base_url}/a/latency-{token}.html",
        title=title,
        summary=paragraphs[0][:200],
        paragraphs=paragraphs,
        published=when,
        kind="story",
        syndicated_from=None,
    )


def _write_feed(root: Path, params: gen_web.WebParams, feed: int, extra: list[gen_web.FeedItem]) -> None:
    items = extra[::-1] + gen_web.feed_items(params, feed, params.items)
    for it in extra:
        page = root / it.url.rsplit("/", 1)[1]
        (root / "a").mkdir(exist_ok=True)
        (root / "a" / page.name).write_bytes(gen_web.render_article(params, it))
    path = root / gen_web.feed_path(feed).lstrip("/")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gen_web.render_feed(params, feed, items))
    tmp.replace(path)


def _polled_once(db: Path, sources: int) -> bool:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            n = conn.execute("SELECT count(*) FROM sources WHERE first_success IS NOT NULL").fetchone()[0]
    except sqlite3.Error:
        return False
    return int(n) >= sources


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run(
    nginx: Nginx,
    web_root: Path,
    work: Path,
    tree: Path,
    *,
    interval: str,
    items: int,
    window: float,
    fetch_extra: dict[str, object],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One latency experiment: ``items`` new items (one per feed) spread over ``window`` seconds."""
    feeds = items
    tag = f"latency-{interval}"
    now = datetime.now(UTC).replace(microsecond=0)
    params = gen_web.WebParams(feeds, 5, 3, f"{nginx.base_url}/{tag}", now.isoformat())
    root = web_root / tag
    gen_web.generate(root, params, force=True)
    smtp = SmtpServer()
    collector = TimedCollector()
    smtp.collector = collector  # type: ignore[assignment]
    smtp.start()
    hook = WebhookReceiver()
    watcher = Watcher(hook)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    run_dir = work / "runs" / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "wirewatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    urls = [params.base_url + gen_web.feed_path(f) for f in range(feeds)]
    config = write_config(
        run_dir / "config.toml",
        urls,
        interval=interval,
        timeout="10s",
        subscribers=[Subscriber("mail", smtp.url()), Subscriber("hook", hook.url())],
        fetch_extra=fetch_extra,
        rules=("nk-russia-troops",),  # one alert per item and subscriber
    )
    stderr = (run_dir / "daemon.stderr").open("w", encoding="utf-8")
    daemon = subprocess.Popen(
        wirewatch_argv(config, f"sqlite:///{db}", "run"),
        stdout=stderr,
        stderr=stderr,
        env=wirewatch_env(tree),
        cwd=tree,
    )
    samples: list[Sample] = []
    try:
        deadline = time.monotonic() + 120
        while not _polled_once(db, feeds):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not poll every source once (see {run_dir / 'daemon.stderr'})")
            time.sleep(0.2)
        log(f"latency ({interval}): all {feeds} sources polled once; adding {items} items over {window:.0f}s")
        nginx.rotate_log()
        rng = random.Random(11)
        offsets = sorted(rng.uniform(0, window) for _ in range(items))
        start = time.time()
        appeared: dict[int, tuple[int, float]] = {}
        for token, offset in enumerate(offsets):
            delay = start + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            feed = token % feeds
            when = datetime.now(UTC).replace(microsecond=0)
            _write_feed(root, params, feed, [_story_item(params, feed, token, when)])
            appeared[token] = (feed, time.time())
        wait_until = time.monotonic() + 90
        while time.monotonic() < wait_until:
            if len(collector.arrivals) >= items and len(watcher.arrivals) >= items:
                break
            time.sleep(0.1)
        nginx.flush_log()
        log_lines = read_access_log(nginx.access_log)
        for token, (feed, t_appear) in appeared.items():
            path = f"/{tag}{gen_web.feed_path(feed)}"
            fetched = next(
                (ln.time for ln in log_lines if ln.path == path and ln.status == 200 and ln.time >= t_appear), None
            )
            samples.append(
                Sample(token, feed, t_appear, fetched, collector.arrivals.get(token), watcher.arrivals.get(token))
            )
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        stderr.close()
        watcher.stop.set()
        smtp.stop()
        hook.close()
    return summarise(interval, samples, daemon.returncode)


def summarise(interval: str, samples: list[Sample], returncode: int | None) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values, default=float("nan"))}

    mail = [s.email - s.appeared for s in samples if s.email is not None]
    hook = [s.webhook - s.appeared for s in samples if s.webhook is not None]
    wait = [s.fetched - s.appeared for s in samples if s.fetched is not None]
    pipe_mail = [s.email - s.fetched for s in samples if s.email is not None and s.fetched is not None]
    pipe_hook = [s.webhook - s.fetched for s in samples if s.webhook is not None and s.fetched is not None]
    return {
        "interval": interval,
        "items": len(samples),
        "email_arrived": len(mail),
        "webhook_arrived": len(hook),
        "email": stats(mail),
        "webhook": stats(hook),
        "wait_for_poll": stats(wait),
        "pipeline_email": stats(pipe_mail),
        "pipeline_webhook": stats(pipe_hook),
        "daemon_exit": returncode,
        "samples": [_sample_dict(s) for s in samples],
    }


def _sample_dict(s: Sample) -> dict[str, Any]:
    return {
        "token": s.token,
        "feed": s.feed,
        "appeared": s.appeared,
        "fetched": s.fetched,
        "email": s.email,
        "webhook": s.webhook,
    }
