"""Benchmark: batched ingest — statements per batch, and story locks under 1, 2 and 4 ingesters.

Runnable alone: ``python benchmarks/bench_ingest.py [--part statements|workers|both]``.

*statements*: SQL statements (SQLAlchemy ``before_cursor_execute``) and transactions for
one poll of 30 new items matching one rule with two subscribers (the figure issue 13
started from: about 190), and for batches of 10 polls x 30 and 10 x 300 new items (half
of them matching), each batch with ten 304s and two failures beside, on SQLite and
PostgreSQL.  Runs against any tree: without ``Ingestor.ingest_batch`` it calls
``ingest`` per poll (so the same script measures the code before the change).

*workers*: N processes (1, 2, 4), each its own engine and ``Ingestor`` as a worker
would have, ingest into one PostgreSQL database at the same time.  By default
(``--shape split``) they share out the same ``--polls`` polls round-robin, so 1, 2 and 4
workers ingest the same items and do the same clustering: a third of every poll's items
are copies of a story :data:`OUTLETS` outlets carry in the same round, and with four
workers those copies arrive in four processes at once, so story locks are really
contended.  ``--shape each`` is the earlier shape: ``--polls`` per worker, the shared
story carried by every worker, so the per-item work grows with N (one worker alone never
joins a story).  Each worker first ingests a warm-up batch off the clock (lazy imports,
SQLAlchemy's statement cache) and builds its polls before the clock starts.
Per worker: time inside ``ingest_batch``, time in the story-lock statements
(``SqlStore.lock_wait``: the advisory locks and the story row locks, round trip
included, so an upper bound on waiting), and the process's CPU seconds; per round, the
CPU seconds of every ``postgres`` process (``/proc``).  Reported: lock wait share of
ingest time, and new items per CPU-second of the ingesting processes, without and with
PostgreSQL's.  ``--profile DIR`` writes each worker's CPU profile (cProfile).
Results go to ``benchmarks/results/ingest.md`` (newest first).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402

from monitor.app import open_store  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.core.models import PollOutcome, RawItem  # noqa: E402
from monitor.runtime import Runtime, make_runtime  # noqa: E402
from monitor.services.ingest import Ingestor  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ingest.md"
PG_ADMIN = os.environ.get("WIREWATCH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = datetime.now(UTC).replace(microsecond=0)
SOURCES = 64
OUTLETS = 4  # --shape split: outlets carrying each round's shared story
rng = random.Random(13)
VOCAB = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]

CONFIG = """
[alerts]
first_poll = "alert"
max_age = "3d"
{sources}
[terms]
kursk = ["Kursk"]
[[rules]]
name = "kursk"
query = "kursk"
notify = ["analysts", "oncall"]
[[subscribers]]
name = "analysts"
urls = ["json://127.0.0.1:9/a"]
[[subscribers]]
name = "oncall"
urls = ["json://127.0.0.1:9/b"]
"""


def runtime(workdir: Path) -> Runtime:
    srcs = "".join(f'[[sources]]\nname = "s{i}"\nurl = "https://s{i}.example/feed"\n' for i in range(SOURCES))
    path = workdir / "config.toml"
    path.write_text(CONFIG.format(sources=srcs), encoding="utf-8")
    # Compiled here, before any timed ingest (make_runtime compiles on first use).
    return make_runtime(load_config(path, env={})).compile()


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ww-ingest-bench-") as tmp:
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


def body(r: random.Random, words: int) -> str:
    return " ".join(r.choice(VOCAB) for _ in range(words)).capitalize() + "."


def entry(tag: str, n: int, words: int = 60, matching: bool | None = None) -> RawItem:
    r = random.Random(f"{tag}-{n}")
    hot = n % 2 == 0 if matching is None else matching
    title = ("Kursk front: " if hot else "Markets: ") + body(r, 7)
    return RawItem(
        guid=f"{tag}-{n}",
        url=f"https://{tag}.example/n/{n}",
        title=title,
        summary=body(r, words),
        published=NOW - timedelta(minutes=5),
    )


def ingest(ingestor: Ingestor, outcomes: list[PollOutcome]) -> None:
    if hasattr(ingestor, "ingest_batch"):
        ingestor.ingest_batch(outcomes)
    else:  # the code before issue 13
        for o in outcomes:
            ingestor.ingest(o)


# ------------------------------------------------------------------ statements


def statements(kind: str, workdir: Path) -> list[dict[str, Any]]:
    rt = runtime(workdir)
    rows = []
    with database(kind) as url:
        store = open_store(url, migrate_first=True)
        store.sync_sources([(s.name, s.type, s.url) for s in rt.config.sources], NOW)
        sid = {s.name: s.id for s in store.source_states()}
        ingestor = Ingestor(store, lambda: rt, lambda: NOW)
        counted: list[str] = []
        commits = [0]

        def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            counted.append(statement)

        began = [0.0]
        longest = [0.0]

        def begin(_c: Any) -> None:
            began[0] = time.perf_counter()

        def commit(_c: Any) -> None:
            commits[0] += 1
            longest[0] = max(longest[0], time.perf_counter() - began[0])

        event.listen(store.engine, "before_cursor_execute", count)
        event.listen(store.engine, "begin", begin)
        event.listen(store.engine, "commit", commit)
        shapes = [
            ("1 poll x 30 new, all matching, 2 subscribers", 1, 30, True, False),
            ("10 polls x 30 new (+10 x 304, 2 failures)", 10, 30, None, True),
            ("10 polls x 300 new (+10 x 304, 2 failures)", 10, 300, None, True),
        ]
        for offset, (label, polls, per_poll, matching, extras) in enumerate(shapes):
            batch = [
                PollOutcome(
                    sid[f"s{p}"],
                    f"s{p}",
                    "ok",
                    tuple(entry(f"s{p}", 10_000 * offset + n, matching=matching) for n in range(per_poll)),
                )
                for p in range(polls)
            ]
            if extras:
                batch += [PollOutcome(sid[f"s{p}"], f"s{p}", "not_modified") for p in range(20, 30)]
                batch += [
                    PollOutcome(sid[f"s{p}"], f"s{p}", "error", error="HTTP 503", error_class="temporary")
                    for p in range(40, 42)
                ]
            counted.clear()
            commits[0] = 0
            longest[0] = 0.0
            started = time.perf_counter()
            ingest(ingestor, batch)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "db": kind,
                    "shape": label,
                    "items": polls * per_poll,
                    "statements": len(counted),
                    "transactions": commits[0],
                    "seconds": seconds,
                    "longest": longest[0],
                }
            )
            print(
                f"[{kind}] {label}: {len(counted)} statements, {commits[0]} commits, {seconds:.2f}s "
                f"(longest transaction {longest[0]:.2f}s)",
                flush=True,
            )
        store.engine.dispose()
    return rows


# ------------------------------------------------------------------ workers


def plan_polls(index: int, workers: int, polls: int, shape: str) -> range:
    """The polls worker ``index`` of ``workers`` ingests.

    *split*: ``polls`` in all, dealt round-robin, so 1, 2 and 4 workers ingest the same
    items (each round's :data:`OUTLETS` copies of a story go to different workers when
    there are four, to one worker in turn when there is one).  *each*: ``polls`` per
    worker, the shared story of poll ``p`` carried by every worker, so one worker alone
    never meets a copy while four meet three for each: the per-item work grows with the
    number of workers.
    """
    if shape == "split":
        return range(index, polls, workers)
    return range(polls)


def poll_outcome(
    sid: dict[str, int], index: int, workers: int, p: int, per_poll: int, shape: str, warm: bool = False
) -> PollOutcome:
    """Poll ``p``'s outcome: a third of its items copies of the story its round shares."""
    source = f"s{p % SOURCES}" if shape == "split" else f"s{index + workers * (p % (SOURCES // workers))}"
    story_round = p // OUTLETS if shape == "split" else p
    own = f"w{index}-{p}" if shape == "each" else f"p{p}"
    shared_tag, path = f"shared-{story_round}", "c"
    if warm:
        own, shared_tag, path = f"warm{index}", "warm-shared", "warm"
    raws = []
    for n in range(per_poll):
        if n % 3 == 0:
            # A copy of a story other outlets carry in the same round, under this outlet.
            shared = entry(shared_tag, n, matching=False)
            raws.append(
                RawItem(
                    guid=f"{source}-{path}-{p}-{n}",
                    url=f"https://{source}.example/{path}/{p}/{n}",
                    title=shared.title,
                    summary=shared.summary,
                    published=shared.published,
                )
            )
        else:
            raws.append(entry(own, n))
    return PollOutcome(sid[source], source, "ok", tuple(raws))


def worker(
    url: str,
    workdir: str,
    index: int,
    workers: int,
    polls: int,
    per_poll: int,
    queue: Any,
    profile: str,
    shape: str,
    go: Any,
    done: Any,
) -> None:
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the workers share two cores
        profiler.enable()
    rt = runtime(Path(workdir))
    store = open_store(url, migrate_first=False)
    sid = {s.name: s.id for s in store.source_states()}
    ingestor = Ingestor(store, lambda: rt, lambda: NOW)
    plan = plan_polls(index, workers, polls, shape)
    batches = [poll_outcome(sid, index, workers, p, per_poll, shape) for p in plan]
    # Warm-up, off the clock: a first batch pays for lazy imports and SQLAlchemy's statement
    # cache once per process, a cost a long-lived worker amortises to nothing.  Its items
    # (a third of them copies every worker carries) are not counted.
    ingestor.ingest_batch([poll_outcome(sid, index, workers, plan[0], per_poll, shape, warm=True)])
    queue.put("ready")
    go.wait(600)
    ingest_s = 0.0
    new = 0
    cpu0 = time.process_time()
    for outcome in batches:
        started = time.perf_counter()
        summaries = ingestor.ingest_batch([outcome])
        ingest_s += time.perf_counter() - started
        new += sum(s.new for s in summaries)
    cpu = time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(Path(profile) / f"workers{workers}-{index}.prof")
    queue.put({"ingest": ingest_s, "lock": store.lock_wait, "cpu": cpu, "new": new})
    done.wait(600)  # keep the backends alive until PostgreSQL's CPU has been read
    store.engine.dispose()


def postgres_cpu(exclude: int) -> float:
    """CPU seconds of every running ``postgres`` process but ``exclude`` (from ``/proc``, so a local server only)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == exclude:
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if comm.startswith("postgres"):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class LockSampler:
    """Backend-seconds spent waiting on heavyweight locks in one database, sampled by PostgreSQL itself."""

    INTERVAL = 0.005

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        with self.engine.connect() as conn:
            self.pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())  # pooled: the one it samples on
        self.waited = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with self.engine.connect() as conn:
            last = time.perf_counter()
            while not self._stop.is_set():
                waiting = conn.execute(query).scalar_one()
                conn.rollback()  # a fresh snapshot of pg_stat_activity each time
                now = time.perf_counter()
                self.waited += waiting * (now - last)
                last = now
                time.sleep(self.INTERVAL)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()
        return self.waited


def workers_round(
    n: int, polls: int, per_poll: int, workdir: Path, profile: str = "", shape: str = "split"
) -> dict[str, Any]:
    rt = runtime(workdir)
    with database("postgresql") as url:
        store = open_store(url, migrate_first=True)
        store.sync_sources([(s.name, s.type, s.url) for s in rt.config.sources], NOW)
        store.engine.dispose()
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        go, done = ctx.Event(), ctx.Event()
        procs = [
            ctx.Process(target=worker, args=(url, str(workdir), i, n, polls, per_poll, queue, profile, shape, go, done))
            for i in range(n)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            assert queue.get(timeout=600) == "ready"
        sampler = LockSampler(url)
        pg0 = postgres_cpu(exclude=sampler.pid)
        started = time.perf_counter()
        go.set()
        results = [queue.get(timeout=1800) for _ in procs]
        wall = time.perf_counter() - started
        pg_cpu = postgres_cpu(exclude=sampler.pid) - pg0
        done.set()
        waited = sampler.stop()
        for p in procs:
            p.join(60)
        engine = create_engine(url)
        with engine.connect() as conn:
            stories = conn.execute(text("SELECT count(*) FROM stories")).scalar_one()
            shared_stories = conn.execute(
                text("SELECT count(DISTINCT story_id) FROM items WHERE url LIKE '%/c/%'")
            ).scalar_one()
        engine.dispose()
    ingest_s = sum(r["ingest"] for r in results)
    lock_s = sum(r["lock"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    new = sum(r["new"] for r in results)
    row = {
        "workers": n,
        "new": new,
        "wall": wall,
        "ingest": ingest_s,
        "lock": lock_s,
        "lock_share": lock_s / ingest_s,
        "waited": waited,
        "wait_share": waited / ingest_s,
        "cpu": cpu,
        "per_cpu": new / cpu,
        "pg_cpu": pg_cpu,
        "per_all_cpu": new / (cpu + pg_cpu),
        "stories": stories,
        "shared_stories": shared_stories,
        "shared_expected": (-(-polls // OUTLETS) if shape == "split" else polls) * ((per_poll + 2) // 3),
    }
    print(
        f"[workers={n}] {new} new items, wall {wall:.1f}s, lock statements {100 * row['lock_share']:.2f} %, "
        f"lock wait {100 * row['wait_share']:.2f} % of "
        f"{ingest_s:.1f}s ingest, {row['per_cpu']:.0f} items/CPU-s, with PostgreSQL's {pg_cpu:.1f} CPU s "
        f"{row['per_all_cpu']:.0f} items/CPU-s, shared stories {shared_stories} "
        f"(expected {row['shared_expected']})",
        flush=True,
    )
    return row


def write(stmt_rows: list[dict[str, Any]], worker_rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    lines = [
        f"## Batched ingest — {datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
        (
            f"`python benchmarks/bench_ingest.py --part {args.part}"
            + (f" --shape {args.shape} --polls {args.polls}" if worker_rows else "")
            + f"` on {os.cpu_count()} CPUs (shared; load average "
            f"at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}).  Items have a 7-word title and a 60-word body."
        ),
        "",
    ]
    if stmt_rows:
        lines += [
            "| database | batch | new items | statements | transactions | s | longest transaction s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['db']} | {r['shape']} | {r['items']} | {r['statements']} | {r['transactions']} "
            f"| {r['seconds']:.2f} | {r['longest']:.2f} |"
            for r in stmt_rows
        ]
        lines.append("")
    if worker_rows:
        lines += [
            (
                (
                    f"Workers on one PostgreSQL, {args.polls} polls x {args.per_poll} items in all, dealt round-robin "
                    f"(`--shape split`: 1, 2 and 4 workers ingest the same items); a third of every poll's items "
                    f"are copies of a story {OUTLETS} outlets carry in the same round."
                    if args.shape == "split"
                    else f"Workers on one PostgreSQL, {args.polls} polls x {args.per_poll} items each "
                    "(`--shape each`), "
                    "a third of them copies of a story every worker carries at once, so the per-item work grows "
                    "with the number of workers."
                )
                + "  Clocks start after each worker's warm-up batch (not counted), once every worker is ready.  "
                "*PostgreSQL CPU s*: every `postgres` process's CPU time over the round (`/proc`), the lock sampler's "
                "backend left out.  *Lock statements*: time in the story-lock statements "
                "(cost and waiting); *lock wait*: backend-seconds PostgreSQL reported waiting on a lock "
                "(`pg_stat_activity.wait_event_type = 'Lock'`, sampled every 5 ms)."
            ),
            "",
            (
                "| workers | new items | wall s | ingest s (sum) | lock statements s (share) | lock wait s (share) "
                "| CPU s | items / CPU-s | PostgreSQL CPU s | items / CPU-s with PostgreSQL's "
                "| shared stories (expected) |"
            ),
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['workers']} | {r['new']} | {r['wall']:.1f} | {r['ingest']:.1f} | {r['lock']:.2f} "
            f"({100 * r['lock_share']:.1f} %) | {r['waited']:.2f} ({100 * r['wait_share']:.1f} %) | {r['cpu']:.1f} "
            f"| {r['per_cpu']:.0f} | {r['pg_cpu']:.1f} | {r['per_all_cpu']:.0f} "
            f"| {r['shared_stories']} ({r['shared_expected']}) |"
            for r in worker_rows
        ]
        lines.append("")
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# wirewatch ingest benchmark\n"
    head, _, rest = existing.partition("\n")
    RESULTS.write_text(head + "\n\n" + "\n".join(lines) + rest, encoding="utf-8")
    print(f"results written to {RESULTS}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("statements", "workers", "both"), default="both")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--shape",
        choices=("split", "each"),
        default="split",
        help="split: --polls in all, dealt among the workers (the same items for 1, 2, 4); each: --polls per worker",
    )
    parser.add_argument(
        "--polls", type=int, default=0, help="polls in all (split; default 160) or per worker (each; 40)"
    )
    parser.add_argument("--per-poll", type=int, default=30)
    parser.add_argument("--profile", default="", help="write each worker's cProfile to DIR/workersN-I.prof")
    args = parser.parse_args()
    args.polls = args.polls or (160 if args.shape == "split" else 40)
    stmt_rows: list[dict[str, Any]] = []
    worker_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ww-ingest-bench-cfg-") as tmp:
        if args.part in ("statements", "both"):
            kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
            for kind in kinds:
                stmt_rows += statements(kind, Path(tmp))
        if args.part in ("workers", "both"):
            for n in (int(w) for w in args.workers.split(",")):
                worker_rows.append(workers_round(n, args.polls, args.per_poll, Path(tmp), args.profile, args.shape))
    write(stmt_rows, worker_rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
