"""Prometheus series of the ingest service. Labels: tenant, channel and rule only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS, BaseMetrics

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
PUBLISH_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 300.0, 3600.0)


class IngestMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__("ingest", registry)
        self.accepted = Counter(
            self.name("statements_accepted"),
            "Statements archived (new ones; retries of stored statements are not counted)",
            ["tenant", "channel"],
            registry=registry,
        )
        self.rejected = Counter(
            self.name("statements_rejected"),
            "Statements or requests refused, by the first rule they broke",
            ["tenant", "channel", "rule"],
            registry=registry,
        )
        self.lenient_deviations = Counter(
            self.name("lenient_deviations"),
            "Deviations accepted by a tenant's lenient validation profile, by rule",
            ["tenant", "rule"],
            registry=registry,
        )
        self.batch_size = Histogram(
            self.name("batch_size_statements"),
            "Statements per accepted request or raw record",
            ["channel"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.deadletters = Counter(
            self.name("deadletter_records"),
            "Raw records sent to the dead-letter topic",
            ["tenant", "rule"],
            registry=registry,
        )
        self.deadletter_failures = Counter(
            self.name("deadletter_failures"),
            "Refused raw records whose dead-letter could not be produced (a permanent error, "
            "e.g. too large); they were skipped and are only in the logs",
            ["tenant", "rule"],
            registry=registry,
        )
        self.archive_latency = Histogram(
            self.name("archive_duration_seconds"),
            "Time of the database transaction archiving a batch",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            self.name("outbox_backlog"),
            "Outbox events not yet acknowledged by Kafka (as of the relay's last round)",
            registry=registry,
        )
        self.publish_latency = Histogram(
            self.name("publish_latency_seconds"),
            "From archiving a statement to Kafka acknowledging its event",
            buckets=PUBLISH_BUCKETS,
            registry=registry,
        )
        self.published = Counter(
            self.name("events_published"),
            "Outbox events acknowledged by Kafka",
            registry=registry,
        )
        self.relay_errors = Counter(
            self.name("relay_errors"),
            "Outbox relay rounds that failed (Kafka or database unavailable)",
            registry=registry,
        )
