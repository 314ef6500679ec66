"""Story assignment against real SQLite and PostgreSQL: exact and near joins, restarts, races.

Drives :class:`StoryAssigner` through the real :class:`SqlStore` inside real transactions,
the way ingest does, with items built by the real ``make_item``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitor.app import open_store
from monitor.core.items import make_item
from monitor.core.models import Item, RawItem
from monitor.services.stories import StoryAssigner
from monitor.store.schema import items, stories, story_bands
from monitor.store.sql import SqlStore
from tests.dedupe.corpus import load_articles, syndicate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    st = open_store(database_url, migrate_first=True)
    st.sync_sources([(f"outlet{i}", "feed", f"https://o{i}.example/rss") for i in range(12)], NOW)
    yield st
    st.engine.dispose()


def source_id(store: SqlStore, name: str) -> int:
    return next(s.id for s in store.source_states([name]))


def item(guid: str, url: str, title: str, body: str) -> Item:
    it = make_item(RawItem(guid=guid, url=url, title=title, summary=body), NOW)
    assert it is not None
    return it


def ingest(store: SqlStore, source: str, batch: list[Item], now: datetime = NOW) -> dict[int, int]:
    """What ingest does for stories: insert, then assign in the same transaction; item id → story id."""
    with store.begin() as conn:
        new = store.insert_new_items(conn, source_id(store, source), source, batch, now)
        return {i: a.story_id for i, a in StoryAssigner(store).assign(conn, new, now).items()}


ARTICLE = load_articles()[4]


def test_copies_across_outlets_form_one_story(store: SqlStore) -> None:
    copies = syndicate(ARTICLE)
    story_ids = set()
    for n, c in enumerate(copies):
        story_ids |= set(ingest(store, f"outlet{n}", [item(c.guid, c.url, c.title, c.body)]).values())
    assert len(story_ids) == 1
    (story,) = store.recent_stories(None, 10)
    assert story["size"] == len(copies)
    assert story["outlets"] == [f"outlet{n}" for n in range(len(copies))]
    assert story["first_item"]["source"] == "outlet0" and story["title"] == ARTICLE.title
    assert store.also_reported_by(story["first_item"]["id"]) == tuple(f"outlet{n}" for n in range(1, len(copies)))


def test_repeats_within_a_source_are_not_new(store: SqlStore) -> None:
    c = syndicate(ARTICLE)[0]
    assert len(ingest(store, "outlet0", [item(c.guid, c.url, c.title, c.body)])) == 1
    later = NOW + timedelta(hours=2)
    assert ingest(store, "outlet0", [item("fresh-guid", c.url + "?utm_source=x", c.title, c.body)], later) == {}
    assert (
        ingest(store, "outlet0", [item("guid-2", "https://o0.example/moved", "New title for it", c.body)], later) == {}
    )
    assert (
        ingest(store, "outlet0", [item("guid-3", "https://o0.example/again", c.title, "Short new body.")], later) == {}
    )
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar_one() == 1


def test_clustering_survives_a_restart(store: SqlStore, database_url: str) -> None:
    copies = syndicate(ARTICLE)
    first = ingest(store, "outlet0", [item(copies[0].guid, copies[0].url, copies[0].title, copies[0].body)])
    store.engine.dispose()
    again = open_store(database_url, migrate_first=False)
    trimmed = copies[1]
    second = ingest(again, "outlet1", [item(trimmed.guid, trimmed.url, trimmed.title, trimmed.body)])
    assert set(first.values()) == set(second.values())
    again.engine.dispose()


def test_old_stories_are_not_joined_by_near_duplicates(store: SqlStore) -> None:
    copies = syndicate(ARTICLE)
    ingest(store, "outlet0", [item(copies[0].guid, copies[0].url, copies[0].title, copies[0].body)])
    late = NOW + timedelta(days=8)
    got = ingest(store, "outlet1", [item(copies[1].guid, copies[1].url, copies[1].title, copies[1].body)], late)
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(stories)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(story_bands)).scalar_one() > 0
    assert len(got) == 1


def test_two_workers_racing_on_one_story_make_one_story(store: SqlStore, database_url: str) -> None:
    """Worker A assigns and holds its transaction open; worker B, with a trimmed copy from
    another outlet, must wait and then join A's story (not open a second one)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite admits one writer at a time; the race needs two")
    copies = syndicate(ARTICLE)
    other = open_store(database_url, migrate_first=False)
    a_assigned, a_release, b_done = threading.Event(), threading.Event(), threading.Event()
    result: dict[str, set[int]] = {}

    def worker_a() -> None:
        with store.begin() as conn:
            c = copies[0]
            new = store.insert_new_items(
                conn, source_id(store, "outlet0"), "outlet0", [item(c.guid, c.url, c.title, c.body)], NOW
            )
            result["a"] = {a.story_id for a in StoryAssigner(store).assign(conn, new, NOW).values()}
            a_assigned.set()
            a_release.wait(10)

    def worker_b() -> None:
        a_assigned.wait(10)
        result["b"] = set(
            ingest(other, "outlet1", [item(copies[1].guid, copies[1].url, copies[1].title, copies[1].body)]).values()
        )
        b_done.set()

    ta, tb = threading.Thread(target=worker_a), threading.Thread(target=worker_b)
    ta.start()
    tb.start()
    assert not b_done.wait(1.0), "B must wait for A's story lock"
    a_release.set()
    ta.join(10)
    tb.join(10)
    assert result["a"] == result["b"] and len(result["a"]) == 1
    other.engine.dispose()


def test_an_item_bridging_two_stories_merges_them(store: SqlStore) -> None:
    """A teaser opened a story under the article's link; full copies elsewhere opened another;
    the article itself (its link says one, its text the other) makes them one story."""
    copies = syndicate(ARTICLE)
    wire, trimmed, tracked = copies[0], copies[1], copies[3]
    teaser_story = ingest(store, "outlet0", [item("teaser", tracked.url, "Brief", ARTICLE.paragraphs[0][:60] + " x")])
    full_story = ingest(store, "outlet1", [item(trimmed.guid, trimmed.url, trimmed.title, trimmed.body)])
    assert set(teaser_story.values()) != set(full_story.values())
    bridged = ingest(store, "outlet2", [item(wire.guid, wire.url, wire.title, wire.body)])
    (story,) = store.recent_stories(None, 10)
    assert set(bridged.values()) == {story["id"]} == {min(*teaser_story.values(), *full_story.values())}
    assert story["size"] == 3 and story["outlets"] == ["outlet0", "outlet1", "outlet2"]
