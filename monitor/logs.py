"""Logging set-up (plain text or one JSON object per line, on stderr) with secrets masked,
and the wording of the lines a person reads most: a source's failure and the summary of
a poll cycle.

Log lines carry the source or alert name in their message.  Subscriber URLs are resolved
only inside the notifier and the database URL is printed with its password hidden, but
third-party code logs too: Apprise writes the whole URL or token of a URL it cannot parse
(no scheme, quotes left from an env file) in its own WARNING and ERROR lines.  So every
log record, whoever creates it, is masked when it is made (a record factory, installed by
:func:`setup_logging`; a filter on the root logger would miss records of child loggers
such as ``apprise``, and a handler filter would miss handlers Apprise adds itself, like
its ``LogCapture``): every resolved subscriber URL, every value substituted from the
environment, every password and every token-like URL part registered with
:func:`register_secrets` becomes ``***``.  This module formats and masks; it must not
decide anything (when to retry, whom to tell), read the config or the database: the
runtime registers the secrets of each config it loads.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
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
    for name in ("scrapy", "twisted", "apprise", "py.warnings", "alembic", "filelock", "pymorphy3"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # APScheduler logs every run of the one-second poll tick ("Running job ...", "Job ...
    # executed successfully") at INFO/DEBUG: with -v that was a line a second saying
    # nothing.  Its warnings (a skipped or missed run) are what matters, at any verbosity.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # A robots.txt that cannot be fetched counts as "allowed" (Scrapy's policy); the
    # page request that follows fails or succeeds on its own and is recorded on the
    # source.  Scrapy logs the robots.txt failure as an ERROR with a traceback, which
    # would drown real errors in a daemon log.
    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


# --------------------------------------------------------------------------- wording

_HTTP = re.compile(r"\bHTTP (\d{3})\b")
# (pattern in the fetcher's error text, the cause in words); first match wins.  The texts
# come from crawler/ (Scrapy's and aiohttp's exceptions as the fetchers word them) and
# from the operating system's resolver and TLS library, so they are matched loosely.
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), cause)
    for p, cause in (
        (r"certificate has expired|certificate expired|CERT_HAS_EXPIRED", "TLS certificate expired"),
        (r"self[- ]signed", "TLS certificate is self-signed"),
        (r"hostname mismatch|doesn't match|does not match|not valid for", "TLS certificate is for another host"),
        (r"certificate|CERTIFICATE_VERIFY_FAILED|unknown ca", "TLS certificate not trusted"),
        (r"\bTLS\b|\bSSL\b|handshake", "TLS handshake failed"),
        (
            (
                r"host not found|DNS|name or service not known|nodename nor servname|getaddrinfo|"
                r"no address associated|temporary failure in name resolution|could not resolve|cannot resolve"
            ),
            "DNS lookup failed",
        ),
        (r"connection refused", "connection refused"),
        (r"network is unreachable|no route to host", "network unreachable"),
        (r"connection reset|connection lost|connection was closed", "connection dropped"),
        (r"poll did not complete", "poll did not finish in time"),
        (r"timed out|timeout", "timed out"),
        (r"robots\.txt", "forbidden by robots.txt"),
        (r"max_body|larger than", "response too large (fetch.max_body)"),
        (r"truncated|data loss", "response truncated"),
        (r"redirect loop|too many redirects", "too many redirects"),
        (r"refused redirect", "redirect refused (only http and https)"),
        (r"egress|private address|loopback|link-local", "address not allowed (egress policy)"),
        (r"not a feed|no feed|cannot parse|not well-formed", "not a readable feed"),
    )
)


def cause_in_words(error: str | None) -> str:
    """The short cause of a fetch error, as a person would say it ("DNS lookup failed",
    "HTTP 404 Not Found", "TLS certificate expired"); the error itself when unknown."""
    text = (error or "unknown error").strip()
    m = _HTTP.search(text)
    if m:
        code = int(m.group(1))
        try:
            return f"HTTP {code} {HTTPStatus(code).phrase}"
        except ValueError:
            return f"HTTP {code}"
    for pattern, cause in _CAUSES:
        if pattern.search(text):
            return cause
    first = text.splitlines()[0] if text else text
    return first if len(first) <= 160 else first[:159] + "…"


def format_delay(delay: timedelta) -> str:
    """A rounded, readable delay: "45s", "15m", "1h 30m", "2d 3h"."""
    seconds = max(0, round(delay.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def failure_line(source: str, error: str | None, failures: int, next_due: datetime, now: datetime) -> str:
    """The one log line of one failed poll of one source."""
    streak = "" if failures <= 1 else f", {failures} failures in a row"
    return f"source {source}: {cause_in_words(error)} (next try in {format_delay(next_due - now)}{streak})"


def cycle_summary(
    polled: int,
    failed: int,
    new: int,
    now: datetime,
    next_due: tuple[str, datetime] | None,
) -> list[str]:
    """The summary line of one poll cycle, and a hint when every source failed at once.

    ``next_due`` is the source due soonest and when, or None when nothing is scheduled.
    """
    ok = polled - failed
    line = f"poll: {polled} sources ({ok} ok, {failed} failed), {new} new items"
    if next_due is not None:
        name, when = next_due
        line += f"; next due {name} in {format_delay(when - now)}"
    lines = [line]
    if polled > 1 and failed == polled:
        lines.append(
            "every source failed at once: this machine probably has no network or no DNS "
            "(check `wirewatch sources` for the causes)"
        )
    return lines
