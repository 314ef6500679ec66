"""Run the real Scrapy FeedSpider over PollTargets given as JSON on stdin; print the outcomes as JSON.

The poller tests run the same misbehaving-server cases through both clients: this is the
Scrapy half, in a child process because Twisted's reactor cannot be restarted in the
test process.  No database: outcomes are collected by the injected ingest callable.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

from tests.crawler.outcomes import outcome_to_json


def main() -> int:
    from scrapy.crawler import CrawlerProcess

    from crawler.policy import FetchPolicy
    from crawler.settings import make_settings
    from crawler.spiders.base import SourceOptions
    from crawler.spiders.feeds import FeedSpider
    from monitor.config import FetchConfig
    from monitor.core.models import PollTarget

    spec = json.load(sys.stdin)
    fetch = spec["fetch"]
    config = FetchConfig(
        user_agent=fetch["user_agent"],
        timeout=timedelta(seconds=fetch["timeout"]),
        max_body=fetch["max_body"],
        concurrency=fetch["concurrency"],
        per_host=fetch["per_host"],
        host_delay=timedelta(seconds=fetch["host_delay"]),
        obey_robots=fetch["obey_robots"],
        full_text=False,
    )
    targets = [PollTarget(**t) for t in spec["targets"]]
    outcomes: list[dict[str, Any]] = []
    # The process's one policy, as the daemon would share it with the aiohttp poller.
    policy = FetchPolicy.from_config(config)
    for url, seconds in spec.get("backoff", []):
        policy.note_response(url, 429, str(seconds))
    settings = make_settings(config, lambda o: outcomes.append(outcome_to_json(o)), policy)
    settings["LOG_LEVEL"] = "ERROR"
    process = CrawlerProcess(settings)
    options = {t.source_id: SourceOptions(full_text=False) for t in targets}
    process.crawl(FeedSpider, targets=targets, options=options, known_keys=None, full_text_max=0)
    process.start()
    json.dump(outcomes, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
