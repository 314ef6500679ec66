"""Poll PollTargets with any client, the Scrapy FeedSpider or the FeedPoller on aiohttp or libcurl, alike.

Both return the outcomes as JSON-shaped dicts keyed by source name, so one test can hold
both clients to the same semantics against the same misbehaving loopback server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crawler.policy import FetchPolicy
from crawler.poller import FeedPoller
from monitor.core.models import PollTarget
from tests.conftest import ROOT
from tests.crawler.outcomes import outcome_to_json


@dataclass(frozen=True)
class Fetch:
    user_agent: str = "wirewatch-test/1 (+https://example.org/ops)"
    timeout: float = 5.0
    max_body: int = 10_000_000
    concurrency: int = 64
    per_host: int = 8
    host_delay: float = 0.0
    obey_robots: bool = True


def poll_scrapy(
    targets: list[PollTarget], fetch: Fetch, backoff: Sequence[tuple[str, float]] = ()
) -> dict[str, dict[str, Any]]:
    """``backoff``: (URL, seconds) its host already asked the process's policy to wait."""
    spec = {
        "fetch": dataclasses.asdict(fetch),
        "targets": [dataclasses.asdict(t) for t in targets],
        "backoff": list(backoff),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.crawler.scrapy_client"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {o["source"]: o for o in json.loads(result.stdout)}


def poll_aiohttp(
    targets: list[PollTarget], fetch: Fetch, backoff: Sequence[tuple[str, float]] = (), client: str = "aiohttp"
) -> dict[str, dict[str, Any]]:
    async def run() -> dict[str, dict[str, Any]]:
        policy = FetchPolicy(
            user_agent=fetch.user_agent,
            per_host=fetch.per_host,
            host_delay=fetch.host_delay,
            max_body=fetch.max_body,
            obey_robots=fetch.obey_robots,
        )
        for url, seconds in backoff:
            policy.note_response(url, 429, str(seconds))
        async with FeedPoller(policy, concurrency=fetch.concurrency, timeout=fetch.timeout, client=client) as poller:
            return {o.source: outcome_to_json(o) async for o in poller.poll(targets)}

    return asyncio.run(run())


def poll_curl(
    targets: list[PollTarget], fetch: Fetch, backoff: Sequence[tuple[str, float]] = ()
) -> dict[str, dict[str, Any]]:
    """The same FeedPoller sending through libcurl (crawler/curl.py) instead of aiohttp."""
    return poll_aiohttp(targets, fetch, backoff, client="curl")


CLIENTS = {"scrapy": poll_scrapy, "aiohttp": poll_aiohttp, "curl": poll_curl}
