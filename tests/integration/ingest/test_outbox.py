from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from services.ingest.outbox import OutboxRelay
from tests.integration.ingest.conftest import StartIngest, consume, eventually
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
