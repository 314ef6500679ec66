"""Ingest: store one poll's outcome, match the new items, and enqueue alerts, atomically.

Responsible for the middle of the pipeline.  For one :class:`PollOutcome` it opens one
transaction that updates the source's fetch state, inserts the items (the database
returns exactly the new ones), stores the rule matches of the new items and enqueues
their alerts.  Either all of it is committed or none: a crash mid-way leaves the source
due again with nothing half-written.  The source's schedule is adapted to what the poll
found (:mod:`monitor.core.schedule`); when a source has failed
``[alerts] source_failure_threshold`` times in a row, or has gone silent for far longer
than its rhythm, the operators are told once, after the commit.  It must not fetch
anything, and sends nothing but those operator notices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from monitor.config import SourceConfig
from monitor.core.delivery import first_delivery_time
from monitor.core.items import make_document, make_item
from monitor.core.models import PollOutcome
from monitor.core.policy import PollContext, decide_alerts, rule_applies
from monitor.core.schedule import Rhythm, adapt, bounds_for, is_silent, next_poll
from monitor.runtime import Runtime
from monitor.services.operators import notify_operators
from monitor.services.stories import StoryAssigner
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
    Shared by ingest (new items) and backfill (stored items, for a new rule).
    """
    doc = make_document(item.title, item.summary, item.text, item.language, item.title_derived)
    hits = [
        h
        for h in rt.matcher.match(doc)
        if h.rule in rt.rules
        and (only is None or h.rule in only)
        and rule_applies(rt.rules[h.rule], ctx.source, item.language)
    ]
    if not hits:
        return None
    store.insert_matches(conn, item.item_id, hits, now)
    config = rt.config
    alerts: list[NewAlert] = []
    for decision in decide_alerts(hits, rt.rules, ctx, published=item.published, first_seen=item.first_seen, now=now):
        sub = config.subscriber(decision.subscriber)
        when = (
            first_delivery_time(sub.mode, sub.digest_at, sub.timezone, now, severity=decision.severity) if sub else now
        )
        alerts.append(
            NewAlert(item.item_id, decision.rule, decision.subscriber, decision.severity, when, story_id=item.story_id)
        )
    return frozenset(h.rule for h in hits), alerts


class Ingestor:
    def __init__(self, store: SqlStore, runtime: Callable[[], Runtime], clock: Callable[[], datetime]) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.stories = StoryAssigner(store)

    def __call__(self, outcome: PollOutcome) -> IngestSummary:
        return self.ingest(outcome)

    def ingest(self, outcome: PollOutcome) -> IngestSummary:
        notices: list[tuple[str, str]] = []
        summary = self._ingest(outcome, notices)
        # After the commit: a slow mail server must not hold the database transaction.
        for subject, text in notices:
            notify_operators(self.runtime().config, subject, text)
        return summary

    def _ingest(self, outcome: PollOutcome, notices: list[tuple[str, str]]) -> IngestSummary:
        rt = self.runtime()
        config = rt.config
        now = self.clock()
        source_cfg = config.source(outcome.source)
        interval = source_cfg.interval if source_cfg else timedelta(minutes=10)
        language_hint = source_cfg.language if source_cfg else None

        with self.store.begin() as conn:
            row = conn.execute(
                select(
                    sources.c.first_success,
                    sources.c.consecutive_failures,
                    sources.c.poll_interval,
                    sources.c.last_new_item,
                    sources.c.mean_gap,
                    sources.c.silence_noticed,
                ).where(sources.c.id == outcome.source_id)
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
                # Exactly once per streak: the count passes the threshold only once
                # before a success resets it.
                if failures == config.alerts.source_failure_threshold:
                    notices.append(failure_notice(outcome, failures, due))
                return IngestSummary(outcome.source, "error", error=outcome.error, error_class=outcome.error_class)

            if outcome.status == "not_modified":
                self.store.update_source(
                    conn, outcome.source_id, self._success(outcome, row, source_cfg, 0, now, notices), now
                )
                return IngestSummary(outcome.source, "not_modified")

            items = [
                it
                for raw in outcome.items
                if (it := make_item(raw, now, language_hint or outcome.language)) is not None
            ]
            new = self.store.insert_new_items(conn, outcome.source_id, outcome.source, items, now)
            # Before matching: an alert is keyed by story, so later copies of a story add none.
            story_of = self.stories.assign(conn, new, now)
            self.store.update_source(
                conn, outcome.source_id, self._success(outcome, row, source_cfg, len(new), now, notices), now
            )
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
                result = match_item(
                    rt,
                    ctx,
                    MatchInput(
                        stored.id,
                        story_of[stored.id].story_id,
                        it.title,
                        it.summary,
                        it.text,
                        it.language,
                        it.published,
                        stored.first_seen,
                        it.title_derived,
                    ),
                    now,
                    store=self.store,
                    conn=conn,
                )
                if result is not None:
                    matched += 1
                    enqueued.extend(result[1])
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
