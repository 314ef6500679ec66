"""The pure story step over a batch (``plan_stories``): joins, new stories, merges, and
copies of one story inside one batch, on real corpus articles and their syndicated copies."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.dedupe import (
    BandHit,
    BatchEntry,
    NewStory,
    make_fingerprint,
    near_signature,
    pack_shingles,
    plan_stories,
)
from monitor.core.items import make_item
from monitor.core.models import RawItem
from tests.dedupe.corpus import load_articles, syndicate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ARTICLES = load_articles()


def entry(item_id: int, url: str, title: str, body: str) -> BatchEntry:
    it = make_item(RawItem(guid=f"g{item_id}", url=url, title=title, summary=body), NOW)
    assert it is not None
    fp = make_fingerprint(it.url, it.title, it.summary, it.text)
    bands, sh = near_signature(fp.words)
    return BatchEntry(item_id, fp.url_key, fp.text_hash, bands, pack_shingles(sh))


def copies_of(article: int, first_id: int) -> list[BatchEntry]:
    return [entry(first_id + n, c.url, c.title, c.body) for n, c in enumerate(syndicate(ARTICLES[article]))]


def test_copies_inside_one_batch_open_one_story() -> None:
    batch = copies_of(4, 100) + copies_of(7, 200)
    plan = plan_stories(batch, {}, {}, [], {})
    assert [ref for ref, _ in plan.new_stories] == [NewStory(0), NewStory(1)]
    assert {d.story for d in plan.decisions[:6]} == {NewStory(0)}
    assert {d.story for d in plan.decisions[6:]} == {NewStory(1)}
    assert [d.created for d in plan.decisions] == [True, *[False] * 5, True, *[False] * 5]
    assert plan.decisions[2].via == "text" and plan.decisions[1].via == "near" and plan.decisions[3].via == "url"
    assert plan.merges == ()
    # An exact text copy adds no band keys: its keys are those of the copy it joined.
    assert {item for _, item in plan.bands} == {d.item_id for d in plan.decisions if d.via != "text"}


def test_stored_stories_are_joined_by_url_text_and_near_copy() -> None:
    stored = copies_of(4, 1)
    wire, trimmed = stored[0], stored[1]
    batch = copies_of(4, 100)[1:]
    hits = [BandHit(k, wire.item_id, 9) for k in wire.bands]
    plan = plan_stories(batch, {}, {}, hits, {wire.item_id: wire.shingles})
    assert {d.story for d in plan.decisions} == {9} and plan.new_stories == ()
    # Exact keys come from the store's lookup and win before any candidate is verified.
    plan = plan_stories(batch[:1], {}, {trimmed.text_hash or "": 5}, hits, {wire.item_id: wire.shingles})
    assert [(d.story, d.via) for d in plan.decisions] == [(5, "text")]


def test_an_item_bridging_two_stored_stories_merges_them_into_the_older() -> None:
    wire = copies_of(4, 1)[0]
    hits = [BandHit(k, wire.item_id, 8) for k in wire.bands]
    bridge = copies_of(4, 100)[0]
    plan = plan_stories([bridge], {bridge.url_key or "": 3}, {}, hits, {wire.item_id: wire.shingles})
    assert plan.merges == ((3, 8),)
    assert [(d.story, d.via) for d in plan.decisions] == [(3, "url")]


def test_new_stories_bridged_inside_a_batch_become_one_without_a_merge() -> None:
    article = ARTICLES[4]
    copies = syndicate(article)
    wire, trimmed, tracked = copies[0], copies[1], copies[3]
    teaser = entry(1, tracked.url, "Brief", article.paragraphs[0][:60] + " x")
    full = entry(2, trimmed.url, trimmed.title, trimmed.body)
    bridge = entry(3, wire.url, wire.title, wire.body)
    plan = plan_stories([teaser, full, bridge], {}, {}, [], {})
    assert [d.story for d in plan.decisions] == [NewStory(0)] * 3
    assert plan.new_stories == ((NewStory(0), 1),) and plan.merges == ()
    assert [d.created for d in plan.decisions] == [True, False, False]


def test_a_near_duplicate_alone_never_merges() -> None:
    a, b = copies_of(4, 1)[0], copies_of(7, 50)[0]
    hits = [BandHit(k, a.item_id, 1) for k in a.bands] + [BandHit(k, b.item_id, 2) for k in b.bands]
    roundup = entry(
        100, "https://roundup.example/x", "Roundup", "\n\n".join([*ARTICLES[4].paragraphs, *ARTICLES[7].paragraphs])
    )
    plan = plan_stories([roundup], {}, {}, hits, {a.item_id: a.shingles, b.item_id: b.shingles})
    assert plan.merges == () and len(plan.decisions) == 1
