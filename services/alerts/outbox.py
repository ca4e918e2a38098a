"""Alerts' outbox relay: publishes alert lifecycle events to ``alerts.events``.

Every alert change writes its envelope to ``outbox`` in the same transaction as the change
(:mod:`services.alerts.changes`), so publishing never blocks the stream or the API and never
loses an event. The relay itself is :class:`shared.outbox.OutboxRelay`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.alerts import repository as repo
from services.alerts.metrics import AlertsMetrics
from shared import outbox


class OutboxRelay(outbox.OutboxRelay):
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        topic: str,
        metrics: AlertsMetrics,
        *,
        schema: str,
        **options: Any,
    ) -> None:
        super().__init__(
            pool, producer, topic, metrics,
            schema=schema, channel=repo.outbox_channel(schema), name="alerts", **options,
        )  # fmt: skip
