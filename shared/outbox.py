"""The transactional outbox relay shared by the services that publish from PostgreSQL.

A service writes each event's envelope to its schema's ``outbox`` table (``id bigserial``,
``msg_key``, ``envelope``, ``created_at``, ``published_at``) in the same transaction as the change
it describes, and sends ``NOTIFY <channel>``. Publishing therefore never blocks the request or the
stream, and never loses an event: if Kafka is down the rows wait in PostgreSQL. The relay

* runs on one replica at a time: it holds a session advisory lock on a dedicated connection
  (other replicas stand by and take over when that connection goes);
* wakes on ``NOTIFY <channel>`` and also polls every ``poll_seconds``;
* reads unpublished rows in id order, sends them in partition batches (idempotent producer,
  ``acks=all``), and marks each batch's rows published once Kafka acknowledged that batch. A
  crash in between re-sends the same envelopes (same ``event_id``); consumers are idempotent by
  event id. A timed-out round cancels no send: the next round waits for what is still in
  flight before reading the table again, so a slow acknowledgement causes no second copy.
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
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

log = logging.getLogger(__name__)

#: most message keys whose partition is remembered (the key is ``tenant|learner``)
_PARTITION_CACHE_MAX = 100_000


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
        #: partition batches handed to the producer and not settled yet, with their rows
        self._inflight: list[tuple[list[OutboxRow], asyncio.Future[Any]]] = []
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[bytes, int] = {}
        self._all_partitions: list[int] = []

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
        """Publish one batch of unpublished rows; returns how many were acknowledged.

        Rows are sent with the producer's batch API, grouped by partition (the default
        partitioner of the key, so a key keeps its partition and its order). Each partition
        batch's acknowledgement marks exactly its rows published. A round that times out
        does not cancel anything: what was acknowledged is marked, and the sends still in
        flight are remembered; the next round first waits for those (it neither re-sends them
        nor sends newer rows ahead of them) and only re-reads the table once they are all
        settled. A send that failed leaves its rows unpublished: the next round re-sends them.
        """
        if self._inflight:
            settled = await self._settle(conn)
            if self._inflight:
                raise TimeoutError(f"{len(self._inflight)} outbox batches still unacknowledged")
            return settled
        rows = await unpublished(conn, self._batch)
        pending = len(rows) if len(rows) < self._batch else await backlog(conn)
        self._metrics.outbox_backlog.set(pending)
        if not rows:
            return 0
        failure: Exception | None = None
        try:
            await self._send(rows)
        except Exception as exc:  # noqa: BLE001 - what was sent is settled first, then raised
            failure = exc
        settled = await self._settle(conn)
        if failure is not None:
            raise failure
        if self._inflight:
            raise TimeoutError(f"{len(self._inflight)} outbox batches unacknowledged in time")
        self._metrics.outbox_backlog.set(max(0, pending - settled))
        self._failures = 0
        return settled

    async def _partition_of(self, key: bytes) -> int:
        partition = self._partitions.get(key)
        if partition is None:
            if not self._all_partitions:
                self._all_partitions = sorted(await self._producer.partitions_for(self._topic))
            partition = self._partitioner(key, self._all_partitions, self._all_partitions)
            if len(self._partitions) >= _PARTITION_CACHE_MAX:
                self._partitions.clear()
            self._partitions[key] = partition
        return partition

    async def _send(self, rows: Sequence[OutboxRow]) -> None:
        """Hand ``rows`` to the producer, one batch per partition (split when full); each
        batch and its rows go to ``self._inflight`` as soon as the producer took it."""
        by_partition: dict[int, list[OutboxRow]] = {}
        for row in rows:
            by_partition.setdefault(await self._partition_of(row.key), []).append(row)
        for partition, members in by_partition.items():
            batch = self._producer.create_batch()
            taken: list[OutboxRow] = []
            for row in members:
                if batch.append(key=row.key, value=row.envelope, timestamp=None) is None:
                    if not taken:  # cannot happen: an empty batch takes any message
                        raise ValueError(f"outbox row {row.id} does not fit in a batch")
                    await self._send_batch(batch, partition, taken)
                    batch, taken = self._producer.create_batch(), []
                    if batch.append(key=row.key, value=row.envelope, timestamp=None) is None:
                        raise ValueError(f"outbox row {row.id} does not fit in a batch")
                taken.append(row)
            if taken:
                await self._send_batch(batch, partition, taken)

    async def _send_batch(self, batch: Any, partition: int, rows: list[OutboxRow]) -> None:
        batch.close()
        future = await self._producer.send_batch(batch, self._topic, partition=partition)
        self._inflight.append((rows, future))

    async def _settle(self, conn: Conn) -> int:
        """Wait (up to the send timeout, cancelling nothing) for the batches in flight; mark
        the acknowledged ones published; keep the unfinished ones in flight; forget the failed
        ones (their rows stay unpublished and are re-sent). Raises the first send failure."""
        inflight = self._inflight
        if not inflight:
            return 0
        done, _ = await asyncio.wait({future for _, future in inflight}, timeout=self._send_timeout)
        acked: list[OutboxRow] = []
        failure: BaseException | None = None
        still: list[tuple[list[OutboxRow], asyncio.Future[Any]]] = []
        for rows, future in inflight:
            if future not in done:
                still.append((rows, future))
            elif future.cancelled():
                failure = failure or asyncio.CancelledError()
            elif future.exception() is not None:
                failure = failure or future.exception()
            else:
                acked.extend(rows)
        self._inflight = still
        if acked:
            await mark_published(conn, [row.id for row in acked])
            if self._latency is not None:
                now = datetime.now(UTC)
                for row in acked:
                    self._latency.observe(max(0.0, (now - row.created_at).total_seconds()))
            self._metrics.published.inc(len(acked))
        if failure is not None:
            if isinstance(failure, Exception):
                raise failure
            raise RuntimeError(f"an outbox batch send ended with {failure!r}")
        return len(acked)
