from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from services.ingest.outbox import OutboxRelay
from tests.integration.ingest.conftest import StartIngest
from tests.integration.waiting import consume, eventually
from tests.unit.ingest.samples import statement


class DownProducer:
    """A producer whose broker is away: no metadata, every send times out."""

    async def partitions_for(self, *_: Any) -> Any:
        raise KafkaTimeoutError()

    async def send(self, *_: Any, **__: Any) -> Any:
        raise KafkaTimeoutError()


async def test_statements_wait_in_the_outbox_until_the_relay_runs(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    run = await start_ingest(start_relay=False)
    url = f"{run.base}/xapi/statements"
    for _ in range(3):
        async with run.http.post(url, json=statement(), headers=run.headers()) as r:
            assert r.status == 200
    async with run.http.get(f"{run.base}/readyz") as r:
        assert r.status == 503  # accepting, but not relaying: not ready
    assert await run.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3

    # Kafka unreachable: a round fails, the rows stay
    ingest = run.ingest
    down = OutboxRelay(
        ingest.pool,
        DownProducer(),
        ingest.topics.statements,
        ingest.metrics,
        schema=ingest.settings.db_schema,
    )
    async with ingest.pool.acquire() as conn:
        with pytest.raises(KafkaTimeoutError):
            await down.publish_once(conn)
    assert await run.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3

    ingest.relay.start()

    async def drained() -> bool:
        return bool(
            await run.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )

    await eventually(drained, what="outbox drained")
    events = await consume(kafka_bootstrap, ingest.topics.statements, 3, settle=0.5)
    assert len(events) == 3
    ids = await run.fetchval("SELECT array_agg(event_id::text ORDER BY id) FROM outbox")
    assert sorted(ids) == sorted(orjson.loads(e.value or b"")["event_id"] for e in events)
    assert "skillstream_ingest_outbox_backlog 0.0" in ingest.metrics.render().decode()


async def test_a_second_relay_stands_by(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    ingest = run.ingest

    async def leading() -> bool:
        return ingest.relay.leader

    await eventually(leading, within=10, what="relay leads")
    other = OutboxRelay(
        ingest.pool, ingest.producer, ingest.topics.statements, ingest.metrics,
        schema=ingest.settings.db_schema, poll_seconds=0.1,
    )  # fmt: skip
    other.start()
    try:
        await other.check()
        async with run.http.post(
            f"{run.base}/xapi/statements", json=statement(), headers=run.headers()
        ) as r:
            assert r.status == 200

        async def drained() -> bool:
            return bool(await run.fetchval("SELECT bool_and(published_at IS NOT NULL) FROM outbox"))

        await eventually(drained, what="published")
        assert not other.leader
        await ingest.relay.stop()
        await eventually(lambda: _true(other.leader), within=10, what="standby takes over")
    finally:
        await other.stop()


async def _true(value: bool) -> bool:
    return value


class HeldPartitionProducer:
    """The real producer, except that the acknowledgement of every batch sent to partition
    ``held`` is withheld from the relay until ``release`` is set (the batch itself reaches
    Kafka at once): a broker that acks slowly. Counts the batches handed to it."""

    def __init__(self, real: AIOKafkaProducer, held: int) -> None:
        self.real = real
        self.held = held
        self.release = asyncio.Event()
        self.sent: list[tuple[int, int]] = []  # (partition, records)

    async def partitions_for(self, topic: str) -> Any:
        return await self.real.partitions_for(topic)

    def create_batch(self) -> Any:
        return self.real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.sent.append((partition, batch.record_count()))
        acked = await self.real.send_batch(batch, topic, partition=partition)
        if partition != self.held:
            return acked

        async def late() -> Any:
            result = await acked
            await self.release.wait()
            return result

        return asyncio.ensure_future(late())

    async def send(self, topic: str, value: bytes, *, key: bytes) -> Any:
        """The one-message path (a relay that does not batch), held alike."""
        acked = await self.real.send(topic, value, key=key)
        self.sent.append((-1, 1))

        async def late() -> Any:
            result = await acked
            if result.partition == self.held:
                await self.release.wait()
            return result

        return asyncio.ensure_future(late())


async def test_a_timed_out_round_neither_cancels_nor_resends(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    """Regression: a round whose acks came late used to cancel its futures and leave every row
    unpublished, so the next round sent the acknowledged ones again (duplicates). Now what was
    acknowledged is marked, and the late batch is waited for, not re-sent."""
    run = await start_ingest(start_relay=False)
    ingest = run.ingest
    learners = [
        statement(actor={"objectType": "Agent", "mbox": f"mailto:learner{i}@example.com"})
        for i in range(24)
    ]
    async with run.http.post(
        f"{run.base}/xapi/statements", json=learners, headers=run.headers()
    ) as r:
        assert r.status == 200
    producer = HeldPartitionProducer(ingest.producer, held=0)
    relay = OutboxRelay(
        ingest.pool, cast(AIOKafkaProducer, producer), ingest.topics.statements, ingest.metrics,
        schema=ingest.settings.db_schema, send_timeout=0.5,
    )  # fmt: skip
    unpublished = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    async with ingest.pool.acquire() as conn:
        with pytest.raises(TimeoutError):
            await relay.publish_once(conn)  # partition 1 acked, partition 0 late
        # the acknowledged rows (partition 1) are marked, the late ones (partition 0) are not
        held = int(await run.fetchval(unpublished))
        assert 0 < held < 24, producer.sent
        assert held == sum(n for p, n in producer.sent if p == 0)
        sends = len(producer.sent)
        with pytest.raises(TimeoutError):
            await relay.publish_once(conn)  # still late: waited for, nothing sent again
        assert len(producer.sent) == sends
        assert await run.fetchval(unpublished) == held
        producer.release.set()
        assert await relay.publish_once(conn) == held  # the late batch settles, no re-send
        assert len(producer.sent) == sends
        assert await run.fetchval(unpublished) == 0
        assert await relay.publish_once(conn) == 0
    events = await consume(kafka_bootstrap, ingest.topics.statements, 24, settle=1.0)
    ids = [orjson.loads(e.value or b"")["event_id"] for e in events]
    assert len(ids) == len(set(ids)) == 24  # each event exactly once on the topic
