"""Ingest: store a batch of polls, match the new items, and enqueue alerts, atomically per poll.

Responsible for the middle of the pipeline.  For a batch of :class:`PollOutcome` it
reads what it must know (source health, which entries are stored), does all the CPU
work outside any transaction (normalising, within-source repeats, MinHash fingerprints,
matching, alert policy), then writes in few transactions of a fixed number of statements
each: the items (the database returns exactly the new ones), their stories, matches and
alert rows, and every poll's fetch state.  A new item of a feed or sitemap source with no
text and no or a short summary is stored as wanting its article page (``text_state``:
the enrichment stage's durable queue, :mod:`monitor.services.enrich`); its teaser is
matched at once like any item.  A poll's fetch state commits with its last
item, so a crash leaves its source due with nothing half-written.  The source's schedule
is adapted to what the poll found (:mod:`monitor.core.schedule`); when a source has
failed ``[alerts] source_failure_threshold`` times in a row, or has gone silent for far
longer than its rhythm, the operators are told once, after the commit.  It must not
fetch anything, and sends nothing but those operator notices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from monitor.config import Config, SourceConfig
from monitor.core.corroboration import Requirement
from monitor.core.dedupe import BatchEntry, PackedShingles, repeats, story_lock_keys
from monitor.core.delivery import first_delivery_time
from monitor.core.items import text_wanted
from monitor.core.models import Item, PollOutcome, RuleHit
from monitor.core.policy import AlertDecision, PollContext, decide_alerts
from monitor.core.schedule import Rhythm, adapt, bounds_for, failure_notice_due, is_silent, next_poll
from monitor.logs import failure_line
from monitor.runtime import Runtime
from monitor.services.analysis import Analysis, Inline, Job, match_hits
from monitor.services.operators import notify_operators
from monitor.services.stories import StoryAssigner
from monitor.store.sql import STORY_LOCK_BUDGET, FetchUpdate, NewAlert, NewItemRow, SqlStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestSummary:
    source: str
    status: str
    entries: int = 0
    new: int = 0
    matched: int = 0
    alerts: int = 0
    error: str | None = None
    error_class: str | None = None


@dataclass(frozen=True, slots=True)
class MatchInput:
    """A stored item as matching and alerting see it."""

    item_id: int
    story_id: int | None
    title: str
    summary: str
    text: str
    language: str | None
    published: datetime | None
    first_seen: datetime
    title_derived: bool = False


def match_item(
    rt: Runtime,
    ctx: PollContext,
    item: MatchInput,
    now: datetime,
    *,
    store: SqlStore,
    conn: Connection,
    only: frozenset[str] | None = None,
) -> tuple[frozenset[str], list[NewAlert]] | None:
    """Match one stored item, store its matches; return the rules that fired and the alerts policy allows.

    ``None`` when no rule fired.  ``only`` restricts matching to some rules (a backfill).
    Used by backfill (stored items, for a new rule); ingest matches whole batches.
    """
    hits = match_hits(rt, ctx, item.title, item.summary, item.text, item.language, only, item.title_derived)
    if not hits:
        return None
    store.insert_matches(conn, item.item_id, hits, now)
    decisions = decide_alerts(hits, rt.rules, ctx, published=item.published, first_seen=item.first_seen, now=now)
    return frozenset(h.rule for h in hits), plan_alerts(rt, item.item_id, item.story_id, decisions, now)


def plan_alerts(
    rt: Runtime, item_id: int, story_id: int | None, decisions: Sequence[AlertDecision], now: datetime
) -> list[NewAlert]:
    """The outbox rows the policy's decisions for one stored item become, each with its first delivery time.

    The one place ingest, enrichment and backfill turn decisions into alerts; the store
    folds them into one row per story and subscriber (:meth:`SqlStore.enqueue_alerts`).
    A rule with ``min_outlets`` or ``min_languages`` gives its row a requirement, so the
    store queues it ``waiting`` (held for corroboration, at most ``max_wait``).
    """
    config = rt.config
    rules = {r.name: r for r in config.rules}
    out: list[NewAlert] = []
    for d in decisions:
        sub = config.subscriber(d.subscriber)
        when = first_delivery_time(sub.mode, sub.digest_at, sub.timezone, now, severity=d.severity) if sub else now
        rule = rules.get(d.rule)
        need = (
            Requirement(rule.min_outlets, rule.min_languages, now + rule.max_wait)
            if rule is not None and (rule.min_outlets > 1 or rule.min_languages > 1)
            else Requirement()
        )
        out.append(NewAlert(item_id, d.rule, d.subscriber, d.severity, when, story_id=story_id, need=need))
    return out


# Bounds per write transaction.  Items: SQLite has one writer, and a transaction of this
# many new items held its write lock for about a second on a loaded 2-core machine
# (2,000 held it 3.8 s; benchmarks/RESULTS.md, "Batched ingest").  Lock keys: each item
# takes ~34 advisory locks on PostgreSQL (its band keys, URL and text), each a slot in
# the shared lock table; see SqlStore.lock_story_keys.
MAX_TX_ITEMS = 500
MAX_TX_LOCKS = STORY_LOCK_BUDGET
# PostgreSQL's answers that roll one transaction back for a conflict with another, not for
# anything in the data (deadlock_detected, serialization_failure, lock_not_available): the
# same write is tried again, a little later.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
WRITE_ATTEMPTS = 3
CONFLICT_PAUSE = 0.05  # seconds, times the attempt
# Sources polled by the FeedPoller, whose items get their article pages from the enrichment stage.
TEXT_TYPES = frozenset({"feed", "sitemap"})


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An entry that may be new, with everything CPU-bound already computed (outside any transaction)."""

    poll: int
    row: NewItemRow
    bands: tuple[int, ...]
    shingles: PackedShingles
    hits: tuple[RuleHit, ...]
    alerts: tuple[AlertDecision, ...]
    locks: frozenset[int]


@dataclass(slots=True)
class PreparedBatch:
    """A batch after :meth:`Ingestor.prepare_batch`: what :meth:`Ingestor.write_batch` writes."""

    runtime: Runtime
    now: datetime
    polls: list[_Poll]
    candidates: list[_Candidate]


@dataclass(slots=True)
class _Poll:
    """One outcome of a batch and what ingest learnt about it so far."""

    outcome: PollOutcome
    source_cfg: SourceConfig | None
    row: Any
    ctx: PollContext | None = None
    new: int = 0
    matched: int = 0
    alerts: int = 0


class Ingestor:
    def __init__(
        self,
        store: SqlStore,
        runtime: Callable[[], Runtime],
        clock: Callable[[], datetime],
        *,
        max_tx_items: int = MAX_TX_ITEMS,
        max_tx_locks: int = MAX_TX_LOCKS,
        text_types: frozenset[str] = TEXT_TYPES,
        analysis: Analysis | None = None,
    ) -> None:
        self.store = store
        # Where the CPU work between the reads runs: this thread, or worker processes.
        self.analysis: Analysis = analysis or Inline()
        # Source types whose short items are queued for their article page (enrichment);
        # Scrapy's listing and spider sources read theirs within the crawl.
        self.text_types = text_types
        self.runtime = runtime
        self.clock = clock
        self.stories = StoryAssigner(store)
        self.max_tx_items = max_tx_items
        self.max_tx_locks = max_tx_locks

    def __call__(self, outcome: PollOutcome) -> IngestSummary:
        return self.ingest(outcome)

    def ingest(self, outcome: PollOutcome) -> IngestSummary:
        """One poll: :meth:`ingest_batch` of one."""
        return self.ingest_batch([outcome])[0]

    def ingest_batch(self, outcomes: Sequence[PollOutcome]) -> list[IngestSummary]:
        """Store a batch of polls; one summary per outcome, in order.

        Reads first (source health, which entries are stored, the sources' recent exact
        keys), then everything CPU-bound outside any transaction (normalising, within-
        source repeats, MinHash, matching, alert policy), then writes in as few
        transactions as the bounds allow (:data:`MAX_TX_ITEMS`, :data:`MAX_TX_LOCKS`),
        each a fixed number of statements.  A poll's fetch state commits in the
        transaction that holds its last item, so a crash leaves its source due with
        whatever was committed known (its alerts committed with it).  The two halves are
        :meth:`prepare_batch` and :meth:`write_batch`, which the ingest stage runs on two
        threads so that one batch is prepared while the one before is written.
        """
        return self.write_batch(self.prepare_batch(outcomes))

    def prepare_batch(self, outcomes: Sequence[PollOutcome]) -> PreparedBatch:
        """Everything before the first write: reads, and the CPU work (in workers when a CpuPool).

        Reads only what concerns the batch's own sources (and story candidates, read
        again inside the write), so it may run while an earlier batch of other sources is
        being written.
        """
        rt = self.runtime()
        now = self.clock()
        if not outcomes:
            return PreparedBatch(rt, now, [], [])
        polls, candidates = self._prepare(rt, outcomes, now)
        return PreparedBatch(rt, now, polls, candidates)

    def write_batch(self, prepared: PreparedBatch) -> list[IngestSummary]:
        """The write transactions of a prepared batch; one summary per outcome, in order."""
        rt, now, polls, candidates = prepared.runtime, prepared.now, prepared.polls, prepared.candidates
        if not polls:
            return []
        notices: list[tuple[str, str]] = []
        for chunk, finished in _chunks(
            candidates, len(polls), self.max_tx_items, self.max_tx_locks, self.store.dialect
        ):
            self._write_again_on_conflict(rt, polls, chunk, finished, now, notices)
        summaries = [self._summary(p) for p in polls]
        # After the commit: a slow mail server must not hold the database transaction.
        for subject, text in notices:
            notify_operators(rt.config, subject, text)
        return summaries

    # ------------------------------------------------------------------ before any lock

    def _prepare(
        self, rt: Runtime, outcomes: Sequence[PollOutcome], now: datetime
    ) -> tuple[list[_Poll], list[_Candidate]]:
        config = rt.config
        # Short read transactions, and the CPU work between them outside any transaction
        # (in worker processes when ``self.analysis`` is a CpuPool).
        with self.store.begin() as conn:
            health = self.store.source_health(conn, [o.source_id for o in outcomes])
        polls = [_Poll(o, config.source(o.source), health[o.source_id]) for o in outcomes]
        for p in polls:
            p.ctx = PollContext(
                source=p.outcome.source,
                first_poll=p.row.first_success is None,
                first_poll_mode=config.alerts.first_poll,
                max_age=config.alerts.max_age,
            )
        # Normalise; a feed may repeat a GUID within one document (or a batch hold two
        # polls of a source): the first copy wins, as the database would decide.
        documents = self.analysis.normalise(
            [
                (
                    p.outcome.items if p.outcome.status == "ok" else (),
                    (p.source_cfg.language if p.source_cfg else None) or p.outcome.language,
                )
                for p in polls
            ],
            now,
        )
        with self.store.begin() as conn:
            known = self.store.known_item_keys(
                conn,
                [(p.outcome.source_id, it.key) for p, doc in zip(polls, documents, strict=True) for it in doc.items],
            )
        taken = set(known)
        fresh: list[tuple[int, Item]] = []
        jobs: list[Job] = []
        for index, (p, doc) in enumerate(zip(polls, documents, strict=True)):
            sid = p.outcome.source_id
            assert p.ctx is not None
            for it in doc.items:
                if (sid, it.key) not in taken:
                    taken.add((sid, it.key))
                    fresh.append((index, it))
                    jobs.append(Job(it, doc.ambiguity, p.ctx))
        # Fingerprints, MinHash, matches and policy for every entry that may be new.
        analysed = self.analysis.analyse(rt, jobs, now) if jobs else []
        # Same URL, same text, or same title within days: not new either.  Read before
        # writing, which is safe because a source is polled by one worker at a time.
        with self.store.begin() as conn:
            seen = self.store.seen_entries(
                conn, [(polls[i].outcome.source_id, a.fingerprint) for (i, _), a in zip(fresh, analysed, strict=True)]
            )
        by_source: dict[int, list[int]] = {}
        for n, (i, _) in enumerate(fresh):
            by_source.setdefault(polls[i].outcome.source_id, []).append(n)
        repeat = [False] * len(fresh)
        for sid, members in by_source.items():
            flags = repeats([analysed[n].fingerprint for n in members], seen.get(sid, []), now)
            for n, flag in zip(members, flags, strict=True):
                repeat[n] = flag
        candidates = []
        for (i, it), a, rep in zip(fresh, analysed, repeat, strict=True):
            if rep:
                continue
            ctx = polls[i].ctx
            assert ctx is not None
            state, reason = self._text_state(polls[i], it, config)
            fp = a.fingerprint
            candidates.append(
                _Candidate(
                    i,
                    NewItemRow(
                        polls[i].outcome.source_id,
                        it,
                        fp,
                        text_state=state,
                        text_error=reason,
                        # Matches on its text, when it comes, are as silent as this poll.
                        text_silent=ctx.first_poll and ctx.first_poll_mode == "silent",
                    ),
                    a.bands,
                    a.shingles,
                    a.hits,
                    a.decisions,
                    frozenset(story_lock_keys(fp.url_key, fp.text_hash, a.bands)),
                )
            )
        # Shingle the stored candidates now, so the transaction below reads only ids.
        with self.store.begin() as conn:
            self.stories.prefetch(conn, {k for c in candidates for k in c.bands}, now)
        return polls, candidates

    def _text_state(self, p: _Poll, it: Item, config: Config) -> tuple[str | None, str | None]:
        """Whether the enrichment stage is to fetch the item's article page (state, reason skipped)."""
        fetch = config.fetch
        if (
            not (fetch.full_text and fetch.full_text_max)
            or p.source_cfg is None
            or p.source_cfg.type not in self.text_types
        ):
            return None, None
        wanted, reason = text_wanted(it.url, it.summary, it.text)
        return ("wanted", None) if wanted else ("skipped" if reason else None, reason)

    # ------------------------------------------------------------------ one write transaction

    def _write_again_on_conflict(
        self,
        rt: Runtime,
        polls: list[_Poll],
        chunk: Sequence[_Candidate],
        finished: Sequence[int],
        now: datetime,
        notices: list[tuple[str, str]],
    ) -> None:
        """:meth:`_write`, written again when PostgreSQL rolled it back for a conflict.

        A deadlock or serialization failure (:data:`CONFLICT_SQLSTATES`) undoes the one
        transaction and says nothing about the data: the same chunk is written again, up
        to :data:`WRITE_ATTEMPTS` times, with the counts it had added taken back.  Any
        other error, or a conflict that persists, goes to the caller (the earlier chunks
        stay committed, and the polls they finished with them).
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            counts = [(p.new, p.matched, p.alerts) for p in polls]
            queued_notices = len(notices)
            try:
                self._write(rt, polls, chunk, finished, now, notices)
                return
            except Exception as exc:
                state = conflict_state(exc)
                if state is None or attempt == WRITE_ATTEMPTS:
                    raise
                for p, (new, matched, alerts) in zip(polls, counts, strict=True):
                    p.new, p.matched, p.alerts = new, matched, alerts
                del notices[queued_notices:]
                log.warning(
                    "ingest: the database rolled back a write of %d items (SQLSTATE %s); writing it again (%d of %d)",
                    len(chunk),
                    state,
                    attempt + 1,
                    WRITE_ATTEMPTS,
                )
                time.sleep(CONFLICT_PAUSE * attempt)

    def _write(
        self,
        rt: Runtime,
        polls: list[_Poll],
        chunk: Sequence[_Candidate],
        finished: Sequence[int],
        now: datetime,
        notices: list[tuple[str, str]],
    ) -> None:
        taken: list[int] = []
        try:
            with self.store.begin() as conn:
                ids = self.store.insert_items(conn, [c.row for c in chunk], now)
                taken.extend(ids.values())
                new = [
                    (ids[(c.row.source_id, c.row.item.key)], c)
                    for c in chunk
                    if (c.row.source_id, c.row.item.key) in ids
                ]
                # Before alerting: an alert is keyed by story, so later copies of a story add none.
                story_of = self.stories.assign_entries(
                    conn,
                    [
                        BatchEntry(i, c.row.fingerprint.url_key, c.row.fingerprint.text_hash, c.bands, c.shingles)
                        for i, c in new
                    ],
                    {i: c.row.item.title for i, c in new},
                    now,
                )
                self.store.insert_match_rows(conn, [(i, hit) for i, c in new for hit in c.hits], now)
                queued: list[NewAlert] = []
                for i, c in new:
                    queued.extend(plan_alerts(rt, i, story_of[i].story_id, c.alerts, now))
                count = self.store.enqueue_alerts(conn, queued, now)
                for _, c in new:
                    polls[c.poll].new += 1
                    polls[c.poll].matched += bool(c.hits)
                with_alerts = {c.poll for _, c in new if c.alerts}
                if len(with_alerts) == 1:
                    polls[with_alerts.pop()].alerts += count
                elif count:
                    per_item = self.store.alerts_per_item(conn, [i for i, c in new if c.alerts])
                    for i, c in new:
                        polls[c.poll].alerts += per_item.get(i, 0)
                self.store.update_sources(
                    conn,
                    [(polls[n].outcome.source_id, self._fetch_update(polls[n], now, notices)) for n in finished],
                    now,
                )
        except Exception:
            # Rolled back: the ids it took may be given again (SQLite reuses rowids), so
            # the shingles cached for them must go.
            self.stories.forget(taken)
            raise

    def _fetch_update(self, p: _Poll, now: datetime, notices: list[tuple[str, str]]) -> FetchUpdate:
        outcome = p.outcome
        config = self.runtime().config
        if outcome.status == "error":
            failures = p.row.consecutive_failures + 1
            interval = p.source_cfg.interval if p.source_cfg else timedelta(minutes=10)
            retry_after = timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
            due = next_poll(
                now,
                interval,
                failures=failures,
                permanent=outcome.error_class == "permanent",
                retry_after=retry_after,
            )
            log.warning("%s", failure_line(outcome.source, outcome.error, failures, due, now))
            # Exactly once per streak: the first failure that reaches the count or the
            # time (see core/schedule.failure_notice_due).
            if failure_notice_due(
                now,
                failures=failures,
                threshold=config.alerts.source_failure_threshold,
                failing_since=p.row.failing_since,
                last_polled=p.row.last_polled,
                after=config.alerts.source_failure_after,
            ):
                notices.append(failure_notice(outcome, failures, due))
            return FetchUpdate(success=False, error=outcome.error, error_class=outcome.error_class, next_due=due)
        return self._success(outcome, p.row, p.source_cfg, p.new, now, notices)

    def _summary(self, p: _Poll) -> IngestSummary:
        outcome = p.outcome
        if outcome.status == "error":
            return IngestSummary(outcome.source, "error", error=outcome.error, error_class=outcome.error_class)
        if outcome.status == "not_modified":
            return IngestSummary(outcome.source, "not_modified")
        summary = IngestSummary(outcome.source, "ok", len(outcome.items), p.new, p.matched, p.alerts)
        if outcome.warning:
            log.warning("source %s: %s", outcome.source, outcome.warning)
        silent = p.ctx is not None and p.ctx.first_poll and p.ctx.first_poll_mode == "silent" and p.new
        log.info(
            "source %s: %d entries, %d new, %d matched, %d alerts queued%s",
            outcome.source,
            summary.entries,
            summary.new,
            summary.matched,
            summary.alerts,
            " (first poll: stored silently)" if silent else "",
        )
        return summary

    def _success(
        self,
        outcome: PollOutcome,
        row: Any,
        source_cfg: SourceConfig | None,
        new_items: int,
        now: datetime,
        notices: list[tuple[str, str]],
    ) -> FetchUpdate:
        """The source's new fetch state after a successful poll: adaptive interval and health."""
        fetch = self.runtime().config.fetch
        interval = source_cfg.interval if source_cfg else timedelta(minutes=10)
        bounds = bounds_for(
            interval,
            source_cfg.min_interval if source_cfg else None,
            source_cfg.max_interval if source_cfg else None,
            floor=fetch.min_interval,
            ceiling=fetch.max_interval,
            adaptive=fetch.adaptive,
        )
        floor = timedelta(seconds=outcome.min_interval) if outcome.min_interval else None
        mean_gap = timedelta(seconds=row.mean_gap) if row.mean_gap is not None else None
        rhythm = adapt(
            now,
            bounds,
            current=timedelta(seconds=row.poll_interval) if row.poll_interval else None,
            new_items=new_items,
            last_new_item=row.last_new_item,
            mean_gap=mean_gap,
            floor=floor,
        )
        if row.first_success is None:
            # A first poll's entries are the backlog, not a sign of how often it publishes.
            rhythm = Rhythm(max(bounds.interval, floor) if floor else bounds.interval, None)
        silence_noticed = None
        if new_items == 0 and row.silence_noticed is None and is_silent(now, row.last_new_item, mean_gap):
            silence_noticed = now
            notices.append(silence_notice(outcome.source, row.last_new_item, mean_gap))
        return FetchUpdate(
            success=True,
            etag=outcome.etag,
            last_modified=outcome.last_modified,
            body_hash=outcome.body_hash,
            next_due=now + rhythm.interval,
            poll_interval=int(rhythm.interval.total_seconds()),
            min_interval=int(floor.total_seconds()) if floor else None,
            mean_gap=int(rhythm.mean_gap.total_seconds()) if rhythm.mean_gap is not None else None,
            new_items=new_items > 0,
            silence_noticed=silence_noticed,
            warning=outcome.warning,
        )


def conflict_state(exc: BaseException) -> str | None:
    """The SQLSTATE of ``exc`` (or of the error it wraps) when it is a conflict worth a retry."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(getattr(seen, "orig", None), "sqlstate", None) or getattr(seen, "sqlstate", None)
        if state in CONFLICT_SQLSTATES:
            return str(state)
        seen = seen.__cause__
    return None


def _chunks(
    candidates: Sequence[_Candidate], polls: int, max_items: int, max_locks: int, dialect: str
) -> list[tuple[list[_Candidate], list[int]]]:
    """Cut a batch into write transactions; each with the polls whose fetch state it commits.

    A transaction holds at most ``max_items`` candidates and, on PostgreSQL, at most
    ``max_locks`` distinct story lock keys.  A poll's fetch state goes with its last item
    (a poll with none goes with the first transaction), so its lease is released only
    once everything it brought is stored.
    """
    chunks: list[list[_Candidate]] = [[]]
    locks: set[int] = set()
    last: dict[int, int] = {}
    for c in candidates:
        current = chunks[-1]
        grown = len(locks | c.locks) if dialect == "postgresql" else 0
        if current and (len(current) >= max_items or grown > max_locks):
            chunks.append([])
            locks = set()
        chunks[-1].append(c)
        if dialect == "postgresql":
            locks |= c.locks
        last[c.poll] = len(chunks) - 1
    finished: list[list[int]] = [[] for _ in chunks]
    for n in range(polls):
        finished[last.get(n, 0)].append(n)
    return list(zip(chunks, finished, strict=True))


def failure_notice(outcome: PollOutcome, failures: int, due: datetime) -> tuple[str, str]:
    return (
        f"[wirewatch] source {outcome.source} has failed {failures} times in a row",
        (
            f"Source {outcome.source} has failed {failures} polls in a row.\n"
            f"Last error ({outcome.error_class}): {outcome.error}\n"
            f"It is still polled, with backoff; next attempt at {due.isoformat()}.\n"
            "See `wirewatch sources` for its health."
        ),
    )


def silence_notice(source: str, last_new_item: datetime | None, mean_gap: timedelta | None) -> tuple[str, str]:
    since = last_new_item.isoformat() if last_new_item else "never"
    rhythm = f"{mean_gap.total_seconds() / 3600:.1f} h" if mean_gap else "unknown"
    return (
        f"[wirewatch] source {source} has gone silent",
        (
            f"Source {source} answers but has published nothing new since {since}; "
            f"it usually publishes every {rhythm}. The feed may have moved or stopped updating."
        ),
    )
