"""BatchStage: a bounded queue drained in batches by one thread; the ingest stage is one.

As the ingest stage it is the one database writer of a process, committing batches of
polls.  Fetchers ``await stage.put(outcome)``: the outcome joins a bounded asyncio queue and the
call returns the poll's :class:`~monitor.services.ingest.IngestSummary` once its batch
has committed (so a crawl knows which of its sources were recorded).  One consumer takes
whatever is queued — at least one outcome, at most ``batch`` (by count, or by ``weight``),
waiting at most ``linger`` for more once the first has arrived, or until a producer says
it has nothing more (:meth:`flush`) — and runs ``ingest_batch`` on a single-thread
executor of its own: SQLite admits one writer, and on PostgreSQL one writer per process
is what keeps the work per statement large.  A full queue makes ``put`` wait, which is
the back-pressure that keeps memory bounded under a cold poll of thousands of feeds.

With ``prepare``, the work of a batch is two steps on two threads, pipelined: while
the writer thread runs ``work`` (the write transactions) on batch *n*, the prepare
thread already runs ``prepare`` (reads, and the CPU work it hands to worker processes)
on batch *n + 1*.  One step alone left the other idle: under a cold poll the ingest
thread waited for the workers 47 % of the time and the workers waited for it 55 %
(py-spy, 2026-12-07).  At most one batch is prepared ahead, writes keep the order of the
batches, and ``prepare`` must not depend on what the previous batch writes (ingest's
batches hold polls of different sources: a source is polled again only once its last
poll committed).

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
from typing import Any, Generic, TypeVar

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
        work: Callable[..., Sequence[Out]],  # the batch, or what ``prepare`` made of it
        *,
        batch: int = 64,
        linger: float = 0.05,
        maxsize: int = 256,
        expected: tuple[type[Exception], ...] = (),
        prepare: Callable[[Sequence[In]], Any] | None = None,
        weight: Callable[[In], int] | None = None,
    ) -> None:
        self.name = name
        # An item's share of ``batch`` (1 each without ``weight``): ingest lets a poll with
        # nothing to store (a 304) weigh a quarter of one with entries.
        self.weight = weight
        # With prepare, ``work`` is called with what prepare returned for the batch.
        self.prepare = prepare
        self.prepare_executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-prepare") if prepare is not None else None
        )
        self._writing: asyncio.Future[None] | None = None
        self._open = 0  # batches taken and not yet done (prepared, written or failed)
        # Errors the callers handle (a database that refuses connections): one log line,
        # not a traceback per batch.
        self.expected = expected
        self.work = work
        self.batch = batch
        self.linger = linger
        # None is a flush mark (see flush): it ends the batch being gathered.
        self.queue: asyncio.Queue[tuple[In, asyncio.Future[Out], float] | None] = asyncio.Queue(maxsize)
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

    async def flush(self) -> None:
        """Say that nothing more is coming for now: the batch gathered up to here goes without lingering.

        A producer that has queued the last outcome of its crawl calls this, so that the
        last (or only) batch of a small poll does not wait ``linger`` for polls that will
        not come (``run --once`` over one feed spent 50 ms of its 110 ms there).  The mark
        queues like an item (waiting while the queue is full) and only ends a batch early.
        """
        await self.queue.put(None)

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
        if self.prepare_executor is not None:
            self.prepare_executor.shutdown(wait=True)

    async def _take(self) -> list[tuple[In, asyncio.Future[Out], float]]:
        first = await self.queue.get()
        while first is None:  # a flush with no batch to end
            if self._open == 0 and self.queue.empty():
                self._idle.set()
            first = await self.queue.get()
        taken = [first]
        weight = self.weight
        total = weight(first[0]) if weight is not None else 1
        deadline = time.monotonic() + self.linger
        while total < self.batch:
            try:
                got = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    got = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if got is None:  # flushed: the producer has nothing more for now
                break
            taken.append(got)
            total += weight(got[0]) if weight is not None else 1
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = await self._take()
            self._idle.clear()
            self._open += 1
            began = time.monotonic()
            items = [item for item, _, _ in taken]
            if self.prepare is None:
                await self._work(taken, items, began)
                continue
            try:
                prepared = await loop.run_in_executor(self.prepare_executor, self.prepare, items)
            except Exception as exc:
                if self._writing is not None:
                    await self._writing  # the batch before still resolves first
                self._failed(taken, exc)
                self._done(taken, began)
                continue
            if self._writing is not None:
                await self._writing
            self._writing = asyncio.ensure_future(self._work(taken, prepared, began))

    async def _work(self, taken: list[tuple[In, asyncio.Future[Out], float]], arg: Any, began: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self.work, arg)
        except Exception as exc:  # a bug or a database error: every poll of the batch gets it
            self._failed(taken, exc)
        else:
            self.stats.last_success = time.monotonic()
            for (_, future, _), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._done(taken, began)

    def _failed(self, taken: list[tuple[In, asyncio.Future[Out], float]], exc: Exception) -> None:
        if isinstance(exc, self.expected):
            log.warning("%s: a batch of %d failed: %s", self.name, len(taken), exc)
        else:
            log.error("%s: a batch of %d failed", self.name, len(taken), exc_info=exc)
        for _, future, _ in taken:
            if not future.done():
                future.set_exception(exc)

    def _done(self, taken: list[tuple[In, asyncio.Future[Out], float]], began: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += len(taken)
        stats.busy_seconds += time.monotonic() - began
        stats.waited_seconds += sum(began - queued for _, _, queued in taken)
        stats.largest_batch = max(stats.largest_batch, len(taken))
        # Idle once nothing is queued, being prepared or being written.
        self._open -= 1
        if self._open == 0 and self.queue.empty():
            self._idle.set()
