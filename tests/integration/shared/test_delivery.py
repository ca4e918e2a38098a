""":func:`shared.delivery.refetch` against the real broker: the records of an offset range, in
order, with what the pipelines read (key, value, topic, partition, offset); records deleted
from the log (retention) are not waited for. And :class:`~shared.delivery.OffsetGuard` in a
real Faust worker: a record the stream skips (acknowledged, never given to the agent, as
Faust's pure-Python stream does around a rebalance) is processed, in order, before the offset
past it is committed -- without the guard it is committed and lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import RecordsToDelete

from shared.batching import Batcher, consume_in_batches
from shared.delivery import OffsetGuard, Refetched, group_committed, group_position, refetch
from shared.kafka import TopicSpec, ensure_topics, kafka_admin, kafka_consumer, kafka_producer
from shared.streaming import make_faust_app, raw_topic, running

pytestmark = pytest.mark.timeout(90)


async def read(
    bootstrap: str, topic: str, partition: int, start: int, end: int, **kw: Any
) -> list[Refetched]:
    return [r async for r in refetch(bootstrap, topic, partition, start, end, **kw)]


async def test_refetch_reads_the_range_in_order(
    kafka_bootstrap: str, topic_prefix: str, kafka_cleanup: None
) -> None:
    topic = f"{topic_prefix}refetch"
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(topic, 2)])
    async with kafka_producer(kafka_bootstrap) as producer:
        for i in range(10):
            await producer.send_and_wait(topic, b"v%d" % i, key=b"k%d" % i, partition=1)
        await producer.send_and_wait(topic, b"other", key=b"x", partition=0)

    got = await read(kafka_bootstrap, topic, 1, 3, 7)
    assert [(r.message.offset, r.key, r.value) for r in got] == [
        (o, b"k%d" % o, b"v%d" % o) for o in range(3, 7)
    ]
    assert {(r.message.topic, r.message.partition) for r in got} == {(topic, 1)}
    assert not any(r.message.acked for r in got)
    assert await read(kafka_bootstrap, topic, 1, 7, 7) == []
    # read a chunk at a time, the same records
    assert [r.message.offset for r in await read(kafka_bootstrap, topic, 1, 0, 10, chunk=3)] == (
        list(range(10))
    )

    # the first 5 records are deleted (as retention would): the range starts at the log's start
    async with kafka_admin(kafka_bootstrap) as admin:
        await admin.delete_records({TopicPartition(topic, 1): RecordsToDelete(5)})
    got = await read(kafka_bootstrap, topic, 1, 2, 8)
    assert [r.message.offset for r in got] == [5, 6, 7]
    assert await read(kafka_bootstrap, topic, 1, 0, 4, within=5) == []


async def test_group_position_is_the_committed_offset_else_the_log_start(
    kafka_bootstrap: str, topic_prefix: str, kafka_cleanup: None
) -> None:
    topic, group = f"{topic_prefix}positions", f"{topic_prefix}group"
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(topic, 2)])
    async with kafka_producer(kafka_bootstrap) as producer:
        for i in range(6):
            await producer.send_and_wait(topic, b"v%d" % i, partition=i % 2)  # 3 per partition
    assert await group_position(kafka_bootstrap, group, topic, 0) == 0  # never committed
    assert await group_committed(kafka_bootstrap, group, topic, 0) is None
    async with kafka_consumer(kafka_bootstrap, group_id=group) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 2})
    assert await group_position(kafka_bootstrap, group, topic, 0) == 2
    assert await group_committed(kafka_bootstrap, group, topic, 0) == 2
    async with kafka_admin(kafka_bootstrap) as admin:
        await admin.delete_records({TopicPartition(topic, 1): RecordsToDelete(1)})
    assert await group_position(kafka_bootstrap, group, topic, 1) == 1  # the log's start


class SkippingStream:
    """A Faust stream that does to one record what Faust's pure-Python stream does to records
    it takes while flow control is suspended or from an earlier generation: acknowledges it and
    never gives it to the agent (``faust/streams.py``, "Skipping message")."""

    def __init__(self, stream: Any, skip: int) -> None:
        self._stream = stream
        self._skip = skip
        self._manual: Any = None

    def noack(self) -> SkippingStream:
        self._manual = self._stream.noack()
        return self

    async def ack(self, event: Any) -> Any:
        return await self._manual.ack(event)

    async def events(self) -> AsyncIterator[Any]:
        async for event in self._manual.events():
            if event.message.offset == self._skip:
                await self._manual.ack(event)
                continue
            yield event


@pytest.mark.parametrize("guarded", [True, False], ids=["with-guard", "without-guard"])
async def test_a_record_the_stream_skips_is_processed_before_its_offset_is_committed(
    kafka_bootstrap: str, topic_prefix: str, kafka_cleanup: None, tmp_path: Path, guarded: bool
) -> None:
    source = f"{topic_prefix}source"
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(source, 1)])
    app = make_faust_app(
        "gaps",
        bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        partitions=1,
        data_dir=str(tmp_path),
    )
    processed: list[int] = []
    last = asyncio.Event()

    async def flush(events: list[Any]) -> None:
        processed.extend(e.message.offset for e in events)
        if processed[-1] == 11:
            last.set()

    batcher = Batcher(flush, batch_max=4, within=0.05)
    gaps: list[tuple[int, int]] = []
    guard = OffsetGuard(
        source,
        partial(refetch, kafka_bootstrap, source),
        on_gap=lambda partition, records: gaps.append((partition, records)),
    )

    async def agent(stream: Any) -> None:
        await consume_in_batches(
            app, SkippingStream(stream, 5), batcher, guard if guarded else None
        )

    app.agent(raw_topic(app, source, 1), name="gaps")(agent)
    async with running(app):
        async with kafka_producer(kafka_bootstrap) as producer:
            for i in range(12):
                await producer.send_and_wait(source, b"v%d" % i, key=b"k")
        await asyncio.wait_for(last.wait(), 20)
        await app.consumer.commit()
        async with kafka_admin(kafka_bootstrap) as admin:
            committed = await admin.list_consumer_group_offsets(app.conf.id)
    [meta] = [m for tp, m in committed.items() if tp.topic == source]
    assert meta.offset == 12  # every record is marked done, the skipped one included
    if guarded:
        assert processed == list(range(12))
        assert gaps == [(0, 1)]
    else:  # what Faust alone does: the offset is committed, the record never processed
        assert processed == [o for o in range(12) if o != 5]
