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


def test_a_flush_ends_the_batch_without_lingering_and_keeps_the_rest_in_order() -> None:
    seen_batches: list[list[int]] = []

    def work(items: Sequence[int]) -> list[int]:
        seen_batches.append(list(items))
        return list(items)

    async def main() -> tuple[float, list[int], bool]:
        # A linger far longer than the test: only the flush can end the first batch early.
        stage: BatchStage[int, int] = BatchStage("fl", work, batch=50, linger=30.0, maxsize=100)
        loop = asyncio.get_running_loop()
        began = loop.time()
        first = [await stage.submit(i) for i in range(3)]
        await stage.flush()
        got = list(await asyncio.gather(*first))
        took = loop.time() - began
        # A flush with nothing queued ends nothing, and leaves the stage idle for drain.
        await stage.flush()
        await asyncio.wait_for(stage.drain(), 5)
        later = [await stage.submit(i) for i in (3, 4)]
        await stage.flush()
        got += await asyncio.gather(*later)
        await asyncio.wait_for(stage.close(), 5)
        return took, got, stage.queue.empty()

    took, got, empty = asyncio.run(main())
    assert took < 5  # not the 30 s linger
    assert got == [0, 1, 2, 3, 4]
    assert seen_batches == [[0, 1, 2], [3, 4]]
    assert empty


def test_a_weighted_batch_holds_more_light_items_than_heavy_ones() -> None:
    # Ingest's rule: a poll with entries weighs 4, one with nothing new (a 304) weighs 1.
    seen_batches: list[list[int]] = []

    def work(items: Sequence[int]) -> list[int]:
        seen_batches.append(list(items))
        return list(items)

    async def main() -> None:
        stage: BatchStage[int, int] = BatchStage(
            "w", work, batch=8, linger=0.5, maxsize=100, weight=lambda i: 4 if i >= 100 else 1
        )
        futures = [await stage.submit(i) for i in [100, 101, 102, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
        await stage.flush()
        await asyncio.gather(*futures)
        await stage.close()

    asyncio.run(main())
    # Two heavy items fill a batch; light ones go eight at a time; a batch ends at or above
    # its weight, never splitting an item.
    assert seen_batches == [[100, 101], [102, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]


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


def test_with_prepare_the_next_batch_is_prepared_while_one_is_written() -> None:
    """Batch 1's write waits until batch 2's prepare has begun: that can only finish if the
    two run at once.  Results come back per producer, writes keep the batches' order, and a
    batch whose prepare fails fails alone."""
    second_prepared = threading.Event()
    written: list[list[int]] = []
    threads: dict[str, set[str]] = {"prepare": set(), "work": set()}

    def prepare(items: Sequence[int]) -> list[int]:
        threads["prepare"].add(threading.current_thread().name)
        if 13 in items:
            raise RuntimeError("prepare refused 13")
        if items[0] >= 100:
            second_prepared.set()
        return [i + 1 for i in items]

    def work(prepared: list[int]) -> list[int]:
        threads["work"].add(threading.current_thread().name)
        if prepared[0] == 1:  # batch 1 (item 0)
            assert second_prepared.wait(5), "batch 2 was not prepared while batch 1 was written"
        written.append(prepared)
        return [p * 10 for p in prepared]

    async def main() -> tuple[list[int], str]:
        stage: BatchStage[int, int] = BatchStage("p", work, prepare=prepare, batch=2, linger=0)
        first = await stage.submit(0)
        await asyncio.sleep(0.05)  # batch 1 is taken alone
        second = [await stage.submit(100), await stage.submit(101)]
        results = [await first, *await asyncio.gather(*second)]
        with pytest.raises(RuntimeError) as failed:
            await stage.put(13)
        results.append(await stage.put(7))
        await stage.drain()
        await stage.close()
        return results, str(failed.value)

    results, message = asyncio.run(main())
    assert results == [10, 1010, 1020, 80]
    assert message == "prepare refused 13"
    assert written == [[1], [101, 102], [8]]
    assert len(threads["prepare"]) == len(threads["work"]) == 1
    assert threads["prepare"] != threads["work"]
