"""Responsiveness under load (issue 13): the daemon during a cold ingest of a large web.

Responsible for three figures the issue asks of a daemon that is busy: how fast
``/healthz`` answers while a cold poll of every source is being ingested (p50 / p99 / max
of a request every 50 ms), whether the scheduler skips or misses ticks (APScheduler's own
warnings in the daemon's log), and how long a new matching item that appears in an
already polled feed mid-load takes to be alerted, against the sources' poll interval
(the goal: interval + 2 s).  ``wirewatch run`` is the real daemon on SQLite, nginx serves
the generated web on loopback, the alert arrives at a webhook receiver in this process.

    .venv/bin/python -m benchmarks.bench_responsive [--feeds 1000] [--items 30] [--interval 20s]

Writes ``benchmarks/results/responsive.md`` (and prints the same).  Bounded in time: the
daemon is stopped after ``--limit`` seconds whatever happens.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import gen_web
from benchmarks.bench_latency import Watcher, _story_item, _write_feed, percentile
from benchmarks.harness import Subscriber, wirewatch_argv, wirewatch_env, write_config
from benchmarks.tools import Nginx, free_port
from tests.servers import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "responsive"
RESULTS = ROOT / "benchmarks" / "results" / "responsive.md"


@dataclass
class HealthProbe:
    """GET /healthz every ``every`` seconds from a thread; keeps each answer's latency."""

    url: str
    every: float = 0.05
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as exc:  # 503 is an answer too
                status = exc.code
            except OSError:
                self.failures += 1
                status = 0
            if status:
                self.latencies.append(time.perf_counter() - started)
                self.statuses[status] = self.statuses.get(status, 0) + 1
            self.stop.wait(max(0.0, self.every - (time.perf_counter() - started)))


def _polled(db: Path) -> list[str]:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return [r[0] for r in conn.execute("SELECT name FROM sources WHERE first_success IS NOT NULL")]
    except sqlite3.Error:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--interval", default="20s", help="every source's poll interval")
    parser.add_argument("--inject-after", type=float, default=15.0, help="seconds into the load")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds before the daemon is stopped")
    args = parser.parse_args()
    interval_s = float(args.interval.rstrip("s"))

    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    listen = free_port()
    tag = f"web-{args.feeds}x{args.items}"
    params = gen_web.WebParams(args.feeds, args.items, 3, f"http://127.0.0.1:{port}/{tag}", "2026-01-01T00:00:00+00:00")
    root = WORK / "webs" / tag
    gen_web.generate(root, params, force=True)
    hook = WebhookReceiver()
    watcher = Watcher(hook)
    threading.Thread(target=watcher.run, daemon=True).start()
    db = WORK / "wirewatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = write_config(
        WORK / "config.toml",
        [params.base_url + gen_web.feed_path(f) for f in range(args.feeds)],
        interval=args.interval,
        full_text=False,
        timeout="10s",
        subscribers=[Subscriber("hook", hook.url())],
        fetch_extra={"adaptive": False},
        rules=("nk-russia-troops",),
    )
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[server]\nlisten = "127.0.0.1:{listen}"\n')
    log_path = WORK / "daemon.log"
    report: list[str] = []
    with Nginx(WORK / "webs", port, WORK / "nginx"), log_path.open("w", encoding="utf-8") as log:
        started = time.monotonic()
        daemon = subprocess.Popen(
            wirewatch_argv(config, f"sqlite:///{db}", "-v", "run"),
            stdout=log,
            stderr=log,
            env=wirewatch_env(),
            cwd=ROOT,
        )
        probe = HealthProbe(f"http://127.0.0.1:{listen}/healthz")
        try:
            deadline = started + 60
            while time.monotonic() < deadline:  # the status server is up
                try:
                    urllib.request.urlopen(probe.url, timeout=1).read()
                    break
                except urllib.error.HTTPError:
                    break
                except OSError:
                    time.sleep(0.1)
            probe_thread = threading.Thread(target=probe.run, daemon=True)
            probe_thread.start()
            load_began = time.monotonic()
            # A new matching item in a feed that has been polled once (its first poll is
            # silent), at ``inject_after`` seconds into the load.
            while time.monotonic() < load_began + args.inject_after or not _polled(db):
                time.sleep(0.2)
            feed = int(sorted(_polled(db))[0][1:])
            _write_feed(root, params, feed, [_story_item(params, feed, 7, datetime.now(UTC).replace(microsecond=0))])
            appeared = time.time()
            injected_at = time.monotonic() - load_began
            cold_done = None
            end = started + args.limit
            while time.monotonic() < end:
                if cold_done is None and len(_polled(db)) >= args.feeds:
                    cold_done = time.monotonic() - load_began
                if cold_done is not None and 7 in watcher.arrivals:
                    break
                time.sleep(0.5)
            time.sleep(2)
        finally:
            probe.stop.set()
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            watcher.stop.set()
            hook.close()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    missed = text.count("was missed by")
    skipped = text.count("maximum number of running instances")
    lat = [x * 1000 for x in probe.latencies]
    arrival = watcher.arrivals.get(7)
    alert = f"{arrival - appeared:.1f} s" if arrival is not None else "never arrived"
    cold = f"{cold_done:.1f} s" if cold_done is not None else f"not done within {args.limit:.0f} s"
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(probe.statuses.items()))
    spread = f"{percentile(lat, 50):.1f} / {percentile(lat, 99):.1f} / {max(lat, default=float('nan')):.1f} ms"
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    setup = (
        f"{when}; `wirewatch run` on SQLite, {args.feeds} feeds x {args.items} items (feeds only), every "
        f'source at `interval = "{args.interval}"`, nginx on loopback; `/healthz` asked every 50 ms.'
    )
    report += [
        "# Responsiveness under load (benchmarks/bench_responsive.py)",
        "",
        setup,
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| cold ingest of every source (first success of all) | {cold} |  |",
        f"| /healthz answers (status: count); no answer | {len(lat)} ({statuses}); {probe.failures} |  |",
        f"| /healthz p50 / p99 / max | {spread} | p99 < 100 ms |",
        f"| scheduler: runs missed / skipped (APScheduler warnings) | {missed} / {skipped} | 0 |",
        f"| new matching item at {injected_at:.0f} s into the load → alert | {alert} | ≤ {interval_s + 2:.0f} s |",
        "",
    ]
    out = "\n".join(report)
    RESULTS.write_text(out, encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
