"""The simplest possible poller: ``feedparser.parse(url)`` in a plain loop, one feed after another.

The floor every real poller is compared with: no concurrency, no database, no matching,
feedparser's own HTTP (urllib) with ETag / Last-Modified kept in a JSON file between runs so
that a re-poll is conditional.  JSON Feeds are read with ``json`` (feedparser 6 reads only
XML).  Prints one JSON line: feeds, 200s, 304s, failures and entries parsed.
Usage: ``python -m benchmarks.feedparser_driver URLS_FILE STATE_FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import feedparser


def poll(url: str, state: dict[str, Any]) -> tuple[int, int]:
    """(HTTP status, entries) for one feed; updates ``state`` with its validators."""
    if url.endswith(".json"):
        req = urllib.request.Request(url)
        if state.get("etag"):
            req.add_header("If-None-Match", state["etag"])
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = resp.read()
                state["etag"] = resp.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, 0
            raise
        return 200, len(json.loads(body).get("items") or [])
    parsed = feedparser.parse(url, etag=state.get("etag"), modified=state.get("modified"))
    status = int(parsed.get("status", 0))
    if parsed.get("etag"):
        state["etag"] = parsed["etag"]
    if parsed.get("modified"):
        state["modified"] = parsed["modified"]
    return status, len(parsed.get("entries") or [])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("urls", type=Path)
    p.add_argument("state", type=Path)
    args = p.parse_args()
    urls = [u for u in args.urls.read_text(encoding="utf-8").split() if u]
    states: dict[str, dict[str, Any]] = json.loads(args.state.read_text()) if args.state.exists() else {}
    counts = {"feeds": 0, "ok": 0, "not_modified": 0, "failed": 0, "entries": 0}
    start = time.perf_counter()
    for url in urls:
        state = states.setdefault(url, {})
        try:
            status, entries = poll(url, state)
        except (OSError, ValueError):
            counts["failed"] += 1
            continue
        finally:
            counts["feeds"] += 1
        if status == 304:
            counts["not_modified"] += 1
        elif 200 <= status < 300:
            counts["ok"] += 1
            counts["entries"] += entries
        else:
            counts["failed"] += 1
    args.state.write_text(json.dumps(states))
    print(json.dumps({**counts, "seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
