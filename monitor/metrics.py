"""Prometheus metrics for the daemon, recorded from the summaries each job returns.

Responsible for the metric definitions and for turning an ``IngestSummary``, an
``EnrichSummary`` or a ``DispatchSummary`` into counter increments.  A private registry (not the global one)
keeps tests and several daemons in one interpreter independent.  Gauges that mirror the
database (alerts by status, the outbox depth, the enrichment queue) are read when
``/metrics`` is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.services.dispatch import DispatchSummary
from monitor.services.enrich import EnrichSummary
from monitor.services.ingest import IngestSummary


class _TextQueueCollector(Collector):
    def __init__(self, text_queue: Callable[[], dict[str, int]]) -> None:
        self.text_queue = text_queue

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = self.text_queue()
        by_state = GaugeMetricFamily(
            "wirewatch_article_pages", "Items by article-page state (enrichment)", labels=["state"]
        )
        for state in ("due", "waiting", "done", "failed", "skipped"):
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "wirewatch_enrich_queue_depth",
            "Items waiting for their article page (due now or retrying later)",
            value=counts.get("due", 0) + counts.get("waiting", 0),
        )


class _StoreCollector(Collector):
    def __init__(self, alert_counts: Callable[[], dict[str, int]]) -> None:
        self.alert_counts = alert_counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = self.alert_counts()
        by_status = GaugeMetricFamily("wirewatch_alerts", "Alert rows by status", labels=["status"])
        for status in ("waiting", "pending", "sending", "sent", "failed"):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "wirewatch_outbox_depth",
            "Alerts waiting to be sent",
            value=counts.get("pending", 0) + counts.get("sending", 0),
        )


class Metrics:
    def __init__(
        self,
        alert_counts: Callable[[], dict[str, int]] | None = None,
        text_queue: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("wirewatch_polls", "Source polls by outcome", ["status"], registry=r)
        self.items = Counter("wirewatch_items_new", "New items stored", registry=r)
        self.matches = Counter("wirewatch_items_matched", "New items that matched at least one rule", registry=r)
        self.fetch_errors = Counter(
            "wirewatch_fetch_errors", "Failed polls by error class", ["error_class"], registry=r
        )
        self.alerts_queued = Counter("wirewatch_alerts_queued", "Alert rows enqueued", registry=r)
        self.deliveries = Counter("wirewatch_deliveries", "Delivery results by outcome", ["outcome"], registry=r)
        self.crawl_seconds = Histogram(
            "wirewatch_crawl_duration_seconds",
            "Wall time of one crawl (a batch of due sources)",
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
        )
        self.dispatch_seconds = Histogram(
            "wirewatch_dispatch_duration_seconds", "Wall time of one dispatch run", registry=r
        )
        self.pages = Counter(
            "wirewatch_article_pages_read",
            "Article pages read by the enrichment stage, by outcome",
            ["outcome"],
            registry=r,
        )
        self.enrich_seconds = Histogram(
            "wirewatch_enrich_duration_seconds", "Wall time of one enrichment round", registry=r
        )
        if alert_counts is not None:
            r.register(_StoreCollector(alert_counts))
        if text_queue is not None:
            r.register(_TextQueueCollector(text_queue))

    def record_polls(self, summaries: Iterable[IngestSummary], seconds: float) -> None:
        self.crawl_seconds.observe(seconds)
        for s in summaries:
            self.polls.labels(s.status).inc()
            if s.status == "error":
                self.fetch_errors.labels(s.error_class or "temporary").inc()
            self.items.inc(s.new)
            self.matches.inc(s.matched)
            self.alerts_queued.inc(s.alerts)

    def record_dispatch(self, summary: DispatchSummary, seconds: float) -> None:
        self.dispatch_seconds.observe(seconds)
        self.deliveries.labels("sent").inc(summary.sent)
        self.deliveries.labels("retrying").inc(summary.retrying)
        self.deliveries.labels("failed").inc(summary.failed)
        self.deliveries.labels("unknown").inc(summary.unknown)

    def record_enrich(self, summary: EnrichSummary, seconds: float) -> None:
        self.enrich_seconds.observe(seconds)
        self.pages.labels("text").inc(summary.enriched)
        self.pages.labels("retrying").inc(summary.retrying)
        self.pages.labels("failed").inc(summary.failed)
        self.matches.inc(summary.matched)
        self.alerts_queued.inc(summary.alerts)

    def render(self) -> bytes:
        return generate_latest(self.registry)
