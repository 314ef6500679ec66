"""LiveCrawler: one long-lived Scrapy crawler per spider class, fed targets as they fall due.

Responsible for keeping Scrapy's per-crawl state alive for as long as the process runs
(or until ``[fetch]`` changes): the engine (its requests paced per host by the process's
``FetchPolicy``, :class:`~crawler.middlewares.PolicySlotMiddleware`), the robots.txt
cache, the 429/503 backoff of :class:`~crawler.middlewares.HostBackoffMiddleware` and the
stats.  The crawl is started once with no targets and kept open while idle: its
``spider_idle`` handler raises ``DontCloseSpider`` (the pattern scrapy-redis uses).
:meth:`LiveCrawler.feed` schedules each target's requests into the running engine with
``crawler.engine.crawl(request)`` and returns one future per target, done once that
target's outcome has gone through the item pipeline to the ingest callable given with
it (or once the target is abandoned).  A target its caller stopped waiting for is
*abandoned*: whatever its poll still yields (outcome or further requests) is dropped, so
a late outcome never lands on a later poll of the same source.  It must not touch the
database: the ingest callables are the caller's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.models import PollOutcome, PollTarget

log = logging.getLogger(__name__)

Ingest = Callable[[PollOutcome], Awaitable[None]]
# How long start() waits for the engine to be running before giving up.
START_SECONDS = 30.0


@dataclass(eq=False)
class Waiter:
    """One fed target: where its outcome goes, and the future its caller waits on."""

    target: PollTarget
    ingest: Ingest
    done: asyncio.Future[bool]
    poll: Any = None  # the spider's Poll of this target (crawler/spiders/base.py)
    delivering: bool = False


class LiveCrawler:
    """One Scrapy crawler of one spider class, open until :meth:`stop`."""

    def __init__(
        self, spidercls: type[Any], settings: Mapping[str, Any], policy: Any, spider_kwargs: Mapping[str, Any]
    ) -> None:
        self.spidercls = spidercls
        # The process's FetchPolicy it was made with (its owner makes a new crawler with a new one).
        self.policy = policy

        # A plain function, not the bound method: Scrapy deep-copies its settings, and
        # copies a function as itself (a bound method would copy this whole object).
        async def sink(outcome: PollOutcome) -> None:
            await self.deliver(outcome)

        self.settings = {**settings, "WIREWATCH_INGEST": sink}
        self.spider_kwargs = dict(spider_kwargs)
        self.waiters: dict[int, Waiter] = {}
        self.failing: set[asyncio.Task[None]] = set()
        self.crawler: Any = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.started_at: float | None = None
        # Targets fed since the start (the tests and benchmarks read it).
        self.fed = 0

    @property
    def running(self) -> bool:
        return (
            self.crawler is not None
            and not self.closing
            and self.task is not None
            and not self.task.done()
            and bool(self.crawler.engine.running)
        )

    async def start(self) -> None:
        """Start the crawl with no targets and wait until its engine runs."""
        from scrapy import signals
        from scrapy.crawler import AsyncCrawlerRunner

        runner = AsyncCrawlerRunner(self.settings)
        self.crawler = runner.create_crawler(self.spidercls)
        self.crawler.signals.connect(self._idle, signal=signals.spider_idle)
        self.task = runner.crawl(self.crawler, targets=[], **self.spider_kwargs)
        self.task.add_done_callback(self._ended)
        deadline = time.monotonic() + START_SECONDS
        while not (getattr(self.crawler, "_engine", None) is not None and self.crawler.engine.running):
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise RuntimeError(f"the {self.spidercls.name} crawler ended as it started")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.spidercls.name} crawler did not start in {START_SECONDS:.0f}s")
            await asyncio.sleep(0.005)
        self.started_at = time.monotonic()
        log.info("scrapy crawler %r started (one per process, fed each poll's targets)", self.spidercls.name)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The crawl ended: stopped by us, or on its own (its targets are then given up at once)."""
        if not self.closing:
            error = None if task.cancelled() else task.exception()
            log.error(
                "the %s crawler ended unasked (%r); a new one starts with the next tick", self.spidercls.name, error
            )
            for waiter in list(self.waiters.values()):
                if not waiter.delivering:
                    self._abandon(waiter)

    def _idle(self, spider: Any = None) -> None:
        from scrapy.exceptions import DontCloseSpider

        if not self.closing:
            raise DontCloseSpider("wirewatch keeps its crawler open for the next targets")

    def feed(self, targets: list[PollTarget], ingest: Ingest, options: Mapping[int, Any]) -> list[asyncio.Future[bool]]:
        """Schedule ``targets`` into the running engine; one future per target (True: an outcome was ingested)."""
        spider = self.crawler.spider
        spider.options.update(options)
        loop = asyncio.get_running_loop()
        futures = []
        for target in targets:
            earlier = self.waiters.get(target.source_id)
            if earlier is not None:
                # The same source fed again while its last poll is out: that poll is given up.
                self._abandon(earlier)
            waiter = Waiter(target, ingest, loop.create_future())
            futures.append(waiter.done)
            self.waiters[target.source_id] = waiter
            spider.live_targets[target.source_id] = target
            self.fed += 1
            try:
                requests = list(spider.requests_for(target))
            except Exception as exc:  # a spider bug is one source's failure, not the tick's
                self._fail_now(waiter, f"the {spider.name} spider could not make its request: {exc}")
                continue
            for request in requests:
                waiter.poll = request.meta.get("poll", waiter.poll)
                self.crawler.engine.crawl(request)
        return futures

    def _fail_now(self, waiter: Waiter, message: str) -> None:
        outcome = PollOutcome(
            source_id=waiter.target.source_id,
            source=waiter.target.name,
            status="error",
            error=message[:500],
            error_class="permanent",
        )
        task = asyncio.ensure_future(self.deliver(outcome))
        self.failing.add(task)
        task.add_done_callback(self.failing.discard)

    async def deliver(self, outcome: PollOutcome) -> None:
        """The item pipeline's sink: the outcome goes to its target's ingest callable."""
        waiter = self.waiters.get(outcome.source_id)
        if waiter is None or waiter.delivering:
            log.debug("source %s: outcome of an abandoned poll dropped", outcome.source)
            return
        waiter.delivering = True
        try:
            await waiter.ingest(outcome)
        finally:
            self._forget(waiter)
            if not waiter.done.done():
                waiter.done.set_result(True)

    def abandon(self, source_ids: list[int]) -> list[asyncio.Future[bool]]:
        """Stop waiting for these targets; the futures of those already being ingested (wait for them)."""
        busy = []
        for source_id in source_ids:
            waiter = self.waiters.get(source_id)
            if waiter is None:
                continue
            if waiter.delivering:
                busy.append(waiter.done)
            else:
                self._abandon(waiter)
        return busy

    def _abandon(self, waiter: Waiter) -> None:
        if waiter.poll is not None:
            waiter.poll.abandoned = True
        self._forget(waiter)
        if not waiter.done.done():
            waiter.done.set_result(False)

    def _forget(self, waiter: Waiter) -> None:
        source_id = waiter.target.source_id
        if self.waiters.get(source_id) is waiter:
            del self.waiters[source_id]
            self.crawler.spider.live_targets.pop(source_id, None)

    async def retire(self) -> None:
        """Take no more targets; stop once the targets in flight have their outcome (or are abandoned)."""
        self.closing = True
        pending = [w.done for w in self.waiters.values()]
        if pending:
            await asyncio.wait(pending)
        await self.stop()

    async def stop(self) -> None:
        """Stop the crawl (downloads in flight are cancelled); targets still waiting get no outcome."""
        self.closing = True
        if self.crawler is not None and self.task is not None and not self.task.done():
            try:
                await self.crawler.stop_async()
                await self.task
            except Exception:  # a crawl that failed as it stopped is stopped all the same
                log.exception("stopping the %s crawler", self.spidercls.name)
        for waiter in list(self.waiters.values()):
            if not waiter.delivering:
                self._abandon(waiter)
