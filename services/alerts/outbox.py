"""The outbox relay: publishes alert lifecycle events to ``alerts.events``.

Every alert change writes its envelope to ``outbox`` in the same transaction as the change
(:mod:`services.alerts.changes`), so publishing never blocks the stream or the API and never
loses an event: if Kafka is down the rows wait in PostgreSQL. The relay (same design as
ingest's) runs on one replica at a time under a session advisory lock, wakes on NOTIFY or polls,
sends unpublished rows in id order, waits for every ack, then marks them published. A crash in
between re-sends the same envelopes (same ``event_id``): readers are idempotent by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.alerts import repository as repo
from services.alerts.metrics import AlertsMetrics

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        topic: str,
        metrics: AlertsMetrics,
        *,
        schema: str,
        batch: int = 500,
        poll_seconds: float = 1.0,
        send_timeout: float = 30.0,
        retry_max: float = 10.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._schema = schema
        self._channel = repo.outbox_channel(schema)
        self._batch = batch
        self._poll = poll_seconds
        self._send_timeout = send_timeout
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.leader = False
        self._failures = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="alerts-outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.leader = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def check(self) -> None:
        """Readiness: the relay task is alive (leading or standing by)."""
        if not self.running:
            raise RuntimeError("the outbox relay is not running")

    def wake(self) -> None:
        self._wake.set()

    # --- the loop --------------------------------------------------------------------------

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run(self) -> None:
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener(self._channel, self._on_notify)
                    try:
                        await self._lead(conn)
                    finally:
                        self.leader = False
                        with contextlib.suppress(Exception):
                            await conn.remove_listener(self._channel, self._on_notify)
                            await conn.execute(
                                "SELECT pg_advisory_unlock(hashtext($1))", self._lock_name
                            )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL away: wait, retry
                self._failures += 1
                self._metrics.relay_errors.inc()
                pause = min(self._retry_max, self._poll * 2 ** min(self._failures, 6))
                log.warning(
                    "outbox relay round failed; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "pause_s": pause},
                )
                await asyncio.sleep(pause)

    @property
    def _lock_name(self) -> str:
        return f"skillstream-alerts-outbox:{self._schema}"

    async def _lead(self, conn: repo.Conn) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_name):
            await self._sleep(self._poll)  # another replica relays; stand by
            self._wake.clear()
        self.leader = True
        log.info("outbox relay leading", extra={"schema": self._schema})
        while True:
            self._wake.clear()
            sent = await self.publish_once(conn)
            if sent < self._batch:
                await self._sleep(self._poll)

    async def publish_once(self, conn: repo.Conn) -> int:
        """Publish one batch of unpublished rows; returns how many were acknowledged."""
        rows = await repo.unpublished(conn, self._batch)
        pending = len(rows) if len(rows) < self._batch else await repo.outbox_backlog(conn)
        self._metrics.outbox_backlog.set(pending)
        if not rows:
            return 0
        async with asyncio.timeout(self._send_timeout):
            futures = [
                await self._producer.send(self._topic, row.envelope, key=row.key) for row in rows
            ]
            await asyncio.gather(*futures)
        await repo.mark_published(conn, [row.id for row in rows])
        self._metrics.published.inc(len(rows))
        self._metrics.outbox_backlog.set(max(0, pending - len(rows)))
        self._failures = 0
        return len(rows)
