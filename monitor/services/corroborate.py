"""Corroboration and surges: let held alerts go, queue story updates and surge messages, send them.

Responsible for the three things beside the ordinary outbox that depend on how a story
or a rule develops after an item was stored, all run by the dispatcher on its own
schedule (so only the injected clock moves them):

- **Held alerts.**  A rule with ``min_outlets`` / ``min_languages`` queues its alerts
  ``waiting``.  :meth:`Corroborator.release` reads each waiting row's story as stored
  now and makes it ``pending`` (an ordinary alert from there on: quiet hours, digests
  and rate limits apply) when any of its rules is satisfied, or when its ``max_wait``
  ran out (marked unconfirmed).
- **Updates.**  When a story already alerted to a subscriber reaches one of
  ``[alerts] corroboration_updates`` outlets, one *update* is queued for that subscriber
  and threshold.  What the alert said is taken as the story's outlets at its ``sent_at``.
- **Surges.**  At most once a minute, each rule's matches in the last hour are compared
  with its trailing 7-day hourly mean (:func:`monitor.core.corroboration.is_surge`);
  a surge queues one message per subscriber with the hour's top stories and 48 hourly
  counts, and the rule is quiet for ``surge_cooldown``.

Updates and surges are *bulletins*: rows of their own small outbox (``bulletins``) whose
``(subscriber, key)`` is unique, so each is queued once however many dispatchers or
restarts see the same crossing; they are leased, sent to every URL of the subscriber,
retried with the alert backoff and marked like alerts (a resend only when a process
dies between a send and its mark).  Quiet hours hold them; rate limits and digests do
not apply (there is at most one per story and threshold, and one per rule per cool-down).
The decisions are the core's; this module reads, asks and writes.  It must not match
items or decide alert policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from monitor.config import Config, SubscriberConfig
from monitor.core.corroboration import (
    HOUR,
    SURGE_CHART_HOURS,
    Requirement,
    SurgeCheck,
    hour_buckets,
    hourly_mean,
    is_surge,
    release,
    update_due,
)
from monitor.core.delivery import quiet_until
from monitor.core.render import Message, SurgeStory, render_surge, render_update
from monitor.core.schedule import alert_retry_at
from monitor.notify.apprise import UrlResult
from monitor.notify.chart import surge_chart
from monitor.services.views import alert_view
from monitor.store.sql import BulletinRow, SqlStore

log = logging.getLogger(__name__)

# Surges are judged at most this often (two indexed counts per rule each time).
SURGE_EVERY = timedelta(minutes=1)
# Stories last seen longer ago than this are not watched for updates.
UPDATE_WINDOW = timedelta(days=7)
# Stories listed in a surge message.
SURGE_TOP = 5


class Sender(Protocol):
    def send_one(self, index: int, url: str, message: Message, timeout: float | None = None) -> UrlResult: ...


@dataclass(frozen=True, slots=True)
class BulletinSummary:
    queued: int = 0
    sent: int = 0
    failed: int = 0


class Corroborator:
    def __init__(
        self,
        store: SqlStore,
        notifier: Sender,
        clock: Callable[[], datetime],
        env: Mapping[str, str],
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.env = env
        self._surges_checked: datetime | None = None

    # ------------------------------------------------------------------ held alerts

    def release(self, config: Config) -> tuple[int, int]:
        """Let waiting alerts go whose story got there or whose wait ran out; (confirmed, unconfirmed)."""
        waiting = self.store.waiting_alerts()
        if not waiting:
            return 0, 0
        now = self.clock()
        rules = {r.name: r for r in config.rules}
        reach = self.store.story_reach([w["item_id"] for w in waiting])
        decided: list[tuple[int, str]] = []
        for w in waiting:
            r = reach.get(w["item_id"])
            outlets, languages = (len(r.outlets), len(r.languages)) if r is not None else (1, 0)
            # A rule gone from the config, or no longer asking, holds nothing.
            reqs = [
                Requirement(rule.min_outlets, rule.min_languages) if (rule := rules.get(name)) else Requirement()
                for name in w["rules"]
            ]
            how = release(reqs, outlets, languages, w["wait_until"], now)
            if how is not None:
                decided.append((w["id"], how))
                log.info(
                    "alert %d (%s → %s): released, %s (%d outlets, %d languages)",
                    w["id"],
                    w["rule"],
                    w["subscriber"],
                    how,
                    outlets,
                    languages,
                )
        self.store.release_alerts(decided)
        unconfirmed = sum(how != "confirmed" for _, how in decided)
        return len(decided) - unconfirmed, unconfirmed

    # ------------------------------------------------------------------ queueing bulletins

    def queue_updates(self, config: Config) -> int:
        thresholds = config.alerts.corroboration_updates
        if not thresholds:
            return 0
        now = self.clock()
        grown = self.store.alerted_stories_grown(now - UPDATE_WINDOW)
        if not grown:
            return 0
        reaches = self.store.story_reaches([g[1] for g in grown])
        done = self.store.updates_done([g[1] for g in grown])
        rows = []
        for alert_id, story, subscriber, sent_at in grown:
            reach = reaches.get(story)
            if reach is None or config.subscriber(subscriber) is None:
                continue
            told = len(reach.as_of(sent_at).outlets)
            threshold = update_due(thresholds, told, len(reach.outlets), done.get((story, subscriber), ()))
            if threshold is not None:
                rows.append(
                    {
                        "kind": "update",
                        "subscriber": subscriber,
                        "key": f"update:{story}:{threshold}",
                        "story_id": story,
                        "payload": {"threshold": threshold, "alert_id": alert_id},
                    }
                )
        return self.store.add_bulletins(rows, now)

    def queue_surges(self, config: Config) -> int:
        alerts = config.alerts
        now = self.clock()
        if alerts.surge <= 0 or (self._surges_checked is not None and now - self._surges_checked < SURGE_EVERY):
            return 0
        self._surges_checked = now
        rules = [r for r in config.rules if r.notify]
        if not rules:
            return 0
        names = [r.name for r in rules]
        counts = self.store.surge_counts(names, now)
        last = self.store.last_surges(names)
        rows = []
        for rule in rules:
            last_hour, baseline = counts.get(rule.name, (0, 0))
            check = SurgeCheck(rule.name, last_hour, baseline, last.get(rule.name))
            if not is_surge(check, alerts.surge, alerts.surge_min, alerts.surge_cooldown, now):
                continue
            buckets = hour_buckets(
                self.store.match_times(rule.name, now - SURGE_CHART_HOURS * HOUR, now), now, SURGE_CHART_HOURS
            )
            top = self.store.top_stories(rule.name, now - HOUR, now, SURGE_TOP)
            reach = self.store.story_reaches([t["story_id"] for t in top if t["story_id"] is not None])
            stories = [
                {
                    "title": t["title"],
                    "url": t["url"],
                    "matches": t["matches"],
                    "outlets": len(reach[t["story_id"]].outlets) if t["story_id"] in reach else 1,
                }
                for t in top
            ]
            payload = {
                "last_hour": last_hour,
                "mean": hourly_mean(baseline),
                "factor": alerts.surge,
                "counts": list(buckets),
                "stories": stories,
                "detected": now.isoformat(),
            }
            # One key per cool-down period: two dispatchers that see the same surge queue it once.
            period = int(now.timestamp() // max(alerts.surge_cooldown.total_seconds(), 1))
            rows += [
                {"kind": "surge", "subscriber": sub, "key": f"surge:{rule.name}:{period}", "rule": rule.name}
                | {"payload": payload}
                for sub in rule.notify
            ]
            log.warning(
                "surge: rule %s matched %d times in the last hour (7-day mean %.1f/h); telling %s",
                rule.name,
                last_hour,
                payload["mean"],
                ", ".join(rule.notify),
            )
        return self.store.add_bulletins(rows, now)

    # ------------------------------------------------------------------ sending

    def send_due(self, config: Config, stopping: Callable[[], bool]) -> tuple[int, int]:
        """Send due bulletins one by one (they are rare); (sent, failed)."""
        now = self.clock()
        claimed = self.store.claim_bulletins(now, config.alerts.send_lease)
        sent = failed = 0
        timeout = config.alerts.send_timeout.total_seconds()
        for b in claimed:
            now = self.clock()
            sub = config.subscriber(b.subscriber)
            if sub is None:
                self.store.record_bulletin(b.id, status="failed", now=now, delivered=b.delivered, error="no subscriber")
                failed += 1
                continue
            if stopping():
                self.store.record_bulletin(b.id, status="pending", now=now, delivered=b.delivered, refund=True)
                continue
            end = quiet_until(now, sub.quiet_hours, sub.timezone)
            if end is not None:
                self.store.record_bulletin(
                    b.id, status="pending", now=now, delivered=b.delivered, next_attempt=end, refund=True
                )
                continue
            message = self._render(b, sub, config)
            if message is None:
                self.store.record_bulletin(b.id, status="failed", now=now, delivered=b.delivered, error="gone")
                failed += 1
                continue
            urls, missing = sub.resolve_urls(self.env)
            results = [self.notifier.send_one(i, url, message, timeout) for i, url in urls if i not in b.delivered]
            done = sorted(set(b.delivered) | {r.index for r in results if r.ok})
            errors = [r.error or "failed" for r in results if not r.ok]
            if missing:
                errors.append("environment variable(s) not set: " + ", ".join(sorted(set(missing))))
            now = self.clock()
            if set(range(len(sub.urls))) <= set(done):
                self.store.record_bulletin(b.id, status="sent", now=now, delivered=done)
                sent += 1
                log.info("%s %s → %s: sent", b.kind, b.key, b.subscriber)
            elif b.attempts >= config.alerts.max_attempts:
                self.store.record_bulletin(b.id, status="failed", now=now, delivered=done, error="; ".join(errors))
                failed += 1
                log.error("%s %s → %s: gave up: %s", b.kind, b.key, b.subscriber, "; ".join(errors))
            else:
                retry = alert_retry_at(now, config.alerts.retry_backoff, b.attempts, b.id)
                self.store.record_bulletin(
                    b.id, status="pending", now=now, delivered=done, error="; ".join(errors), next_attempt=retry
                )
                log.warning("%s %s → %s: retry at %s: %s", b.kind, b.key, b.subscriber, retry, "; ".join(errors))
        return sent, failed

    def _render(self, b: BulletinRow, sub: SubscriberConfig, config: Config) -> Message | None:
        ref = f"wirewatch.b{b.id}.{b.created_at.strftime('%Y%m%d%H%M%S')}"
        if b.kind == "update":
            rows = self.store.alert_rows(ids=[int(b.payload["alert_id"])], limit=1)
            if not rows:
                return None
            row = rows[0]
            reach = self.store.story_reach([row.item_id]).get(row.item_id)
            view = alert_view(row, reach, story_url=config.console.story_url(row.story_id))
            return render_update(view, sub.timezone, int(b.payload["threshold"]), ref=ref)
        p = b.payload
        rule = b.rule or "?"
        chart = surge_chart(p["counts"], float(p["mean"]), f"{rule}: matches per hour, last {len(p['counts'])} hours")
        stories = [SurgeStory(s["title"], s["url"], int(s["matches"]), int(s["outlets"])) for s in p["stories"]]
        detected = datetime.fromisoformat(p["detected"])
        return render_surge(
            rule, int(p["last_hour"]), float(p["mean"]), float(p["factor"]), stories, detected, sub.timezone, chart, ref
        )

    # ------------------------------------------------------------------ one pass

    def run(self, config: Config, stopping: Callable[[], bool]) -> BulletinSummary:
        """Queue what is owed and send what is due (after the dispatcher's alerts)."""
        queued = self.queue_updates(config) + self.queue_surges(config)
        sent, failed = self.send_due(config, stopping)
        return BulletinSummary(queued=queued, sent=sent, failed=failed)
