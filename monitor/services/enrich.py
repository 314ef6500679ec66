"""Enrichment: claim items that want their article page, then store the text and match again.

Responsible for the two database ends of the enrichment stage.  :meth:`Enricher.claim`
leases a batch of wanted items (sources take turns, at most ``[fetch] full_text_max`` of
one source per batch).  :meth:`Enricher.record` takes what their pages gave and, with the
matching done first outside any transaction, writes it in one short transaction of a
fixed number of statements: the texts (or the failures: retried with backoff, then
failed with their reason), the matches found on the whole article (the spans of matches
already stored move with the body), and the alerts, planned by the same policy and code
as ingest (:func:`monitor.services.ingest.plan_alerts`).  The outbox's unique keys keep a
story to one alert per subscriber, so a rule that already alerted on the teaser adds
nothing; a silent first poll stays silent (``items.text_silent``).  It must not fetch
anything: the stage hands it what the pages gave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.core.items import MAX_TEXT, body_offset, clean_text
from monitor.core.models import RuleHit, Span
from monitor.core.policy import PollContext, decide_alerts
from monitor.core.schedule import text_retry_at
from monitor.runtime import Runtime
from monitor.services.analysis import Analysis, Inline, MatchJob
from monitor.services.ingest import plan_alerts
from monitor.store.sql import NewAlert, SqlStore, TextTask, TextUpdate

log = logging.getLogger(__name__)

# A claim's lease: renewed while the batch's pages are read (see the stage), so a worker
# killed with -9 leaves its items due again within this long.
TEXT_LEASE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class PageResult:
    """What reading one claimed item's page gave (:class:`crawler.enrich.Article` as plain data)."""

    text: str = ""
    error: str | None = None
    final: bool = False  # trying again cannot help: fail now
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class EnrichSummary:
    claimed: int = 0
    enriched: int = 0  # got their text
    retrying: int = 0
    failed: int = 0
    matched: int = 0  # enriched items on which a rule fired
    alerts: int = 0  # alert rows queued


class Enricher:
    def __init__(
        self,
        store: SqlStore,
        runtime: Callable[[], Runtime],
        clock: Callable[[], datetime],
        analysis: Callable[[], Analysis] = Inline,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        # Where the texts are matched: the process's CPU pool when it has one (the
        # daemon hands over the ingestor's), else this thread.
        self.analysis = analysis

    def claim(self, limit: int, lease: timedelta = TEXT_LEASE) -> list[TextTask]:
        """Lease up to ``limit`` due items, at most ``[fetch] full_text_max`` per source."""
        per_source = self.runtime().config.fetch.full_text_max
        return self.store.claim_texts(self.clock(), lease, limit, per_source)

    def renew(self, tasks: Sequence[TextTask], lease: timedelta = TEXT_LEASE) -> int:
        return self.store.renew_text_leases([t.item_id for t in tasks], self.clock() + lease)

    def record(self, tasks: Sequence[TextTask], results: Sequence[PageResult]) -> EnrichSummary:
        """Store what the pages of ``tasks`` gave, match the texts again and queue their alerts."""
        if not tasks:
            return EnrichSummary()
        rt = self.runtime()
        now = self.clock()
        updates: list[TextUpdate] = []
        read: list[tuple[TextTask, str]] = []
        retrying = failed = 0
        for task, result in zip(tasks, results, strict=True):
            # Bounded and cleaned as make_item bounds a text that came with the feed.
            text = clean_text(result.text)[:MAX_TEXT]
            if text:
                updates.append(TextUpdate(task.item_id, "done", text=text))
                read.append((task, text))
                continue
            retry_after = timedelta(seconds=result.retry_after) if result.retry_after else None
            due = None if result.final else text_retry_at(now, task.attempts, retry_after)
            if due is None:
                failed += 1
                updates.append(TextUpdate(task.item_id, "failed", error=result.error))
                log.info("article of item %d (source %s) not read: %s", task.item_id, task.source, result.error)
            else:
                retrying += 1
                updates.append(TextUpdate(task.item_id, "wanted", due=due, error=result.error))
        # Matched before the transaction, so no lock is held through it.
        jobs = [MatchJob(_context(rt, t), t.title, t.summary, text, t.language, t.title_derived) for t, text in read]
        hits_of = self.analysis().match(rt, jobs) if jobs else []
        found = {t.item_id: (t, text, list(hits)) for (t, text), hits in zip(read, hits_of, strict=True)}
        with self.store.begin() as conn:
            # PostgreSQL: the stories' rows first, in id order, as ingest takes them before
            # writing alerts, so the two queue on a shared story instead of deadlocking.
            self.store.lock_story_rows(conn, {t.story_id for t, _, _ in found.values() if t.story_id is not None})
            stored = self.store.store_texts(conn, updates)
            # Matches already stored (on the teaser) whose rule does not fire on the whole
            # article keep their spans, moved to where the summary now sits in the body.
            before = self.store.match_spans(conn, [i for i, (_, _, hits) in found.items() if i in stored])
            rows: list[tuple[int, RuleHit]] = []
            queued: list[NewAlert] = []
            matched = 0
            for item_id, (task, text, hits) in found.items():
                if item_id not in stored:
                    continue  # read twice (a lapsed lease): the other read recorded it
                matched += bool(hits)
                rows.extend((item_id, h) for h in hits)
                fired = {h.rule for h in hits}
                shift = body_offset(task.summary, text)
                for rule, spans in before.get(item_id, {}).items():
                    if rule not in fired and shift:
                        rows.append((item_id, _shifted(rule, spans, shift)))
                decisions = decide_alerts(
                    hits,
                    rt.rules,
                    _context(rt, task),
                    published=task.published,
                    first_seen=task.first_seen,
                    now=now,
                )
                queued.extend(plan_alerts(rt, item_id, stored[item_id], decisions, now))
            self.store.insert_match_rows(conn, rows, now, update_spans=True)
            alerts = self.store.enqueue_alerts(conn, queued, now)
        return EnrichSummary(
            claimed=len(tasks),
            enriched=len(stored),
            retrying=retrying,
            failed=failed,
            matched=matched,
            alerts=alerts,
        )


def _context(rt: Runtime, task: TextTask) -> PollContext:
    """The policy's view of the poll that stored the item (a silent first poll stays silent)."""
    return PollContext(
        source=task.source,
        first_poll=task.silent,
        first_poll_mode="silent",
        max_age=rt.config.alerts.max_age,
    )


def _shifted(rule: str, spans: Sequence[dict[str, object]], shift: int) -> RuleHit:
    moved = []
    for s in spans:
        start, end = int(str(s["start"])), int(str(s["end"]))
        if s["field"] == "body":
            start, end = start + shift, end + shift
        moved.append(Span(str(s["field"]), start, end, str(s.get("text", ""))))
    return RuleHit(rule, tuple(moved))
