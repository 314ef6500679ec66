"""Batched ingest against real SQLite and PostgreSQL: statements per batch, atomicity per
poll, health bookkeeping, and two ingesters racing on copies of one story.

Everything is real: the config file goes through ``load_config``, the store is migrated,
items come from ``make_item`` and the corpus; statements are counted with SQLAlchemy's
``before_cursor_execute`` event on the store's own engine.  The only fake is the clock.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from monitor.app import open_store
from monitor.config import load_config
from monitor.core.models import PollOutcome, RawItem
from monitor.runtime import Runtime, make_runtime
from monitor.services.ingest import Ingestor
from monitor.store.schema import alerts, items, matches, sources
from monitor.store.sql import SqlStore
from tests.dedupe.corpus import Copy, load_articles, syndicate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLLS = 10
WORDS = ["harbour", "grain", "ministry", "railway", "winter", "border", "bridge", "budget", "envoy", "ferry"]

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
urls = ["json://127.0.0.1:9/analysts"]
[[subscribers]]
name = "oncall"
urls = ["json://127.0.0.1:9/oncall"]
"""


def names(n: int) -> list[str]:
    return [f"src{i}" for i in range(n)]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[tuple[SqlStore, Runtime]]:
    srcs = "".join(f'[[sources]]\nname = "{n}"\nurl = "https://{n}.example/feed.xml"\n' for n in names(2 * POLLS + 2))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(sources=srcs), encoding="utf-8")
    runtime = make_runtime(load_config(path, env={}))
    store = open_store(database_url, migrate_first=True)
    store.sync_sources([(s.name, s.type, s.url) for s in runtime.config.sources], NOW)
    yield store, runtime
    store.engine.dispose()


def ids(store: SqlStore) -> dict[str, int]:
    return {s.name: s.id for s in store.source_states()}


def entries(source: str, count: int, start: int = 0) -> tuple[RawItem, ...]:
    """Distinct short entries, every other one about Kursk (so half match and alert twice)."""
    out = []
    for n in range(start, start + count):
        r = random.Random(f"{source}-{n}")
        topic = "Kursk front" if n % 2 == 0 else "Markets"
        out.append(
            RawItem(
                guid=f"{source}-{n}",
                url=f"https://{source}.example/news/{n}",
                title=f"{topic} report {source} {n}",
                summary=" ".join(r.choices(WORDS, k=4)),
                published=NOW - timedelta(minutes=5),
            )
        )
    return tuple(out)


def mixed_batch(store: SqlStore, per_poll: int, start: int = 0) -> list[PollOutcome]:
    """Ten polls with new items, ten that were not modified (304) and two failures."""
    sid = ids(store)
    out = [PollOutcome(sid[n], n, "ok", items=entries(n, per_poll, start), etag=f'"{n}"') for n in names(POLLS)]
    out += [PollOutcome(sid[n], n, "not_modified", etag=f'"{n}"') for n in names(2 * POLLS)[POLLS:]]
    out += [
        PollOutcome(sid[n], n, "error", error="HTTP 503", error_class="temporary", retry_after=30)
        for n in names(2 * POLLS + 2)[2 * POLLS :]
    ]
    return out


class Counter:
    def __init__(self, store: SqlStore) -> None:
        self.statements: list[str] = []
        self.commits = 0
        event.listen(store.engine, "before_cursor_execute", self._count)
        event.listen(store.engine, "commit", self._commit)
        self.store = store

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def close(self) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._count)
        event.remove(self.store.engine, "commit", self._commit)


def count_statements(store: SqlStore, runtime: Runtime, batch: list[PollOutcome]) -> int:
    ingestor = Ingestor(store, lambda: runtime, lambda: NOW)
    counter = Counter(store)
    try:
        summaries = ingestor.ingest_batch(batch)
    finally:
        counter.close()
    assert [s.status for s in summaries] == [o.status for o in batch]
    return len(counter.statements)


def test_statements_per_batch_do_not_grow_with_items(world: tuple[SqlStore, Runtime]) -> None:
    """10 polls x 30 new items and 10 x 50 (plus ten 304s and two failures each time),
    half of them matching a rule with two subscribers, cost the same statements: both fit
    one write transaction (500 items; 1,000 lock keys on PostgreSQL, one per short item)."""
    store, runtime = world
    counts = {}
    for per_poll, start in ((30, 0), (50, 1000)):
        counts[per_poll] = count_statements(store, runtime, mixed_batch(store, per_poll, start))
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == POLLS * 80
        assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == POLLS * 80
    print(f"\nstatements per batch ({store.dialect}): 10x30 {counts[30]}, 10x50 {counts[50]}")
    assert counts[30] == counts[50]
    assert counts[30] <= 20


def test_large_batches_cost_a_fixed_number_of_statements_per_transaction(world: tuple[SqlStore, Runtime]) -> None:
    """Full articles (LSH bands: ~34 story lock keys each on PostgreSQL) in 10 polls x 60:
    the batch is cut into transactions by the bounds, each costing the same few statements."""
    store, runtime = world
    sid = ids(store)
    articles = load_articles()
    batch = []
    for p, name in enumerate(names(POLLS)):
        raws = []
        for n in range(60):
            a = articles[(p * 60 + n) % len(articles)]
            body = "\n\n".join(a.paragraphs)
            raws.append(RawItem(guid=f"{name}-{n}", url=f"https://{name}.example/{n}", title=a.title, summary=body))
        batch.append(PollOutcome(sid[name], name, "ok", tuple(raws)))
    ingestor = Ingestor(store, lambda: runtime, lambda: NOW, max_tx_items=100)
    counter = Counter(store)
    try:
        summaries = ingestor.ingest_batch(batch)
    finally:
        counter.close()
    # Each poll carries 60 entries over the 41 articles: a source's repeated text is no new item.
    assert sum(s.new for s in summaries) == POLLS * len(articles)
    transactions = counter.commits - 4  # four short read-only ones come first
    print(
        f"\n{store.dialect}: {POLLS * len(articles)} new full articles, "
        f"{len(counter.statements)} statements in {transactions} transactions"
    )
    assert transactions >= 5
    assert len(counter.statements) <= 6 + 14 * transactions


def test_a_batch_stores_like_polls_one_by_one(world: tuple[SqlStore, Runtime]) -> None:
    """Summaries, health bookkeeping and the 304s come out of one batch as they would poll by poll."""
    store, runtime = world
    batch = mixed_batch(store, 6)
    summaries = Ingestor(store, lambda: runtime, lambda: NOW).ingest_batch(batch)
    assert [(s.source, s.status, s.new, s.matched, s.alerts) for s in summaries[:POLLS]] == [
        (n, "ok", 6, 3, 6) for n in names(POLLS)
    ]
    assert {s.status for s in summaries[POLLS : 2 * POLLS]} == {"not_modified"}
    assert [s.error for s in summaries[2 * POLLS :]] == ["HTTP 503", "HTTP 503"]
    states = {s.name: s for s in store.source_states()}
    for n in names(2 * POLLS):
        assert states[n].etag == f'"{n}"' and states[n].last_success == NOW and states[n].consecutive_failures == 0
        assert states[n].next_due is not None and states[n].next_due > NOW
    for n in names(2 * POLLS + 2)[2 * POLLS :]:
        s = states[n]
        assert (s.consecutive_failures, s.last_error, s.error_class, s.last_success) == (
            1,
            "HTTP 503",
            "temporary",
            None,
        )
        assert s.next_due is not None and s.next_due >= NOW + timedelta(seconds=30)
    # The same entries again: nothing is new, nothing alerts again.
    again = Ingestor(store, lambda: runtime, lambda: NOW + timedelta(minutes=10)).ingest_batch(batch[:POLLS])
    assert {(s.new, s.alerts) for s in again} == {(0, 0)}
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(matches)).scalar_one() == POLLS * 3
        assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == POLLS * 6
        failures = conn.execute(select(sources.c.consecutive_failures).where(sources.c.name == "src20")).scalar_one()
    assert failures == 1


def test_small_transactions_keep_every_poll_whole(world: tuple[SqlStore, Runtime]) -> None:
    """With three items per transaction a poll spans several; its fetch state commits with its
    last item, and what each poll brought is counted to it."""
    store, runtime = world
    batch = mixed_batch(store, 7)[:3]
    summaries = Ingestor(store, lambda: runtime, lambda: NOW, max_tx_items=3).ingest_batch(batch)
    assert [(s.new, s.matched, s.alerts) for s in summaries] == [(7, 4, 8)] * 3
    assert {s.name: s.etag for s in store.source_states(names(3))} == {n: f'"{n}"' for n in names(3)}


def test_first_poll_is_silent_and_repeats_within_a_source_are_not_new(world: tuple[SqlStore, Runtime]) -> None:
    store, runtime = world
    silent = make_runtime(replace(runtime.config, alerts=replace(runtime.config.alerts, first_poll="silent")))
    sid = ids(store)
    first = entries("src0", 4)
    (s,) = Ingestor(store, lambda: silent, lambda: NOW).ingest_batch([PollOutcome(sid["src0"], "src0", "ok", first)])
    assert (s.new, s.matched, s.alerts) == (4, 2, 0)
    later = NOW + timedelta(hours=1)
    reposted = tuple(
        RawItem(guid=f"fresh-{i.guid}", url=(i.url or "") + "?utm_source=rss", title=i.title, summary=i.summary)
        for i in first
    )
    (s,) = Ingestor(store, lambda: silent, lambda: later).ingest_batch(
        [PollOutcome(sid["src0"], "src0", "ok", (*reposted, *entries("src0", 2, start=10)))]
    )
    assert (s.entries, s.new, s.alerts) == (6, 2, 2)  # only the two really new ones; no longer a first poll
    # The same title under another link and body, within three days, in the next poll.
    retitled = RawItem(guid="other", url="https://src0.example/elsewhere", title=first[0].title, summary="New words.")
    (s,) = Ingestor(store, lambda: silent, lambda: later).ingest_batch(
        [PollOutcome(sid["src0"], "src0", "ok", (retitled,))]
    )
    assert s.new == 0


def test_two_ingesters_racing_on_copies_of_one_story_make_one_story(world: tuple[SqlStore, Runtime]) -> None:
    """Two ingesters (own engines, as two workers) store copies of the same stories from
    different outlets at the same moment, round after round: each story stays one story."""
    store, runtime = world
    if store.dialect != "postgresql":
        pytest.skip("SQLite admits one writer at a time; the race needs two")
    other = open_store(str(store.engine.url.render_as_string(hide_password=False)), migrate_first=False)
    sid = ids(store)
    articles = load_articles()[:8]
    try:
        for round_, article in enumerate(articles):
            copies = syndicate(article)
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            args = (runtime, sid, barrier, errors)
            a = threading.Thread(target=race, args=(store, f"src{2 * round_}", copies[0], *args))
            b = threading.Thread(target=race, args=(other, f"src{2 * round_ + 1}", copies[1 + round_ % 5], *args))
            a.start()
            b.start()
            a.join(30)
            b.join(30)
            assert not errors, errors
        with store.begin() as conn:
            sizes = sorted(conn.execute(select(func.count()).select_from(items).group_by(items.c.story_id)).scalars())
        assert sizes == [2] * len(articles), "copies raced into separate stories"
    finally:
        other.engine.dispose()


def race(
    st: SqlStore,
    source: str,
    c: Copy,
    runtime: Runtime,
    sid: dict[str, int],
    barrier: threading.Barrier,
    errors: list[BaseException],
) -> None:
    raw = RawItem(guid=c.guid, url=c.url, title=c.title, summary=c.body, published=NOW)
    ingestor = Ingestor(st, lambda: runtime, lambda: NOW)
    outcome = PollOutcome(sid[source], source, "ok", (raw,))
    barrier.wait(10)
    try:
        ingestor.ingest_batch([outcome])
    except BaseException as exc:  # reported in the test's thread
        errors.append(exc)


def test_a_transaction_over_the_lock_budget_takes_the_one_exclusive_lock(world: tuple[SqlStore, Runtime]) -> None:
    """A caller that does not cut its batch (41 full articles, ~1,400 lock keys, in one
    transaction) still assigns correctly on PostgreSQL: one exclusive lock, not an error
    from a full lock table."""
    store, runtime = world
    sid = ids(store)
    raws = tuple(
        RawItem(guid=f"a{n}", url=f"https://src0.example/{n}", title=a.title, summary="\n\n".join(a.paragraphs))
        for n, a in enumerate(load_articles())
    )
    ingestor = Ingestor(store, lambda: runtime, lambda: NOW, max_tx_locks=1_000_000)
    (s,) = ingestor.ingest_batch([PollOutcome(sid["src0"], "src0", "ok", raws)])
    assert s.new == len(raws)
    copies = tuple(
        RawItem(guid=f"b{n}", url=f"https://src1.example/{n}", title=r.title, summary=r.summary)
        for n, r in enumerate(raws)
    )
    (s,) = ingestor.ingest_batch([PollOutcome(sid["src1"], "src1", "ok", copies)])
    with store.begin() as conn:
        sizes = set(conn.execute(select(func.count()).select_from(items).group_by(items.c.story_id)).scalars())
    assert s.new == len(raws) and sizes == {2}
