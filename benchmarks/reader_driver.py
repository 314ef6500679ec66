"""Drive lemon24/reader over the generated web: the comparison the poll figures are read against.

Runs in its own venv (``benchmarks/work/reader-venv``), never in the project's.  ``add``
registers the feeds; ``update`` runs ``Reader.update_feeds_iter(scheduled=False,
workers=N)`` once and prints one JSON line: feeds updated, not modified and failed, and
new entries.  ``scheduled=False`` because reader otherwise skips a feed polled within the
hour (its default schedule); reader fetches no article pages (it has no full-text mode).
Usage: ``python reader_driver.py DB URLS_FILE add|update [--workers 16]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    from reader import make_reader  # imported here: this file is also read by ruff in the project venv

    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("urls", type=Path)
    p.add_argument("action", choices=("add", "update"))
    p.add_argument("--workers", type=int, default=16)
    args = p.parse_args()
    reader = make_reader(args.db)
    urls = [u for u in args.urls.read_text(encoding="utf-8").split() if u]
    if args.action == "add":
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        print(json.dumps({"added": len(urls)}))
        return 0
    start = time.perf_counter()
    updated = not_modified = failed = new = modified = 0
    for result in reader.update_feeds_iter(scheduled=False, workers=args.workers):
        value = result.value
        if isinstance(value, Exception):
            failed += 1
        elif value is None:
            not_modified += 1
        else:
            updated += 1
            new += value.new
            modified += value.modified
    print(
        json.dumps(
            {
                "feeds": updated + not_modified + failed,
                "updated": updated,
                "not_modified": not_modified,
                "failed": failed,
                "new": new,
                "modified": modified,
                "seconds": time.perf_counter() - start,
            }
        )
    )
    reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
