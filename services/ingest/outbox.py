"""Ingest's outbox relay: publishes archived statements' events to ``xapi.statements``.

Accepting a statement writes its envelope to ``outbox`` in the same transaction as the archive
row, so an answered request is never lost: if Kafka is down the rows wait in PostgreSQL (a
durable buffer) and HTTP keeps accepting. The relay itself is :class:`shared.outbox.OutboxRelay`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.ingest import repository as repo
from services.ingest.metrics import IngestMetrics
from shared import outbox


class OutboxRelay(outbox.OutboxRelay):
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        topic: str,
        metrics: IngestMetrics,
        *,
        schema: str,
        **options: Any,
    ) -> None:
        super().__init__(
            pool, producer, topic, metrics,
            schema=schema, channel=repo.notify_channel(schema), name="ingest",
            latency=metrics.publish_latency, **options,
        )  # fmt: skip
