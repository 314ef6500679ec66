"""Ingest's CPU work over plain data, run inline or in worker processes.

Responsible for the two CPU-bound steps of :meth:`Ingestor.ingest_batch
<monitor.services.ingest.Ingestor.ingest_batch>` that lie between its reads: normalising
a batch of polls' raw entries into keyed items (:func:`normalise`), and, for the entries
the database does not hold yet, their dedupe fingerprints, MinHash band keys and
shingles, the rules they match and what the alert policy decides (:func:`analyse`).
Both are functions of their arguments alone (``now`` is passed in), so a worker process
computes exactly what the writer thread would: :class:`Inline` runs them in the caller's
thread, :class:`monitor.stages.cpu.CpuPool` in processes (off the GIL the event loop,
the status server and the claims need).

A worker process keeps the :class:`~monitor.runtime.Runtime` of the last config it was
sent, keyed by a token, and compiles a new one only when the token changes (a reload).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from monitor.config import Config
from monitor.core.dedupe import (
    Ambiguity,
    Fingerprint,
    PackedShingles,
    find_ambiguity,
    make_fingerprint,
    make_probe,
    near_signature,
    pack_shingles,
)
from monitor.core.items import make_document, make_item
from monitor.core.models import Item, RawItem, RuleHit, picklable
from monitor.core.policy import AlertDecision, PollContext, decide_alerts, rule_applies
from monitor.core.text import has_hangul
from monitor.runtime import Runtime, make_runtime


@picklable
@dataclass(frozen=True, slots=True)
class Document:
    """One poll's entries, normalised and keyed, with the values its entries share."""

    items: tuple[Item, ...]
    ambiguity: Ambiguity


@picklable
@dataclass(frozen=True, slots=True)
class Job:
    """An entry that may be new: what :func:`analyse` needs to judge it."""

    item: Item
    ambiguity: Ambiguity
    ctx: PollContext

    def hangul(self) -> bool:
        return has_hangul(self.item.title) or has_hangul(self.item.summary) or has_hangul(self.item.text)


@picklable
@dataclass(frozen=True, slots=True)
class Analysed:
    """What :func:`analyse` found for one :class:`Job` (the fingerprint without its words)."""

    fingerprint: Fingerprint
    bands: tuple[int, ...]
    shingles: PackedShingles
    hits: tuple[RuleHit, ...]
    decisions: tuple[AlertDecision, ...]


@picklable
@dataclass(frozen=True, slots=True)
class MatchJob:
    """An item to match again, with the article text enrichment found for it."""

    ctx: PollContext
    title: str
    summary: str
    text: str
    language: str | None
    title_derived: bool = False

    def hangul(self) -> bool:
        return has_hangul(self.title) or has_hangul(self.summary) or has_hangul(self.text)


def normalise(polls: Sequence[tuple[Sequence[RawItem], str | None]], now: datetime) -> list[Document]:
    """Each poll's raw entries (with its language hint) as items, and the values they share.

    Ambiguity is judged on the whole document, known entries included: a section link
    shared by many entries shows only when they are seen together.
    """
    out = []
    for raws, hint in polls:
        items = tuple(it for raw in raws if (it := make_item(raw, now, hint)) is not None)
        ambiguity = (
            find_ambiguity([make_probe(it.url, it.title, it.summary, it.text) for it in items])
            if items
            else Ambiguity()
        )
        out.append(Document(items, ambiguity))
    return out


def analyse(rt: Runtime, jobs: Sequence[Job], now: datetime) -> list[Analysed]:
    """Fingerprint, MinHash signature, matches and alert decisions of each job, in order."""
    out = []
    for job in jobs:
        it = job.item
        fp = make_fingerprint(it.url, it.title, it.summary, it.text, job.ambiguity)
        bands, sh = near_signature(fp.words)
        hits = match_hits(rt, job.ctx, it.title, it.summary, it.text, it.language, None, it.title_derived)
        decisions = (
            decide_alerts(hits, rt.rules, job.ctx, published=it.published, first_seen=now, now=now) if hits else []
        )
        # The words served the signature; the store keeps only the keys.
        out.append(Analysed(replace(fp, words=()), bands, pack_shingles(sh), tuple(hits), tuple(decisions)))
    return out


def match_hits(
    rt: Runtime,
    ctx: PollContext,
    title: str,
    summary: str,
    text: str,
    language: str | None,
    only: frozenset[str] | None = None,
    title_derived: bool = False,
) -> list[RuleHit]:
    """The rules that fire on an item and apply to its source and language (pure, no I/O).

    A derived title (the feed gave none) is not a title: ``title:`` clauses do not see it.
    """
    doc = make_document(title, summary, text, language, title_derived)
    return [
        h
        for h in rt.matcher.match(doc)
        if h.rule in rt.rules
        and (only is None or h.rule in only)
        and rule_applies(rt.rules[h.rule], ctx.source, language)
    ]


def match_all(rt: Runtime, jobs: Sequence[MatchJob]) -> list[tuple[RuleHit, ...]]:
    """:func:`match_hits` of each job, in order."""
    return [tuple(match_hits(rt, j.ctx, j.title, j.summary, j.text, j.language, None, j.title_derived)) for j in jobs]


class Analysis(Protocol):
    """Where ingest's and enrichment's CPU work runs: :class:`Inline`, or worker processes (``monitor.stages.cpu``)."""

    def normalise(self, polls: Sequence[tuple[Sequence[RawItem], str | None]], now: datetime) -> list[Document]: ...

    def analyse(self, rt: Runtime, jobs: Sequence[Job], now: datetime) -> list[Analysed]: ...

    def match(self, rt: Runtime, jobs: Sequence[MatchJob]) -> list[tuple[RuleHit, ...]]: ...


class Inline:
    """In the calling thread (the default: tests, short runs, small batches)."""

    def normalise(self, polls: Sequence[tuple[Sequence[RawItem], str | None]], now: datetime) -> list[Document]:
        return normalise(polls, now)

    def analyse(self, rt: Runtime, jobs: Sequence[Job], now: datetime) -> list[Analysed]:
        return analyse(rt, jobs, now)

    def match(self, rt: Runtime, jobs: Sequence[MatchJob]) -> list[tuple[RuleHit, ...]]:
        return match_all(rt, jobs)


# ---------------------------------------------------------------------- in a worker process

# The one Runtime a worker holds, under the token that names its compiled config.
_held: dict[int, Runtime] = {}


def reads_korean(config: Config) -> bool:
    """Whether ``config`` watches Korean text: a source or rule in Korean, or a Hangul word in its terms or rules."""
    if any(s.language == "ko" for s in config.sources) or any("ko" in r.languages for r in config.rules):
        return True
    words = [alias for aliases in config.terms.values() for alias in aliases] + [r.query for r in config.rules]
    words += config.clauses.values()
    return any(has_hangul(w) for w in words)


def config_blob(config: Config) -> bytes:
    """The config as a worker process receives it (pickled once per runtime, not per batch)."""
    return pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)


def _runtime(token: int, blob: bytes) -> Runtime:
    rt = _held.get(token)
    if rt is None:
        rt = make_runtime(pickle.loads(blob))  # noqa: S301 - our own pickle, from our parent process
        _held.clear()
        _held[token] = rt
    return rt


def analyse_in_worker(token: int, blob: bytes, jobs: Sequence[Job], now: datetime) -> list[Analysed]:
    """:func:`analyse` with the runtime of ``token``, compiled from ``blob`` the first time it is seen."""
    return analyse(_runtime(token, blob), jobs, now)


def match_in_worker(token: int, blob: bytes, jobs: Sequence[MatchJob]) -> list[tuple[RuleHit, ...]]:
    """:func:`match_all` with the runtime of ``token`` (see :func:`analyse_in_worker`)."""
    return match_all(_runtime(token, blob), jobs)
