"""IngestPipeline: hand each poll outcome to the ingest stage.

The pipeline knows nothing about the database: the composition root injects an async
sink through the ``WIREWATCH_INGEST`` setting (the ingest stage's queue, which commits in
batches on a thread of its own).  Awaiting it is the back-pressure: a full ingest queue
slows the crawl rather than growing without bound; the reactor keeps downloading.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from scrapy.crawler import Crawler

from monitor.core.models import PollOutcome

log = logging.getLogger(__name__)


class IngestPipeline:
    def __init__(self, ingest: Callable[[PollOutcome], Awaitable[None]] | None) -> None:
        self.ingest = ingest

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestPipeline:
        return cls(crawler.settings.get("WIREWATCH_INGEST"))

    async def process_item(self, item: Any) -> Any:
        if self.ingest is not None and isinstance(item, PollOutcome):
            try:
                await self.ingest(item)
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
