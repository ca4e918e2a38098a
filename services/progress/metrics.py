"""Prometheus series of the progress service. Labels: tenant, evidence kind and reason only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS, BaseMetrics

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class ProgressMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__("progress", registry)
        self.events = Counter(
            self.name("events_processed"),
            "Statements processed, by tenant and evidence kind (redeliveries counted apart)",
            ["tenant", "evidence"],
            registry=registry,
        )
        self.redelivered = Counter(
            self.name("statements_redelivered"),
            "Statements recognised as already applied to the state (not counted again)",
            ["tenant"],
            registry=registry,
        )
        self.updates = Counter(
            self.name("updates_published"),
            "Progress updates sent to progress.updates",
            registry=registry,
        )
        self.deadletters = Counter(
            self.name("deadletters"),
            "Messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.batch_size = Histogram(
            self.name("projection_batch_size"),
            "Statements per projection transaction",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_latency = Histogram(
            self.name("projection_batch_duration_seconds"),
            "Duration of one projection transaction",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refetched = Counter(
            self.name("records_refetched"),
            "Records the stream skipped (Faust, around a rebalance), read again from Kafka",
            registry=registry,
        )
        self.projection_skipped = Counter(
            self.name("projection_skipped"),
            "Statements at or below the projection watermark (already projected)",
            registry=registry,
        )
        self.projection_errors = Counter(
            self.name("projection_errors"),
            "Projection transactions that failed and were retried",
            registry=registry,
        )
        self.recovered = Gauge(
            self.name("table_recovered"),
            "1 when the tables are recovered and no rebalance runs (at the last readiness check)",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            self.name("consumer_lag"),
            "Statements on xapi.statements not yet committed by this worker, by partition owned",
            ["topic", "partition"],
            registry=registry,
        )
        self.frameworks = Gauge(
            self.name("framework_versions"),
            "Framework versions in the worker's registry",
            registry=registry,
        )
