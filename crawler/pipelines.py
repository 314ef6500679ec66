"""IngestPipeline: hand each poll outcome to the ingest service, off the reactor thread.

The pipeline knows nothing about the database: the composition root injects the ingest
callable through the ``WIREWATCH_INGEST`` setting.  Database work is blocking, so it
runs in a worker thread; the reactor keeps downloading meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from scrapy.crawler import Crawler

from monitor.core.models import PollOutcome

log = logging.getLogger(__name__)


class IngestPipeline:
    def __init__(self, ingest: Callable[[PollOutcome], Any] | None) -> None:
        self.ingest = ingest

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestPipeline:
        return cls(crawler.settings.get("WIREWATCH_INGEST"))

    async def process_item(self, item: Any) -> Any:
        if self.ingest is not None and isinstance(item, PollOutcome):
            try:
                await asyncio.to_thread(self.ingest, item)
            except Exception as exc:  # one poll's failure; the others go on
                # One summary line, never the outcome's entries.  Nothing is lost: the
                # source's lease runs out and it is polled again.
                log.error(
                    "source %s: ingest of %d entries failed, polled again later: %s: %s",
                    item.source,
                    len(item.items),
                    type(exc).__name__,
                    str(exc)[:300],
                )
        return item
