"""Dispatch: claim due alerts from the outbox, send them, and record what happened.

Responsible for delivery: lease due rows (so a second dispatcher, or a restart, never
sends a row another one holds), render, hand to the notifier, then mark each row sent,
pending again with a backoff, or failed (dead-lettered) after ``alerts.max_attempts``.
A subscriber's URLs are tracked one by one: a retry goes only to the URLs that failed.
Digest subscribers receive the alerts claimed together as one message.  The window
between a successful send and its mark is the one place an alert can be sent twice
(if the process dies exactly there); it is documented in ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from monitor.config import SubscriberConfig
from monitor.core.items import make_document
from monitor.core.render import AlertView, Message, render_alert, render_digest
from monitor.core.schedule import alert_retry_at
from monitor.notify.apprise import UrlResult
from monitor.runtime import Runtime
from monitor.store.sql import AlertRow, SqlStore

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)


class Notifier(Protocol):
    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]: ...


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def alert_view(row: AlertRow) -> AlertView:
    doc = make_document(row.title, row.summary, row.text, row.language)
    spans = tuple((s["field"], int(s["start"]), int(s["end"])) for s in row.spans)
    return AlertView(
        rule=row.rule,
        title=doc.title,
        url=row.url,
        source=row.source,
        published=row.published,
        first_seen=row.first_seen,
        body=doc.body,
        spans=spans,
        severity=row.severity,
    )


class Dispatcher:
    def __init__(
        self,
        store: SqlStore,
        notifier: Notifier,
        runtime: Callable[[], Runtime],
        clock: Callable[[], datetime],
        env: Mapping[str, str] | None = None,
        batch: int = 200,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.runtime = runtime
        self.clock = clock
        self.env = os.environ if env is None else env
        self.batch = batch

    def dispatch_due(self) -> DispatchSummary:
        """Send everything due now, batch after batch, until nothing is due."""
        total = DispatchSummary()
        while True:
            summary = self._dispatch_batch()
            total = DispatchSummary(
                total.claimed + summary.claimed,
                total.sent + summary.sent,
                total.retrying + summary.retrying,
                total.failed + summary.failed,
            )
            if summary.claimed < self.batch:
                return total

    def _dispatch_batch(self) -> DispatchSummary:
        config = self.runtime().config
        rows = self.store.claim_alerts(self.clock(), LEASE, self.batch)
        if not rows:
            return DispatchSummary()
        by_subscriber: dict[str, list[AlertRow]] = defaultdict(list)
        for row in rows:
            by_subscriber[row.subscriber].append(row)
        counts = {"sent": 0, "pending": 0, "failed": 0}
        for name, group in by_subscriber.items():
            sub = config.subscriber(name)
            if sub is None:
                for row in group:
                    self._mark(row, [], f"subscriber {name!r} is no longer in the config", counts, give_up=True)
                continue
            if sub.mode == "digest" and len(group) > 1:
                self._send_group(sub, group, counts)
            else:
                for row in group:
                    self._send_group(sub, [row], counts)
        summary = DispatchSummary(len(rows), counts["sent"], counts["pending"], counts["failed"])
        log.info(
            "dispatch: %d claimed, %d sent, %d to retry, %d failed", summary.claimed, summary.sent, summary.retrying, summary.failed
        )
        return summary

    def _send_group(self, sub: SubscriberConfig, group: list[AlertRow], counts: dict[str, int]) -> None:
        urls, missing = sub.resolve_urls(self.env)
        # Only the URLs every row of the group still needs; a digest goes out once per URL.
        delivered = set.intersection(*(set(r.delivered) for r in group))
        targets = [(i, url) for i, url in urls if i not in delivered]
        if len(group) == 1:
            message = render_alert(alert_view(group[0]), sub.timezone)
        else:
            message = render_digest([alert_view(r) for r in group], sub.timezone, sub.name)
        results = self.notifier.send(targets, message) if targets else []
        ok = {r.index for r in results if r.ok}
        errors = [r.error or "failed" for r in results if not r.ok]
        if missing:
            errors.append("environment variable(s) not set: " + ", ".join(sorted(set(missing))))
        for row in group:
            done = set(row.delivered) | ok
            all_indexes = set(range(len(sub.urls)))
            error = "; ".join(errors) if not all_indexes <= done else None
            self._mark(row, sorted(done), error, counts, give_up=False)
            if error:
                log.warning("alert %d (%s → %s): %s", row.id, row.rule, sub.name, error)
            else:
                log.info("alert %d (%s → %s): sent", row.id, row.rule, sub.name)

    def _mark(self, row: AlertRow, delivered: list[int], error: str | None, counts: dict[str, int], *, give_up: bool) -> None:
        now = self.clock()
        max_attempts = self.runtime().config.alerts.max_attempts
        if error is None:
            self.store.mark_alert(row.id, status="sent", now=now, delivered=delivered)
            counts["sent"] += 1
        elif give_up or row.attempts >= max_attempts:
            self.store.mark_alert(row.id, status="failed", now=now, delivered=delivered, error=error)
            counts["failed"] += 1
        else:
            retry = alert_retry_at(now, self.runtime().config.alerts.retry_backoff, row.attempts, row.id)
            self.store.mark_alert(row.id, status="pending", now=now, delivered=delivered, error=error, next_attempt=retry)
            counts["pending"] += 1

