"""BatchStage: a bounded queue drained in batches by one thread; the ingest stage is one.

As the ingest stage it is the one database writer of a process, committing batches of
polls.  Fetchers ``await stage.put(outcome)``: the outcome joins a bounded asyncio queue and the
call returns the poll's :class:`~monitor.services.ingest.IngestSummary` once its batch
has committed (so a crawl knows which of its sources were recorded).  One consumer takes
whatever is queued — at least one outcome, at most ``batch``, waiting at most ``linger``
for more once the first has arrived — and runs ``ingest_batch`` on a single-thread
executor of its own: SQLite admits one writer, and on PostgreSQL one writer per process
is what keeps the work per statement large.  A full queue makes ``put`` wait, which is
the back-pressure that keeps memory bounded under a cold poll of thousands of feeds.

It must not know what ingest does: it only batches, runs and hands back results.  A
batch that raises fails every poll in it with that error (each future gets it), and the
stage goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class StageStats:
    """What the stage did, for /metrics and the benchmarks."""

    batches: int = 0
    items: int = 0
    busy_seconds: float = 0.0
    waited_seconds: float = 0.0  # time outcomes spent queued before their batch began
    largest_batch: int = 0
    last_success: float | None = None  # time.monotonic() when a batch last completed without error


class BatchStage(Generic[In, Out]):
    """A bounded queue drained in batches by one worker thread running ``work``."""

    def __init__(
        self,
        name: str,
        work: Callable[[Sequence[In]], Sequence[Out]],
        *,
        batch: int = 64,
        linger: float = 0.05,
        maxsize: int = 256,
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        self.name = name
        # Errors the callers handle (a database that refuses connections): one log line,
        # not a traceback per batch.
        self.expected = expected
        self.work = work
        self.batch = batch
        self.linger = linger
        self.queue: asyncio.Queue[tuple[In, asyncio.Future[Out], float]] = asyncio.Queue(maxsize)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.stats = StageStats()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def submit(self, item: In) -> asyncio.Future[Out]:
        """Queue ``item``, waiting only while the queue is full; the future resolves when it is done.

        A producer that must not wait on the work itself (the feed poller) submits and goes
        on, and awaits the futures at the end.
        """
        self.start()
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        await self.queue.put((item, future, time.monotonic()))
        return future

    async def put(self, item: In) -> Out:
        """Queue ``item`` (waiting while the queue is full) and return its result once done."""
        return await (await self.submit(item))

    async def drain(self) -> None:
        """Wait until everything queued so far has been processed."""
        while not (self.queue.empty() and self._idle.is_set()):
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.executor.shutdown(wait=True)

    async def _take(self) -> list[tuple[In, asyncio.Future[Out], float]]:
        first = await self.queue.get()
        taken = [first]
        deadline = time.monotonic() + self.linger
        while len(taken) < self.batch:
            try:
                taken.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                taken.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = await self._take()
            self._idle.clear()
            began = time.monotonic()
            items = [item for item, _, _ in taken]
            try:
                results = await loop.run_in_executor(self.executor, self.work, items)
            except Exception as exc:  # a bug or a database error: every poll of the batch gets it
                if isinstance(exc, self.expected):
                    log.warning("%s: a batch of %d failed: %s", self.name, len(items), exc)
                else:
                    log.exception("%s: a batch of %d failed", self.name, len(items))
                for _, future, _ in taken:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.stats.last_success = time.monotonic()
                for (_, future, _), result in zip(taken, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            finally:
                stats = self.stats
                stats.batches += 1
                stats.items += len(items)
                stats.busy_seconds += time.monotonic() - began
                stats.waited_seconds += sum(began - queued for _, _, queued in taken)
                stats.largest_batch = max(stats.largest_batch, len(items))
                if self.queue.empty():
                    self._idle.set()
