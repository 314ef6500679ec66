"""The crawler half of wirewatch: the fetch policy, the feed poller, Scrapy settings, spiders and pipeline.

Everything that goes over the network for a source goes through here, so robots.txt,
per-host concurrency and delay, backoff, timeouts, size limits and the user agent are set
once (``crawler.policy``); feeds and sitemaps are polled by ``crawler.poller`` on aiohttp,
listings and named spiders by Scrapy.  It knows no database.  Only the composition root
(``monitor.cli``, ``monitor.daemon``) imports this package.
"""
