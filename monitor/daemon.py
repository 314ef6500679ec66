"""The daemon and the one-shot cycle: Scrapy, APScheduler and the services on one loop.

Responsible for *when* things run: which sources are due, one poll per batch of due
sources (never two polls of one source at once: a source is leased while it is polled)
through the process's long-lived clients (the FeedPoller, and one Scrapy crawler per
spider fed targets), a per-batch timeout, the dispatcher every few seconds, config
reloads on SIGHUP and on a file change, retention, and a graceful stop on SIGTERM/SIGINT
(crawlers are stopped, the items already handed to the pipeline are committed, then the
process exits 0).
Twisted's asyncio reactor must be installed before anything imports the reactor, so
:func:`run_on_reactor` is the daemon's entry point; :func:`run_cycle_loop` runs one cycle
on it, or on plain asyncio when no Scrapy crawl is due.  What a poll *does* lives in the
services; this module only schedules.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from monitor.app import App, utcnow
from monitor.core.models import PollOutcome, PollTarget
from monitor.errors import StorageError, WirewatchError
from monitor.logs import cycle_summary
from monitor.services.analysis import Inline, reads_korean
from monitor.services.backfill import run_backfills
from monitor.services.dispatch import DispatchSummary
from monitor.services.enrich import Enricher, PageResult
from monitor.services.ingest import IngestSummary
from monitor.services.operators import notify_operators
from monitor.stages.batch import BatchStage
from monitor.stages.cpu import CpuPool
from monitor.stages.enrich import EnrichStage, EnrichStats
from monitor.store.sql import SourceState, TextTask
from monitor.workers import CHILD_OF, WorkerProcesses, worker_argv, worker_count

if TYPE_CHECKING:
    from monitor.console.server import WebServer

log = logging.getLogger(__name__)

REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# A tick is one cheap UPDATE … RETURNING that claims due sources; a short tick keeps the
# delay between a source falling due and its poll small.
TICK_SECONDS = 1.0
DISPATCH_SECONDS = 5.0
RELOAD_SECONDS = 2.0
# The least a process may hold claimed at once (see IN_FLIGHT_PER_CONNECTION).
BATCH = 100
# Sources one process holds claimed at once (polls in flight, their outcomes waiting for
# ingest), as a multiple of `[fetch] concurrency`: enough to keep the fetchers and the
# ingest writer busy, few enough that a source falling due during a cold load of
# thousands is claimed at the next tick (live sources first) and waits behind this many
# polls at most, not behind the whole backlog (139 s for a mid-load item before).
IN_FLIGHT_PER_CONNECTION = 4
# The ingest stage: up to INGEST_BATCH polls with entries per transaction, gathered for at
# most INGEST_LINGER seconds once the first is queued (or until the crawl flushes); at most
# INGEST_QUEUE polls wait (beyond, fetchers wait: back-pressure, and bounded memory on a
# cold poll of thousands of feeds).
INGEST_BATCH = 64
# A poll with nothing new (a 304, an error) is one row of a bulk UPDATE: it weighs
# 1/NOTHING_NEW_PER_POLL of a poll with entries, so a warm poll's batch holds up to 256.
NOTHING_NEW_PER_POLL = 4
INGEST_LINGER = 0.05
INGEST_QUEUE = 256
# Feed outcomes on their way to the ingest queue at once, at most.
HANDOFF_LIMIT = 256
# `run --once` analyses a batch of fewer new entries than this in its own process rather
# than start the CPU workers for it: a cron poll of 1,000 feeds finding 150 new items ran
# 5 processes (a forkserver, two workers, each loading the Korean model) for 6.0-6.7 CPU s
# and 534-539 MiB in all; now one, 5.6-5.9 CPU s and 429 MiB (2026-12-07).
ONCE_POOL_START = 256
# The enrichment stage: a round every ENRICH_SECONDS (when the last one is done) claims at
# most half of `[fetch] concurrency` article pages, so polls keep the other half of the
# connections; `run --once` reads what its poll queued for at most ENRICH_ONCE_SECONDS.
ENRICH_SECONDS = 1.0
ENRICH_ONCE_SECONDS = 120.0
# The daemon's GIL switch interval (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.001
# An ingest batch committed within this many seconds stands for /healthz's write check.
WRITE_PROOF_SECONDS = 10.0
# A polled source's lease is short and renewed while its crawl runs, so a worker killed
# with -9 releases its sources to the others within about a minute.
SOURCE_LEASE = timedelta(seconds=60)
RENEW_SECONDS = 20.0
# How long a stop waits for in-flight polls to commit; well inside compose's 60 s grace
# period and the systemd unit's TimeoutStopSec.
STOP_SECONDS = 20.0
# How long a stop waits for a running scheduler job (a claim, a dispatch) to finish.
JOB_DRAIN_SECONDS = 10.0
# /healthz turns 503 when sources are being polled but none has succeeded for this long.
HEALTHY_SILENCE = timedelta(hours=1)
# `run --once`: how long to keep retrying outcomes the database refused before exiting.
ONCE_MARK_PATIENCE = 60.0


def run_cycle_loop(main: Callable[[], Coroutine[Any, Any, int]], *, scrapy: bool) -> int:
    """Run one cycle (``run --once``): on Twisted's reactor when a Scrapy crawl is among its
    sources, else on a plain asyncio loop (Scrapy and Twisted are ~0.2 s of start-up)."""
    if scrapy:
        return run_on_reactor(main)
    settle_gc()  # as run_on_reactor
    return asyncio.run(main())


# Young collections after 10,000 net allocations instead of CPython's 700.  A cold poll
# allocates millions of short-lived tuples and lists (rows, band keys) while it holds
# large live sets (candidate shingles): at 700 the collector ran so often that a tenth of
# the writer thread's time went to it, holding the GIL against the poller and the
# hand-offs to the CPU workers.  At 1,000 feeds x 30: main process 22.0 -> 18.0 CPU s,
# plan_stories 2.3 -> 1.2 s (benchmarks/RESULTS.md).  Cyclic garbage still goes, later.
GC_THRESHOLDS = (10_000, 10, 10)


def settle_gc() -> None:
    """Once start-up is done: freeze what it built, and collect young objects less often.

    Everything imported and configured so far lives as long as the process: frozen, it is
    out of the collector's reach, so full collections stop re-scanning it (the collector
    was the hottest single function in warm-poll profiles).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_on_reactor(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Install the asyncio reactor, run ``main`` to completion on it, return its exit code."""
    from scrapy.utils.reactor import install_reactor

    install_reactor(REACTOR)
    from twisted.internet import defer
    from twisted.internet import reactor as installed

    reactor: Any = installed  # the interface types do not describe the asyncio reactor's run()

    result: dict[str, Any] = {"code": 1}

    def start() -> None:
        d = defer.Deferred.fromFuture(asyncio.ensure_future(main()))

        def done(value: Any) -> None:
            if isinstance(value, BaseException) or hasattr(value, "value"):
                failure = value
                exc = getattr(failure, "value", failure)
                result["error"] = exc
            else:
                result["code"] = value
            reactor.stop()

        d.addBoth(done)

    reactor.callLater(0, start)
    settle_gc()
    # Our own handlers stop gracefully; Twisted's would stop the reactor mid-ingest.
    reactor.run(installSignalHandlers=False)
    if "error" in result:
        raise result["error"]
    return int(result["code"])


@dataclass
class CycleReport:
    polled: list[IngestSummary] = field(default_factory=list)
    dispatch: DispatchSummary = field(default_factory=DispatchSummary)
    enriched: EnrichStats = field(default_factory=EnrichStats)


class Poller:
    """Runs crawls for batches of sources and records an outcome for every one of them."""

    def __init__(
        self,
        app: App,
        owner: str,
        ingest: BatchStage[PollOutcome, IngestSummary],
        control: Executor,
        progress: Callable[[IngestSummary], None] | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self.app = app
        # Worker processes for parsing (and, through the Ingestor, analysis) under load.
        self.cpu = cpu
        self.owner = owner
        # The ingest stage: one writer per process, batching across polls.  Fetchers hand
        # it outcomes and go on downloading; they never wait on the database themselves.
        self.ingest = ingest
        # Claims and lease renewals run here, never behind an ingest or a parse.
        self.control = control
        self.progress = progress
        # The long-lived Scrapy crawlers, one per spider name (crawler/live.py), each made
        # with the policy of its [fetch]; those of an earlier one finish in ``retiring``.
        self.live: dict[str, Any] = {}
        self.live_starting: dict[str, asyncio.Future[None]] = {}
        self.retiring: set[asyncio.Task[None]] = set()
        self.spider_loader: Any = None
        # Scrapy crawlers started by this process (one per spider unless [fetch] changes).
        self.scrapy_starts = 0
        self.stopped = False
        self.policy: Any = None
        self.feed_poller: Any = None
        self.fetch_config: Any = None
        self.retired: list[Any] = []
        # Sources whose poll the database refused to store (source id → the error): nothing
        # of theirs was recorded, so they are polled again; their leases are released as
        # soon as the database answers (``release_unstored``).
        self.unstored: dict[int, StorageError] = {}
        # Article pages are reduced to their text here (trafilatura: CPU work, off the loop):
        # a thread, and the CPU workers once pages queue up.
        self.extract_pool: Executor = (
            cpu.extract_executor() if cpu is not None else ThreadPoolExecutor(1, thread_name_prefix="extract")
        )

    def targets(self, states: list[SourceState]) -> list[PollTarget]:
        config = self.app.config
        # A Telegram preview shows ~20 messages a page.  A first poll pages back through
        # [alerts] max_age (the backlog); later polls page back to the last success, so a
        # burst of posts between two polls is not lost.  Nothing older can alert anyway.
        horizon = utcnow() - config.alerts.max_age
        out = []
        for st in states:
            cfg = config.source(st.name)
            since = None
            if st.type == "telegram":
                since = horizon if st.last_success is None else max(horizon, st.last_success)
            out.append(
                PollTarget(
                    source_id=st.id,
                    name=st.name,
                    type=st.type,
                    url=st.url,
                    etag=st.etag,
                    last_modified=st.last_modified,
                    body_hash=st.body_hash,
                    language=cfg.language if cfg else None,
                    max_body=config.fetch.max_body,
                    since=since,
                )
            )
        return out

    def _clients(self) -> tuple[Any, Any]:
        """The process's FetchPolicy and FeedPoller, made anew when ``[fetch]`` changes on reload."""
        from crawler.egress import EgressPolicy
        from crawler.policy import FetchPolicy
        from crawler.poller import FeedPoller

        fetch = self.app.config.fetch
        if self.feed_poller is None or self.fetch_config != fetch:
            if self.feed_poller is not None:
                self.retired.append(self.feed_poller)
            self.policy = FetchPolicy.from_config(fetch)
            self.feed_poller = FeedPoller(
                self.policy,
                concurrency=fetch.concurrency,
                timeout=fetch.timeout.total_seconds(),
                egress=EgressPolicy.from_config(fetch).refusal,
                executor=self.cpu.parse_executor() if self.cpu is not None else None,
                client=fetch.client,
            )
            self.fetch_config = fetch
        return self.policy, self.feed_poller

    async def close(self) -> None:
        if self.live or self.retiring:
            await self.stop()
        for poller in [*self.retired, self.feed_poller]:
            if poller is not None:
                await poller.close()
        self.retired.clear()
        self.feed_poller = None
        self.extract_pool.shutdown(wait=False, cancel_futures=True)

    async def read_page(self, task: TextTask) -> PageResult:
        """The article text of one claimed item, through the process's FeedPoller (the enrichment stage's ``read``)."""
        from crawler.enrich import read_article

        _, poller = self._clients()

        async def page(
            url: str, source_url: str
        ) -> tuple[int | None, bytes, str | None, str | None, str | None, float | None]:
            got = await poller.fetch_page(url, source_url=source_url)
            return got.status, got.body, got.headers.get("content-type"), got.error, got.error_class, got.retry_after

        article = await read_article(page, task.url, task.source_url, self.extract_pool)
        return PageResult(article.text, article.error, article.final, article.retry_after)

    async def _poll_feeds(self, targets: list[PollTarget], ingest: Callable[[PollOutcome], Awaitable[None]]) -> None:
        """Feed, sitemap and telegram sources through the aiohttp FeedPoller into ingest.

        Each outcome goes on to the ingest queue as a task of its own, so the poller never
        waits on a commit; at most HANDOFF_LIMIT such hand-offs are open at once
        (back-pressure on the poller).  Article pages are not read here: ingest queues
        the items that want theirs, and the enrichment stage reads them.
        """
        from crawler.enrich import with_field_warnings

        _, poller = self._clients()
        slots = asyncio.Semaphore(HANDOFF_LIMIT)
        handoffs: set[asyncio.Task[None]] = set()

        async def handoff(outcome: PollOutcome) -> None:
            try:
                await ingest(with_field_warnings(outcome))
            finally:
                slots.release()

        async for outcome in poller.poll(targets):
            await slots.acquire()
            task = asyncio.ensure_future(handoff(outcome))
            handoffs.add(task)
            task.add_done_callback(handoffs.discard)
        if handoffs:
            await asyncio.sleep(0)  # the last hand-offs queue their outcomes first
            await self.ingest.flush()  # then the last batch need not linger for more
            await asyncio.gather(*handoffs, return_exceptions=True)

    async def _feeds_within(
        self, targets: list[PollTarget], ingest: Callable[[PollOutcome], Awaitable[None]], timeout: float
    ) -> None:
        try:
            await asyncio.wait_for(self._poll_feeds(targets, ingest), timeout)
        except TimeoutError:
            log.warning("poll of %d feeds exceeded %.0fs; stopping it", len(targets), timeout)

    async def crawl(self, targets: list[PollTarget], timeout: float) -> list[IngestSummary]:
        """Poll ``targets`` (feeds, sitemaps and Telegram channels with the FeedPoller, the rest with Scrapy).

        A target with no outcome (the poll timed out or was stopped) is recorded as failed.
        """
        from monitor.core.models import POLLED_TYPES

        if not targets or self.stopped:
            # Stopping: the claimed sources stay leased until the lease runs out, then are due again.
            return []
        summaries: list[IngestSummary] = []
        seen: set[int] = set()

        async def ingest(outcome: PollOutcome) -> None:
            seen.add(outcome.source_id)
            try:
                summary = await self.ingest.put(outcome)
            except StorageError as exc:
                # Not stored, and neither was the source's fetch state: the same items are
                # fetched again by the next poll.  The rest of the crawl goes on.
                self.unstored[outcome.source_id] = exc
                return
            except Exception as exc:
                # Any other failure of the batch (the ingest stage logged its traceback) is
                # no quieter: the poll is as unstored, its lease is released, and `run
                # --once` exits non-zero instead of reporting a clean cycle.
                self.unstored[outcome.source_id] = StorageError(
                    f"the poll of {outcome.source} was not stored: {type(exc).__name__}: {exc}"[:500]
                )
                return
            summaries.append(summary)
            if self.progress is not None:
                self.progress(summary)

        feeds = [t for t in targets if t.type in POLLED_TYPES]
        targets_for_scrapy = [t for t in targets if t.type not in POLLED_TYPES]
        renewer = asyncio.ensure_future(self._renew_leases([t.source_id for t in targets], seen))
        try:
            jobs = []
            if feeds:
                jobs.append(asyncio.ensure_future(self._feeds_within(feeds, ingest, timeout)))
            if targets_for_scrapy:
                # Scrapy stops its own crawl at the timeout (and hands over what it has).
                jobs.append(asyncio.ensure_future(self._scrapy(targets_for_scrapy, ingest, timeout)))
            await asyncio.gather(*jobs)
        finally:
            renewer.cancel()
        for t in targets:
            if t.source_id not in seen:
                outcome = PollOutcome(
                    source_id=t.source_id,
                    source=t.name,
                    status="error",
                    error="poll did not complete (crawl timed out or was stopped)",
                    error_class="temporary",
                )
                await ingest(outcome)
        return summaries

    async def _scrapy(
        self, targets: list[PollTarget], ingest: Callable[[PollOutcome], Awaitable[None]], timeout: float
    ) -> None:
        """Listing and spider sources, fed to the process's long-lived Scrapy crawlers.

        One crawler per spider class (crawler/live.py), started on first use and kept open
        while idle, so its robots.txt cache and 429/503 backoff hold across ticks (per-host
        slots and spacing are the process FetchPolicy's, shared with the FeedPoller).
        Returns once every target has its outcome ingested, or at ``timeout``: the targets
        still out are abandoned (``crawl`` records them failed), and the crawler goes on
        serving the other targets and later ticks.
        """
        from crawler.spiders.base import SourceOptions
        from crawler.spiders.feeds import FeedSpider

        config = self.app.config
        options: dict[int, SourceOptions] = {}
        # Feeds, sitemaps and listing pages share one spider; each named site spider has a
        # crawler of its own beside it (all of them paced by the one FetchPolicy).
        batches: dict[str, list[PollTarget]] = {}
        for t in targets:
            cfg = config.source(t.name)
            options[t.source_id] = SourceOptions(links=cfg.links if cfg else None, full_text=config.fetch.full_text)
            spider_name = (cfg.spider or "") if cfg and t.type == "spider" else FeedSpider.name
            batches.setdefault(spider_name, []).append(t)
        fed: list[tuple[Any, list[PollTarget], list[asyncio.Future[bool]]]] = []
        for spider_name, batch in batches.items():
            try:
                live = await self._live(spider_name)
            except Exception as exc:  # Scrapy would not start: this batch fails, the tick goes on
                log.exception("the %s crawler did not start", spider_name)
                for t in batch:
                    await ingest(
                        PollOutcome(
                            source_id=t.source_id,
                            source=t.name,
                            status="error",
                            error=f"the Scrapy crawler did not start: {type(exc).__name__}: {exc}"[:500],
                            error_class="temporary",
                        )
                    )
                continue
            if live is None:
                names = ", ".join(self._spider_loader().list())
                for t in batch:
                    ingest_missing = PollOutcome(
                        source_id=t.source_id,
                        source=t.name,
                        status="error",
                        error=f"no spider named {spider_name!r} in crawler/spiders (have: {names})",
                        error_class="permanent",
                    )
                    await ingest(ingest_missing)
                continue
            fed.append((live, batch, live.feed(batch, ingest, options)))
        futures = [f for _, _, fs in fed for f in fs]
        if not futures:
            return
        _, pending = await asyncio.wait(futures, timeout=timeout)
        if pending:
            log.warning("crawl of %d sources exceeded %.0fs; giving up on %d", len(targets), timeout, len(pending))
            busy = []
            for live, batch, fs in fed:
                busy += live.abandon([t.source_id for t, f in zip(batch, fs, strict=True) if not f.done()])
            if busy:
                # Outcomes already on their way to ingest are waited for, not recorded twice.
                await asyncio.wait(busy)

    def _spider_loader(self) -> Any:
        from scrapy.settings import Settings
        from scrapy.spiderloader import SpiderLoader

        from crawler.settings import SPIDER_MODULES

        if self.spider_loader is None:
            self.spider_loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": SPIDER_MODULES}))
        return self.spider_loader

    async def _live(self, spider_name: str) -> Any:
        """The process's running crawler of ``spider_name`` (None: no such spider).

        Started on first use; all of them are retired (they finish their targets in flight,
        then stop) and made anew when ``[fetch]`` changes on reload, as the FeedPoller is.
        """
        from crawler.live import LiveCrawler
        from crawler.settings import make_settings

        policy, _ = self._clients()
        for name, old in list(self.live.items()):
            if old.policy is not policy:
                # Made under an earlier [fetch]: it finishes what it has, then stops.
                self._retire(old)
                del self.live[name]
        live = self.live.get(spider_name)
        if live is not None and live.running:
            return live
        if live is not None:
            # It ended on its own (a crawl that failed): its targets in flight were abandoned.
            await live.stop()
        loader = self._spider_loader()
        if spider_name not in loader.list():
            return None
        config = self.app.config
        starting = self.live_starting.get(spider_name)
        if starting is None:
            live = LiveCrawler(
                loader.load(spider_name),
                make_settings(config.fetch, None, policy),
                policy,
                {
                    "options": {},
                    "known_keys": self.app.store.known_keys,
                    "full_text_max": config.fetch.full_text_max,
                    "live": True,
                },
            )
            starting = asyncio.ensure_future(live.start())
            self.live_starting[spider_name] = starting
            try:
                await starting
            except BaseException:
                await live.stop()  # whatever of it did start
                raise
            finally:
                self.live_starting.pop(spider_name, None)
            self.live[spider_name] = live
            self.scrapy_starts += 1
            return live
        # Two ticks asked at once: the second waits for the first one's start.
        await asyncio.shield(starting)
        return await self._live(spider_name)

    def _retire(self, live: Any) -> None:
        task = asyncio.ensure_future(live.retire())
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

    async def stop(self) -> None:
        """Stop the crawlers: their downloads in flight are cancelled, their targets recorded failed."""
        self.stopped = True
        lives = list(self.live.values())
        self.live.clear()
        if lives:
            await asyncio.gather(*(live.stop() for live in lives))
        if self.retiring:
            await asyncio.wait(list(self.retiring), timeout=STOP_SECONDS)

    async def release_unstored(self) -> None:
        """Release the leases of polls the database refused, once it answers again."""
        if not self.unstored:
            return
        ids = sorted(self.unstored)
        await asyncio.get_running_loop().run_in_executor(
            self.control, self.app.store.release_source_leases, ids, self.owner
        )
        for source_id in ids:
            self.unstored.pop(source_id, None)
        log.info("%d source(s) whose poll was not stored are due again", len(ids))

    async def _renew_leases(self, ids: list[int], done: set[int]) -> None:
        """Keep this crawl's sources leased while it runs (the lease is cleared at ingest)."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            pending = [i for i in ids if i not in done]
            if pending:
                await asyncio.get_running_loop().run_in_executor(
                    self.control, self.app.store.renew_source_leases, pending, self.owner, utcnow() + SOURCE_LEASE
                )


def crawl_timeout(app: App, sources: int = BATCH) -> float:
    """How long one crawl of ``sources`` sources may run before it is stopped.

    Grows with the batch: a cold poll of 10,000 feeds in one `run --once` crawl needs
    minutes of parsing alone (measured 233 s for 10,000 × 5 items).
    """
    fetch = app.config.fetch
    return max(300.0, fetch.timeout.total_seconds() * 4) + 0.1 * sources


def pollable(app: App) -> list[str]:
    """Names of the enabled sources (every type the config accepts has a spider).

    An operator's ``wirewatch sources enable|disable`` (a database override) beats the
    config's ``enabled``.  Reads the database: call it from a thread.
    """
    overrides = app.store.enabled_overrides()
    return [s.name for s in app.config.sources if overrides.get(s.name, s.enabled)]


async def run_once(
    app: App, progress: Callable[[IngestSummary], None] | None = None, only: list[str] | None = None
) -> CycleReport:
    """Every enabled source once (schedule ignored), then every due alert.

    ``only``: poll just these sources, enabled or not (``wirewatch sources poll NAME``).
    """
    report = CycleReport()
    now = utcnow()
    config = app.config
    await asyncio.to_thread(app.store.sync_sources, [(s.name, s.type, s.url) for s in config.sources], now)
    await asyncio.to_thread(run_backfills, app.store, app.holder.get(), utcnow)
    names = await asyncio.to_thread(pollable, app) if only is None else list(only)
    ingest = make_ingest_stage(app, pipelined=True)
    cpu = make_cpu_pool(app, start_at=ONCE_POOL_START)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="control") as control:
        poller = Poller(app, owner=_owner(), ingest=ingest, control=control, progress=progress, cpu=cpu)
        states = await asyncio.to_thread(app.store.source_states, names)
        try:
            report.polled = await poller.crawl(poller.targets(states), crawl_timeout(app, len(states)))
            if any(s.alerts for s in report.polled) and not poller.unstored:
                # Teaser matches go out now, not after the article pages are read.
                report.dispatch = await asyncio.to_thread(app.dispatcher.dispatch_due)
            if app.config.fetch.full_text and not poller.unstored:
                stage = make_enrich_stage(app, poller, control, ingest.executor)
                report.enriched = await stage.drain(ENRICH_ONCE_SECONDS)
        finally:
            await poller.close()
    await ingest.close()
    release_cpu_pool(app, cpu)
    if poller.unstored:
        # The database refused what was fetched: nothing of those polls was recorded.
        raise next(iter(poller.unstored.values()))
    # Outcomes the database refused are retried for a while before the cycle gives up
    # (and exits non-zero): every recorded outcome is one resend less.
    report.dispatch += await asyncio.to_thread(app.dispatcher.dispatch_due, ONCE_MARK_PATIENCE)
    return report


def enrich_batch(app: App) -> int:
    """Article pages one enrichment round claims: half of ``[fetch] concurrency`` (polls keep the rest)."""
    return max(1, app.config.fetch.concurrency // 2)


def make_enrich_stage(app: App, poller: Poller, control: Executor, writer: Executor) -> EnrichStage:
    """The enrichment stage of one process: the poller's FeedPoller reads, the ingest thread writes."""
    enricher = Enricher(app.store, app.holder.get, utcnow, lambda: app.ingestor.analysis)
    return EnrichStage(enricher, poller.read_page, control=control, writer=writer, batch=enrich_batch(app))


def make_cpu_pool(app: App, processes: int = 1, *, start_at: int | None = None) -> CpuPool:
    """The process's CPU workers, handed to its Ingestor: the machine's cores, shared by ``processes``.

    On PostgreSQL with ``[server] processes = 0`` every core already runs a process of
    ``run`` of its own, and each gets one worker (which still takes the CPU work off its
    event loop's GIL).  ``start_at``: see :class:`CpuPool`; the daemon keeps the default
    (its event loop must not carry the analysis of any batch worth a round trip).
    """
    cpu = CpuPool(
        max(1, (os.cpu_count() or 1) // max(1, processes)), start_at=start_at, korean=reads_korean(app.config)
    )
    app.ingestor.analysis = cpu
    return cpu


def release_cpu_pool(app: App, cpu: CpuPool) -> None:
    """Stop the workers (waiting for them: their CPU time is the process's) and compute inline again."""
    if app.ingestor.analysis is cpu:
        app.ingestor.analysis = Inline()
    cpu.close(wait=True)


def make_ingest_stage(app: App, *, pipelined: bool = False) -> BatchStage[PollOutcome, IngestSummary]:
    """The ingest stage of one process: batches of polls, one writer thread.

    ``pipelined`` (``run --once``): a second thread prepares the next batch while one is
    written, for throughput (a cold 1,000 x 30 poll 41-42 s -> 32-33 s).  The daemon
    keeps one thread: a second one holding the GIL beside the writer pushed ``/healthz``
    p99 under a cold load from 88 ms to 136-159 ms, and its ingest rate is set by
    claims and intervals, not by this stage (benchmarks/bench_responsive.py, 2026-12-07).
    """
    ingestor = app.ingestor
    return BatchStage(
        "ingest",
        ingestor.write_batch if pipelined else ingestor.ingest_batch,
        prepare=ingestor.prepare_batch if pipelined else None,
        batch=INGEST_BATCH * NOTHING_NEW_PER_POLL,
        weight=_ingest_weight,
        linger=INGEST_LINGER,
        maxsize=INGEST_QUEUE,
        expected=(StorageError,),
    )


def _ingest_weight(outcome: PollOutcome) -> int:
    """An outcome's share of an ingest batch: a poll with entries weighs NOTHING_NEW_PER_POLL
    times one without (a 304, an error), whose whole write is a row of one bulk UPDATE."""
    return NOTHING_NEW_PER_POLL if outcome.items else 1


class Daemon:
    """The long-running process.  ``role="all"`` also runs retention; ``"worker"`` only
    polls and dispatches, so any number of workers can share one PostgreSQL."""

    def __init__(self, app: App, role: str = "all") -> None:
        self.app = app
        self.role = role
        self.owner = _owner()
        # Each stage's own executor: claims and renewals, ingest (one writer) and dispatch
        # never queue behind one another (a shared pool let a cold ingest delay lease
        # renewals by 8-11 s).
        self.control = ThreadPoolExecutor(max_workers=2, thread_name_prefix="control")
        self.dispatch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch")
        self.ingest = make_ingest_stage(app)
        self.cpu = make_cpu_pool(app, worker_count(app.config.server.processes, app.store.dialect) + 1)
        self.poller = Poller(app, self.owner, self.ingest, self.control, cpu=self.cpu)
        # Claims on the control pool, pages through the poller's FeedPoller, writes on the
        # ingest stage's thread: still one writer per process.
        self.enrich_stage = make_enrich_stage(app, self.poller, self.control, self.ingest.executor)
        self.enriching: asyncio.Future[Any] | None = None
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        # Sources claimed by this process whose crawl has not ended.
        self.in_flight = 0
        from monitor.metrics import Metrics  # prometheus_client: the daemon's, not run --once's (~15 ms)

        self.metrics = Metrics(app.store.alert_counts, lambda: app.store.text_queue(utcnow()))
        self.last_tick: float | None = None
        self.server: WebServer | None = None
        self.last_reload_error: str | None = None
        self.database_error: str | None = None
        self.jobs_running = 0
        self.worker_watch: asyncio.Future[None] | None = None
        self.dispatching: asyncio.Future[DispatchSummary] | None = None
        self.dispatch_again = False

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` report; runs in the status server's thread."""
        checks: dict[str, Any] = {}
        ok = True
        try:
            self.app.store.ping()
            checks["database"] = "ok"
            polled, succeeded = self.app.store.last_poll_times()
        except WirewatchError as exc:
            checks["database"] = str(exc)
            ok, polled, succeeded = False, None, None
        # Reads are not enough: a database that refuses writes cannot record a send.
        refused = self.app.dispatcher.write_error
        # A batch the ingest writer committed moments ago proves that writes are accepted;
        # only without one is the write lock taken to check.  On SQLite that waits for the
        # writer's transaction: under a cold load /healthz took up to 1.2 s (p99 566 ms).
        committed = self.ingest.stats.last_success
        recent = committed is not None and time.monotonic() - committed < WRITE_PROOF_SECONDS
        if refused is None and checks["database"] == "ok" and not recent:
            try:
                self.app.store.check_writable()
            except WirewatchError as exc:
                refused = str(exc)
        checks["database_writes"] = refused or "ok"
        checks["unrecorded_sends"] = self.app.dispatcher.pending_marks
        if refused is not None:
            ok = False
        age = None if self.last_tick is None else time.monotonic() - self.last_tick
        checks["scheduler_tick_age_s"] = None if age is None else round(age, 1)
        if age is None or age > max(30.0, 10 * TICK_SECONDS):
            ok = False
        now = utcnow()
        checks["last_poll"] = polled
        checks["last_success"] = succeeded
        checks["last_success_age_s"] = None if succeeded is None else round((now - succeeded).total_seconds())
        if polled is not None and (succeeded is None or now - succeeded > HEALTHY_SILENCE):
            ok = False
        checks["ok"] = ok
        return checks

    async def serve(self) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("SIGHUP")))

        # The status server, the claims and the event loop share the GIL with the ingest
        # thread: hand it over every millisecond rather than every five, so a request that
        # gives it up a few dozen times (socket, SQLite) is not made to wait that many
        # intervals behind a busy writer.
        sys.setswitchinterval(SWITCH_INTERVAL)
        await asyncio.to_thread(self._sync_sources)
        # The matcher is compiled on first use; a daemon compiles it now, so that neither its
        # first batch nor the console's rule tester waits for the analysers to load.
        await asyncio.to_thread(self.app.holder.get().compile)
        await asyncio.to_thread(run_backfills, self.app.store, self.app.holder.get(), utcnow)
        workers = self._start_workers()
        # WIREWATCH_LISTEN overrides [server] listen, as WIREWATCH_DATABASE_URL does [storage] url:
        # a container turns its health check on without a config of its own.
        listen = os.environ.get("WIREWATCH_LISTEN") or self.app.config.server.listen
        if os.environ.get(CHILD_OF):
            # A worker process of this machine's daemon: the parent serves /healthz and
            # /metrics on the one port.
            listen = ""
        if listen:
            from monitor.console.app import ConsoleDeps, make_web_app
            from monitor.console.server import WebServer

            holder = self.app.holder
            console = ConsoleDeps(
                store=self.app.store,
                runtime=holder.get,
                config_path=holder.path,
                changed_on_disk=holder.changed_on_disk,
            )
            web = make_web_app(self.health, self.metrics.render, console)
            self.server = WebServer(listen, web)
            self.server.start()
            on = "and the console " if console.token() else ""
            log.info("serving /healthz, /metrics %son %s", on, listen)
        scheduler = AsyncIOScheduler(
            event_loop=loop,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        job = self._tracked
        scheduler.add_job(job(self.poll_due), "interval", seconds=TICK_SECONDS, next_run_time=utcnow(), id="poll")
        # Not tracked: a dispatch run is shielded and the stop path waits for it with the
        # dispatcher's own deadline (send_timeout).
        scheduler.add_job(self.dispatch, "interval", seconds=DISPATCH_SECONDS, next_run_time=utcnow(), id="dispatch")
        scheduler.add_job(job(self.watch_config), "interval", seconds=RELOAD_SECONDS, id="reload")
        # Not tracked: a stop cancels a running round (its items stay leased, then due again).
        scheduler.add_job(self.enrich, "interval", seconds=ENRICH_SECONDS, next_run_time=utcnow(), id="enrich")
        if self.role == "all":
            scheduler.add_job(job(self.purge), "interval", hours=1, next_run_time=utcnow(), id="purge")
        scheduler.start()
        log.info(
            "wirewatch daemon started (%d sources, %d rules); pid %d",
            len(self.app.config.sources),
            len(self.app.config.rules),
            os.getpid(),
        )
        await self.stopping.wait()
        log.info("stopping: finishing in-flight polls and sends")
        scheduler.pause()
        # A job that is running (a claim, a dispatch) finishes rather than being cancelled
        # mid-statement by the scheduler's shutdown.
        deadline = time.monotonic() + JOB_DRAIN_SECONDS
        while self.jobs_running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.enriching is not None and not self.enriching.done():
            # Pages in flight are abandoned, not waited for: their items stay wanted and
            # are claimed again once their lease lapses.
            self.enriching.cancel()
            await asyncio.wait([self.enriching], timeout=5)
        scheduler.shutdown(wait=False)
        await self.poller.stop()
        if workers is not None:
            # They stop as this process does, each finishing its own in-flight work.
            if self.worker_watch is not None:
                self.worker_watch.cancel()
            await workers.stop(STOP_SECONDS + 10)
        # Sends in flight get up to send_timeout to finish and be marked; the rest keep
        # their (short) leases and go out from the next dispatcher that runs.
        deadline = self.app.config.alerts.send_timeout.total_seconds()
        if not await asyncio.to_thread(self.app.dispatcher.stop, deadline):
            log.warning("sends still in flight after %.0fs; their alerts go out again when the lease lapses", deadline)
        if self.dispatching is not None:
            await asyncio.wait([self.dispatching], timeout=5)
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=STOP_SECONDS)
            if pending:
                # Nothing is lost: a poll that did not commit leaves its sources leased, and
                # they are due again when the lease runs out.
                log.warning(
                    "stopping: %d poll(s) still running after %.0fs abandoned; their sources are polled "
                    "again after their lease",
                    len(pending),
                    STOP_SECONDS,
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=5)
        await self.poller.close()
        await self.ingest.close()
        release_cpu_pool(self.app, self.cpu)
        self.control.shutdown(wait=False)
        self.dispatch_pool.shutdown(wait=True)
        if self.server is not None:
            self.server.stop()
        log.info("stopped")
        return 0

    def _start_workers(self) -> WorkerProcesses | None:
        """On PostgreSQL, the other cores' worker processes (see monitor/workers.py)."""
        if self.role != "all":
            return None
        count = worker_count(self.app.config.server.processes, self.app.store.dialect)
        if not count:
            return None
        env = dict(os.environ)
        # The URL goes by environment, not the command line, so its password stays out of ps.
        env["WIREWATCH_DATABASE_URL"] = self.app.store.engine.url.render_as_string(hide_password=False)
        env[CHILD_OF] = str(os.getpid())
        workers = WorkerProcesses(count, worker_argv(sys.argv[1:]), env)
        workers.start()
        self.worker_watch = asyncio.ensure_future(workers.watch())
        log.info("started %d worker process(es) beside this one", count)
        return workers

    def _tracked(self, job: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], Coroutine[Any, Any, None]]:
        """``job`` counted while it runs, so a stop can let it finish."""

        async def run() -> None:
            self.jobs_running += 1
            try:
                await job()
            finally:
                self.jobs_running -= 1

        run.__name__ = run.__qualname__ = job.__name__
        return run

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _sync_sources(self) -> None:
        config = self.app.config
        self.app.store.sync_sources([(s.name, s.type, s.url) for s in config.sources], utcnow())

    async def poll_due(self) -> None:
        self.last_tick = time.monotonic()
        if self.stopping.is_set():
            return
        timeout = crawl_timeout(self.app)
        loop = asyncio.get_running_loop()
        try:
            await self.poller.release_unstored()
            room = self.claim_room()
            if room <= 0:
                return
            names = await loop.run_in_executor(self.control, pollable, self.app)
            states = await loop.run_in_executor(
                self.control, self.app.store.claim_due_sources, names, utcnow(), SOURCE_LEASE, self.owner, room
            )
        except StorageError as exc:
            self._database_down("poll", exc)
            return
        self._database_up()
        if states:
            self.in_flight += len(states)
            self._spawn(self._crawl(states, timeout))

    def claim_room(self) -> int:
        """How many more sources this process may claim now (see IN_FLIGHT_PER_CONNECTION)."""
        return max(BATCH, IN_FLIGHT_PER_CONNECTION * self.app.config.fetch.concurrency) - self.in_flight

    async def _crawl(self, states: list[SourceState], timeout: float) -> None:
        started = time.monotonic()
        try:
            summaries = await self.poller.crawl(self.poller.targets(states), timeout)
        finally:
            self.in_flight -= len(states)
        self.metrics.record_polls(summaries, time.monotonic() - started)
        if self.poller.unstored:
            self._database_down("ingest", next(iter(self.poller.unstored.values())))
        new = sum(s.new for s in summaries)
        failed = sum(1 for s in summaries if s.status == "error")
        loop = asyncio.get_running_loop()
        try:
            names = await loop.run_in_executor(self.control, pollable, self.app)
            due = await loop.run_in_executor(self.control, self.app.store.next_due_source, names)
        except StorageError as exc:
            self._database_down("poll", exc)
            due = None
        lines = cycle_summary(len(summaries), failed, new, utcnow(), due)
        log.info("%s", lines[0])
        for hint in lines[1:]:
            log.warning("%s", hint)
        if any(s.alerts for s in summaries):
            # Deliver now rather than at the next dispatch tick: alert latency is the
            # product.  Claims are leased, so overlapping with the scheduled run is safe.
            await self.dispatch()

    async def dispatch(self) -> None:
        if self.stopping.is_set():
            return
        if self.dispatching is not None and not self.dispatching.done():
            # One run at a time per process; the running one goes round again when done,
            # so alerts queued meanwhile do not wait for the next tick.
            self.dispatch_again = True
            return
        while True:
            self.dispatch_again = False
            started = time.monotonic()
            # A future of our own, shielded: a scheduler shutdown must not cancel a run
            # that is marking sends (the stop path waits for it instead).
            loop = asyncio.get_running_loop()
            self.dispatching = asyncio.ensure_future(
                loop.run_in_executor(self.dispatch_pool, self.app.dispatcher.dispatch_due)
            )
            try:
                summary = await asyncio.shield(self.dispatching)
            except asyncio.CancelledError:
                # The scheduler shutting down cancels its jobs; the run itself goes on
                # (shielded) and the stop path waits for it, so this job just ends.
                return
            except StorageError as exc:
                self._database_down("dispatch", exc)
                return
            self.metrics.record_dispatch(summary, time.monotonic() - started)
            if not self.dispatch_again or self.stopping.is_set():
                return

    async def enrich(self) -> None:
        """One enrichment round: article pages of items that want them, then matched again."""
        if self.stopping.is_set() or not self.app.config.fetch.full_text:
            return
        self.enrich_stage.batch = enrich_batch(self.app)  # [fetch] may have changed on reload
        started = time.monotonic()
        self.enriching = asyncio.ensure_future(self.enrich_stage.round())
        try:
            summary = await self.enriching
        except asyncio.CancelledError:
            return
        except StorageError as exc:
            self._database_down("enrich", exc)
            return
        if summary.claimed:
            self.metrics.record_enrich(summary, time.monotonic() - started)
        if summary.alerts and not self.stopping.is_set():
            await self.dispatch()

    def _database_down(self, job: str, exc: StorageError) -> None:
        """A database that is restarting or unreachable: one line per outage, not a traceback per tick."""
        if self.database_error is None:
            log.warning("%s: %s; retrying every tick until the database answers", job, exc)
        self.database_error = str(exc)

    def _database_up(self) -> None:
        if self.database_error is not None:
            log.info("database reachable again")
            self.database_error = None

    async def watch_config(self) -> None:
        if self.app.holder.changed_on_disk():
            await self.reload("file change")

    async def reload(self, why: str) -> None:
        error = await asyncio.to_thread(self.app.holder.reload)
        if error is None:
            await asyncio.to_thread(self._sync_sources)
            await asyncio.to_thread(run_backfills, self.app.store, self.app.holder.get(), utcnow)
            self.last_reload_error = None
            log.info(
                "config reloaded (%s): %d sources, %d rules",
                why,
                len(self.app.config.sources),
                len(self.app.config.rules),
            )
        else:
            log.error("config reload (%s) failed; still running the last good config:\n%s", why, error)
            text = str(error)
            if text != self.last_reload_error:
                # Once per distinct broken edit, not on every SIGHUP or file touch.
                self.last_reload_error = text
                await asyncio.to_thread(
                    notify_operators,
                    self.app.config,
                    "config edit rejected",
                    f"The daemon on {self.owner} is still running the last good config.\n\n{text}",
                )

    async def purge(self) -> None:
        keep = self.app.config.storage.keep
        removed = await asyncio.to_thread(self.app.store.purge_unmatched, utcnow() - keep)
        if removed:
            log.info("retention: purged %d unmatched items older than %s", removed, keep)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]
