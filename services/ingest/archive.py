"""Archiving accepted statements: one transaction writes the statements, their learners, the
attachments and the outbox events (see ``repository.store_statements``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.ingest import repository as repo
from services.ingest.errors import ConflictError
from services.ingest.handlers import Channel, Prepared
from services.ingest.metrics import IngestMetrics
from shared.errors import is_retriable


class Archive:
    def __init__(self, pool: asyncpg.Pool[Any], metrics: IngestMetrics, schema: str) -> None:
        self._pool = pool
        self._metrics = metrics
        self._notify = repo.notify_channel(schema)

    async def accept(
        self,
        tenant: str,
        items: Sequence[Prepared],
        channel: Channel,
        attachments: Sequence[tuple[str, str, bytes]] = (),
    ) -> repo.StoreResult:
        """All of ``items`` or none (a conflict raises and rolls everything back)."""
        started = time.perf_counter()
        async with (
            self._pool.acquire(timeout=repo.ACQUIRE_TIMEOUT_SECONDS) as conn,
            conn.transaction(),
        ):
            result = await repo.store_statements(conn, tenant, items, channel, self._notify)
            await repo.store_attachments(conn, tenant, attachments)
        self._metrics.archive_latency.labels(channel).observe(time.perf_counter() - started)
        self._metrics.accepted.labels(tenant, channel).inc(len(result.inserted))
        self._metrics.batch_size.labels(channel).observe(len(items))
        self._count_deviations(tenant, result.inserted)
        return result

    def _count_deviations(self, tenant: str, inserted: Sequence[Prepared]) -> None:
        for item in inserted:
            for deviation in item.deviations:
                self._metrics.lenient_deviations.labels(tenant, deviation.rule).inc()

    async def accept_records(
        self, tenant: str, records: Sequence[Sequence[Prepared]]
    ) -> list[Exception | None]:
        """Archive the statements of several raw records in one transaction.

        Each record is all-or-nothing; a record that conflicts or that PostgreSQL refuses
        (permanently) is reported by its position (``None`` = stored or already stored) and
        the others are kept. Retriable errors (database away) propagate: nothing was stored.
        """
        started = time.perf_counter()
        outcomes: list[Exception | None] = [None] * len(records)
        inserted = 0
        stored: list[Prepared] = []
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                async with conn.transaction():  # a savepoint: the fast path, all records at once
                    items = [p for record in records for p in record]
                    result = await repo.store_statements(
                        conn, tenant, items, Channel.KAFKA, self._notify
                    )
                inserted = len(result.inserted)
                stored = list(result.inserted)
            except (ConflictError, asyncpg.PostgresError) as exc:
                if is_retriable(exc):
                    raise
                inserted = 0
                stored = []
                for index, record in enumerate(records):
                    try:
                        async with conn.transaction():
                            result = await repo.store_statements(
                                conn, tenant, record, Channel.KAFKA, self._notify
                            )
                        inserted += len(result.inserted)
                        stored += result.inserted
                    except (ConflictError, asyncpg.PostgresError) as failure:
                        if is_retriable(failure):
                            raise
                        outcomes[index] = failure
        self._metrics.archive_latency.labels(Channel.KAFKA).observe(time.perf_counter() - started)
        self._metrics.accepted.labels(tenant, Channel.KAFKA).inc(inserted)
        self._count_deviations(tenant, stored)
        return outcomes
