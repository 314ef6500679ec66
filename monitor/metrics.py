"""Prometheus metrics for the daemon, recorded from the summaries each job returns.

Responsible for the metric definitions and for turning an ``IngestSummary`` or a
``DispatchSummary`` into counter increments.  A private registry (not the global one)
keeps tests and several daemons in one interpreter independent.  Gauges that mirror the
database (alerts by status, the outbox depth) are read when ``/metrics`` is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.services.dispatch import DispatchSummary
from monitor.services.ingest import IngestSummary


class _StoreCollector(Collector):
    def __init__(self, alert_counts: Callable[[], dict[str, int]]) -> None:
        self.alert_counts = alert_counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = self.alert_counts()
        by_status = GaugeMetricFamily("wirewatch_alerts", "Alert rows by status", labels=["status"])
        for status in ("pending", "sending", "sent", "failed"):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "wirewatch_outbox_depth",
            "Alerts waiting to be sent",
            value=counts.get("pending", 0) + counts.get("sending", 0),
        )


class Metrics:
    def __init__(self, alert_counts: Callable[[], dict[str, int]] | None = None) -> None:
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
        if alert_counts is not None:
            r.register(_StoreCollector(alert_counts))

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
