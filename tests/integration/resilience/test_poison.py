"""Poison records on a raw topic (shared servers, own prefix and schema).

Extends ``tests/integration/ingest/test_intake.py`` (which covers a broken-JSON record and a
single invalid statement): non-UTF-8 bytes, an empty value, a tombstone, an array with one
invalid statement, an unknown version header, a huge invalid record and a huge valid one. Each
poison is dead-lettered with a reason and its source; a valid record after them on the same
partition is archived (and published): the partition keeps flowing.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from shared.kafka import kafka_admin, kafka_producer
from tests.integration.ingest.conftest import Running, StartIngest
from tests.integration.waiting import consume, eventually
from tests.unit.ingest.samples import statement

#: a broker's default message.max.bytes is 1048588; "near the max"
HUGE = 1_000_000


def _dead(records: list[ConsumerRecord[bytes, bytes]]) -> dict[int, dict[str, Any]]:
    """Dead-letter bodies by the source offset."""
    out: dict[int, dict[str, Any]] = {}
    for record in records:
        body = orjson.loads(record.value or b"")
        out[body["source"]["offset"]] = body
    return out


def _huge_extension(size: int) -> dict[str, Any]:
    base = statement(id=str(uuid.uuid4()))
    filler = "x" * (size - len(orjson.dumps(base)) - 200)
    base["context"] = {"extensions": {"https://lms.example.com/ext/blob": filler}}
    return base


async def _archived(run: Running, sid: str) -> bool:
    return bool(await run.fetchval("SELECT count(*) = 1 FROM statements WHERE statement_id = $1",
                                   uuid.UUID(sid)))  # fmt: skip


async def _published(run: Running, sid: str) -> bool:
    return bool(
        await run.fetchval(
            "SELECT count(*) = 1 FROM outbox o JOIN statements s USING (event_id)"
            " WHERE s.statement_id = $1 AND o.published_at IS NOT NULL",
            uuid.UUID(sid),
        )
    )


async def test_small_poisons_are_dead_lettered_and_the_partition_flows(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    run = await start_ingest(intake_enabled=True)
    raw = run.ingest.topics.raw("acme")
    good_in_bad_array = str(uuid.uuid4())
    array = orjson.dumps(
        [statement(id=good_in_bad_array), statement(actor={"mbox": "not-an-address"})]
    )
    follower = str(uuid.uuid4())
    sends: list[tuple[bytes | None, list[tuple[str, bytes]]]] = [
        (b"\xff\xfe\x00garbage", []),
        (b"", []),
        (None, []),
        (array, []),
        (orjson.dumps(statement()), [("X-Experience-API-Version", b"3.0.0")]),
        (orjson.dumps(statement(id=follower)), []),
    ]
    async with kafka_producer(kafka_bootstrap) as producer:
        for value, headers in sends:
            await producer.send_and_wait(raw, value, key=b"lms", partition=0, headers=headers)

    await eventually(lambda: _archived(run, follower), within=30, what="follower archived")
    dead = _dead(await consume(kafka_bootstrap, run.ingest.topics.deadletter, 5, settle=0.5))
    assert sorted(dead) == [0, 1, 2, 3, 4], dead
    for offset, body in dead.items():
        assert body["reason"], body
        assert body["rule"], body
        assert body["tenant"] == "acme"
        assert body["source"] == {"topic": raw, "partition": 0, "offset": offset}
        if sends[offset][0] is not None:
            assert base64.b64decode(body["original"]) == sends[offset][0]
    assert dead[3]["reason"] == "invalid_statement"
    assert dead[3]["violations"][0]["path"].startswith("$[1].actor"), dead[3]
    assert dead[4]["rule"].startswith("version"), dead[4]
    # a record is all or nothing: the valid statement of the poisoned array is not archived
    assert not await _archived(run, good_in_bad_array)
    assert await run.fetchval("SELECT count(*) FROM statements") == 1


async def test_a_huge_invalid_record_does_not_block_its_partition(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    """A ~1 MB record that is not a statement: its dead-letter (which carries the original as
    base64, i.e. 4/3 of its size) must not exceed what the producer may send and wedge the
    partition forever."""
    run = await start_ingest(intake_enabled=True)
    raw = run.ingest.topics.raw("acme")
    huge = b'{"blob": "' + b"a" * (HUGE - 20) + b'"}'
    follower = str(uuid.uuid4())
    started = time.monotonic()
    async with kafka_producer(kafka_bootstrap, max_request_size=2 * HUGE) as producer:
        await producer.send_and_wait(raw, huge, partition=0)
        await producer.send_and_wait(raw, orjson.dumps(statement(id=follower)), partition=0)
    await eventually(
        lambda: _archived(run, follower), within=20, what="the record after a huge poison archived"
    )
    await eventually(
        lambda: _committed(kafka_bootstrap, run, raw, 2),
        within=10,
        what="the raw partition's offset committed past the huge record",
    )
    dead = _dead(await consume(kafka_bootstrap, run.ingest.topics.deadletter, 1, within=10))
    assert dead[0]["reason"] == "invalid_statement"
    assert dead[0]["source"] == {"topic": raw, "partition": 0, "offset": 0}
    print(f"huge invalid record: flowed in {time.monotonic() - started:.1f}s")


async def test_a_huge_valid_record_does_not_block_the_stream(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    """A valid statement near the broker's max record size: either dead-lettered, or archived
    and published; in no case may it wedge the outbox so that later statements never reach
    ``xapi.statements``."""
    run = await start_ingest(intake_enabled=True)
    raw = run.ingest.topics.raw("acme")
    big = _huge_extension(HUGE)
    follower = str(uuid.uuid4())
    started = time.monotonic()
    async with kafka_producer(kafka_bootstrap, max_request_size=2 * HUGE) as producer:
        await producer.send_and_wait(raw, orjson.dumps(big), partition=0)
        await producer.send_and_wait(raw, orjson.dumps(statement(id=follower)), partition=0)
    await eventually(lambda: _archived(run, follower), within=20, what="follower archived")

    async def flowing() -> bool:
        return await _published(run, follower)

    await eventually(flowing, within=20, what="the statement after the huge one published")
    if await _archived(run, big["id"]):
        assert await _published(run, big["id"]), "archived but never published"
    else:
        dead = _dead(await consume(kafka_bootstrap, run.ingest.topics.deadletter, 1, within=10))
        assert dead[0]["source"]["offset"] == 0
    print(f"huge valid record: flowed in {time.monotonic() - started:.1f}s")


async def test_a_deeply_nested_record_is_dead_lettered_and_the_partition_flows(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    """A statement whose extension nests 255 levels deep parses, but re-serialising it fails
    (orjson and pydantic stop at ~255 levels): it must be dead-lettered like any poison, not
    make the intake loop reconnect forever on the same batch."""
    run = await start_ingest(intake_enabled=True)
    raw = run.ingest.topics.raw("acme")
    deep = statement(id=str(uuid.uuid4()))
    deep["context"] = {"extensions": {"https://x.example/deep": "@@DEEP@@"}}
    value = orjson.dumps(deep).replace(b'"@@DEEP@@"', b"[" * 255 + b"]" * 255)
    follower = str(uuid.uuid4())
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(raw, value, partition=0)
    # a later batch: only reached when the partition really moves past the poison
    await eventually(lambda: _committed(kafka_bootstrap, run, raw, 1), within=15,
                     what="the raw partition's offset committed past the deep record")  # fmt: skip
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(raw, orjson.dumps(statement(id=follower)), partition=0)
    await eventually(lambda: _archived(run, follower), within=15, what="follower archived")
    dead = _dead(await consume(kafka_bootstrap, run.ingest.topics.deadletter, 1, within=10))
    assert dead[0]["source"] == {"topic": raw, "partition": 0, "offset": 0}
    assert dead[0]["reason"]


async def _committed(bootstrap: str, run: Running, topic: str, offset: int) -> bool:
    async with kafka_admin(bootstrap) as admin:
        offsets = await admin.list_consumer_group_offsets(run.ingest.settings.consumer_group)
    got = offsets.get(TopicPartition(topic, 0))
    return got is not None and got.offset >= offset
