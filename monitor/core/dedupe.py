"""Fingerprints of items for dedupe: exact keys, word shingles, MinHash band keys, containment.

Responsible for the pure half of "one story, one alert".  :func:`make_fingerprint` turns
an item into versioned exact keys (article URL, normalised title, normalised text) and
the normalised words its near-duplicate signature is built from; :func:`band_keys` turns
those words into the LSH band keys stored in the database, from two MinHash signatures:
one of the whole body and one of its *lead* (first :data:`LEAD_WORDS` words), because the
usual syndication edit is truncation, which keeps the lead but drops Jaccard similarity of
the whole far below any useful LSH threshold; :func:`containment` then verifies a
candidate exactly, so a truncated copy (all of whose shingles are in the original) joins.
Normalisation is :func:`monitor.core.text.words`, the matcher's own (case, diacritics,
Arabic letter variants, digits), so "the same text" means the same thing everywhere.
Band keys are stored: changing the shingling, the permutations or the hashing needs a new
:data:`FINGERPRINT_VERSION` (it is mixed into every key), and golden tests pin them.
Pure: no I/O, no clock, deterministic across processes (no ``hash()``).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, TypeAlias

from monitor.core.models import picklable
from monitor.core.text import words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
from monitor.core.urls import url_key

FINGERPRINT_VERSION = 1
SHINGLE = 5  # words per shingle: LIBRARY-NOTES measured 5 as tracking Jaccard closely
BANDS = 16
ROWS = 3  # 16 bands x 3 rows: a candidate with probability 88 % at Jaccard 0.5, 99.8 % at 0.7, 2 % at 0.1
NUM_PERM = BANDS * ROWS
LEAD_WORDS = 30  # the first sentence or two: what every trimmed copy and most teasers keep
MIN_TEXT_WORDS = 15  # shorter bodies ("Read more.") are too often shared to be an identity
MIN_TITLE_WORDS = 3  # "Update", "Live" are not identities either
MIN_NEAR_WORDS = 12  # fewer words than this give too few shingles to judge similarity
MIN_SHARED = 8  # a verified copy shares at least this many shingles with its original
CONTAINMENT = 0.6  # share of the smaller copy's shingles found in the larger one
TITLE_WINDOW = timedelta(days=3)  # a same-titled entry of the same source within this is a repost
STORY_WINDOW = timedelta(days=7)  # a near-duplicate joins a story whose copy was first seen within this
_MERSENNE = (1 << 61) - 1


@cache
def _permutation_params() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """``a`` and ``b`` of the ``NUM_PERM`` hash functions ``(a·x + b) mod (2^61 − 1)``.

    Derived from SHA-256 of fixed labels rather than a random generator, so that no
    library upgrade (numpy's RNG, datasketch's 2.0 change of scheme) can move stored keys.
    Both stay below 2^31 so that ``a·x + b`` of a 32-bit ``x`` cannot overflow 64 bits.
    """
    a, b = [], []
    for i in range(NUM_PERM):
        digest = hashlib.sha256(f"wirewatch-minhash-v{FINGERPRINT_VERSION}-{i}".encode()).digest()
        a.append(int.from_bytes(digest[:4], "little") % ((1 << 31) - 1) + 1)
        b.append(int.from_bytes(digest[4:8], "little") % (1 << 31))
    # numpy is imported here, on first use: commands that read the database and never
    # fingerprint anything (sources, items, check) start without it (~0.1 s).
    import numpy as np

    return np.array(a, dtype=np.uint64), np.array(b, dtype=np.uint64)


@picklable
@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The dedupe identity of one item.

    ``url_key``, ``title_hash`` and ``text_hash`` are ``None`` when the item has no such
    identity (no article URL, a title or body too short to identify anything).
    ``words`` are the normalised words near-duplicates are judged on (possibly empty).
    """

    url_key: str | None
    title_hash: str | None
    text_hash: str | None
    words: tuple[str, ...]


def _digest(kind: str, tokens: Sequence[str]) -> str:
    data = f"{kind}\x00" + " ".join(tokens)
    return f"{FINGERPRINT_VERSION}:" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def fingerprint_body(summary: str, text: str) -> str:
    """The body copies are compared on: the full text when there is one, else the summary.

    Not the matcher's summary + text: one outlet's feed carries a teaser and the article,
    another only the teaser, and the article alone is what both copy from the wire.
    """
    return text if text.strip() else summary


@dataclass(frozen=True, slots=True)
class Probe:
    """A cheap identity of one entry of a feed document, to spot values the document shares."""

    url_key: str | None
    title: str
    body: str


@picklable
@dataclass(frozen=True, slots=True)
class Ambiguity:
    """Values that one feed document gives to entries that are plainly different.

    A link shared by entries with different titles is a section page, not an article; a
    body shared by entries with different titles is boilerplate ("Read the full story on
    our site..."); a title shared by entries with different links and different bodies is
    a recurring column ("Morning briefing").  Such values identify nothing: they are left
    out of the entries' fingerprints, so they neither fold entries nor join stories.
    """

    urls: frozenset[str] = field(default_factory=frozenset)
    titles: frozenset[str] = field(default_factory=frozenset)
    bodies: frozenset[str] = field(default_factory=frozenset)


def make_probe(url: str | None, title: str, summary: str, text: str) -> Probe:
    return Probe(url_key(url), " ".join(title.split()).casefold(), " ".join(fingerprint_body(summary, text).split()))


def find_ambiguity(probes: Sequence[Probe]) -> Ambiguity:
    """The link, title and body values that one document shares between different entries."""
    titles_by_url: dict[str, set[str]] = {}
    titles_by_body: dict[str, set[str]] = {}
    by_title: dict[str, list[Probe]] = {}
    for p in probes:
        if p.url_key:
            titles_by_url.setdefault(p.url_key, set()).add(p.title)
        if p.body:
            titles_by_body.setdefault(p.body, set()).add(p.title)
        by_title.setdefault(p.title, []).append(p)
    return Ambiguity(
        urls=frozenset(u for u, t in titles_by_url.items() if len(t) > 1),
        bodies=frozenset(b for b, t in titles_by_body.items() if len(t) > 1),
        titles=frozenset(
            t
            for t, ps in by_title.items()
            if len({p.url_key for p in ps if p.url_key}) > 1 and len({p.body for p in ps}) > 1
        ),
    )


def make_fingerprint(
    url: str | None, title: str, summary: str, text: str, ambiguity: Ambiguity | None = None
) -> Fingerprint:
    """Exact keys and near-duplicate words of an item (as stored: title, summary, text).

    With ``ambiguity`` (from the item's feed document), values the document shares
    between different entries are left out; a boilerplate body leaves the title alone
    to judge near-duplicates by.
    """
    amb = ambiguity or Ambiguity()
    probe = make_probe(url, title, summary, text) if ambiguity is not None else Probe(None, "", "")
    title_words = words(title)
    body_words = () if probe.body and probe.body in amb.bodies else words(fingerprint_body(summary, text))
    near = body_words if len(body_words) >= MIN_NEAR_WORDS else title_words + body_words
    ukey = url_key(url)
    title_ok = len(title_words) >= MIN_TITLE_WORDS and probe.title not in amb.titles
    return Fingerprint(
        url_key=None if ukey in amb.urls else ukey,
        title_hash=_digest("title", title_words) if title_ok else None,
        text_hash=_digest("text", body_words) if len(body_words) >= MIN_TEXT_WORDS else None,
        words=near if len(near) >= MIN_NEAR_WORDS else (),
    )


@dataclass(frozen=True, slots=True)
class SeenEntry:
    """The exact keys of an entry a source already holds."""

    url_key: str | None
    title_hash: str | None
    text_hash: str | None
    first_seen: datetime


def repeats(prints: Sequence[Fingerprint], seen: Iterable[SeenEntry], now: datetime) -> list[bool]:
    """For each new entry of one source, whether it repeats one the source already has.

    A repeat has the same article URL, or the same normalised text, or the same
    normalised title as an entry first seen within :data:`TITLE_WINDOW`, either among
    the stored entries of the source or earlier in the same batch.  This is how a fresh
    GUID or a bumped date on an unchanged entry stays one item.
    """
    since = now - TITLE_WINDOW
    urls: set[str] = set()
    texts: set[str] = set()
    titles: set[str] = set()
    for e in seen:
        if e.url_key:
            urls.add(e.url_key)
        if e.text_hash:
            texts.add(e.text_hash)
        if e.title_hash and e.first_seen >= since:
            titles.add(e.title_hash)
    out: list[bool] = []
    for fp in prints:
        out.append(
            (fp.url_key is not None and fp.url_key in urls)
            or (fp.text_hash is not None and fp.text_hash in texts)
            or (fp.title_hash is not None and fp.title_hash in titles)
        )
        for value, bucket in ((fp.url_key, urls), (fp.text_hash, texts), (fp.title_hash, titles)):
            if value:
                bucket.add(value)
    return out


# Copies of a hasher set up once: a third cheaper per hash than the constructor, same values.
_BLAKE32 = hashlib.blake2b(digest_size=4)


def _hash32(data: str) -> int:
    h = _BLAKE32.copy()
    h.update(data.encode("utf-8"))
    return int.from_bytes(h.digest(), "little")


def _shingle_hashes(tokens: Sequence[str]) -> list[int]:
    """32-bit hashes of the word ``SHINGLE``-grams of ``tokens`` in order (one if shorter)."""
    if not tokens:
        return []
    if len(tokens) < SHINGLE:
        return [_hash32(" ".join(tokens))]
    # _hash32 inlined, with the lookups hoisted: a quarter of the cost for the same values.
    join, copy, from_bytes = " ".join, _BLAKE32.copy, int.from_bytes
    out = []
    for i in range(len(tokens) - SHINGLE + 1):
        h = copy()
        h.update(join(tokens[i : i + SHINGLE]).encode())
        out.append(from_bytes(h.digest(), "little"))
    return out


def shingles(tokens: Sequence[str]) -> frozenset[int]:
    """32-bit hashes of the word ``SHINGLE``-grams of ``tokens`` (one shingle if shorter)."""
    return frozenset(_shingle_hashes(tokens))


# A shingle set as ingest holds and passes it between processes: its 32-bit hashes as
# machine uint32s.  A frozenset of ~150 Python ints takes ~13 kB and 12 µs to pickle and
# unpickle; this takes ~0.6 kB and 0.4 µs, and only the items that meet a candidate in
# plan_stories are ever unpacked.  Never stored: the bytes are this machine's order.
PackedShingles: TypeAlias = bytes
_UINT32 = "I" if array("I").itemsize == 4 else "L"


def pack_shingles(sh: Iterable[int]) -> PackedShingles:
    """``sh`` packed (see :data:`PackedShingles`)."""
    return array(_UINT32, sh).tobytes()


def unpack_shingles(packed: PackedShingles) -> frozenset[int]:
    """The shingle set that :func:`pack_shingles` packed."""
    values = array(_UINT32)
    values.frombytes(packed)
    return frozenset(values)


def _permuted(hashes: Sequence[int]) -> npt.NDArray[np.uint64]:
    """Every hash function applied to every shingle hash, one row per hash in order: the
    MinHash signature of any set of them is the least value of each column over its rows."""
    import numpy as np

    a, b = _permutation_params()
    x = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
    values: npt.NDArray[np.uint64] = (np.outer(x, a) + b) % np.uint64(_MERSENNE)
    return values


_LSH_PERSON = f"ww-lsh-v{FINGERPRINT_VERSION}".encode()[:16]
_BAND_BYTES = ROWS * 8


_BLAKE_BAND = hashlib.blake2b(digest_size=8, person=_LSH_PERSON)


def _band_keys_of(sig: npt.NDArray[np.uint64]) -> list[int]:
    """The :data:`BANDS` keys of one MinHash signature: each band's number and rows, hashed."""
    raw = sig.astype("<u8").tobytes()
    copy, from_bytes = _BLAKE_BAND.copy, int.from_bytes
    out = []
    for b in range(BANDS):
        h = copy()
        h.update(b.to_bytes(2, "little") + raw[b * _BAND_BYTES : (b + 1) * _BAND_BYTES])
        out.append(from_bytes(h.digest(), "little", signed=True))  # signed: fits a SQL BIGINT
    return out


def band_keys(tokens: Sequence[str]) -> tuple[int, ...]:
    """The LSH band keys of ``tokens``: of the whole body and of its lead, sorted, unique.

    A band's index is part of its key, so one indexed column holds every band.  Whole
    and lead share the key space on purpose: a short copy's whole body *is* a lead, and
    must meet the original's lead bands.  Empty when ``tokens`` is (too short to judge).
    """
    return near_signature(tokens)[0]


def near_signature(tokens: Sequence[str]) -> tuple[tuple[int, ...], frozenset[int]]:
    """:func:`band_keys` and :func:`shingles` of ``tokens``, shingling the body once for both."""
    if not tokens:
        return (), frozenset()
    hashes = _shingle_hashes(tokens)
    whole = frozenset(hashes)
    # One pass of the hash functions for both signatures (a repeated shingle changes no
    # minimum): the lead's shingles are the first of the body's, shingles(tokens[:LEAD_WORDS]).
    permuted = _permuted(hashes)
    sigs = [permuted.min(axis=0)]
    if len(tokens) > LEAD_WORDS:
        sigs.append(permuted[: LEAD_WORDS - SHINGLE + 1].min(axis=0))
    keys = {key for sig in sigs for key in _band_keys_of(sig)}
    return tuple(sorted(keys)), whole


def story_lock_keys(url_key: str | None, text_hash: str | None, bands: Iterable[int]) -> set[int]:
    """The keys an item can join a story by, as signed 64-bit lock ids: its band keys,
    and hashes of its article URL and text keys (in the same space; a collision only
    makes two transactions wait for each other, never a wrong story)."""
    out = set(bands)
    for kind, value in (("u", url_key), ("t", text_hash)):
        if value:
            h = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8, person=b"ww-story-lock")
            out.add(int.from_bytes(h.digest(), "little", signed=True))
    return out


def containment(a: frozenset[int], b: frozenset[int]) -> float:
    """Share of the smaller shingle set that is also in the larger one (1.0 for a trimmed copy)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def is_near_duplicate(a: frozenset[int], b: frozenset[int]) -> bool:
    """Verified near-duplicates: enough shared shingles, and most of the smaller copy is in the larger."""
    shared = len(a & b)
    return shared >= min(MIN_SHARED, len(a), len(b)) and containment(a, b) >= CONTAINMENT


def verified_stories(item: frozenset[int], candidates: Iterable[tuple[int, frozenset[int]]]) -> set[int]:
    """Every story with a candidate that verifies as a near-duplicate of ``item``."""
    return {story_id for story_id, other in candidates if is_near_duplicate(item, other)}


def best_match(item: frozenset[int], candidates: Iterable[tuple[int, frozenset[int]]]) -> int | None:
    """The story of the candidate that verifies with the highest containment (lowest story id on ties)."""
    best: tuple[float, int] | None = None
    for story_id, other in candidates:
        if not is_near_duplicate(item, other):
            continue
        score = (containment(item, other), -story_id)
        if best is None or score > best:
            best = score
    return -best[1] if best is not None else None


# --- story assignment over a batch ------------------------------------------------------
#
# The store reads, once per batch, what the batch's new items could join (the oldest
# story per article URL and per text, and the recent items sharing LSH band keys with
# them); :func:`plan_stories` decides everything from that, and the store only applies
# the plan.  Items earlier in the batch are candidates for later ones, so copies of one
# story inside one batch land in one story without a round trip.

MAX_CANDIDATES = 10  # verified per item: the LSH ranks them by shared bands, so a real copy is near the top


@dataclass(frozen=True, slots=True, order=True)
class NewStory:
    """A story the plan opens; ``index`` orders new stories after every stored one."""

    index: int


StoryRef = int | NewStory  # a stored story's id, or a story this batch opens


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """A new item of the batch as story assignment sees it (its id is the database's)."""

    item_id: int
    url_key: str | None
    text_hash: str | None
    bands: tuple[int, ...]
    shingles: PackedShingles


@dataclass(frozen=True, slots=True)
class BandHit:
    """A stored item sharing the band ``key`` with the batch, and its story."""

    key: int
    item_id: int
    story_id: int


@dataclass(frozen=True, slots=True)
class StoryDecision:
    """Where one new item goes: its story, whether it opens it, and why it joined."""

    item_id: int
    story: StoryRef
    created: bool
    via: str  # "new" | "url" | "text" | "near"


@dataclass(frozen=True, slots=True)
class StoryPlan:
    """What the store applies, in order: open ``new_stories`` (each with its first item),
    fold each ``merges`` pair ``(into, gone)`` of stored stories, file the ``decisions``,
    and store ``bands`` (``(key, item_id)``; an exact text copy adds none)."""

    decisions: tuple[StoryDecision, ...]
    new_stories: tuple[tuple[NewStory, int], ...]
    merges: tuple[tuple[int, int], ...]
    bands: tuple[tuple[int, int], ...]


def _order(ref: StoryRef) -> tuple[int, int]:
    # Stored stories first, by id; then the batch's new ones in the order they opened:
    # the ids the database will give them keep that order, so ties break as they would
    # item by item.
    return (1, ref.index) if isinstance(ref, NewStory) else (0, ref)


def plan_stories(
    entries: Sequence[BatchEntry],
    by_url: Mapping[str, int],
    by_text: Mapping[str, int],
    hits: Iterable[BandHit],
    candidate_shingles: Mapping[int, PackedShingles],
) -> StoryPlan:
    """File each of ``entries`` (in order) into a story: the decision ingest used to make item by item.

    For each entry: the story holding the same article URL, else the same normalised
    text, else the best verified near-duplicate among the :data:`MAX_CANDIDATES` items
    sharing most band keys with it (stored items from ``hits``, and the batch's earlier
    entries), else a new story.  When its URL says one story and verified copies of its
    text sit in others, those stories merge into the oldest (a teaser had opened a story
    under the article's link that the full copies missed); a near-duplicate alone never
    merges.  ``by_url``/``by_text`` map exact keys to the oldest stored story holding
    them; ``candidate_shingles`` holds the shingles of every item in ``hits``.
    """
    parent: dict[StoryRef, StoryRef] = {}

    def find(ref: StoryRef) -> StoryRef:
        while ref in parent:
            ref = parent[ref]
        return ref

    urls: dict[str, StoryRef] = dict(by_url)
    texts: dict[str, StoryRef] = dict(by_text)
    by_band: dict[int, list[tuple[int, StoryRef]]] = {}
    for hit in hits:
        by_band.setdefault(hit.key, []).append((hit.item_id, hit.story_id))
    packed: dict[int, PackedShingles] = dict(candidate_shingles)
    unpacked: dict[int, frozenset[int]] = {}

    def shingles_of(item_id: int) -> frozenset[int]:
        sh = unpacked.get(item_id)
        if sh is None:
            sh = unpacked[item_id] = unpack_shingles(packed.get(item_id, b""))
        return sh

    merges: list[tuple[int, int]] = []
    chosen: list[tuple[BatchEntry, StoryRef, str]] = []
    bands: list[tuple[int, int]] = []
    opened = 0
    for entry in entries:
        story: StoryRef | None = None
        via = "new"
        if entry.url_key is not None and entry.url_key in urls:
            story, via = find(urls[entry.url_key]), "url"
        if story is None and entry.text_hash is not None and entry.text_hash in texts:
            story, via = find(texts[entry.text_hash]), "text"
        if story is None:
            via = "near"
        if entry.bands and via != "text":
            candidates = _candidates(entry.bands, by_band, shingles_of, find)
            # Unpacked only when there is something to verify against (most entries meet none).
            own: frozenset[int] = frozenset()
            if candidates:
                own = unpacked[entry.item_id] = unpack_shingles(entry.shingles)
            if story is None:
                story = _best(own, candidates)
            else:
                for other in sorted({s for i, s, sh in candidates if is_near_duplicate(own, sh)}, key=_order):
                    root = find(story)
                    if other == root:
                        continue
                    into, gone = sorted((root, other), key=_order)
                    parent[gone] = into
                    if not isinstance(gone, NewStory) and not isinstance(into, NewStory):
                        merges.append((into, gone))
                    story = into
        if story is None:
            story, via = NewStory(opened), "new"
            opened += 1
        if entry.url_key is not None:
            urls.setdefault(entry.url_key, story)
        if entry.text_hash is not None:
            texts.setdefault(entry.text_hash, story)
        if via != "text":
            for key in entry.bands:
                by_band.setdefault(key, []).append((entry.item_id, story))
                bands.append((key, entry.item_id))
        packed[entry.item_id] = entry.shingles
        chosen.append((entry, story, via))
    decisions: list[StoryDecision] = []
    firsts: dict[NewStory, int] = {}
    for entry, story, via in chosen:
        final = find(story)
        created = isinstance(final, NewStory) and final not in firsts
        if isinstance(final, NewStory):
            firsts.setdefault(final, entry.item_id)
        decisions.append(StoryDecision(entry.item_id, final, created, "new" if created else via))
    return StoryPlan(tuple(decisions), tuple(firsts.items()), tuple(merges), tuple(bands))


def _candidates(
    keys: Sequence[int],
    by_band: Mapping[int, list[tuple[int, StoryRef]]],
    shingles_of: Callable[[int], frozenset[int]],
    find: Callable[[StoryRef], StoryRef],
) -> list[tuple[int, StoryRef, frozenset[int]]]:
    """The items sharing most band keys with ``keys`` (newest first on ties), bounded."""
    shared: dict[int, int] = {}
    story_of: dict[int, StoryRef] = {}
    for key in keys:
        for item_id, story in by_band.get(key, ()):
            shared[item_id] = shared.get(item_id, 0) + 1
            story_of[item_id] = story
    ranked = sorted(shared, key=lambda i: (-shared[i], -i))[:MAX_CANDIDATES]
    return [(i, find(story_of[i]), shingles_of(i)) for i in ranked]


def _best(item: frozenset[int], candidates: Sequence[tuple[int, StoryRef, frozenset[int]]]) -> StoryRef | None:
    """The story of the candidate verifying with the highest containment (oldest story on ties)."""
    best: tuple[float, tuple[int, int]] | None = None
    story: StoryRef | None = None
    for _, ref, other in candidates:
        if not is_near_duplicate(item, other):
            continue
        order = _order(ref)
        score = (containment(item, other), (-order[0], -order[1]))
        if best is None or score > best:
            best, story = score, ref
    return story
