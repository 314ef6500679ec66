"""Child of bench_scrapy_ticks: K ticks of ``Poller.crawl`` over the listing sources of a config, timed.

Run with the tree under test first on ``sys.path`` (``PYTHONPATH``), so the same driver
measures the commit before the long-lived crawler and the one after: it uses only
what both have (``make_app``, ``Poller``, ``make_ingest_stage``, ``run_on_reactor``).
Prints one JSON object: per tick its wall and CPU seconds and its outcomes' statuses.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(config: str, database_url: str, ticks: int) -> dict[str, Any]:
    from monitor.app import make_app, utcnow
    from monitor.daemon import Poller, _owner, make_ingest_stage

    app = make_app(config, database_url)
    await asyncio.to_thread(app.store.sync_sources, [(s.name, s.type, s.url) for s in app.config.sources], utcnow())
    names = [s.name for s in app.config.sources]
    ingest = make_ingest_stage(app)
    out: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="control") as control:
        poller = Poller(app, owner=_owner(), ingest=ingest, control=control)
        try:
            for _ in range(ticks):
                states = await asyncio.to_thread(app.store.source_states, names)
                wall, used = time.perf_counter(), cpu()
                summaries = await poller.crawl(poller.targets(states), 300)
                out.append(
                    {
                        "wall": time.perf_counter() - wall,
                        "cpu": cpu() - used,
                        "statuses": sorted({s.status for s in summaries}),
                        "outcomes": len(summaries),
                    }
                )
        finally:
            await poller.close()
    await ingest.close()
    return {"ticks": out, "scrapy_starts": getattr(poller, "scrapy_starts", None)}


def main() -> int:
    from monitor.daemon import run_on_reactor

    config, database_url, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    result: dict[str, Any] = {}

    async def run() -> int:
        result.update(await drive(config, database_url, ticks))
        return 0

    code = run_on_reactor(run)
    json.dump(result, sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
