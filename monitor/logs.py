"""Logging set-up: plain text or one JSON object per line, on stderr.

Log lines carry the source or alert name in their message; secrets never reach a log
record because subscriber URLs are resolved only inside the notifier and the database
URL is printed with its password hidden.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Scrapy and Apprise are chatty at INFO; their warnings still show.
    for name in ("scrapy", "twisted", "apprise", "py.warnings", "apscheduler", "alembic", "filelock", "pymorphy3"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # A robots.txt that cannot be fetched counts as "allowed" (Scrapy's policy); the
    # page request that follows fails or succeeds on its own and is recorded on the
    # source.  Scrapy logs the robots.txt failure as an ERROR with a traceback, which
    # would drown real errors in a daemon log.
    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
