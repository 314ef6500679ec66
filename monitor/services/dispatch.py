"""Dispatch: plan each subscriber's due alerts, send them in a bounded pool, record the outcome.

Responsible for delivery.  For every subscriber with something due it opens one
transaction under a per-subscriber lock (:meth:`SqlStore.subscriber_transaction`), reads
*all* of that subscriber's due alerts (not a claim batch), asks the pure policy
(:func:`monitor.core.delivery.plan_delivery`) what to send now in which messages and what
to hold, records each message (``messages`` row, ``alerts.message_id``) and leases its
rows, and commits: two dispatchers can never both spend the last slot of ``max_per_hour``
or send two digests.  Then it renders each message and sends it, one URL at a time per
*lane* (a subscriber's URL), lanes side by side in its own bounded pool, each send bounded
by ``[alerts] send_timeout``, so one slow server never delays another subscriber or
another URL.  Leases are short (``[alerts] send_lease``, 30 s) and renewed while sends are
in flight, so a killed worker's alerts go out again within a minute.  It decides nothing
itself: timing and grouping live in the core, SQL in the store, channels in the notifier.

Outcomes, per message: every URL delivered → ``sent``; a failure → ``pending`` again with
a backoff, or ``failed`` (dead letter) after ``[alerts] max_attempts``; a send that timed
out (or dropped mid-send) is *unknown*: counted in ``unknown_sends``, resent once (with
the same email ``Message-ID``) when the row comes due again, which only happens while no
dispatcher has marked it; a second unknown leaves the row ``unknown`` for an operator.
URLs are tracked one by one: a retry goes only to the URLs that still need the message.

Marks: when a send succeeded and its mark cannot be written (a locked or read-only
database), the outcome stays in memory and is written first thing on every later run,
until it lands or the process dies; while marks fail, nothing is claimed or sent, and
:attr:`Dispatcher.write_error` says why (``/healthz`` reports it).  So an alert is resent
at most once per fault, and only when the process dies between a send and its mark.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection

from monitor.config import Config, SubscriberConfig
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
from monitor.errors import StorageError
from monitor.notify.apprise import UrlResult
from monitor.runtime import Runtime
from monitor.services.corroborate import Corroborator
from monitor.services.views import alert_view
from monitor.store.sql import AlertRow, DueRow, SqlStore

log = logging.getLogger(__name__)

# A row whose send timed out is resent this many times at most: a server that takes the
# message and answers late would otherwise receive one copy per attempt.
UNKNOWN_RESENDS = 1
# Sends in flight at once, over all subscribers (each blocks a thread for up to send_timeout).
SEND_POOL = 8
# How often an unmarked outcome is tried again while a caller waits for it.
MARK_RETRY_SECONDS = 1.0


class Notifier(Protocol):
    def send_one(self, index: int, url: str, message: Message, timeout: float | None = None) -> UrlResult: ...


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    claimed: int = 0  # rows leased for sending
    sent: int = 0  # rows delivered to every URL
    retrying: int = 0
    failed: int = 0  # dead-lettered
    held: int = 0  # rows put back by quiet hours or the rate limit
    messages: int = 0  # messages handed to the notifier (once per message, however many URLs)
    unknown: int = 0  # rows whose send timed out this run (resent once, then left ``unknown``)
    unmarked: int = 0  # outcomes still waiting to be written at the end of the run
    released: int = 0  # held alerts let go (their story got there, or their wait ran out)
    bulletins: int = 0  # story updates and surge messages sent

    def __add__(self, other: DispatchSummary) -> DispatchSummary:
        return DispatchSummary(
            self.claimed + other.claimed,
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.held + other.held,
            self.messages + other.messages,
            self.unknown + other.unknown,
            other.unmarked,
            self.released + other.released,
            self.bulletins + other.bulletins,
        )


def subscriber_policy(sub: SubscriberConfig) -> SubscriberPolicy:
    return SubscriberPolicy(
        mode=sub.mode, timezone=sub.timezone, max_per_hour=sub.max_per_hour, quiet_hours=sub.quiet_hours
    )


def message_ref(message_id: int, created: datetime) -> str:
    """The stable identity of one planned message (the email Message-ID's left part)."""
    return f"wirewatch.{message_id}.{created.strftime('%Y%m%d%H%M%S')}"


def render_message(kind: str, views: Sequence[AlertView], sub: SubscriberConfig, ref: str | None = None) -> Message:
    """The message of ``kind`` for ``views``; one alert always reads as an ordinary alert."""
    if len(views) == 1:
        return render_alert(views[0], sub.timezone, ref=ref)
    if kind == SUMMARY:
        return render_summary(views, sub.timezone, sub.name, sub.max_per_hour, ref=ref)
    if kind == QUIET:
        return render_held(views, sub.timezone, sub.name, ref=ref)
    if kind == DIGEST:
        return render_digest(views, sub.timezone, sub.name, ref=ref)
    return render_list(views, sub.timezone, f"[wirewatch] {sub.name}: {len(views)} alerts", ref=ref)


@dataclass(frozen=True, slots=True)
class _Planned:
    subscriber: str
    message_id: int
    kind: str
    ids: tuple[int, ...]


@dataclass
class _Job:
    """One planned message on its way out: its rows, its URLs, and what each URL answered."""

    sub: SubscriberConfig
    message_id: int
    kind: str
    rows: list[AlertRow]
    targets: list[tuple[int, str]]
    delivered: set[int]
    missing: list[str]
    message: Message | None = None
    results: dict[int, UrlResult | None] = field(default_factory=dict)  # None: not tried (stopping)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


@dataclass(frozen=True, slots=True)
class _Mark:
    """An outcome to write: kept in memory until the database takes it."""

    ids: tuple[int, ...]
    message_id: int
    status: str
    delivered: tuple[int, ...]
    error: str | None
    next_attempt: datetime | None
    unknown: bool
    accepted: bool
    now: datetime


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claimed = self.sent = self.retrying = self.failed = self.held = self.messages = self.unknown = 0
        self.released = self.bulletins = 0

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class Dispatcher:
    """Delivers the outbox; one per process.  ``dispatch_due`` runs in a worker thread;
    ``stop`` may be called from another thread (the daemon's, on SIGTERM)."""

    def __init__(
        self,
        store: SqlStore,
        notifier: Notifier,
        runtime: Callable[[], Runtime],
        clock: Callable[[], datetime],
        env: Mapping[str, str] | None = None,
        *,
        pool: int = SEND_POOL,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.runtime = runtime
        self.clock = clock
        self.env = os.environ if env is None else env
        self.pool = pool
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._run_lock = threading.Lock()  # one run at a time per process
        self._state = threading.Lock()
        self._unmarked: list[_Mark] = []
        self._inflight: set[int] = set()
        self.write_error: str | None = None  # the last write the database refused, until one lands
        # Held alerts, story updates and surges (monitor.services.corroborate).
        self.corroborator = Corroborator(store, notifier, clock, self.env)

    # ------------------------------------------------------------------ public API

    @property
    def pending_marks(self) -> int:
        with self._state:
            return len(self._unmarked)

    def dispatch_due(self, mark_patience: float = 0.0) -> DispatchSummary:
        """Plan and send everything due now; wait up to ``mark_patience`` s for refused marks."""
        with self._run_lock:
            self._idle.clear()
            try:
                return self._run(mark_patience)
            finally:
                self._idle.set()

    def stop(self, deadline: float) -> bool:
        """No new sends; let those in flight finish for up to ``deadline`` s and mark them.

        Messages not tried yet are put back, due at once; a send still in flight after the
        deadline keeps its lease and goes out again when that lapses.  Returns whether the
        dispatcher is idle.
        """
        self._stopping.set()
        idle = self._idle.wait(timeout=max(0.0, deadline))
        if idle:
            self._flush_marks()
        return idle

    # ------------------------------------------------------------------ one run

    def _run(self, mark_patience: float) -> DispatchSummary:
        counts = _Counts()
        if self._flush_marks() and not self._stopping.is_set():
            config = self.runtime().config
            try:
                # Held alerts whose story got there (or whose wait ran out) become due first.
                confirmed, unconfirmed = self.corroborator.release(config)
                counts.add(released=confirmed + unconfirmed)
                names = self.store.due_subscribers(self.clock())
            except StorageError as exc:
                self._refused(exc)
                names = []
            jobs: list[_Job] = []
            for name in names:
                if self._stopping.is_set():
                    break
                try:
                    planned = self._plan(name, config, counts)
                    jobs += self._prepare(planned, config)
                except StorageError as exc:
                    self._refused(exc)
                    break
            if jobs:
                self._send(jobs, config, counts)
            if not self._stopping.is_set() and not self.pending_marks:
                try:
                    b = self.corroborator.run(config, self._stopping.is_set)
                    counts.add(bulletins=b.sent)
                except StorageError as exc:
                    self._refused(exc)
        else:
            log.warning(
                "dispatch: %d outcome(s) not yet recorded (%s); not claiming or sending until they are",
                self.pending_marks,
                self.write_error,
            )
        waited_until = time.monotonic() + mark_patience
        while self.pending_marks and time.monotonic() < waited_until:
            time.sleep(MARK_RETRY_SECONDS)
            self._flush_marks()
        summary = DispatchSummary(
            counts.claimed,
            counts.sent,
            counts.retrying,
            counts.failed,
            counts.held,
            counts.messages,
            counts.unknown,
            self.pending_marks,
            counts.released,
            counts.bulletins,
        )
        if summary.claimed or summary.held or summary.unmarked or summary.released or summary.bulletins:
            log.info(
                "dispatch: %d claimed, %d messages, %d sent, %d held, %d to retry, %d unknown, %d failed, "
                "%d released from corroboration holds, %d updates/surges sent%s",
                summary.claimed,
                summary.messages,
                summary.sent,
                summary.held,
                summary.retrying,
                summary.unknown,
                summary.failed,
                summary.released,
                summary.bulletins,
                f", {summary.unmarked} outcomes not yet recorded" if summary.unmarked else "",
            )
        return summary

    def _plan(self, name: str, config: Config, counts: _Counts) -> list[_Planned]:
        """Plan all of one subscriber's due alerts in one locked transaction; lease what goes out."""
        sub = config.subscriber(name)
        with self.store.subscriber_transaction(name) as conn:
            now = self.clock()
            due = self.store.due_alerts(conn, name, now)
            if not due:
                return []
            if sub is None:
                error = f"subscriber {name!r} is no longer in the config"
                self.store.fail_in(conn, [r.id for r in due], now, error)
                counts.add(failed=len(due))
                log.warning("%d alert(s) for %s: %s", len(due), name, error)
                return []
            out = self._plan_locked(conn, sub, due, now, counts)
            ids = [i for p in out for i in p.ids]
            self.store.lease_in(conn, ids, now, config.alerts.send_lease)
            counts.add(claimed=len(ids))
        return out

    def _plan_locked(
        self, conn: Connection, sub: SubscriberConfig, due: list[DueRow], now: datetime, counts: _Counts
    ) -> list[_Planned]:
        # Rows already planned into a message (a retry, or a dispatcher that died after
        # planning) go out as that same message again: its content was decided once.
        planned: dict[int, list[DueRow]] = defaultdict(list)
        fresh: list[DueRow] = []
        for row in due:
            if row.message_id is not None:
                planned[row.message_id].append(row)
            else:
                fresh.append(row)
        out: list[_Planned] = []
        quiet_end = quiet_until(now, sub.quiet_hours, sub.timezone)
        for message_id, rows in planned.items():
            if quiet_end is not None and any(r.severity != "critical" for r in rows):
                # A retry that comes due in quiet hours waits for them to end, like anything else.
                self.store.hold_in(conn, [r.id for r in rows], until=quiet_end, reason=HELD_QUIET)
                counts.add(held=len(rows))
                continue
            out.append(_Planned(sub.name, message_id, rows[0].message_kind or SINGLE, tuple(r.id for r in rows)))
        if not fresh:
            return out
        recent = [RecentMessage(k, t) for k, t in self.store.recent_messages_in(conn, sub.name, now - RATE_WINDOW)]
        plan = plan_delivery(
            subscriber_policy(sub), [DueAlert(r.id, r.severity, r.hold_reason) for r in fresh], recent, now
        )
        for hold in plan.holds:
            self.store.hold_in(conn, hold.ids, until=hold.until, reason=hold.reason)
            counts.add(held=len(hold.ids))
            log.info(
                "%d alert(s) for %s held until %s (%s)", len(hold.ids), sub.name, hold.until.isoformat(), hold.reason
            )
        for send in plan.sends:
            message_id = self.store.plan_message_in(conn, sub.name, send.kind, send.ids, now)
            out.append(_Planned(sub.name, message_id, send.kind, send.ids))
        return out

    def _prepare(self, planned: list[_Planned], config: Config) -> list[_Job]:
        """Load the rows of planned messages and render them (after the lock is released)."""
        ids = [i for p in planned for i in p.ids]
        if not ids:
            return []
        rows = {r.id: r for r in self.store.alert_rows(ids=ids, limit=len(ids))}
        reach = self.store.story_reach([r.item_id for r in rows.values()])
        jobs = []
        for p in planned:
            sub = config.subscriber(p.subscriber)
            its = [rows[i] for i in p.ids if i in rows]
            if sub is None or not its:
                continue
            urls, missing = sub.resolve_urls(self.env)
            delivered = set.intersection(*(set(r.delivered) for r in its))
            views = [alert_view(r, reach.get(r.item_id), story_url=config.console.story_url(r.story_id)) for r in its]
            ref = message_ref(p.message_id, min(r.created_at for r in its))
            job = _Job(
                sub=sub,
                message_id=p.message_id,
                kind=p.kind,
                rows=its,
                targets=[(i, url) for i, url in urls if i not in delivered],
                delivered=delivered,
                missing=missing,
                message=render_message(p.kind, views, sub, ref),
            )
            jobs.append(job)
        with self._state:
            # Renewed from now on, until their outcome is recorded.
            self._inflight.update(i for job in jobs for i in job.ids)
        return jobs

    # ------------------------------------------------------------------ sending

    def _send(self, jobs: list[_Job], config: Config, counts: _Counts) -> None:
        timeout = config.alerts.send_timeout.total_seconds()
        lanes: dict[tuple[str, int], list[tuple[_Job, int, str]]] = defaultdict(list)
        for job in jobs:
            if not job.targets:
                self._finish(job, config, counts)
            for index, url in job.targets:
                lanes[(job.sub.name, index)].append((job, index, url))
        if not lanes:
            return
        renewing = threading.Event()
        renewer = threading.Thread(
            target=self._renew_leases, args=(renewing, config.alerts.send_lease), name="lease-renewer", daemon=True
        )
        renewer.start()
        try:
            with ThreadPoolExecutor(max_workers=self.pool, thread_name_prefix="wirewatch-send") as pool:
                futures = [pool.submit(self._lane, lane, timeout, config, counts) for lane in lanes.values()]
                wait(futures)
                for f in futures:
                    f.result()  # a bug in a lane is a bug: let it propagate
        finally:
            renewing.set()
            renewer.join()

    def _lane(self, lane: list[tuple[_Job, int, str]], timeout: float, config: Config, counts: _Counts) -> None:
        """One subscriber URL: its messages one after another, each within ``timeout``."""
        for job, index, url in lane:
            if self._stopping.is_set() or self.pending_marks:
                result: UrlResult | None = None  # not tried: stopping, or marks are being refused
            else:
                assert job.message is not None
                result = self.notifier.send_one(index, url, job.message, timeout)
            with job.lock:
                job.results[index] = result
                complete = len(job.results) == len(job.targets)
            if complete:
                self._finish(job, config, counts)

    def _finish(self, job: _Job, config: Config, counts: _Counts) -> None:
        """Decide the outcome of one message from its URLs' results and record it."""
        now = self.clock()
        results = [r for r in job.results.values() if r is not None]
        untried = [i for i, r in job.results.items() if r is None]
        ok = {r.index for r in results if r.ok}
        unknown = [r for r in results if r.unknown]
        errors = [r.error or "failed" for r in results if not r.ok]
        if job.missing:
            errors.append("environment variable(s) not set: " + ", ".join(sorted(set(job.missing))))
        done = sorted(job.delivered | ok)
        ids = job.ids
        rule = job.rows[0].rule
        what = f"alert {ids[0]}" if len(ids) == 1 else f"{job.kind} of {len(ids)} alerts (message {job.message_id})"
        if results:
            counts.add(messages=1)

        def outcome(status: str, error: str | None, next_attempt: datetime | None, unknown: bool) -> _Mark:
            return _Mark(tuple(ids), job.message_id, status, tuple(done), error, next_attempt, unknown, bool(ok), now)

        if set(range(len(job.sub.urls))) <= set(done):
            self._mark(outcome("sent", None, None, False))
            counts.add(sent=len(ids))
            log.info("%s (%s → %s): sent", what, rule, job.sub.name)
            return
        if untried and not errors:
            # Interrupted before its turn (stopping, or marks refused): due again at once,
            # as the same message; the lease it held was its attempt.
            self._mark(outcome("pending", None, now, False))
            with self._state:
                self._inflight.difference_update(ids)
            return
        error = "; ".join(errors) or "not delivered"
        attempts = max(r.attempts for r in job.rows)
        if unknown:
            counts.add(unknown=len(ids))
            if max(r.unknown_sends for r in job.rows) >= UNKNOWN_RESENDS:
                self._mark(outcome("unknown", error, None, True))
                log.error("%s (%s → %s): delivery unknown again, not resending: %s", what, rule, job.sub.name, error)
                return
        if attempts >= config.alerts.max_attempts:
            self._mark(outcome("failed", error, None, bool(unknown)))
            counts.add(failed=len(ids))
            log.error("%s (%s → %s): gave up after %d attempts: %s", what, rule, job.sub.name, attempts, error)
            return
        # One retry time for the whole message (jitter keyed by the message), so its rows
        # come due together and are resent as one message.
        retry = alert_retry_at(now, config.alerts.retry_backoff, attempts, job.message_id)
        self._mark(outcome("pending", error, retry, bool(unknown)))
        counts.add(retrying=len(ids))
        log.warning(
            "%s (%s → %s): attempt %d %s, retry at %s: %s",
            what,
            rule,
            job.sub.name,
            attempts,
            "unknown" if unknown else "failed",
            retry.isoformat(),
            error,
        )

    # ------------------------------------------------------------------ marks and leases

    def _write(self, m: _Mark) -> None:
        self.store.record_send(
            list(m.ids),
            message_id=m.message_id,
            status=m.status,
            now=m.now,
            delivered=m.delivered,
            error=m.error,
            next_attempt=m.next_attempt,
            unknown=m.unknown,
            accepted=m.accepted,
        )

    def _mark(self, m: _Mark) -> None:
        if self.pending_marks:
            # Order matters less than never losing one; the queue is flushed in order.
            with self._state:
                self._unmarked.append(m)
            self._flush_marks()
            return
        try:
            self._write(m)
        except StorageError as exc:
            with self._state:
                self._unmarked.append(m)
            self._refused(exc)
            log.error("alert(s) %s: outcome %r kept in memory, database refused it: %s", list(m.ids), m.status, exc)
            return
        self._landed(m)

    def _flush_marks(self) -> bool:
        """Write the outcomes the database refused before, in order; True when none is left."""
        while True:
            with self._state:
                if not self._unmarked:
                    return True
                m = self._unmarked[0]
            try:
                self._write(m)
            except StorageError as exc:
                self._refused(exc)
                return False
            with self._state:
                self._unmarked.pop(0)
            self._landed(m)
            log.info("alert(s) %s: outcome %r recorded after the database recovered", list(m.ids), m.status)

    def _landed(self, m: _Mark) -> None:
        with self._state:
            self._inflight.difference_update(m.ids)
            if not self._unmarked:
                self.write_error = None

    def _refused(self, exc: StorageError) -> None:
        with self._state:
            self.write_error = str(exc)

    def _renew_leases(self, done: threading.Event, lease: timedelta) -> None:
        """Keep the leases of sends in flight alive (every third of the lease)."""
        every = max(0.5, lease.total_seconds() / 3)
        while not done.wait(every):
            with self._state:
                ids = sorted(self._inflight)
            if not ids:
                continue
            try:
                self.store.renew_alert_leases(ids, self.clock() + lease)
            except StorageError as exc:
                self._refused(exc)
                log.warning("could not renew %d send lease(s): %s", len(ids), exc)
