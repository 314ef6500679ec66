"""EnrichStage: rounds of claim → read article pages concurrently → record, off the event loop.

The enrichment stage of the pipeline (ARCHITECTURE.md, "Enrichment").  One round claims a
batch of items that want their article page (a lease in the database, on the control
executor), reads their pages side by side (``read``, injected by the composition root:
the process's FeedPoller and its one FetchPolicy bound each host), renews the claims'
lease while the pages are read, then records the batch in one short transaction on the
writer executor (the ingest stage's one thread, so a process still has one writer).  It
never blocks the event loop, and a cancelled round (a stop) loses nothing: its items stay
wanted and are claimed again once their lease lapses.  What a round *does* with the
database is :class:`monitor.services.enrich.Enricher`'s; this module only runs rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from monitor.services.enrich import Enricher, EnrichSummary, PageResult
from monitor.store.sql import TextTask

log = logging.getLogger(__name__)

# Renew a round's claims this often (a third of the lease, as for sources).
RENEW_SECONDS = 10.0


@dataclass
class EnrichStats:
    """What the stage did, for /metrics and `run --once`."""

    rounds: int = 0
    claimed: int = 0
    enriched: int = 0
    retrying: int = 0
    failed: int = 0
    matched: int = 0
    alerts: int = 0
    busy_seconds: float = 0.0

    def add(self, s: EnrichSummary) -> None:
        self.rounds += 1
        self.claimed += s.claimed
        self.enriched += s.enriched
        self.retrying += s.retrying
        self.failed += s.failed
        self.matched += s.matched
        self.alerts += s.alerts


class EnrichStage:
    def __init__(
        self,
        enricher: Enricher,
        read: Callable[[TextTask], Awaitable[PageResult]],
        *,
        control: Executor,
        writer: Executor,
        batch: int = 16,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.enricher = enricher
        self.read = read
        self.control = control
        self.writer = writer
        self.batch = batch
        self.renew_seconds = renew_seconds
        self.stats = EnrichStats()

    async def round(self) -> EnrichSummary:
        """Claim one batch, read its pages, record them; an empty summary when nothing is due."""
        loop = asyncio.get_running_loop()
        tasks = await loop.run_in_executor(self.control, self.enricher.claim, self.batch)
        if not tasks:
            return EnrichSummary()
        began = time.monotonic()
        renewer = asyncio.ensure_future(self._renew(tasks))
        try:
            results = await asyncio.gather(*(self.read(t) for t in tasks))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        summary = await loop.run_in_executor(self.writer, self.enricher.record, tasks, results)
        self.stats.add(summary)
        self.stats.busy_seconds += time.monotonic() - began
        log.info(
            "enrichment: %d article pages read, %d matched, %d alerts queued, %d to retry, %d failed",
            summary.enriched,
            summary.matched,
            summary.alerts,
            summary.retrying,
            summary.failed,
        )
        return summary

    async def drain(self, seconds: float) -> EnrichStats:
        """Rounds until nothing is due or ``seconds`` have passed (``run --once``); what they did."""
        deadline = time.monotonic() + seconds
        done = EnrichStats()
        while time.monotonic() < deadline:
            try:
                summary = await asyncio.wait_for(self.round(), max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                # The round's items stay claimed until their lease lapses: the next run reads them.
                log.warning("enrichment: stopped after %.0fs; the remaining pages are read by the next run", seconds)
                break
            if not summary.claimed:
                break
            done.add(summary)
        return done

    async def _renew(self, tasks: list[TextTask]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.renew_seconds)
            await loop.run_in_executor(self.control, self.enricher.renew, tasks)
