"""Dispatch: claim due alerts from the outbox, apply the delivery policy, send, record.

Responsible for delivery.  It leases due rows (so a second dispatcher, or a restart,
never sends a row another one holds), asks the pure policy
(:func:`monitor.core.delivery.plan_delivery`) what to send now, in which messages, and
what to hold (quiet hours, ``max_per_hour``), records each message *before* sending it
(``messages`` row, ``alerts.message_id``), renders, hands it to the notifier, and marks
the rows sent, pending again with a backoff, or failed (dead-lettered) after
``alerts.max_attempts``.  A subscriber's URLs are tracked one by one: a retry goes only
to the URLs that failed, and resends the same message (the same summary, digest or
quiet-hours batch) rather than planning it again.  It decides nothing itself: timing and
grouping live in the core, SQL in the store, channels in the notifier.

Delivery guarantee: a row is sent at most once per URL, except in the window between a
successful send and its mark (if the process dies exactly there, the lease expires and
the message is sent again).  A process that dies between claiming and sending loses
nothing: the lease expires and the row is claimed again.  Documented in ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.config import SubscriberConfig
from monitor.core.delivery import (
    DIGEST,
    HELD_QUIET,
    QUIET,
    RATE_WINDOW,
    SINGLE,
    SUMMARY,
    DueAlert,
    RecentMessage,
    SubscriberPolicy,
    plan_delivery,
    quiet_until,
)
from monitor.core.items import make_document
from monitor.core.render import (
    AlertView,
    Message,
    render_alert,
    render_digest,
    render_held,
    render_list,
    render_summary,
)
from monitor.core.schedule import alert_retry_at
from monitor.notify.apprise import UrlResult
from monitor.runtime import Runtime
from monitor.store.sql import AlertRow, SqlStore

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]: ...


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    claimed: int = 0
    sent: int = 0  # rows delivered to every URL
    retrying: int = 0
    failed: int = 0
    held: int = 0  # rows put back by quiet hours or the rate limit
    messages: int = 0  # messages handed to the notifier

    def __add__(self, other: DispatchSummary) -> DispatchSummary:
        return DispatchSummary(
            self.claimed + other.claimed,
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.held + other.held,
            self.messages + other.messages,
        )


def alert_view(row: AlertRow, also_reported_by: tuple[str, ...] = ()) -> AlertView:
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
        also_reported_by=also_reported_by,
    )


def subscriber_policy(sub: SubscriberConfig) -> SubscriberPolicy:
    return SubscriberPolicy(
        mode=sub.mode, timezone=sub.timezone, max_per_hour=sub.max_per_hour, quiet_hours=sub.quiet_hours
    )


def render_message(kind: str, views: Sequence[AlertView], sub: SubscriberConfig) -> Message:
    """The message of ``kind`` for ``views``; one alert always reads as an ordinary alert."""
    if len(views) == 1:
        return render_alert(views[0], sub.timezone)
    if kind == SUMMARY:
        return render_summary(views, sub.timezone, sub.name, sub.max_per_hour)
    if kind == QUIET:
        return render_held(views, sub.timezone, sub.name)
    if kind == DIGEST:
        return render_digest(views, sub.timezone, sub.name)
    return render_list(views, sub.timezone, f"[wirewatch] {sub.name}: {len(views)} alerts")


class _Counts:
    def __init__(self) -> None:
        self.sent = self.retrying = self.failed = self.held = self.messages = 0


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
            total += summary
            if summary.claimed < self.batch:
                return total

    def _dispatch_batch(self) -> DispatchSummary:
        config = self.runtime().config
        rows = self.store.claim_alerts(self.clock(), config.alerts.send_lease, self.batch)
        if not rows:
            return DispatchSummary()
        by_subscriber: dict[str, list[AlertRow]] = defaultdict(list)
        for row in rows:
            by_subscriber[row.subscriber].append(row)
        counts = _Counts()
        for name, group in by_subscriber.items():
            sub = config.subscriber(name)
            if sub is None:
                error = f"subscriber {name!r} is no longer in the config"
                self.store.mark_alerts(
                    [r.id for r in group], status="failed", now=self.clock(), delivered=[], error=error
                )
                counts.failed += len(group)
                log.warning("%d alert(s) for %s: %s", len(group), name, error)
                continue
            self._dispatch_subscriber(sub, group, counts)
        summary = DispatchSummary(len(rows), counts.sent, counts.retrying, counts.failed, counts.held, counts.messages)
        log.info(
            "dispatch: %d claimed, %d messages, %d sent, %d held, %d to retry, %d failed",
            summary.claimed,
            summary.messages,
            summary.sent,
            summary.held,
            summary.retrying,
            summary.failed,
        )
        return summary

    def _dispatch_subscriber(self, sub: SubscriberConfig, group: list[AlertRow], counts: _Counts) -> None:
        now = self.clock()
        # Rows already planned into a message (a retry, or a dispatcher that died after
        # planning) go out as that same message again: its content was decided once.
        planned: dict[int, list[AlertRow]] = defaultdict(list)
        fresh: list[AlertRow] = []
        for row in group:
            if row.message_id is not None:
                planned[row.message_id].append(row)
            else:
                fresh.append(row)
        quiet_end = quiet_until(now, sub.quiet_hours, sub.timezone)
        for message_id, rows in planned.items():
            if quiet_end is not None and any(r.severity != "critical" for r in rows):
                # A retry that comes due in quiet hours waits for them to end, like anything else.
                self.store.hold_alerts([r.id for r in rows], until=quiet_end, reason=HELD_QUIET)
                counts.held += len(rows)
                continue
            self._send(sub, rows[0].message_kind or SINGLE, message_id, rows, counts)
        if not fresh:
            return
        recent = [RecentMessage(k, t) for k, t in self.store.recent_messages(sub.name, now - RATE_WINDOW)]
        due = [DueAlert(r.id, r.severity, r.hold_reason) for r in fresh]
        plan = plan_delivery(subscriber_policy(sub), due, recent, now)
        for hold in plan.holds:
            self.store.hold_alerts(hold.ids, until=hold.until, reason=hold.reason)
            counts.held += len(hold.ids)
            log.info(
                "%d alert(s) for %s held until %s (%s)", len(hold.ids), sub.name, hold.until.isoformat(), hold.reason
            )
        by_id = {r.id: r for r in fresh}
        for send in plan.sends:
            message_id = self.store.plan_message(sub.name, send.kind, send.ids, now)
            self._send(sub, send.kind, message_id, [by_id[i] for i in send.ids], counts)

    def _send(self, sub: SubscriberConfig, kind: str, message_id: int, rows: list[AlertRow], counts: _Counts) -> None:
        urls, missing = sub.resolve_urls(self.env)
        # Only the URLs every row still needs; a message goes out once per URL.
        delivered = set.intersection(*(set(r.delivered) for r in rows))
        targets = [(i, url) for i, url in urls if i not in delivered]
        # The story's other outlets as known at send time (a digest sends later, so knows more).
        message = render_message(kind, [alert_view(r, self.store.also_reported_by(r.item_id)) for r in rows], sub)
        results = self.notifier.send(targets, message) if targets else []
        counts.messages += 1 if targets else 0
        now = self.clock()
        ok = {r.index for r in results if r.ok}
        if ok:
            self.store.message_sent(message_id, now)
        errors = [r.error or "failed" for r in results if not r.ok]
        if missing:
            errors.append("environment variable(s) not set: " + ", ".join(sorted(set(missing))))
        done = sorted(delivered | ok)
        ids = [r.id for r in rows]
        what = f"alert {ids[0]}" if len(rows) == 1 else f"{kind} of {len(rows)} alerts (message {message_id})"
        if set(range(len(sub.urls))) <= set(done):
            self.store.mark_alerts(ids, status="sent", now=now, delivered=done)
            counts.sent += len(rows)
            log.info("%s (%s → %s): sent", what, rows[0].rule, sub.name)
            return
        error = "; ".join(errors) or "not delivered"
        alerts_config = self.runtime().config.alerts
        attempts = max(r.attempts for r in rows)
        if attempts >= alerts_config.max_attempts:
            self.store.mark_alerts(ids, status="failed", now=now, delivered=done, error=error)
            counts.failed += len(rows)
            log.error("%s (%s → %s): gave up after %d attempts: %s", what, rows[0].rule, sub.name, attempts, error)
            return
        # One retry time for the whole message (jitter keyed by the message), so its rows
        # come due together and are resent as one message.
        retry = alert_retry_at(now, alerts_config.retry_backoff, attempts, message_id)
        self.store.mark_alerts(ids, status="pending", now=now, delivered=done, error=error, next_attempt=retry)
        counts.retrying += len(rows)
        log.warning(
            "%s (%s → %s): attempt %d failed, retry at %s: %s",
            what,
            rows[0].rule,
            sub.name,
            attempts,
            retry.isoformat(),
            error,
        )
