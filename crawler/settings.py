"""Scrapy settings for wirewatch, built from ``[fetch]`` in config.toml.

``SCRAPY_SETTINGS_MODULE=crawler.settings`` is enough for Scrapy's own tools; wirewatch
itself calls :func:`make_settings` so that the operator's ``[fetch]`` table wins.
"""

from __future__ import annotations

from typing import Any

from crawler.egress import EgressPolicy

BOT_NAME = "wirewatch"
SPIDER_MODULES = ["crawler.spiders"]
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
ROBOTSTXT_OBEY = True
# Our own schedule retries failed sources with backoff and honours Retry-After; Scrapy's
# immediate retries would only hammer a server that just said "later".
RETRY_ENABLED = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# HttpCache would answer from disk instead of asking the server (see LIBRARY-NOTES).
HTTPCACHE_ENABLED = False
REDIRECT_MAX_TIMES = 5
LOG_LEVEL = "WARNING"
ITEM_PIPELINES = {"crawler.pipelines.IngestPipeline": 100}
DOWNLOADER_MIDDLEWARES = {
    # Before robots.txt (100) and the download itself: refuse other schemes outright.
    "crawler.middlewares.SchemeGuardMiddleware": 50,
    # Scrapy's own robots.txt middleware lets through requests queued while robots.txt loads.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.SharedRobotsTxtMiddleware": 100,
    # Close to the downloader, so it sees every response status before redirects or errors.
    "crawler.middlewares.HostBackoffMiddleware": 950,
    # Closest to the downloader: a slot is held only while the request is out.
    "crawler.middlewares.PolicySlotMiddleware": 990,
}
# Only http(s) is ever fetched: a feed must not make us read local files or S3 buckets.
# http(s) goes through the egress policy (crawler/egress.py), checked on the address connected to.
DOWNLOAD_HANDLERS = {
    "file": None,
    "s3": None,
    "ftp": None,
    "data": None,
    "http": "crawler.handlers.EgressHTTPDownloadHandler",
    "https": "crawler.handlers.EgressHTTPDownloadHandler",
}
# A certificate that does not verify is a TLS error recorded on the source, not ignored.
DOWNLOAD_VERIFY_CERTIFICATES = True
# A body cut short still goes to the parser, which keeps what parses (and says so).
DOWNLOAD_FAIL_ON_DATALOSS = False
# One item per source: a large concurrency of items only adds scheduling overhead.
CONCURRENT_ITEMS = 16
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"


def make_settings(fetch: Any, ingest: Any = None, policy: Any = None) -> dict[str, Any]:
    """Settings for one crawl from a :class:`monitor.config.FetchConfig`.

    ``ingest`` is the callable the :class:`~crawler.pipelines.IngestPipeline` hands each
    poll outcome to; it is injected here so the crawler never imports the services.
    ``policy`` is the process's :class:`~crawler.policy.FetchPolicy`, shared with the
    aiohttp poller (429/503 backoff holds across both clients and across crawls).
    """
    return {
        "BOT_NAME": BOT_NAME,
        "SPIDER_MODULES": SPIDER_MODULES,
        "TWISTED_REACTOR": TWISTED_REACTOR,
        "ROBOTSTXT_OBEY": fetch.obey_robots,
        "RETRY_ENABLED": RETRY_ENABLED,
        "COOKIES_ENABLED": COOKIES_ENABLED,
        "TELNETCONSOLE_ENABLED": TELNETCONSOLE_ENABLED,
        "HTTPCACHE_ENABLED": HTTPCACHE_ENABLED,
        "REDIRECT_MAX_TIMES": REDIRECT_MAX_TIMES,
        "LOG_LEVEL": LOG_LEVEL,
        "ITEM_PIPELINES": ITEM_PIPELINES,
        "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
        "DOWNLOAD_HANDLERS": DOWNLOAD_HANDLERS,
        "DOWNLOAD_VERIFY_CERTIFICATES": DOWNLOAD_VERIFY_CERTIFICATES,
        "DOWNLOAD_FAIL_ON_DATALOSS": DOWNLOAD_FAIL_ON_DATALOSS,
        # robots.txt is read with the same User-Agent the operator configured.
        "ROBOTSTXT_USER_AGENT": fetch.user_agent,
        "CONCURRENT_ITEMS": CONCURRENT_ITEMS,
        "USER_AGENT": fetch.user_agent,
        "DOWNLOAD_TIMEOUT": fetch.timeout.total_seconds(),
        "DOWNLOAD_MAXSIZE": fetch.max_body,
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": fetch.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": fetch.per_host,
        # With the process's policy, its slots space the requests (PolicySlotMiddleware).
        "DOWNLOAD_DELAY": 0 if policy is not None else fetch.host_delay.total_seconds(),
        "DOWNLOAD_DELAY_JITTER": 0,
        "WIREWATCH_INGEST": ingest,
        "WIREWATCH_EGRESS": EgressPolicy.from_config(fetch),
        "WIREWATCH_POLICY": policy,
        "LOGSTATS_INTERVAL": 0,
    }
