"""BatchStage: batches across producers, back-pressure from a bounded queue, failures per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from monitor.stages.batch import BatchStage


def test_concurrent_puts_are_committed_in_batches_on_one_thread() -> None:
    seen_batches: list[list[int]] = []
    threads: set[str] = set()

    def work(items: Sequence[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        seen_batches.append(list(items))
        return [i * 10 for i in items]

    async def main() -> list[int]:
        stage: BatchStage[int, int] = BatchStage("t", work, batch=50, linger=0.05, maxsize=100)
        results = await asyncio.gather(*(stage.put(i) for i in range(120)))
        await stage.close()
        return list(results)

    results = asyncio.run(main())
    assert results == [i * 10 for i in range(120)]  # each producer gets its own result
    assert sum(len(b) for b in seen_batches) == 120
    assert max(len(b) for b in seen_batches) == 50  # batched across producers, bounded by batch
    assert len(seen_batches) <= 5
    assert len(threads) == 1 and next(iter(threads)).startswith("t")


def test_a_full_queue_makes_producers_wait() -> None:
    release = threading.Event()

    def work(items: Sequence[int]) -> list[int]:
        release.wait(5)
        return list(items)

    async def main() -> tuple[int, int]:
        stage: BatchStage[int, int] = BatchStage("bp", work, batch=1, linger=0, maxsize=2)
        futures = [await stage.submit(0)]  # taken by the worker, which blocks
        await asyncio.sleep(0.05)
        futures += [await stage.submit(1), await stage.submit(2)]  # fill the queue
        blocked = asyncio.ensure_future(stage.submit(3))
        await asyncio.sleep(0.1)
        waiting = int(not blocked.done())
        release.set()
        futures.append(await blocked)
        done = len(await asyncio.gather(*futures))
        await stage.close()
        return waiting, done

    waiting, done = asyncio.run(main())
    assert waiting == 1
    assert done == 4


def test_a_failing_batch_fails_its_items_and_the_stage_goes_on() -> None:
    def work(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("database refused the batch")
        return list(items)

    async def main() -> tuple[str, int]:
        stage: BatchStage[int, int] = BatchStage("f", work, batch=1, linger=0)
        with pytest.raises(RuntimeError) as failed:
            await stage.put(13)
        after = await stage.put(14)
        await stage.close()
        return str(failed.value), after

    message, after = asyncio.run(main())
    assert message == "database refused the batch"
    assert after == 14
