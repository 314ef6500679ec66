"""The CPU pool: ingest's CPU work in real worker processes computes exactly what it computes inline.

Everything is real: worker processes (forkserver), the corpus feeds parsed by the
project's parser, the bundled config.toml compiled in each worker, and real SQLite and
PostgreSQL for the end-to-end ingest.  The only fake is the clock.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.app import open_store
from monitor.config import load_config
from monitor.core.feeds import parse_feed
from monitor.core.models import PollOutcome, RawItem
from monitor.core.policy import PollContext
from monitor.runtime import Runtime, make_runtime
from monitor.services.analysis import Inline, Job, MatchJob, normalise
from monitor.services.ingest import Ingestor
from monitor.stages.cpu import CpuPool, _chunks
from monitor.store.schema import alerts, items, matches
from tests.conftest import _pg_database

ROOT = Path(__file__).resolve().parents[2]
FEEDS = ROOT / "tests" / "data" / "corpus" / "feeds"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def corpus_polls() -> list[tuple[str, tuple[RawItem, ...]]]:
    """Every corpus feed the parser reads, as (name, entries): many languages and encodings."""
    out = []
    for path in sorted(FEEDS.iterdir()):
        if not path.is_file():
            continue
        try:
            parsed = parse_feed(path.read_bytes(), f"https://example.org/{path.name}", {})
        except Exception:
            continue
        if parsed.items:
            out.append((path.name, tuple(parsed.items)))
    return out


def topical(n: int) -> RawItem:
    """A real-looking entry about the topic, so the bundled rules fire (the seed article's lead)."""
    seed = (ROOT / "monitor" / "demo_data" / "seed-kim-putin-greeting.ar.txt").read_text(encoding="utf-8")
    return RawItem(
        guid=f"seed-{n}",
        url=f"https://example.org/ar/{n}",
        title=f"بوتين وكيم جونغ أون {n}",
        summary=seed[:1500],
        published=NOW,
        language="ar",
    )


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return make_runtime(load_config(ROOT / "config.toml", env={}))


@pytest.fixture
def pool() -> Iterator[CpuPool]:
    cpu = CpuPool(2, inline_below=0)
    yield cpu
    cpu.close()


def jobs_for(runtime: Runtime, polls: list[tuple[str, tuple[RawItem, ...]]]) -> list[Job]:
    docs = normalise([(raws, None) for _, raws in polls], NOW)
    out: list[Job] = []
    for (name, _), doc in zip(polls, docs, strict=True):
        ctx = PollContext(
            source=name, first_poll=False, first_poll_mode="silent", max_age=runtime.config.alerts.max_age
        )
        out.extend(Job(it, doc.ambiguity, ctx) for it in doc.items)
    return out


def test_chunks_cover_every_unit_once_in_order() -> None:
    assert _chunks([], 2) == [(0, 0)]
    assert _chunks([5], 2) == [(0, 1)]
    assert _chunks([1, 1, 1, 1], 2) == [(0, 2), (2, 4)]
    assert _chunks([10, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    for sizes in ([3, 0, 7, 2, 2, 9, 1], [1] * 33, [0, 0, 5]):
        for parts in (1, 2, 3, 8):
            runs = _chunks(sizes, parts)
            assert runs[0][0] == 0 and runs[-1][1] == len(sizes)
            assert all(a[1] == b[0] for a, b in itertools.pairwise(runs))
            assert len(runs) <= parts


def test_workers_compute_what_the_thread_computes(pool: CpuPool, runtime: Runtime) -> None:
    polls = corpus_polls()
    polls.append(("seed", tuple(topical(n) for n in range(5))))
    assert sum(len(raws) for _, raws in polls) > 200
    raw = [(raws, None) for _, raws in polls]
    inline_docs = Inline().normalise(raw, NOW)
    assert pool.normalise(raw, NOW) == inline_docs
    jobs = jobs_for(runtime, polls)
    inline = Inline().analyse(runtime, jobs, NOW)
    offloaded = pool.analyse(runtime, jobs, NOW)
    assert pool.started and pool.batches_offloaded == 1
    assert offloaded == inline
    # Not vacuous: the seed entries fire the bundled rules, with decisions, and most entries have bands.
    fired = [a for a in offloaded if a.hits]
    assert len(fired) >= 5 and all(a.decisions for a in fired)
    assert sum(1 for a in offloaded if a.bands) > len(offloaded) // 2


SMALL = """
[terms]
putin = ["Putin", "بوتين"]
[[rules]]
name = "putin"
query = "putin"
notify = ["s"]
languages = {languages}
[[subscribers]]
name = "s"
urls = ["json://127.0.0.1:9/"]
"""


def test_a_reload_reaches_the_workers(pool: CpuPool, tmp_path: Path) -> None:
    def compiled(languages: str) -> Runtime:
        path = tmp_path / "config.toml"
        path.write_text(SMALL.format(languages=languages), encoding="utf-8")
        return make_runtime(load_config(path, env={}))

    everywhere, korean_only = compiled("[]"), compiled('["ko"]')
    jobs = jobs_for(everywhere, [("seed", tuple(topical(n) for n in range(4)))])
    before = pool.analyse(everywhere, jobs, NOW)
    assert all(a.hits for a in before)
    # The operator narrows the rule to Korean: the Arabic entries no longer fire.
    assert not any(a.hits for a in pool.analyse(korean_only, jobs, NOW))
    assert pool.analyse(everywhere, jobs, NOW) == before


def test_a_dead_worker_fails_its_batch_and_the_next_batch_gets_new_workers(pool: CpuPool, runtime: Runtime) -> None:
    jobs = jobs_for(runtime, [("seed", tuple(topical(n) for n in range(6)))])
    first = pool.analyse(runtime, jobs, NOW)
    assert pool._pool is not None
    for pid in list(pool._pool._processes):  # the workers, as the executor knows them
        os.kill(pid, signal.SIGKILL)
    # The executor notices the deaths on its next submit or result: the batch fails as a whole.
    with pytest.raises(BrokenProcessPool):
        pool.analyse(runtime, jobs, NOW)
    assert pool.analyse(runtime, jobs, NOW) == first


def test_enrichment_matches_in_the_workers_as_in_the_thread_even_when_one_dies(pool: CpuPool, runtime: Runtime) -> None:
    """Article texts matched again (enrichment) give the same hits in the workers; a dead worker
    costs the round nothing: its texts are matched in the calling thread instead."""
    seed = (ROOT / "monitor" / "demo_data" / "seed-kim-putin-greeting.ar.txt").read_text(encoding="utf-8")
    ctx = PollContext(source="seed", first_poll=False, first_poll_mode="silent", max_age=runtime.config.alerts.max_age)
    jobs = [MatchJob(ctx, "", "", seed, "ar"), MatchJob(ctx, "", "Markets were calm.", "Nothing here.", "en")]
    expected = Inline().match(runtime, jobs)
    assert expected[0] and not expected[1]
    assert pool.match(runtime, jobs) == expected
    assert pool.started
    assert pool._pool is not None
    for pid in list(pool._pool._processes):
        os.kill(pid, signal.SIGKILL)
    assert pool.match(runtime, jobs) == expected
    assert pool.match(runtime, jobs) == expected  # new workers


def test_small_batches_stay_in_the_calling_thread(runtime: Runtime) -> None:
    cpu = CpuPool(2)  # default threshold
    try:
        jobs = jobs_for(runtime, [("seed", tuple(topical(n) for n in range(3)))])
        assert cpu.analyse(runtime, jobs, NOW) == Inline().analyse(runtime, jobs, NOW)
        assert not cpu.started
    finally:
        cpu.close()


ARTICLES = sorted((ROOT / "tests" / "data" / "corpus" / "articles").glob("*.html"))


def test_article_extraction_in_the_workers_gives_what_the_thread_gives() -> None:
    """A round of article pages starts the workers; every page reads the same there as in the thread."""
    from monitor.core.extract import extract_article

    pages = [(p.read_text(encoding="utf-8", errors="replace"), f"https://example.org/{p.stem}") for p in ARTICLES[:24]]
    assert len(pages) == 24
    cpu = CpuPool(2)
    try:
        executor = cpu.extract_executor()
        futures = [executor.submit(extract_article, html, url) for html, url in pages]
        assert cpu.started  # the backlog outgrew the one thread
        got = [f.result(timeout=120) for f in futures]
    finally:
        cpu.close()
    assert got == [extract_article(html, url) for html, url in pages]
    assert sum(1 for g in got if g.text) >= 20


def test_an_article_or_two_stays_in_the_thread() -> None:
    from monitor.core.extract import extract_article

    cpu = CpuPool(2)
    try:
        executor = cpu.extract_executor()
        for path in ARTICLES[:2]:
            html = path.read_text(encoding="utf-8", errors="replace")
            assert executor.submit(extract_article, html, None).result(timeout=60) == extract_article(html, None)
        assert not cpu.started
    finally:
        cpu.close()


def test_a_worker_dying_under_an_extraction_fails_that_page_only(pool: CpuPool) -> None:
    """The page's future fails (enrichment retries it later); the next call gets new workers."""
    executor = pool.extract_executor()
    pool._executor()
    assert pool._pool is not None
    doomed = executor.submit(_die)
    with pytest.raises(BrokenProcessPool):
        doomed.result(timeout=30)
    deadline = time.monotonic() + 10
    while pool._pool is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool._pool is None  # dropped: the next call starts new workers
    pool._executor()
    assert executor.submit(abs, -3).result(timeout=30) == 3


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def stored(database_url: str, runtime: Runtime, cpu: CpuPool | None, polls: list[tuple[str, tuple[RawItem, ...]]]):  # type: ignore[no-untyped-def]
    store = open_store(database_url, migrate_first=True)
    try:
        store.sync_sources([(s.name, s.type, s.url) for s in runtime.config.sources], NOW)
        sid = {s.name: s.id for s in store.source_states()}
        names = [s.name for s in runtime.config.sources]
        outcomes = [
            PollOutcome(sid[names[n % len(names)]], names[n % len(names)], "ok", items=raws)
            for n, (_, raws) in enumerate(polls)
        ]
        ingestor = Ingestor(store, lambda: runtime, lambda: NOW, analysis=cpu)
        summaries = ingestor.ingest_batch(outcomes)
        with store.begin() as conn:
            rows = conn.execute(select(items.c.key, items.c.story_id, items.c.text_state).order_by(items.c.key)).all()
            hits = conn.execute(select(matches.c.rule).order_by(matches.c.rule)).scalars().all()
            outbox = conn.execute(select(alerts.c.rule, alerts.c.subscriber).order_by(alerts.c.rule)).all()
        # Sorted whole: the ORDER BY columns alone leave ties (a key in two sources, a rule
        # with two subscribers) in whatever order the database reads them.
        return summaries, sorted(tuple(r) for r in rows), sorted(hits), sorted(tuple(r) for r in outbox)
    finally:
        store.engine.dispose()


@contextmanager
def another_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'inline.db'}"
    else:
        yield from _pg_database()


def test_ingest_through_the_workers_stores_what_inline_ingest_stores(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    """One batch of every corpus feed and the seed, ingested inline and through worker processes."""
    polls = corpus_polls()
    polls.append(("seed", tuple(topical(n) for n in range(5))))
    # first_poll = "alert", so the seed's matches become outbox rows.
    alerting = replace(runtime.config, alerts=replace(runtime.config.alerts, first_poll="alert"))
    rt = make_runtime(alerting)
    cpu = CpuPool(2, inline_below=0)
    try:
        offloaded = stored(database_url, rt, cpu, polls)
        assert cpu.batches_offloaded == 1
    finally:
        cpu.close()
    with another_database(database_url, tmp_path) as other:
        inline = stored(other, rt, None, polls)
    assert offloaded == inline
    summaries, rows, hits, outbox = offloaded
    assert sum(s.new for s in summaries) == len(rows) > 200
    assert hits and outbox


def test_start_at_keeps_small_batches_in_the_thread_until_the_workers_run(runtime: Runtime) -> None:
    """`run --once`'s pool: workers start for a batch worth starting them, not for a few entries."""
    raws = tuple(topical(n) for n in range(450))
    jobs = jobs_for(runtime, [("seed", raws[:120])])
    cpu = CpuPool(2, inline_below=8, start_at=100)
    try:
        cpu.analyse(runtime, jobs[:40], NOW)  # fewer jobs than start_at: inline
        cpu.normalise([(raws[:110], None)], NOW)  # 110 entries are 27 jobs' worth: inline
        assert not cpu.started and cpu.batches_offloaded == 0
        cpu.normalise([(raws, None)], NOW)  # 450 entries, 112 jobs' worth: the workers start
        assert cpu.started and cpu.batches_offloaded == 1
        cpu.normalise([(raws[:20], None)], NOW)  # once they run, anything over inline_below goes there
        assert cpu.batches_offloaded == 2
        cpu.normalise([(raws[:5], None)], NOW)
        assert cpu.batches_offloaded == 2
    finally:
        cpu.close()
    fresh = CpuPool(2, inline_below=8, start_at=100)
    try:
        fresh.analyse(runtime, jobs[:110], NOW)  # 110 jobs: worth starting the workers
        assert fresh.started
    finally:
        fresh.close()


_STARTS_WORKERS = """
import os, sys, time
from monitor.stages.cpu import CpuPool
cpu = CpuPool(2)
pool = cpu._executor()
assert list(pool.map(time.sleep, [0.3, 0.3], timeout=60)) == [None, None]  # both workers start
from multiprocessing import forkserver
print(os.getpid(), forkserver._forkserver._forkserver_pid, *pool._processes, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat", "rb") as f:  # a zombie waits for its reaper: it runs no more
        return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def test_workers_and_their_forkserver_end_when_the_process_that_started_them_is_killed() -> None:
    """kill -9 of the daemon (the OOM killer, a crash) leaves no worker or forkserver behind."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _STARTS_WORKERS], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        parent, server, *workers = (int(p) for p in proc.stdout.readline().split())
        assert parent == proc.pid and len(workers) == 2
        assert not any(_gone(p) for p in (server, *workers))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while not all(_gone(p) for p in (server, *workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in (server, *workers) if not _gone(p)] == []
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
