"""The baselines ``bench_ingest.py`` compares ingest with, on the same statement bytes.

:func:`bench_raw_producer`: a plain aiokafka producer, one ``send`` per statement (aiokafka's
default batches, or ingest's producer settings). :func:`bench_raw_insert`: plain asyncpg
storing the statements in tables shaped like ingest's archive and outbox. :func:`cpu_floor`:
the CPU per statement of the parts no ingest process can skip (strict validation, the
producer's send, the consumer's fetch), measured in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from throughput import Result

from shared.kafka import kafka_consumer, kafka_producer
from shared.xapi import XapiVersion, parse_statement


async def bench_raw_producer(
    bootstrap: str, topic: str, statements: Sequence[bytes], *, batch_bytes: int | None = None
) -> Result:
    """``producer.send`` per statement; with ``batch_bytes``, the producer settings ingest uses
    (its batches hold up to that many bytes, instead of aiokafka's 16 KiB). ``cpu``: this
    process's CPU seconds over the sends."""
    options = {} if batch_bytes is None else {"max_batch_size": batch_bytes}
    async with kafka_producer(bootstrap, linger_ms=5, **options) as producer:
        started, cpu = time.monotonic(), time.process_time()
        futures = [await producer.send(topic, value) for value in statements]
        await asyncio.gather(*futures)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    name = "baseline: aiokafka producer, same bytes"
    if batch_bytes is not None:
        name += f", {batch_bytes // 1024} KiB batches (ingest's producer settings)"
    return Result(name, len(statements), seconds, cpu)


@dataclass(frozen=True)
class Floor:
    """CPU microseconds per statement, in this process, of each part every ingest process
    does for every statement, whatever its own code: nothing else (no HTTP, archive, envelope,
    outbox) is counted, so ``1e6 / total`` bounds what one process can take on one core."""

    validation_us: float
    produce_us: float
    consume_us: float

    @property
    def kafka_us(self) -> float:
        """A raw record read, validated, and its event sent."""
        return self.validation_us + self.consume_us + self.produce_us

    @property
    def http_us(self) -> float:
        """A POSTed statement validated and its event sent."""
        return self.validation_us + self.produce_us


def validation_us(statements: Sequence[bytes], version: XapiVersion) -> float:
    """Strict validation (:func:`shared.xapi.parse_statement`, what ingest runs), CPU per
    statement: the best of three passes (after one warm-up pass)."""
    best = float("inf")
    for attempt in range(4):
        cpu = time.process_time()
        for raw in statements:
            parse_statement(raw, version=version)
        if attempt:
            best = min(best, time.process_time() - cpu)
    return best / len(statements) * 1e6


async def consume_us(bootstrap: str, topic: str, count: int) -> float:
    """CPU per record of reading ``count`` records of ``topic`` from the start with
    ``getmany`` (ingest's intake reads so); the waits (assignment, fetches) cost no CPU."""
    async with kafka_consumer(bootstrap, topic, group_id=None) as consumer:
        got, cpu = 0, time.process_time()
        while got < count:
            polled = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not polled and got:
                break  # the topic holds fewer than ``count``
            got += sum(len(records) for records in polled.values())
        if not got:
            raise RuntimeError(f"read no records of {topic}")
        return (time.process_time() - cpu) / got * 1e6


async def cpu_floor(
    bootstrap: str,
    topic: str,
    statements: Sequence[bytes],
    *,
    batch_bytes: int,
    version: XapiVersion,
) -> tuple[Floor, Result]:
    """The floor, and the producer's baseline row it was taken from (``batch_bytes``: ingest's
    producer setting; its sends fill ``topic`` for the consumer)."""
    produced = await bench_raw_producer(bootstrap, topic, statements, batch_bytes=batch_bytes)
    assert produced.cpu is not None
    floor = Floor(
        validation_us=validation_us(statements, version),
        produce_us=produced.cpu / len(statements) * 1e6,
        consume_us=await consume_us(bootstrap, topic, len(statements)),
    )
    return floor, produced


_BASELINE_DDL = """
CREATE TABLE "{schema}".base_statements (
    tenant text NOT NULL, statement_id uuid NOT NULL, body jsonb NOT NULL,
    content_hash text NOT NULL, event_id uuid NOT NULL, stored timestamptz NOT NULL,
    PRIMARY KEY (tenant, statement_id));
CREATE TABLE "{schema}".base_outbox (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, msg_key bytea NOT NULL,
    envelope bytea NOT NULL, published_at timestamptz);
CREATE INDEX ON "{schema}".base_outbox (id) WHERE published_at IS NULL;
"""
_BASELINE_INSERT = """
WITH ins AS (
    INSERT INTO "{schema}".base_statements
        (tenant, statement_id, body, content_hash, event_id, stored)
    SELECT 'acme', u.sid, u.body::jsonb, u.hash, u.eid, now()
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[]) AS u(sid, body, hash, eid)
    ON CONFLICT DO NOTHING RETURNING event_id
)
INSERT INTO "{schema}".base_outbox (event_id, msg_key, envelope)
SELECT u.eid, u.k, u.env FROM unnest($4::uuid[], $5::bytea[], $6::bytea[]) AS u(eid, k, env)
WHERE u.eid IN (SELECT event_id FROM ins)
"""


async def bench_raw_insert(dsn: str, schema: str, statements: Sequence[bytes]) -> Result:
    """Baseline: asyncpg storing the same statements, 100 per transaction, 4 connections."""
    batches = [statements[i : i + 100] for i in range(0, len(statements), 100)]
    args = [
        (
            [uuid.uuid4() for _ in batch],
            [s.decode() for s in batch],
            [hashlib.sha256(s).hexdigest() for s in batch],
            [uuid.uuid4() for _ in batch],
            [b"acme|learner" for _ in batch],
            list(batch),
        )
        for batch in batches
    ]
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
    try:
        await pool.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await pool.execute(_BASELINE_DDL.format(schema=schema))
        sql = _BASELINE_INSERT.format(schema=schema)
        queue = list(reversed(args))

        async def worker() -> None:
            async with pool.acquire() as conn:
                while queue:
                    item = queue.pop()
                    async with conn.transaction():
                        await conn.execute(sql, *item)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(4)))
        seconds = time.monotonic() - started
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await pool.close()
    return Result("baseline: asyncpg insert, same rows, batches of 100", len(statements), seconds)
