"""Ingest: store one poll's outcome, match the new items, and enqueue alerts, atomically.

Responsible for the middle of the pipeline.  For one :class:`PollOutcome` it opens one
transaction that updates the source's fetch state, inserts the items (the database
returns exactly the new ones), stores the rule matches of the new items and enqueues
their alerts.  Either all of it is committed or none: a crash mid-way leaves the source
due again with nothing half-written.  It must not fetch or send anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from monitor.core.delivery import first_delivery_time
from monitor.core.items import make_document, make_item
from monitor.core.models import PollOutcome
from monitor.core.policy import PollContext, decide_alerts, rule_applies
from monitor.core.schedule import next_poll
from monitor.runtime import Runtime
from monitor.store.schema import sources
from monitor.store.sql import FetchUpdate, NewAlert, SqlStore

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


class Ingestor:
    def __init__(self, store: SqlStore, runtime: Callable[[], Runtime], clock: Callable[[], datetime]) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock

    def __call__(self, outcome: PollOutcome) -> IngestSummary:
        return self.ingest(outcome)

    def ingest(self, outcome: PollOutcome) -> IngestSummary:
        rt = self.runtime()
        config = rt.config
        now = self.clock()
        source_cfg = config.source(outcome.source)
        interval = source_cfg.interval if source_cfg else timedelta(minutes=10)
        language_hint = source_cfg.language if source_cfg else None

        with self.store.begin() as conn:
            row = conn.execute(
                select(sources.c.first_success, sources.c.consecutive_failures).where(sources.c.id == outcome.source_id)
            ).one()
            if outcome.status == "error":
                failures = row.consecutive_failures + 1
                retry_after = timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
                due = next_poll(
                    now,
                    interval,
                    failures=failures,
                    permanent=outcome.error_class == "permanent",
                    retry_after=retry_after,
                )
                self.store.update_source(
                    conn,
                    outcome.source_id,
                    FetchUpdate(success=False, error=outcome.error, error_class=outcome.error_class, next_due=due),
                    now,
                )
                log.warning(
                    "source %s: poll failed (%s, %d in a row): %s",
                    outcome.source,
                    outcome.error_class,
                    failures,
                    outcome.error,
                )
                return IngestSummary(outcome.source, "error", error=outcome.error)

            change = FetchUpdate(
                success=True,
                etag=outcome.etag,
                last_modified=outcome.last_modified,
                body_hash=outcome.body_hash,
                next_due=next_poll(now, interval),
            )
            self.store.update_source(conn, outcome.source_id, change, now)
            if outcome.status == "not_modified":
                return IngestSummary(outcome.source, "not_modified")

            items = [
                it
                for raw in outcome.items
                if (it := make_item(raw, now, language_hint or outcome.language)) is not None
            ]
            new = self.store.insert_new_items(conn, outcome.source_id, outcome.source, items, now)
            ctx = PollContext(
                source=outcome.source,
                first_poll=row.first_success is None,
                first_poll_mode=config.alerts.first_poll,
                max_age=config.alerts.max_age,
            )
            matched = 0
            enqueued: list[NewAlert] = []
            for stored in new:
                it = stored.item
                doc = make_document(it.title, it.summary, it.text, it.language)
                hits = [
                    h
                    for h in rt.matcher.match(doc)
                    if h.rule in rt.rules and rule_applies(rt.rules[h.rule], outcome.source, it.language)
                ]
                if not hits:
                    continue
                matched += 1
                self.store.insert_matches(conn, stored.id, hits, now)
                for decision in decide_alerts(
                    hits, rt.rules, ctx, published=it.published, first_seen=stored.first_seen, now=now
                ):
                    sub = config.subscriber(decision.subscriber)
                    when = first_delivery_time(sub.mode, sub.digest_at, sub.timezone, now) if sub else now
                    enqueued.append(NewAlert(stored.id, decision.rule, decision.subscriber, decision.severity, when))
            count = self.store.enqueue_alerts(conn, enqueued, now)
        summary = IngestSummary(outcome.source, "ok", len(outcome.items), len(new), matched, count)
        if outcome.warning:
            log.warning("source %s: %s", outcome.source, outcome.warning)
        log.info(
            "source %s: %d entries, %d new, %d matched, %d alerts queued%s",
            outcome.source,
            summary.entries,
            summary.new,
            summary.matched,
            summary.alerts,
            " (first poll: stored silently)" if ctx.first_poll and ctx.first_poll_mode == "silent" and new else "",
        )
        return summary
