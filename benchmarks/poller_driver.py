"""One measured poll of the generated web by crawler.poller.FeedPoller alone: no database, no Scrapy.

Run as a child process by :mod:`benchmarks.bench_poller` (which measures it from outside
with ``wait4``).  ``cold`` polls every feed without validators (everything is fetched and
parsed) and writes the validators it got to ``--state``; ``warm`` polls with them (all
304).  It prints one JSON line: outcome counts, items parsed, and the poll's own wall and
CPU seconds (start-up and imports excluded; with a process pool, the workers' CPU in
the parse calls is added).  It must not decide what a figure means.
Usage: ``python -m benchmarks.poller_driver URLS_FILE STATE_FILE cold|warm [--executor thread|process]
[--client curl|aiohttp]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from crawler.policy import FetchPolicy
from crawler.poller import CLIENTS, DEFAULT_CLIENT, FeedPoller, parse_for_poll
from monitor.core.models import PollTarget


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.process_time()  # in a pool worker: that worker's own CPU
    value = fn(*args)
    return value, time.process_time() - start


class TimedProcessPool(ProcessPoolExecutor):
    """A process pool that adds up the CPU its workers spend in the submitted calls.

    The workers are not children whose rusage this process ever collects while it runs,
    so their CPU is reported by the calls themselves (the pickling of results is not in it).
    """

    def __init__(self, workers: int) -> None:
        super().__init__(workers, mp_context=get_context("forkserver"))
        self.worker_cpu = 0.0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        inner = super().submit(_timed, fn, *args)
        outer: Future[Any] = Future()

        def done(f: Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
            value, cpu = f.result()
            self.worker_cpu += cpu
            outer.set_result(value)

        inner.add_done_callback(done)
        return outer


def _executor(kind: str, workers: int) -> Executor:
    if kind == "process":
        return TimedProcessPool(workers)
    return ThreadPoolExecutor(workers, thread_name_prefix="parse")


async def poll(args: argparse.Namespace) -> dict[str, Any]:
    urls = [u for u in args.urls.read_text(encoding="utf-8").split() if u]
    state: dict[str, dict[str, str | None]] = {}
    if args.mode == "warm":
        state = json.loads(args.state.read_text(encoding="utf-8"))
    targets = [
        PollTarget(
            i,
            f"f{i}",
            "feed",
            url,
            etag=state.get(url, {}).get("etag"),
            last_modified=state.get(url, {}).get("last_modified"),
            body_hash=state.get(url, {}).get("body_hash"),
        )
        for i, url in enumerate(urls)
    ]
    executor = _executor(args.executor, args.workers)
    if args.executor == "process":
        # Start the workers (and their imports) before the clock starts.
        list(executor.map(parse_for_poll, [b"<rss/>"] * args.workers, ["u"] * args.workers, [{}] * args.workers))
    policy = FetchPolicy(user_agent="wirewatch-bench/1", per_host=args.concurrency, host_delay=0.0, obey_robots=False)
    statuses: Counter[str] = Counter()
    items = 0
    new_state: dict[str, dict[str, str | None]] = {}
    by_id = {t.source_id: t for t in targets}
    cpu0, wall0 = _cpu(), time.perf_counter()
    async with FeedPoller(
        policy, concurrency=args.concurrency, timeout=30.0, executor=executor, client=args.client
    ) as poller:
        async for outcome in poller.poll(targets):
            statuses[outcome.status] += 1
            items += len(outcome.items)
            url = by_id[outcome.source_id].url
            new_state[url] = {
                "etag": outcome.etag,
                "last_modified": outcome.last_modified,
                "body_hash": outcome.body_hash,
            }
            if outcome.status == "error" and statuses["error"] <= 3:
                print(f"error {url}: {outcome.error}", file=sys.stderr)
    wall = time.perf_counter() - wall0
    cpu = _cpu() - cpu0
    if isinstance(executor, TimedProcessPool):
        cpu += executor.worker_cpu
    executor.shutdown(wait=True)
    if args.mode == "cold":
        args.state.write_text(json.dumps(new_state), encoding="utf-8")
    return {"feeds": len(targets), **statuses, "items": items, "poll_wall": wall, "poll_cpu": cpu}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("urls", type=Path)
    p.add_argument("state", type=Path)
    p.add_argument("mode", choices=("cold", "warm"))
    p.add_argument("--executor", choices=("thread", "process"), default="thread")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--client", choices=CLIENTS, default=DEFAULT_CLIENT)
    args = p.parse_args()
    print(json.dumps(asyncio.run(poll(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
