"""Logging set-up: plain text or one JSON object per line, on stderr, with secrets masked.

Log lines carry the source or alert name in their message.  Subscriber URLs are resolved
only inside the notifier and the database URL is printed with its password hidden, but
third-party code logs too: Apprise writes the whole URL or token of a URL it cannot parse
(no scheme, quotes left from an env file) in its own WARNING and ERROR lines.  So every
log record, whoever creates it, is masked when it is made (a record factory, installed by
:func:`setup_logging`; a filter on the root logger would miss records of child loggers
such as ``apprise``, and a handler filter would miss handlers Apprise adds itself, like
its ``LogCapture``): every resolved subscriber URL, every value substituted from the
environment, every password and every token-like URL part registered with
:func:`register_secrets` becomes ``***``.  This module must not read the config itself:
the runtime registers the secrets of each config it loads.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

MASK = "***"
# Shorter strings are not masked: "on", "1" or a port would shred every log line.
MIN_SECRET = 4


class _Secrets:
    """The strings to mask, longest first, swapped whole (readers never see half a set)."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None
        self.lock = threading.Lock()
        self.registered: dict[str, frozenset[str]] = {}

    def register(self, owner: str, secrets: Iterable[str]) -> None:
        with self.lock:
            self.registered[owner] = frozenset(s for s in secrets if len(s) >= MIN_SECRET)
            every = sorted(set().union(*self.registered.values()), key=len, reverse=True)
            self.pattern = re.compile("|".join(map(re.escape, every))) if every else None

    def mask(self, text: str) -> str:
        pattern = self.pattern
        return pattern.sub(MASK, text) if pattern is not None and text else text


_SECRETS = _Secrets()


def register_secrets(secrets: Iterable[str], owner: str = "config") -> None:
    """Mask these strings in every log record from now on (replacing ``owner``'s earlier set)."""
    _SECRETS.register(owner, secrets)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (for stored errors too)."""
    return _SECRETS.mask(text)


_base_factory = logging.getLogRecordFactory()


def _masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if _SECRETS.pattern is None:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it; the raw msg is masked
        message = str(record.msg)
    record.msg, record.args = _SECRETS.mask(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = _SECRETS.mask(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = _SECRETS.mask(record.stack_info)
    return record


def install_masking() -> None:
    """Mask secrets in every record created from now on, by any logger (idempotent)."""
    if logging.getLogRecordFactory() is not _masking_factory:
        logging.setLogRecordFactory(_masking_factory)


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
    install_masking()
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
