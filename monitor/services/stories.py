"""Story assignment: put every new item into a story, inside the ingest transaction.

Responsible for "one story, one alert" on the storage side.  For each new item, in
order: the oldest story holding the same article URL (``url_key``), else the same
normalised text, else a near-duplicate — LSH candidates from the ``story_bands`` table,
verified by shingle containment (:mod:`monitor.core.dedupe`) — else a new story.  The
item's band keys are then stored so later copies find it; an exact text copy adds none
(its keys are those of the copy it joined).  Everything CPU-bound (normalising,
shingling, MinHash) is done before taking the story lock, so the lock covers only
lookups and inserts.  It must not decide about alerts or send anything: ingest reads the
returned story ids, and the alerts table's unique (story, rule, subscriber) does the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from monitor.core.dedupe import (
    STORY_WINDOW,
    Fingerprint,
    band_keys,
    best_match,
    make_fingerprint,
    shingles,
    verified_stories,
)
from monitor.store.sql import SqlStore, StoredItem

log = logging.getLogger(__name__)

# Candidates verified per item: the LSH ranks them by shared bands, so a real copy is near
# the top; the bound keeps the cost per item flat however many items share a band.
MAX_CANDIDATES = 10
# Copies of a story arrive close together, so a few thousand recent items cover most
# candidates; a frozenset of shingles costs ~10-30 kB, so the bound is also a memory bound.
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
        # item id → shingles of its text.  Stored items never change (an edit is a new
        # item or ignored), so this can only go stale by id reuse after a purge, which
        # touches old items only.  It spares re-reading and re-shingling the same
        # candidates for every copy of a story: the cold-ingest hot spot in benchmarks/.
        self._shingles: OrderedDict[int, frozenset[int]] = OrderedDict()
        self._lock = threading.Lock()  # ingest runs in several worker threads

    def _remember(self, item_id: int, sh: frozenset[int]) -> None:
        with self._lock:
            self._shingles[item_id] = sh
            self._shingles.move_to_end(item_id)
            while len(self._shingles) > SHINGLE_CACHE:
                self._shingles.popitem(last=False)

    def _candidate_shingles(self, conn: Connection, found: Sequence[tuple[int, int]]) -> list[frozenset[int]]:
        with self._lock:
            known = {item_id: self._shingles.get(item_id) for item_id, _ in found}
        missing = [item_id for item_id, sh in known.items() if sh is None]
        for item_id, (title, summary, text) in self.store.item_texts(conn, missing).items():
            sh = shingles(make_fingerprint(None, title, summary, text).words)
            known[item_id] = sh
            self._remember(item_id, sh)
        return [known.get(item_id) or frozenset() for item_id, _ in found]

    def assign(self, conn: Connection, new: Sequence[StoredItem], now: datetime) -> dict[int, Assignment]:
        """Assign each of ``new`` (in order) to a story; item id → assignment."""
        if not new:
            return {}
        prepared = []
        for stored in new:
            it = stored.item
            fp = stored.fingerprint or make_fingerprint(it.url, it.title, it.summary, it.text)
            prepared.append((stored, fp, band_keys(fp.words), shingles(fp.words)))
        self.store.lock_stories(conn)
        # Exact identities for the whole batch in two queries; kept current below as this
        # batch's own items are filed (a later item may be a copy of an earlier one).
        by_url, by_text = self.store.stories_for_keys(
            conn,
            [fp.url_key for _, fp, _, _ in prepared if fp.url_key is not None],
            [fp.text_hash for _, fp, _, _ in prepared if fp.text_hash is not None],
        )
        out: dict[int, Assignment] = {}
        for stored, fp, keys, sh in prepared:
            assignment = self._assign_one(conn, stored, fp, keys, sh, now, by_url, by_text)
            if fp.url_key is not None:
                by_url.setdefault(fp.url_key, assignment.story_id)
            if fp.text_hash is not None:
                by_text.setdefault(fp.text_hash, assignment.story_id)
            self._remember(stored.id, sh)
            if assignment.via != "text":
                self.store.insert_bands(conn, stored.id, keys)
            out[stored.id] = assignment
        joined = sum(not a.created for a in out.values())
        if joined:
            log.info("source %s: %d of %d new items joined existing stories", new[0].source, joined, len(new))
        return out

    def _assign_one(
        self,
        conn: Connection,
        stored: StoredItem,
        fp: Fingerprint,
        keys: Sequence[int],
        sh: frozenset[int],
        now: datetime,
        by_url: dict[str, int],
        by_text: dict[str, int],
    ) -> Assignment:
        story: int | None = None
        via = "new"
        if fp.url_key is not None:
            story, via = by_url.get(fp.url_key), "url"
        if story is None and fp.text_hash is not None:
            story, via = by_text.get(fp.text_hash), "text"
        if story is None:
            via = "near"
        if keys and via != "text":
            found = self.store.story_candidates(conn, keys, now - STORY_WINDOW, MAX_CANDIDATES)
            candidates = [
                (story_id, sh_) for (_, story_id), sh_ in zip(found, self._candidate_shingles(conn, found), strict=True)
            ]
            if story is None:
                story = best_match(sh, candidates)
            else:
                # The article's own URL says this is ``story``; its text says it is also
                # these others.  That happens when a teaser opened a story under the
                # article's link and the full copies, arriving first, opened another:
                # this item bridges them, so they become one.  Only an exact identity
                # bridges; a near-duplicate alone never merges (a roundup that contains
                # two wire stories would chain them).
                for other in sorted(verified_stories(sh, candidates) - {story}):
                    into, gone = min(story, other), max(story, other)
                    self.store.merge_stories(conn, into, gone, now)
                    for index in (by_url, by_text):
                        for key, value in index.items():
                            if value == gone:
                                index[key] = into
                    log.info("story %d merged into story %d (bridged by item %d)", gone, into, stored.id)
                    story = into
        if story is None:
            return Assignment(stored.id, self.store.create_story(conn, stored.id, stored.item.title, now), True, "new")
        self.store.join_story(conn, story, stored.id, now)
        return Assignment(stored.id, story, False, via)
