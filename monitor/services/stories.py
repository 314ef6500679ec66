"""Story assignment: put a batch's new items into stories, inside the ingest transaction.

Responsible for "one story, one alert" on the storage side.  The decision itself is pure
(:func:`monitor.core.dedupe.plan_stories`: the same article URL, else the same normalised
text, else a verified near-duplicate, else a new story; merges when an item bridges two
stories); this module feeds it and has the store apply it.  Per batch it costs a bounded
number of statements: on PostgreSQL one statement takes per-key advisory locks (sorted;
only transactions carrying copies of one story wait for each other), then one lookup of
exact keys, one of LSH candidates, at most one read of candidate texts, and the plan's
writes.  Everything CPU-bound (shingling, MinHash) is done before the transaction, and
candidates are shingled ahead (:meth:`StoryAssigner.prefetch`) so the locks cover only
lookups and inserts.  It must not decide about alerts or send anything: ingest reads the
returned story ids, and the alerts table's uniqueness does the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from monitor.core.dedupe import (
    STORY_WINDOW,
    BatchEntry,
    NewStory,
    PackedShingles,
    make_fingerprint,
    near_signature,
    pack_shingles,
    plan_stories,
    shingles,
    story_lock_keys,
)
from monitor.store.sql import SqlStore, StoredItem

log = logging.getLogger(__name__)

# Copies of a story arrive close together, so a few thousand recent items cover most
# candidates; packed shingles cost ~0.5-2 kB each (a frozenset of them was ~10-30 kB).
SHINGLE_CACHE = 4_000


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one new item went: its story, whether it opened it, and why it joined."""

    item_id: int
    story_id: int
    created: bool
    via: str  # "new" | "url" | "text" | "near"


class StoryAssigner:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        # item id → shingles of its text.  Stored items change once at most (an edit is
        # a new item or ignored): when the enrichment stage adds the article text, which
        # a cached entry then lacks, as the item's band keys do (both are the teaser's,
        # what its story was decided on).  Otherwise only id reuse after a purge, which
        # touches old items only, could make an entry stale.  It spares re-reading and re-shingling the same
        # candidates for every copy of a story: the cold-ingest hot spot in benchmarks/.
        self._shingles: OrderedDict[int, PackedShingles] = OrderedDict()
        self._lock = threading.Lock()  # callers may share one assigner across threads

    def _remember(self, found: Mapping[int, PackedShingles]) -> None:
        with self._lock:
            for item_id, sh in found.items():
                self._shingles[item_id] = sh
                self._shingles.move_to_end(item_id)
            while len(self._shingles) > SHINGLE_CACHE:
                self._shingles.popitem(last=False)

    def forget(self, ids: Iterable[int]) -> None:
        """Drop cached shingles of items whose transaction rolled back (their ids may come again)."""
        with self._lock:
            for item_id in ids:
                self._shingles.pop(item_id, None)

    def _shingles_of(self, conn: Connection, ids: Iterable[int]) -> dict[int, PackedShingles]:
        """Shingles of stored items: from the cache, else read (one statement) and shingled."""
        with self._lock:
            known = {i: sh for i in set(ids) if (sh := self._shingles.get(i)) is not None}
        missing = [i for i in set(ids) if i not in known]
        read = {
            item_id: pack_shingles(shingles(make_fingerprint(None, title, summary, text).words))
            for item_id, (title, summary, text) in self.store.item_texts(conn, missing).items()
        }
        self._remember(read)
        return known | read

    def prefetch(self, conn: Connection, bands: Iterable[int], now: datetime) -> None:
        """Shingle, before any lock is taken, the stored candidates a batch with ``bands`` will meet.

        Optional and read-only: inside the transaction the lookup is repeated, and only
        candidates committed in between (by another worker) are still read there.
        """
        hits = self.store.story_candidates(conn, bands, now - STORY_WINDOW)
        self._shingles_of(conn, {h.item_id for h in hits})

    def assign_entries(
        self, conn: Connection, entries: Sequence[BatchEntry], titles: Mapping[int, str], now: datetime
    ) -> dict[int, Assignment]:
        """Assign each of ``entries`` (in order; their items stored in ``conn``'s transaction)."""
        if not entries:
            return {}
        self.store.lock_story_keys(conn, {k for e in entries for k in story_lock_keys(e.url_key, e.text_hash, e.bands)})
        for _attempt in range(3):
            by_url, by_text = self.store.stories_for_keys(
                conn,
                (e.url_key for e in entries if e.url_key is not None),
                (e.text_hash for e in entries if e.text_hash is not None),
            )
            hits = self.store.story_candidates(conn, {k for e in entries for k in e.bands}, now - STORY_WINDOW)
            plan = plan_stories(entries, by_url, by_text, hits, self._shingles_of(conn, {h.item_id for h in hits}))
            touched = {d.story for d in plan.decisions if not isinstance(d.story, NewStory)}
            if self.store.lock_story_rows(conn, touched | {s for pair in plan.merges for s in pair}):
                break
            # Another worker merged a story away since the lookup: look again (rare).
        story_of = self.store.apply_story_plan(conn, plan, titles, now)
        self._remember({e.item_id: e.shingles for e in entries})
        out = {d.item_id: Assignment(d.item_id, story_of[d.item_id], d.created, d.via) for d in plan.decisions}
        joined = sum(not isinstance(d.story, NewStory) for d in plan.decisions)
        if joined:
            log.info("%d of %d new items joined existing stories", joined, len(entries))
        return out

    def assign(self, conn: Connection, new: Sequence[StoredItem], now: datetime) -> dict[int, Assignment]:
        """Assign each of ``new`` (in order) to a story; item id → assignment."""
        entries = []
        for stored in new:
            it = stored.item
            fp = stored.fingerprint or make_fingerprint(it.url, it.title, it.summary, it.text)
            bands, sh = near_signature(fp.words)
            entries.append(BatchEntry(stored.id, fp.url_key, fp.text_hash, bands, pack_shingles(sh)))
        return self.assign_entries(conn, entries, {s.id: s.item.title for s in new}, now)
