"""Benchmark: the console's pages at 100,000 stored items (SQLite), over real HTTP.

Runnable alone: ``python benchmarks/bench_console.py [--items 100000] [--runs 9]``.

Fills a SQLite store through the ingest path the daemon uses (``Ingestor.ingest_batch``:
normalising, dedupe and stories, matching, alerts), with 40 sources in English, Arabic,
Russian and Korean, a fifth of the items matching a rule and one in ten a copy of an
earlier item from another outlet (so stories have several copies), spread over 14 days
(the charts' window).  Then serves the console the way the daemon does (uvicorn in a
thread, :class:`monitor.console.server.WebServer`) and times each page with a bearer
token from a client on loopback: one warm-up request, then the median and the slowest
of ``--runs``.  The goal is at most 200 ms a page.  Results go to
``benchmarks/results/console.md`` (newest first).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.app import open_store  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.console.app import ConsoleDeps, make_web_app  # noqa: E402
from monitor.console.server import WebServer  # noqa: E402
from monitor.core.models import PollOutcome, RawItem  # noqa: E402
from monitor.runtime import make_runtime  # noqa: E402
from monitor.services.ingest import Ingestor  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "console.md"
TOKEN = "bench-console-token-0123456789"
DAYS = 14
LANGUAGES = ["en"] * 24 + ["ar"] * 6 + ["ru"] * 6 + ["ko"] * 4
HOT = {
    "en": ["Kursk", "Putin", "troops", "Kim Jong Un"],
    "ar": ["كورسك", "بوتين", "قوات", "كيم جونغ أون"],
    "ru": ["Курск", "Путин", "войска", "Ким Чен Ын"],
    "ko": ["쿠르스크", "푸틴", "파병", "김정은"],
}
rng = random.Random(15)
ALPHABET = {
    "en": "abcdefghijklmnopqrstuvwxyz",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "ru": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "ko": "가나다라마바사아자차카타파하고노도로모보소오조초",
}
VOCAB = {
    lang: ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(3000)]
    for lang, letters in ALPHABET.items()
}

CONFIG = """
[console]
token = "{token}"

[alerts]
first_poll = "alert"
max_age = "30d"

{sources}

[terms]
kim_jong_un = ["Kim Jong Un", "كيم جونغ أون", "Ким Чен Ын", "김정은"]
putin = ["Putin", "بوتين", "Путин", "푸틴"]
kursk = ["Kursk", "كورسك", "Курск", "쿠르스크"]
troops = ["troops", "قوات", "войска", "파병"]

[[rules]]
name = "nk-russia-troops"
query = 'kim_jong_un AND putin AND (kursk OR troops)'
notify = ["analysts", "oncall"]

[[rules]]
name = "kursk"
query = 'kursk'
notify = ["analysts"]

[[rules]]
name = "putin-troops"
query = 'putin NEAR/10 troops'
notify = ["analysts"]

[[subscribers]]
name = "analysts"
urls = ["json://127.0.0.1:9/a"]

[[subscribers]]
name = "oncall"
urls = ["json://127.0.0.1:9/b"]
"""

PAGES = [
    "/stories",
    "/stories?page=5",
    "/stories/{story}",
    "/sources",
    "/alerts",
    "/alerts?status=pending",
    "/rules",
    "/rules/test?q=kursk+AND+troops",
    "/config",
]


def words(r: random.Random, lang: str, n: int, hot: bool) -> str:
    out = [r.choice(VOCAB[lang]) for _ in range(n)]
    if hot:
        for w in r.sample(HOT[lang], r.randint(1, 4)):
            out.insert(r.randrange(len(out) + 1), w)
    return " ".join(out)


def fill(url: str, workdir: Path, total: int) -> None:
    srcs = "".join(
        f'[[sources]]\nname = "s{i:02d}-{lang}"\nurl = "https://s{i}.example/feed"\nlanguage = "{lang}"\n'
        for i, lang in enumerate(LANGUAGES)
    )
    path = workdir / "config.toml"
    path.write_text(CONFIG.format(token=TOKEN, sources=srcs), encoding="utf-8")
    rt = make_runtime(load_config(path, env={}))
    store = open_store(url, migrate_first=True)
    start = datetime.now(UTC) - timedelta(days=DAYS - 1)
    store.sync_sources([(s.name, s.type, s.url) for s in rt.config.sources], start)
    ids = {s.name: s.id for s in store.source_states()}
    clock = [start]
    ingestor = Ingestor(store, lambda: rt, lambda: clock[0])
    per_poll, polls = 250, 10
    batches = max(total // (per_poll * polls), 1)
    recent: list[RawItem] = []
    r = random.Random(7)
    n = 0
    t0 = time.perf_counter()
    for b in range(batches):
        clock[0] = start + timedelta(days=DAYS - 1) * b / batches
        outcomes = []
        for p in range(polls):
            source = rt.config.sources[(b * polls + p) % len(rt.config.sources)]
            lang = source.language or "en"
            entries = []
            for _ in range(per_poll):
                n += 1
                if recent and r.random() < 0.1:
                    copy = r.choice(recent)
                    entries.append(RawItem(f"g{n}", f"https://{source.name}.example/{n}", copy.title, copy.summary))
                    continue
                hot = r.random() < 0.2
                item = RawItem(
                    f"g{n}",
                    f"https://{source.name}.example/{n}",
                    words(r, lang, 9, hot).capitalize(),
                    words(r, lang, 60, hot) + ".",
                    language=lang,
                    published=clock[0] - timedelta(minutes=5),
                )
                entries.append(item)
                if len(recent) < 2000:
                    recent.append(item)
                else:
                    recent[r.randrange(2000)] = item
            outcomes.append(PollOutcome(ids[source.name], source.name, "ok", tuple(entries), language=lang))
        ingestor.ingest_batch(outcomes)
        if (b + 1) % 5 == 0:
            print(f"  {n} items stored ({time.perf_counter() - t0:.0f} s)", flush=True)
    store.engine.dispose()


def measure(url: str, workdir: Path, runs: int) -> list[tuple[str, float, float, float, int]]:
    store = open_store(url, migrate_first=True)
    # Compiled before the timed requests, as the daemon does at start.
    rt = make_runtime(load_config(workdir / "config.toml", env={})).compile()
    deps = ConsoleDeps(store=store, runtime=lambda: rt, config_path=str(workdir / "config.toml"), env={})
    server = WebServer("127.0.0.1:0", make_web_app(None, None, deps))
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    biggest = store.console_stories(200)
    story = max(biggest, key=lambda s: s["size"])["id"]
    out = []
    try:
        for page in PAGES:
            path = page.format(story=story)
            times = []
            size = 0
            first = 0.0
            for i in range(runs + 1):
                request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as response:
                    size = len(response.read())
                    assert response.status == 200, (path, response.status)
                if i:  # the first request warms caches and the template
                    times.append(time.perf_counter() - started)
                else:
                    first = time.perf_counter() - started
            out.append((path, first * 1000, statistics.median(times) * 1000, max(times) * 1000, size))
            print(
                f"  {path}: first {first * 1000:.0f} ms, median {out[-1][2]:.0f} ms, slowest {out[-1][3]:.0f} ms, "
                f"{size // 1024} KiB",
                flush=True,
            )
    finally:
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", help="reuse (or create) this database file instead of a temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ww-console-bench-") as tmp:
        work = Path(tmp)
        db = Path(args.keep) if args.keep else work / "console.db"
        url = f"sqlite:///{db}"
        if args.keep and db.exists():
            (work / "config.toml").write_text((db.parent / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
        else:
            print(f"filling {db} with {args.items} items", flush=True)
            started = time.perf_counter()
            fill(url, work, args.items)
            print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
            if args.keep:
                (db.parent / "config.toml").write_text((work / "config.toml").read_text(encoding="utf-8"))
        store = open_store(url, migrate_first=True)
        with store.begin() as conn:
            from sqlalchemy import text

            counts = {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("items", "stories", "matches", "alerts")
            }
        store.engine.dispose()
        print(f"stored: {counts}", flush=True)
        rows = measure(url, work, args.runs)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        (
            f"## {when}: {counts['items']:,} items, {counts['stories']:,} stories, {counts['matches']:,} matches, "
            f"{counts['alerts']:,} alerts (SQLite)"
        ),
        "",
        (
            f"Real HTTP to uvicorn on loopback, bearer token, a fresh server process; the first request, then the "
            f"median and slowest of {args.runs} more. The first chart page of a process (or of a new UTC day) also "
            "reads the 13 days before today for the charts, which are then cached until the next day. "
            "Goal: at most 200 ms a page. "
            f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
        ),
        "",
        "| page | first ms | median ms | slowest ms | size KiB |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| `{path}` | {first:.0f} | {med:.0f} | {worst:.0f} | {size // 1024} |"
            for path, first, med, worst, size in rows
        ],
        "",
    ]
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    header = "# Console page timings (benchmarks/bench_console.py)\n\n"
    RESULTS.write_text(header + "\n".join(lines) + "\n" + old.removeprefix(header), encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
