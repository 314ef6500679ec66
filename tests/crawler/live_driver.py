"""Several ``Poller.crawl`` calls in one real process, as the daemon's ticks make them; the facts as JSON.

The long-lived crawler tests need one process that lives across ticks (Twisted's
reactor cannot be restarted in the test process), so this runs as a child: it opens
the real App on the given config and database, polls the named sources once per tick
through the real Poller (the real ingest stage, the real long-lived Scrapy crawlers),
optionally swaps in another config file and reloads it before a tick, and prints for
each tick when each source's outcome was ingested and which crawler served it.

stdin: ``{"config": path, "database_url": url, "ticks": [{"sources": [...],
"timeout": s, "reload": path or null, "pause": s}]}``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def main() -> int:
    from monitor.daemon import run_on_reactor

    spec = json.load(sys.stdin)
    result: dict[str, Any] = {}

    async def drive() -> int:
        result.update(await _drive(spec))
        return 0

    code = run_on_reactor(drive)
    json.dump(result, sys.stdout)
    return code


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    from monitor.app import make_app, utcnow
    from monitor.daemon import Poller, _owner, make_ingest_stage
    from monitor.services.ingest import IngestSummary

    app = make_app(spec["config"], spec["database_url"])

    def sync() -> None:
        app.store.sync_sources([(s.name, s.type, s.url) for s in app.config.sources], utcnow())

    await asyncio.to_thread(sync)
    ingest = make_ingest_stage(app)
    ticks: list[dict[str, Any]] = []
    crawlers: dict[int, Any] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="control") as control:
        started = 0.0
        outcomes: list[dict[str, Any]] = []

        def progress(summary: IngestSummary) -> None:
            outcomes.append(
                {
                    "source": summary.source,
                    "status": summary.status,
                    "error": summary.error,
                    "at": time.monotonic() - started,
                }
            )

        poller = Poller(app, owner=_owner(), ingest=ingest, control=control, progress=progress)
        try:
            for tick in spec["ticks"]:
                await asyncio.sleep(tick.get("pause", 0))
                if tick.get("reload"):
                    shutil.copyfile(tick["reload"], spec["config"])
                    error = await asyncio.to_thread(app.holder.reload)
                    assert error is None, error
                    await asyncio.to_thread(sync)
                states = await asyncio.to_thread(app.store.source_states, tick["sources"])
                outcomes = []
                started = time.monotonic()
                await poller.crawl(poller.targets(states), tick["timeout"])
                took = time.monotonic() - started
                live = {}
                for name, crawler in poller.live.items():
                    crawlers[id(crawler.crawler)] = crawler.crawler
                    live[name] = {
                        "crawler": id(crawler.crawler),
                        "running": crawler.running,
                        "requests": crawler.crawler.stats.get_value("downloader/request_count", 0),
                        "fed": crawler.fed,
                    }
                ticks.append({"took": took, "outcomes": outcomes, "live": live, "starts": poller.scrapy_starts})
            retiring = len(poller.retiring)
        finally:
            await poller.close()
    await ingest.close()
    return {
        "ticks": ticks,
        "retiring_at_end": retiring,
        # After run's end every crawler this process started is stopped.
        "running_after_close": [c for c, crawler in crawlers.items() if crawler.engine.running],
    }


if __name__ == "__main__":
    sys.exit(main())
