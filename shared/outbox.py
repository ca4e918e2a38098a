"""The transactional outbox relay shared by the services that publish from PostgreSQL.

A service writes each event's envelope to its schema's ``outbox`` table (``id bigserial``,
``msg_key``, ``envelope``, ``created_at``, ``published_at``) in the same transaction as the change
it describes, and sends ``NOTIFY <channel>``. Publishing therefore never blocks the request or the
stream, and never loses an event: if Kafka is down the rows wait in PostgreSQL. The relay

* runs on one replica at a time: it holds a session advisory lock on a dedicated connection
  (other replicas stand by and take over when that connection goes);
* wakes on ``NOTIFY <channel>`` and also polls every ``poll_seconds``;
* reads unpublished rows in id order, sends them (idempotent producer, ``acks=all``), waits for
  every ack, and only then marks them published. A crash in between re-sends the same envelopes
  (same ``event_id``); consumers are idempotent by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

log = logging.getLogger(__name__)


class RelayMetrics(Protocol):
    relay_errors: Counter
    outbox_backlog: Gauge
    published: Counter


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: bytes
    envelope: bytes
    created_at: datetime


async def unpublished(conn: Conn, limit: int) -> list[OutboxRow]:
    rows = await conn.fetch(
        "SELECT id, msg_key, envelope, created_at FROM outbox"
        " WHERE published_at IS NULL ORDER BY id LIMIT $1",
        limit,
    )
    return [
        OutboxRow(r["id"], bytes(r["msg_key"]), bytes(r["envelope"]), r["created_at"]) for r in rows
    ]


async def mark_published(conn: Conn, ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1::bigint[])",
        list(ids),
    )


async def backlog(conn: Conn) -> int:
    count = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return int(count or 0)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        topic: str,
        metrics: RelayMetrics,
        *,
        schema: str,
        channel: str,
        name: str,
        latency: Histogram | None = None,
        batch: int = 500,
        poll_seconds: float = 1.0,
        send_timeout: float = 30.0,
        retry_max: float = 10.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._latency = latency
        self._schema = schema
        self._channel = channel
        self._name = name
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
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-outbox-relay")

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
        return f"skillstream-{self._name}-outbox:{self._schema}"

    async def _lead(self, conn: Conn) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_name):
            await self._sleep(self._poll)  # another replica relays; stand by
            self._wake.clear()
        self.leader = True
        log.info("outbox relay leading", extra={"schema": self._schema, "relay": self._name})
        while True:
            self._wake.clear()
            sent = await self.publish_once(conn)
            if sent < self._batch:
                await self._sleep(self._poll)

    async def publish_once(self, conn: Conn) -> int:
        """Publish one batch of unpublished rows; returns how many were acknowledged."""
        rows = await unpublished(conn, self._batch)
        pending = len(rows) if len(rows) < self._batch else await backlog(conn)
        self._metrics.outbox_backlog.set(pending)
        if not rows:
            return 0
        async with asyncio.timeout(self._send_timeout):
            futures = [
                await self._producer.send(self._topic, row.envelope, key=row.key) for row in rows
            ]
            await asyncio.gather(*futures)
        await mark_published(conn, [row.id for row in rows])
        if self._latency is not None:
            now = datetime.now(UTC)
            for row in rows:
                self._latency.observe(max(0.0, (now - row.created_at).total_seconds()))
        self._metrics.published.inc(len(rows))
        self._metrics.outbox_backlog.set(max(0, pending - len(rows)))
        self._failures = 0
        return len(rows)
