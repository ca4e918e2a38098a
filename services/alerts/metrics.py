"""Prometheus series of the alerts service. Labels: kind, severity, decision, outcome only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS, BaseMetrics

SLOW_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 300.0, 3600.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)


class AlertsMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__("alerts", registry)
        self.consumer_lag = Gauge(
            self.name("consumer_lag"),
            "Progress updates not yet committed by this worker, by partition owned",
            ["topic", "partition"],
            registry=registry,
        )
        self.updates = Counter(
            self.name("progress_updates"),
            "Progress updates consumed, by outcome (applied, duplicate, deadletter)",
            ["outcome"],
            registry=registry,
        )
        self.signals = Counter(
            self.name("signals"),
            "Detector signals applied, by kind and decision (open, update, resolve, suppress...)",
            ["kind", "decision"],
            registry=registry,
        )
        self.raised = Counter(
            self.name("alerts_raised"),
            "Alerts opened, by kind and severity",
            ["kind", "severity"],
            registry=registry,
        )
        self.open_alerts = Gauge(
            self.name("open_alerts"),
            "Alerts not resolved, by kind (as of the last scan)",
            ["kind"],
            registry=registry,
        )
        self.process_latency = Histogram(
            self.name("process_duration_seconds"),
            "Time to apply one progress update (detectors and database transaction)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            self.name("batch_size"),
            "Progress updates per batch (one PostgreSQL transaction each)",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_latency = Histogram(
            self.name("batch_latency_seconds"),
            "From a batch's first update received to the batch acknowledged (wait and apply)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refetched = Counter(
            self.name("records_refetched"),
            "Records the stream skipped (Faust, around a rebalance), read again from Kafka",
            registry=registry,
        )
        self.apply_retries = Counter(
            self.name("apply_retries"),
            "Retries of a progress update's transaction (PostgreSQL away)",
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            self.name("outbox_backlog"),
            "alerts.events records not yet acknowledged by Kafka",
            registry=registry,
        )
        self.published = Counter(
            self.name("events_published"), "alerts.events records published", registry=registry
        )
        self.relay_errors = Counter(
            self.name("relay_errors"), "Outbox relay rounds that failed", registry=registry
        )
        self.deliveries = Counter(
            self.name("webhook_deliveries"),
            "Webhook attempts by outcome (delivered, retry, dead)",
            ["outcome"],
            registry=registry,
        )
        self.delivery_backlog = Gauge(
            self.name("webhook_backlog"),
            "Webhook deliveries pending (first try or retry)",
            registry=registry,
        )
        self.delivery_latency = Histogram(
            self.name("webhook_delivery_latency_seconds"),
            "From the alert change to the webhook's 2xx",
            buckets=SLOW_BUCKETS,
            registry=registry,
        )
        self.deadletters = Counter(
            self.name("deadletters"),
            "Messages or deliveries given up on, by where (stream, webhook)",
            ["where", "reason"],
            registry=registry,
        )
