"""IngestPipeline: hand each poll outcome to the ingest stage.

The pipeline knows nothing about the database: the composition root injects an async
sink through the ``WIREWATCH_INGEST`` setting (the ingest stage's queue, which commits in
batches on a thread of its own).  Awaiting it is the back-pressure: a full ingest queue
slows the crawl rather than growing without bound; the reactor keeps downloading.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from scrapy.crawler import Crawler

from monitor.core.models import PollOutcome


class IngestPipeline:
    def __init__(self, ingest: Callable[[PollOutcome], Awaitable[None]] | None) -> None:
        self.ingest = ingest

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestPipeline:
        return cls(crawler.settings.get("WIREWATCH_INGEST"))

    async def process_item(self, item: Any) -> Any:
        if self.ingest is not None and isinstance(item, PollOutcome):
            await self.ingest(item)
        return item
