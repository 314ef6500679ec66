"""Benchmark: items per second through dedupe (exact keys + story assignment) as the store grows.

Runnable alone: ``python benchmarks/dedupe_bench.py --sizes 10000,100000 --db sqlite``.
For each size it grows one database to that many stored items (with their stories, exact
keys and LSH band rows), then pushes a fixed mix of new items through the real path that
ingest takes — ``SqlStore.insert_new_items`` then ``StoryAssigner.assign`` in one
transaction per batch (``--batch`` items: 50 is one poll, 500 is ingest batching ten polls),
which since issue 13 costs a fixed number of statements per batch — and reports items/s
and ms/item.  The mix is one third
exact copies of stored articles from another outlet (text-hash join), one third trimmed
copies with a dateline (LSH candidates + containment verify), one third new stories.

Filling is the slow part, so it is bulk and partly synthetic: a few thousand "seed"
articles are real generated texts with real fingerprints (the measured copies are copies
of these); the rest get random band keys and hashes, which is what distinct articles'
keys look like to the indexes (uniform 64-bit values), at 24 band rows per item — the
average the corpus gives.  A fill that exceeds ``--time-limit`` stops, and the size
actually reached is what gets measured and reported.  Results go to
``benchmarks/results/dedupe.md`` (appended per run, newest first within a run).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from monitor.app import open_store  # noqa: E402
from monitor.core.dedupe import band_keys, make_fingerprint  # noqa: E402
from monitor.core.items import make_item  # noqa: E402
from monitor.core.models import Item, RawItem  # noqa: E402
from monitor.services.stories import StoryAssigner  # noqa: E402
from monitor.store.schema import items, stories  # noqa: E402
from monitor.store.sql import SqlStore  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dedupe.md"
PG_ADMIN = os.environ.get("WIREWATCH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = datetime.now(UTC).replace(microsecond=0)
SEEDS = 3000
BANDS_PER_FILLER = 24
FILL_CHUNK = 20_000
BATCH = 50  # items per poll transaction

rng = random.Random(20241127)
VOCAB = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(6000)]


def article_text(r: random.Random, paragraphs: int = 5) -> list[str]:
    # Zipf-ish word choice: real news reuses common words, which is what makes shingles collide.
    return [
        " ".join(
            VOCAB[min(int(r.paretovariate(0.9)) - 1, len(VOCAB) - 1) if r.random() < 0.5 else r.randrange(len(VOCAB))]
            for _ in range(r.randint(25, 45))
        ).capitalize()
        + "."
        for _ in range(paragraphs)
    ]


@dataclass
class Seed:
    title: str
    paragraphs: list[str]


def make_seeds() -> list[Seed]:
    r = random.Random(7)
    return [Seed(" ".join(r.choice(VOCAB) for _ in range(8)), article_text(r)) for _ in range(SEEDS)]


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ww-dedupe-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"ww_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _hex(r: random.Random) -> str:
    return f"1:{r.getrandbits(128):032x}"


def fill(store: SqlStore, end: int, seeds: list[Seed], source_ids: list[int], deadline: float) -> int:
    """Bulk-insert items (one story each, with keys and bands) until ``end`` are stored; returns the count reached.

    Ids continue after the highest item or story id, which measured batches also use.
    """
    with store.begin() as conn:
        start = conn.execute(select(func.count()).select_from(items)).scalar_one()
        first_id = 1 + max(
            conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one(),
            conn.execute(select(func.coalesce(func.max(stories.c.id), 0))).scalar_one(),
        )
    offset = first_id - start - 1  # item number n gets id n + offset
    r = random.Random(start)
    n = start
    while n < end and time.monotonic() < deadline:
        upto = min(end, n + FILL_CHUNK)
        item_rows: list[dict[str, Any]] = []
        story_rows: list[dict[str, Any]] = []
        band_rows: list[tuple[int, int]] = []
        for number in range(n + 1, upto + 1):
            i = number + offset
            seen = NOW - timedelta(seconds=r.randrange(6 * 86400))  # all inside the story window: worst case
            if number <= SEEDS and offset == 0:
                seed = seeds[number - 1]
                body = "\n\n".join(seed.paragraphs)
                url = f"https://seed.example/a/{i}"
                fp = make_fingerprint(url, seed.title, body, "")
                keys: tuple[int, ...] = band_keys(fp.words)
                url_key, title_hash, text_hash, title = fp.url_key, fp.title_hash, fp.text_hash, seed.title
            else:
                body = f"Filler item {i}: " + " ".join(r.choice(VOCAB) for _ in range(40))
                url = f"https://filler.example/a/{i}"
                keys = tuple(r.getrandbits(64) - (1 << 63) for _ in range(BANDS_PER_FILLER))
                url_key, title_hash, text_hash, title = _hex(r), _hex(r), _hex(r), f"Filler {i}"
            item_rows.append(
                {
                    "id": i,
                    "source_id": source_ids[i % len(source_ids)],
                    "key": f"1:g:{i:032x}",
                    "guid": f"g{i}",
                    "url": url,
                    "canonical_url": url,
                    "title": title,
                    "summary": body,
                    "text": "",
                    "language": "en",
                    "published": seen,
                    "first_seen": seen,
                    "story_id": i,
                    "url_key": url_key,
                    "title_hash": title_hash,
                    "text_hash": text_hash,
                }
            )
            story_rows.append(
                {"id": i, "first_item_id": i, "title": title, "size": 1, "first_seen": seen, "last_seen": seen}
            )
            band_rows.extend((k, i) for k in keys)
        _bulk(store, story_rows, item_rows, band_rows)
        n = upto
    if store.dialect == "postgresql":
        with store.begin() as conn:
            for table in ("items", "stories"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
            conn.execute(text("ANALYZE"))
    else:
        with store.begin() as conn:
            conn.execute(text("ANALYZE"))
    return n


def _bulk(
    store: SqlStore, story_rows: list[dict[str, Any]], item_rows: list[dict[str, Any]], band_rows: list[tuple[int, int]]
) -> None:
    with store.begin() as conn:
        if store.dialect == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                cols = list(story_rows[0])
                with cur.copy(f"COPY stories ({', '.join(cols)}) FROM STDIN") as cp:
                    for row in story_rows:
                        cp.write_row([row[c] for c in cols])
                cols = list(item_rows[0])
                with cur.copy(f"COPY items ({', '.join(cols)}) FROM STDIN") as cp:
                    for row in item_rows:
                        cp.write_row([row[c] for c in cols])
                with cur.copy("COPY story_bands (key, item_id) FROM STDIN") as cp:
                    for band in band_rows:
                        cp.write_row(band)
        else:
            conn.execute(stories.insert(), story_rows)
            conn.execute(items.insert(), item_rows)
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            raw.executemany("INSERT INTO story_bands (key, item_id) VALUES (?, ?)", band_rows)


def workload(seeds: list[Seed], count: int, tag: str) -> list[Item]:
    """``count`` new items: exact copies, trimmed+dateline copies, and new stories, interleaved."""
    r = random.Random(tag)
    out: list[Item] = []
    for n in range(count):
        seed = seeds[r.randrange(len(seeds))]
        kind = n % 3
        if kind == 0:
            title, body = seed.title, "\n\n".join(seed.paragraphs)
        elif kind == 1:
            title, body = "Report: " + seed.title, "SEOUL (Wire) — " + "\n\n".join(seed.paragraphs[:2])
        else:
            title, body = " ".join(r.choice(VOCAB) for _ in range(8)), "\n\n".join(article_text(r))
        raw = RawItem(guid=f"{tag}-{n}", url=f"https://outlet-{tag}.example/n/{n}", title=title, summary=body)
        it = make_item(raw, NOW)
        assert it is not None
        out.append(it)
    return out


@dataclass
class Measure:
    db: str
    size: int
    items: int
    seconds: float
    joined: int
    created: int
    batch: int = BATCH

    @property
    def per_second(self) -> float:
        return self.items / self.seconds

    @property
    def ms_per_item(self) -> float:
        return 1000 * self.seconds / self.items


def measure(store: SqlStore, kind: str, size: int, seeds: list[Seed], count: int, batch_size: int) -> Measure:
    source_id = next(s.id for s in store.source_states(["bench"]))
    assigner = StoryAssigner(store)
    batch = workload(seeds, count, f"{kind}-{size}-{batch_size}")
    make_fingerprint(None, "warm up", "the normaliser builds its tables on first use", "")
    joined = created = 0
    start = time.perf_counter()
    for i in range(0, len(batch), batch_size):
        with store.begin() as conn:
            new = store.insert_new_items(conn, source_id, "bench", batch[i : i + batch_size], NOW)
            for a in assigner.assign(conn, new, NOW).values():
                created += a.created
                joined += not a.created
    seconds = time.perf_counter() - start
    return Measure(kind, size, len(batch), seconds, joined, created, batch_size)


def run(kind: str, sizes: list[int], count: int, time_limit: float, batches: list[int]) -> list[Measure]:
    seeds = make_seeds()
    results = []
    with database(kind) as url:
        store = open_store(url, migrate_first=True)
        store.sync_sources(
            [(f"filler{i}", "feed", f"https://f{i}.example/") for i in range(10)]
            + [("bench", "feed", "https://b.example/")],
            NOW,
        )
        source_ids = [s.id for s in store.source_states() if s.name.startswith("filler")]
        reached = 0
        for size in sizes:
            t0 = time.monotonic()
            reached = fill(store, size, seeds, source_ids, t0 + time_limit)
            with store.begin() as conn:
                stored = conn.execute(select(func.count()).select_from(items)).scalar_one()
            print(f"[{kind}] filled to {stored} stored items in {time.monotonic() - t0:.0f}s", flush=True)
            for batch_size in batches:
                m = measure(store, kind, stored, seeds, count, batch_size)
                print(
                    f"[{kind}] {stored:>9} stored, {batch_size} per transaction: {m.per_second:7.1f} items/s "
                    f"({m.ms_per_item:.2f} ms/item; {m.joined} joined, {m.created} new stories)",
                    flush=True,
                )
                results.append(m)
            if reached < size:
                print(f"[{kind}] fill hit the {time_limit:.0f}s limit at {reached} items; stopping", flush=True)
                break
        store.engine.dispose()
    return results


def write_results(results: list[Measure], args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"## Dedupe throughput — {datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
        (
            f"`python benchmarks/dedupe_bench.py --sizes {args.sizes} --db {args.db} --measure {args.measure}` "
            f"on {os.cpu_count()} CPUs (shared).  Each row: {args.measure} new items "
            "(1/3 exact copies, 1/3 trimmed + dateline copies, 1/3 new stories) through "
            "`insert_new_items` + `StoryAssigner.assign`, one transaction per batch of the size shown."
        ),
        "",
        "| database | stored items | items per transaction | items/s | ms/item | joined | new stories |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        lines.append(
            f"| {m.db} | {m.size:,} | {m.batch} | {m.per_second:.0f} | {m.ms_per_item:.2f} | {m.joined} | {m.created} |"
        )
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# wirewatch dedupe benchmark\n"
    head, _, rest = existing.partition("\n")
    RESULTS.write_text(head + "\n\n" + "\n".join(lines) + "\n" + rest, encoding="utf-8")
    print(f"results written to {RESULTS}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated stored-item counts")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--measure", type=int, default=600, help="new items pushed through dedupe per size")
    parser.add_argument("--time-limit", type=float, default=1200, help="seconds allowed to fill up to each size")
    parser.add_argument("--batch", default=str(BATCH), help="comma-separated items per transaction")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    batches = [int(b) for b in args.batch.split(",")]
    results = [m for kind in kinds for m in run(kind, sizes, args.measure, args.time_limit, batches)]
    write_results(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
