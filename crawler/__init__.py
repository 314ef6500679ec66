"""The crawler half of wirewatch: Scrapy settings, spiders and the ingest pipeline.

Everything that goes over the network for a source goes through here, so robots.txt,
per-host concurrency and delay, timeouts, size limits and the user agent are set once.
Only the composition root (``monitor.cli``, ``monitor.daemon``) imports this package.
"""
