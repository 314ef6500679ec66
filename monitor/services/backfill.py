"""Backfill: run a ``backfill = true`` rule over items already stored, once per query.

Responsible for the one exception to "rules see only items that arrive after them": a
rule marked ``backfill`` that is new, or whose query changed, is matched against stored
items first seen within ``[alerts] max_age``, and its matches alert like new ones (the
outbox's uniqueness per item and per story keeps anything already alerted from alerting
again).  Each (rule, query) is backfilled once: a row in ``rule_backfills`` records it,
so restarts and unrelated reloads do not repeat the work.  It must not fetch anything.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from monitor.config import Config, RuleConfig
from monitor.core.policy import PollContext
from monitor.core.rules import parse_query
from monitor.runtime import Runtime
from monitor.services.ingest import MatchInput, match_item
from monitor.store.sql import NewAlert, SqlStore

log = logging.getLogger(__name__)


def query_hash(query: str, clauses: Sequence[tuple[str, str]] = ()) -> str:
    """What a backfill is keyed on: the query and the text of each clause it uses.

    A query that uses no clause hashes as it always has, so a stored backfill stays done;
    one that does is backfilled again when any clause it uses changes.
    """
    text = query.strip() + "".join(f"\n[{name}] {body.strip()}" for name, body in clauses)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rule_hash(rule: RuleConfig, config: Config) -> str:
    return query_hash(rule.query, parse_query(rule.query, config.terms, config.clauses).clauses)


def run_backfills(store: SqlStore, runtime: Runtime, clock: Callable[[], datetime]) -> dict[str, int]:
    """Backfill every ``backfill`` rule whose current query has not been backfilled yet.

    Returns the number of stored items each backfilled rule matched.
    """
    config = runtime.config
    done = store.backfills_done()
    hashes = {r.name: rule_hash(r, config) for r in config.rules if r.backfill}
    pending = {name: h for name, h in hashes.items() if (name, h) not in done}
    if not pending:
        return {}
    now = clock()
    rows = store.recent_items(now - config.alerts.max_age, None, limit=1_000_000)
    only = frozenset(pending)
    matched = dict.fromkeys(pending, 0)
    with store.begin() as conn:
        queued: list[NewAlert] = []
        for row in rows:
            ctx = PollContext(
                source=row["source"], first_poll=False, first_poll_mode="alert", max_age=config.alerts.max_age
            )
            item = MatchInput(
                row["id"],
                row["story_id"],
                row["title"],
                row["summary"],
                row["text"],
                row["language"],
                row["published"],
                row["first_seen"],
                row["title_derived"],
            )
            result = match_item(runtime, ctx, item, now, store=store, conn=conn, only=only)
            if result is None:
                continue
            fired, alerts = result
            for rule in fired:
                matched[rule] += 1
            queued.extend(alerts)
        count = store.enqueue_alerts(conn, queued, now)
        for rule, digest in pending.items():
            store.record_backfill(conn, rule, digest, matched[rule], now)
    for rule, n in matched.items():
        log.info("backfill of rule %s: %d stored items matched", rule, n)
    log.info("backfill: %d alerts queued", count)
    return matched
