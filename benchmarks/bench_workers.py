"""Scale-out: feeds/s and alerts/s with 1, 2 and 3 ``wirewatch run --role worker`` processes on one PostgreSQL.

Each round gets a fresh PostgreSQL database, the same generated web served by nginx on
loopback, ``first_poll = "alert"`` so every matching item of the cold poll alerts, and a
webhook receiver.  Workers start together; *feeds/s* is the number of feeds over the time
until every source has a successful poll, *alerts/s* the number of alerts over the time
from the first to the last arrival at the receiver.  Every alert must arrive exactly
once (checked).  Run: ``.venv/bin/python -m benchmarks.bench_workers [--feeds 600] [--items 10]``;
results go to ``benchmarks/results/workers.md``.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks import gen_web
from benchmarks.harness import Subscriber, wirewatch_argv, wirewatch_env, write_config
from benchmarks.tools import Nginx, free_port
from tests.servers import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "workers"
RESULTS = ROOT / "benchmarks" / "results" / "workers.md"
PG_ADMIN = os.environ.get("WIREWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _database() -> str:
    name = f"ww_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop(url: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def one_round(workers: int, feeds: int, config: Path, hook: WebhookReceiver, limit: float) -> dict[str, float]:
    url = _database()
    engine = create_engine(url)
    env = wirewatch_env()
    try:
        subprocess.run(wirewatch_argv(config, url, "db", "upgrade"), env=env, check=True, capture_output=True)
        hook.posts.clear()
        arrivals: list[float] = []
        seen = 0
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                wirewatch_argv(config, url, "run", "--role", "worker"),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(WORK / f"worker-{workers}-{i}.log").open("w"),
            )
            for i in range(workers)
        ]
        polled_at = None
        expected = None
        try:
            while time.monotonic() - started < limit:
                now = time.monotonic()
                if len(hook.posts) > seen:
                    arrivals += [now] * (len(hook.posts) - seen)
                    seen = len(hook.posts)
                with engine.connect() as conn:
                    if polled_at is None:
                        done = conn.execute(
                            text("SELECT count(*) FROM sources WHERE last_success IS NOT NULL")
                        ).scalar()
                        if done == feeds:
                            polled_at = now
                            expected = conn.execute(text("SELECT count(*) FROM alerts")).scalar()
                    if expected is not None:
                        sent = conn.execute(text("SELECT count(*) FROM alerts WHERE status = 'sent'")).scalar()
                        if sent == expected and seen >= expected:
                            break
                time.sleep(0.1)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=120)
        if polled_at is None or expected is None:
            raise RuntimeError(f"{workers} worker(s): not done within {limit:.0f} s")
        counts = collections.Counter(str(p.get("message", ""))[:200] for p in hook.posts)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
        return {
            "workers": workers,
            "feeds_per_s": feeds / (polled_at - started),
            "poll_s": polled_at - started,
            "alerts": float(expected),
            "alerts_per_s": (len(arrivals) - 1) / span if span and span > 0 else float("nan"),
            "duplicates": float(duplicates),
        }
    finally:
        engine.dispose()
        _drop(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=600)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=float, default=600)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    nginx = Nginx(WORK / "web", port, WORK / "nginx")
    params = gen_web.WebParams(args.feeds, args.items, 11, f"{nginx.base_url}", gen_web.DEFAULT_EPOCH)
    gen_web.generate(WORK / "web", params, force=True)
    nginx.start()
    hook = WebhookReceiver()
    rows = []
    try:
        feed_urls = [nginx.base_url + gen_web.feed_path(i) for i in range(args.feeds)]
        config = write_config(
            WORK / "config.toml",
            feed_urls,
            interval="1h",
            full_text=False,
            subscribers=[Subscriber("hook", hook.url())],
            fetch_extra={"adaptive": False},
        )
        config.write_text(config.read_text().replace('first_poll = "silent"', 'first_poll = "alert"'))
        for _ in range(args.rounds):
            for workers in (1, 2, 3):
                row = one_round(workers, args.feeds, config, hook, args.limit)
                print(row, flush=True)
                rows.append(row)
    finally:
        hook.close()
        nginx.stop()
    lines = [
        "# Scale-out: workers on one PostgreSQL",
        "",
        (
            f"Run {datetime.now(UTC).isoformat(timespec='seconds')} on {os.cpu_count()} cores; "
            f'{args.feeds} feeds × {args.items} items from nginx on loopback, cold poll, `first_poll = "alert"`, '
            "a json:// webhook subscriber; `bench_workers.py`."
        ),
        "",
        "| workers | feeds/s | poll wall s | alerts | alerts/s | duplicates |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']:.0f} | {r['feeds_per_s']:.1f} | {r['poll_s']:.1f} | {r['alerts']:.0f} | "
            f"{r['alerts_per_s']:.1f} | {r['duplicates']:.0f} |"
            for r in rows
        ),
        "",
        "The machine has 2 cores: a third worker can only share them.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
