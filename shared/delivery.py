"""No gap in what a worker processes: each partition's records reach the pipeline in offset
order with none missing, whatever Faust does around a rebalance.

Why it is needed. faust-streaming loses records around a rebalance. Its stream never gives
the agent a record it takes while flow control is suspended or that was fetched in an earlier
consumer generation, even on a ``noack()`` stream (``faust/streams.py``, "Skipping message";
the pure-Python stream also acknowledges it, the compiled one installed here just drops it:
``tests/unit/shared/test_faust_skips.py``); its fetch loop moves its read offset on when flow
control cuts a delivery short; and its commit bookkeeping can then move past such a record (the
head-gap check ``min(acked) - committed > 1`` lets a one-record gap through, and is skipped while
the committed offset is unknown, right after a revocation). Seen as a kill -9 test that lost one
progress update in about five runs (``tests/integration/resilience/test_worker_crash.py``);
with this guard, the same test's restarted workers found 13 to 44 records missing where their
own watermarks said to resume, in 4 runs of 30 under CPU load, and filled them. Upstream reports
of the same family: faust-streaming issues 216, 221, 312 and 596.

What this does. :class:`OffsetGuard` knows, per partition, the next offset the pipeline must
see: the offset after the last record it was given, or -- for a partition it has not seen since
it was (re)assigned -- the position the service's own database says was processed (the
projection's watermark, written in the same transaction as the effects, or just after), or the
consumer group's committed offset when that is earlier (:func:`group_committed`); for a
partition the database has never seen, the committed offset, or the log's first offset when
the group has none (:func:`group_position`). Both are read before this process acknowledges
anything of the partition.

Why the earlier of the two: a worker's table entries (Faust's changelog) are written *after*
the watermark's transaction, so a worker killed between the two leaves a watermark ahead of
what its table holds, and its records up to the watermark must be seen again or the table's
state misses them. The group's commit follows the acknowledgements, which follow the table
writes, so it is not ahead of the table (but for the bookkeeping fault above). Seen: a kill -9
test whose restarted progress worker resumed at its watermarks while Faust's stream skipped the
records below them; it counted 5 or 6 attempts too few for 4 learner x competency pairs.

When a record arrives beyond that position, the records in between are read again straight
from Kafka (a plain consumer, no group: :func:`refetch`) and handed to the pipeline first, in
order, as :class:`Refetched` events, which are acknowledged to Faust's consumer like its own.
Records at or below the position pass (redeliveries: the pipelines are idempotent). Records
deleted by retention are not waited for: a gap that starts before the partition's first offset
starts there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from faust.types import ConsumerMessage

from shared.errors import DependencyUnavailableError
from shared.kafka import kafka_admin, kafka_consumer

log = logging.getLogger(__name__)

#: ``refetch(partition, start, end)``: the records of ``[start, end)`` still in the log
#: (``start`` may be before the log's first offset), as events, in order
Refetch = Callable[[int, int, int], AsyncGenerator["Refetched", None]]
#: ``position(partition)``: the next offset the database says is to be processed, or None
Position = Callable[[int], Awaitable[int | None]]
#: ``on_gap(partition, records)``: a gap was filled with ``records`` records
OnGap = Callable[[int, int], None]


@dataclass(frozen=True)
class Refetched:
    """A record read again by :func:`refetch`: what the pipelines read from a Faust event
    (``key``, ``value``, ``message.topic/partition/offset``)."""

    key: bytes | None
    value: bytes | None
    message: ConsumerMessage

    def ack(self, consumer: Any) -> bool:
        """Mark its offset done in Faust's consumer (as a stream does for its own events)."""
        return bool(self.message.ack(consumer))


class OffsetGuard:
    """Per partition, the next offset the pipeline must be given (see the module's text).

    ``in_order(event)``: the fast path, true when nothing is missing before ``event``;
    otherwise ``admit(event)`` yields what to hand to the pipeline, in order: the missing
    records before ``event`` (read again) and ``event`` itself. ``forget(partitions)`` on
    revocation: another worker may process them meanwhile, so their position is read from the
    database again when they come back."""

    def __init__(
        self,
        topic: str,
        refetch: Refetch,
        *,
        position: Position | None = None,
        on_gap: OnGap | None = None,
        fallback: Position | None = None,
        committed: Position | None = None,
    ) -> None:
        self.topic = topic
        self._refetch = refetch
        self._position = position
        self._fallback = fallback  # when ``position`` knows nothing of the partition
        self._committed = committed  # resume there when it is before ``position``'s
        self._on_gap = on_gap
        self._next: dict[int, int] = {}

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._next.pop(partition, None)

    def expected(self, partition: int) -> int | None:
        return self._next.get(partition)

    def in_order(self, event: Any) -> bool:
        """True (and the position moves on) when the partition's position is known and
        nothing is missing before ``event``; else :meth:`admit` it."""
        msg = event.message
        expected = self._next.get(msg.partition)
        if expected is None or msg.offset > expected:
            return False
        if msg.offset == expected:
            self._next[msg.partition] = expected + 1
        return True

    async def admit(self, event: Any) -> AsyncGenerator[Any, None]:
        """What to hand to the pipeline for ``event``, in order: the records missing before
        it (read again, streamed: a long gap is never held in memory at once), then
        ``event``."""
        msg = event.message
        partition, offset = msg.partition, msg.offset
        expected = self._next.get(partition)
        if expected is None and self._position is not None:
            expected = await self._position(partition)
            if expected is not None and self._committed is not None:
                committed = await self._committed(partition)
                if committed is not None and committed < expected:
                    expected = committed
        if expected is None and self._fallback is not None:
            expected = await self._fallback(partition)
        if expected is not None and offset > expected:
            records = 0
            async with contextlib.aclosing(self._refetch(partition, expected, offset)) as read:
                async for missing in read:
                    if expected <= missing.message.offset < offset:
                        records += 1
                        yield missing
            log.warning(
                "records skipped by the consumer were read again",
                extra={
                    "topic": msg.topic,
                    "partition": partition,
                    "from_offset": expected,
                    "to_offset": offset,
                    "records": records,
                },
            )
            if self._on_gap is not None:
                self._on_gap(partition, records)
        if expected is None or offset >= expected:
            self._next[partition] = offset + 1
        yield event


async def group_committed(bootstrap: str, group: str, topic: str, partition: int) -> int | None:
    """``group``'s committed offset of the partition; None when it never committed one."""
    tp = TopicPartition(topic, partition)
    async with kafka_admin(bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(group, partitions=[tp])
    meta = committed.get(tp)
    return int(meta.offset) if meta is not None and meta.offset >= 0 else None


async def group_position(bootstrap: str, group: str, topic: str, partition: int) -> int:
    """Where a partition no watermark covers resumes: ``group``'s committed offset, else (a
    group that never committed it) the log's first offset."""
    committed = await group_committed(bootstrap, group, topic, partition)
    if committed is not None:
        return committed
    tp = TopicPartition(topic, partition)
    async with kafka_consumer(bootstrap, group_id=None) as consumer:
        return int((await consumer.beginning_offsets([tp]))[tp])


async def refetch(
    bootstrap: str,
    topic: str,
    partition: int,
    start: int,
    end: int,
    *,
    within: float = 30.0,
    chunk: int = 500,
) -> AsyncGenerator[Refetched, None]:
    """The records of ``topic``/``partition`` at offsets ``[start, end)`` that are still in the
    log, in order, as :class:`Refetched` events, read ``chunk`` at a time (a consumer of its
    own: no group, nothing committed). Raises :class:`DependencyUnavailableError` when no
    record comes for ``within`` s."""
    tp = TopicPartition(topic, partition)
    loop = asyncio.get_running_loop()
    async with kafka_consumer(bootstrap, group_id=None) as consumer:
        consumer.assign([tp])

        async def resume_at(position: int) -> int:
            # records deleted by retention are not waited for
            position = max(position, (await consumer.beginning_offsets([tp]))[tp])
            consumer.seek(tp, position)
            return position

        position = await resume_at(start)
        deadline = loop.time() + within
        while position < end:
            batch = await consumer.getmany(
                tp, timeout_ms=1000, max_records=min(chunk, end - position)
            )
            records = batch.get(tp, [])
            if not records:  # retention may have moved the log's start past ``position``
                if loop.time() > deadline:
                    raise DependencyUnavailableError(
                        f"{topic}[{partition}] offsets {position}..{end - 1} not read in {within} s"
                    )
                position = await resume_at(position)
                continue
            for record in records:
                if record.offset >= end:
                    return
                message = ConsumerMessage(
                    topic,
                    partition,
                    record.offset,
                    record.timestamp / 1000.0,
                    record.timestamp_type,
                    list(record.headers or ()),
                    record.key,
                    record.value,
                    None,
                )
                yield Refetched(record.key, record.value, message)
                position = record.offset + 1
            deadline = loop.time() + within
